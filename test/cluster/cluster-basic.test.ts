/**
 * A cluster of real gateways on loopback (test/helpers/cluster.ts), seen through real clients:
 *
 * - 3 nodes, replicas 2, ack all: a checkpoint written through node A (Blob Put Blob and Put
 *   Block List, S3 PutObject and multipart) reads byte-equal through B and C with both protocols;
 *   HEAD answers (size, ETag, content type, metadata, last modified) agree on every node; each
 *   object has exactly 2 copies, one of them on A (local first), the other on the first node of
 *   its order; listings through B and C (flat, with a delimiter, in small pages, Blob and S3)
 *   equal A's, no gaps, no duplicates; a delete through C (of a copy C holds, and of one it does
 *   not) is a 404 on every node and the copies are gone; a container created on A exists on B;
 * - peer requests per operation stay O(1): after the writes each node made at most
 *   objects × (replicas - 1) `write` requests; a GET through a node without a copy costs at most
 *   3 peer requests (a `head`, a `read`), a HEAD at most 2;
 * - a Put Blob over 8 MiB without Content-MD5 (its MD5 computed by the writer after the
 *   acknowledgement) answers the same Content-MD5 through every node: each holder's copy records
 *   the writer's MD5 (the `checksums` peer request, etag-guarded and idempotent);
 * - 5 nodes, replicas 3, ack local: copies reach 3 per object after the acknowledgement, and the
 *   same per-operation bounds hold with more nodes; the background MD5 reaches all three copies.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListObjectsV2Command, PutObjectCommand, UploadPartCommand, type S3Client
} from '@aws-sdk/client-s3'
import type { ContainerClient } from '@azure/storage-blob'
import t, { type Test } from 'tap'
import { createPeerClient } from '../../src/cluster/peer-client.js'
import { isCacheError } from '../../src/errors.js'
import { startCluster, until, type ClusterHandle } from '../helpers/cluster.js'
import { KiB, MiB, blobService, readAll, s3Client } from '../helpers/tier-read.js'
import type { GatewayHandle } from '../helpers/gateway.js'

interface Obj {
  name: string
  data: Buffer
  contentType: string
  /** Written through which protocol and how. */
  via: 'put-blob' | 'block-list' | 'put-object' | 'multipart'
  metadata: Record<string, string>
}

const CONTAINER = 'ckpt'

function checkpoint (): Obj[] {
  const d = 'run-1/'
  return [
    { name: `${d}step-100/__0_0.distcp`, via: 'put-blob', data: randomBytes(MiB), contentType: 'application/octet-stream', metadata: { rank: '0' } },
    { name: `${d}step-100/__1_0.distcp`, via: 'block-list', data: randomBytes(3 * 512 * KiB + 100 * KiB), contentType: 'application/octet-stream', metadata: { rank: '1' } },
    { name: `${d}step-100/__2_0.distcp`, via: 'put-object', data: randomBytes(1536 * KiB), contentType: 'application/x-shard', metadata: { rank: '2' } },
    { name: `${d}step-100/__3_0.distcp`, via: 'multipart', data: randomBytes(5 * MiB + MiB), contentType: 'application/octet-stream', metadata: { rank: '3' } },
    { name: `${d}step-200/__0_0.distcp`, via: 'put-blob', data: randomBytes(2 * MiB), contentType: 'application/octet-stream', metadata: { rank: '0', step: '200' } },
    { name: `${d}step-200/__1_0.distcp`, via: 'multipart', data: randomBytes(5 * MiB + 512 * KiB), contentType: 'application/octet-stream', metadata: { rank: '1' } },
    { name: `${d}step-200/.metadata`, via: 'put-blob', data: Buffer.from(JSON.stringify({ step: 200, shards: 2 })), contentType: 'application/json', metadata: { step: '200' } },
    { name: `${d}latest`, via: 'put-object', data: Buffer.from('step-200'), contentType: 'text/plain', metadata: {} }
  ]
}

async function write (gw: GatewayHandle, o: Obj): Promise<void> {
  const blob = blobService(gw).getContainerClient(CONTAINER).getBlockBlobClient(o.name)
  const s3 = s3Client(gw)
  const headers = { blobContentType: o.contentType }
  try {
    if (o.via === 'put-blob') {
      await blob.uploadData(o.data, { blobHTTPHeaders: headers, metadata: o.metadata })
    } else if (o.via === 'block-list') {
      const ids: string[] = []
      for (let off = 0, i = 0; off < o.data.length; off += 512 * KiB, i++) {
        const id = Buffer.from(`block-${String(i).padStart(4, '0')}`).toString('base64')
        await blob.stageBlock(id, o.data.subarray(off, off + 512 * KiB), Math.min(512 * KiB, o.data.length - off))
        ids.push(id)
      }
      await blob.commitBlockList(ids, { blobHTTPHeaders: headers, metadata: o.metadata })
    } else if (o.via === 'put-object') {
      await s3.send(new PutObjectCommand({ Bucket: CONTAINER, Key: o.name, Body: o.data, ContentType: o.contentType, Metadata: o.metadata }))
    } else {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: CONTAINER, Key: o.name, ContentType: o.contentType, Metadata: o.metadata }))
      const parts = []
      for (let off = 0, n = 1; off < o.data.length; off += 5 * MiB, n++) {
        const { ETag } = await s3.send(new UploadPartCommand({ Bucket: CONTAINER, Key: o.name, UploadId, PartNumber: n, Body: o.data.subarray(off, off + 5 * MiB) }))
        parts.push({ ETag, PartNumber: n })
      }
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: CONTAINER, Key: o.name, UploadId, MultipartUpload: { Parts: parts } }))
    }
  } finally {
    s3.destroy()
  }
}

async function blobNames (c: ContainerClient, pageSize: number): Promise<string[]> {
  const names: string[] = []
  for await (const page of c.listBlobsFlat().byPage({ maxPageSize: pageSize })) for (const b of page.segment.blobItems) names.push(b.name)
  return names
}

async function blobTree (c: ContainerClient, prefix: string, pageSize: number): Promise<string[]> {
  const out: string[] = []
  for await (const page of c.listBlobsByHierarchy('/', { prefix }).byPage({ maxPageSize: pageSize })) {
    for (const p of page.segment.blobPrefixes ?? []) out.push(`prefix:${p.name}`)
    for (const b of page.segment.blobItems) out.push(b.name)
  }
  return out.sort()
}

async function s3Names (s3: S3Client, opts: { prefix?: string, delimiter?: string, maxKeys: number }): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  for (let pages = 0; pages < 100; pages++) {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: CONTAINER, MaxKeys: opts.maxKeys, Prefix: opts.prefix, Delimiter: opts.delimiter, ContinuationToken: token }))
    for (const p of r.CommonPrefixes ?? []) out.push(`prefix:${p.Prefix ?? ''}`)
    for (const o of r.Contents ?? []) out.push(o.Key ?? '')
    if (r.IsTruncated !== true) return out.sort()
    token = r.NextContinuationToken
  }
  throw new Error('more than 100 pages')
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

async function totalObjects (c: ClusterHandle): Promise<number> {
  return sum(await Promise.all(c.nodes.map(async (_, i) => await c.objectsOn(i))))
}

/** Peer requests node `i` makes for one operation `op`, measured as the counter's delta (all ops). */
async function peerCost (c: ClusterHandle, i: number, op: () => Promise<void>): Promise<{ total: number, head: number, read: number }> {
  const before = await c.metrics(i)
  await op()
  const after = await c.metrics(i)
  const d = (o?: string): number => after.get('ckptcache_peer_requests_total', o === undefined ? {} : { op: o }) - before.get('ckptcache_peer_requests_total', o === undefined ? {} : { op: o })
  return { total: d(), head: d('head'), read: d('read') }
}

/** A node other than `writer` that holds no copy of `name`. */
async function nonHolder (c: ClusterHandle, name: string, writer: number): Promise<number> {
  const h = await c.holders(CONTAINER, name)
  const i = c.nodes.findIndex((_, k) => k !== writer && !h.includes(k))
  if (i < 0) throw new Error(`every node holds ${name}`)
  return i
}

/**
 * Put Blobs over INLINE_MD5_MAX sent through A at once without Content-MD5: A computes their MD5s
 * after the acknowledgement, one at a time, so some are known before their copies are placed and
 * some after; either way every holder's copy gets it and Get Blob Properties through every node
 * answers the MD5 of the bytes. Returns each name's holders (indices).
 */
async function md5ReachesEveryCopy (t: Test, c: ClusterHandle, names: string[], replicas: number): Promise<number[][]> {
  const blobs = names.map((name) => ({ name, data: randomBytes(9 * MiB + 123) }))
  const A = c.nodes[0] as GatewayHandle
  await Promise.all(blobs.map(async (b) => { await blobService(A).getContainerClient(CONTAINER).getBlockBlobClient(b.name).uploadData(b.data) }))
  const out: number[][] = []
  for (const { name, data } of blobs) {
    const want = createHash('md5').update(data).digest('base64')
    // With ack local a node may not find the object until its copies are placed (a 404 for a moment).
    const md5Through = async (gw: GatewayHandle): Promise<string | undefined> => {
      const p = await blobService(gw).getContainerClient(CONTAINER).getBlobClient(name).getProperties()
        .catch((e: { statusCode?: number }) => { if (e.statusCode === 404) return undefined; throw e })
      return p?.contentMD5 === undefined ? undefined : Buffer.from(p.contentMD5).toString('base64')
    }
    // Polled as a whole: with ack local the copies are placed after the acknowledgement too.
    const state = async (): Promise<{ through: Array<string | undefined>, holders: number[], copies: Array<{ md5?: string, contentMd5?: string }> }> => {
      const through = await Promise.all(c.nodes.map(md5Through))
      const holders = await c.holders(CONTAINER, name)
      const copies = await Promise.all(holders.map(async (i) => await c.copyOn(i, CONTAINER, name)))
      return { through, holders, copies: copies.map((m) => ({ md5: m?.checksums.md5, contentMd5: m?.content.contentMd5 })) }
    }
    const got = await until(`Content-MD5 of ${name} on every copy and through every node`, state,
      (v) => v.holders.length === replicas && v.through.every((m) => m !== undefined) && v.copies.every((m) => m.md5 !== undefined), 10_000)
    t.same(got.through, c.nodes.map(() => want), `${name}: Get Blob Properties through every node answers the MD5 of the bytes`)
    t.ok(got.holders.includes(0), `${name}: the writer is one of the ${replicas} holders`)
    t.same(got.copies, got.holders.map(() => ({ md5: want, contentMd5: want })), `${name}: every holder's copy records the MD5 and answers it as Content-MD5`)
    out.push(got.holders)
  }
  t.ok(await c.peerRequests(0, 'checksums') >= 1, 'the writer sent the MD5s to the other holders (checksums requests)')
  return out
}

/** The per-operation peer cost checks shared by both cluster sizes. */
async function checkCosts (t: Test, c: ClusterHandle, objs: Obj[], replicas: number): Promise<void> {
  for (let i = 0; i < c.nodes.length; i++) {
    t.ok(await c.peerRequests(i, 'write') <= objs.length * (replicas - 1), `${c.ids[i] as string}: at most ${objs.length * (replicas - 1)} write requests for ${objs.length} objects`)
  }
  const target = objs[3] as Obj
  const reader = await nonHolder(c, target.name, 0)
  const gw = c.nodes[reader] as GatewayHandle
  let got: Buffer = Buffer.alloc(0)
  const get = await peerCost(c, reader, async () => {
    const res = await blobService(gw).getContainerClient(CONTAINER).getBlobClient(target.name).download()
    got = await readAll(res.readableStreamBody)
  })
  t.ok(got.equals(target.data), `GET through ${c.ids[reader] as string} (no copy): bytes equal`)
  t.ok(get.total <= 3, `a GET through a node without a copy costs at most 3 peer requests (${JSON.stringify(get)})`)
  t.equal(get.read, 1, 'one peer read')
  const head = await peerCost(c, reader, async () => {
    await blobService(gw).getContainerClient(CONTAINER).getBlobClient(target.name).getProperties()
  })
  t.ok(head.total <= 2 && head.read === 0, `a HEAD costs at most 2 peer requests and no read (${JSON.stringify(head)})`)
}

t.test('3 nodes, replicas 2: written on A, read, listed and deleted anywhere', async (t) => {
  const c = await startCluster({ nodes: 3, replicas: 2 })
  t.teardown(() => c.stop())
  const [A, B, C] = c.nodes as [GatewayHandle, GatewayHandle, GatewayHandle]
  await blobService(A).getContainerClient(CONTAINER).create({ metadata: { owner: 'training' } })
  const objs = checkpoint()
  for (const o of objs) await write(A, o)

  t.test('every object reads byte-equal through B and C, Blob and S3; HEAD agrees on every node', async (t) => {
    for (const o of objs) {
      const props = []
      const s3Heads = []
      for (const gw of [A, B, C]) {
        const blob = blobService(gw).getContainerClient(CONTAINER).getBlobClient(o.name)
        if (gw !== A) {
          t.ok((await readAll((await blob.download()).readableStreamBody)).equals(o.data), `${o.name} through ${gw === B ? 'B' : 'C'} (Blob): bytes equal`)
          const s3 = s3Client(gw)
          const res = await s3.send(new GetObjectCommand({ Bucket: CONTAINER, Key: o.name }))
          t.ok((await readAll(res.Body as NodeJS.ReadableStream)).equals(o.data), `${o.name} through ${gw === B ? 'B' : 'C'} (S3): bytes equal`)
          s3.destroy()
        }
        const p = await blob.getProperties()
        props.push({ size: p.contentLength, etag: p.etag, type: p.contentType, metadata: p.metadata, modified: p.lastModified?.getTime() })
        const s3 = s3Client(gw)
        const h = await s3.send(new HeadObjectCommand({ Bucket: CONTAINER, Key: o.name }))
        s3Heads.push({ size: h.ContentLength, etag: h.ETag, type: h.ContentType, metadata: h.Metadata })
        s3.destroy()
      }
      t.equal(props[0]?.size, o.data.length, `${o.name}: size`)
      t.equal(props[0]?.type, o.contentType, `${o.name}: content type`)
      t.same(props[0]?.metadata, o.metadata, `${o.name}: metadata`)
      t.same(props[1], props[0], `${o.name}: Blob properties on B equal A's`)
      t.same(props[2], props[0], `${o.name}: Blob properties on C equal A's`)
      t.same(s3Heads[1], s3Heads[0], `${o.name}: S3 HEAD on B equals A's`)
      t.same(s3Heads[2], s3Heads[0], `${o.name}: S3 HEAD on C equals A's`)
    }
  })

  t.test('two copies of each object, one on A', async (t) => {
    t.equal(await totalObjects(c), 2 * objs.length, 'copies in the three stores: 2 × objects')
    t.equal(await c.objectsOn(0), objs.length, 'A holds every object')
    for (const o of objs) {
      const h = await c.holders(CONTAINER, o.name)
      t.equal(h.length, 2, `${o.name}: two holders (${JSON.stringify(h)})`)
      t.ok(h.includes(0), `${o.name}: A (the writer) holds it`)
      const copies = await Promise.all(h.map(async (i) => await c.copyOn(i, CONTAINER, o.name)))
      t.equal(new Set(copies.map((m) => m?.etag)).size, 1, `${o.name}: both copies are the same version`)
    }
  })

  t.test('listings through B and C equal A\'s: flat, by directory, in small pages, Blob and S3', async (t) => {
    const want = objs.map((o) => o.name).sort()
    for (const [label, gw] of [['A', A], ['B', B], ['C', C]] as const) {
      const cc = blobService(gw).getContainerClient(CONTAINER)
      for (const size of [1, 3, 5000]) t.same(await blobNames(cc, size), want, `${label} Blob flat listing, pages of ${size}: every name once, in order`)
      t.same(await blobTree(cc, '', 1), ['prefix:run-1/'], `${label} Blob listing with a delimiter`)
      t.same(await blobTree(cc, 'run-1/', 1), ['prefix:run-1/step-100/', 'prefix:run-1/step-200/', 'run-1/latest'], `${label} Blob listing of run-1/ by directory, pages of 1`)
      t.same(await blobTree(cc, 'run-1/step-200/', 2), want.filter((n) => n.startsWith('run-1/step-200/')), `${label} Blob listing of one step, pages of 2`)
      const s3 = s3Client(gw)
      t.same(await s3Names(s3, { maxKeys: 3 }), want, `${label} S3 ListObjectsV2, pages of 3`)
      t.same(await s3Names(s3, { maxKeys: 1, prefix: 'run-1/', delimiter: '/' }), ['prefix:run-1/step-100/', 'prefix:run-1/step-200/', 'run-1/latest'], `${label} S3 listing with a delimiter, pages of 1`)
      s3.destroy()
    }
  })

  t.test('a container created on A exists on B', async (t) => {
    const name = 'created-on-a'
    await blobService(A).getContainerClient(name).create({ metadata: { team: 'infra' } })
    const p = await blobService(B).getContainerClient(name).getProperties()
    t.same(p.metadata, { team: 'infra' }, 'HEAD container on B: its metadata')
    const s3 = s3Client(C)
    const h = await s3.send(new HeadBucketCommand({ Bucket: name }))
    t.equal(h.$metadata.httpStatusCode, 200, 'HeadBucket on C: 200')
    s3.destroy()
  })

  t.test('peer requests per operation are bounded', async (t) => {
    await checkCosts(t, c, objs, 2)
  })

  t.test('a delete through C is a 404 everywhere and removes every copy', async (t) => {
    const before = await totalObjects(c)
    // One object C holds a copy of (its local delete path), one it does not (the remote one).
    const held = new Map<string, boolean>()
    for (const o of objs) held.set(o.name, (await c.holders(CONTAINER, o.name)).includes(2))
    const local = objs.find((o) => held.get(o.name) === true)
    const remote = objs.find((o) => held.get(o.name) === false)
    if (local === undefined || remote === undefined) throw new Error(`C holds ${[...held.values()].filter(Boolean).length} of ${objs.length} objects: need one held and one not`)
    const targets = [{ o: local, how: 'C holds a copy' }, { o: remote, how: 'C holds no copy' }]
    for (const { o, how } of targets) {
      await blobService(C).getContainerClient(CONTAINER).getBlobClient(o.name).delete()
      for (const [label, gw] of [['A', A], ['B', B], ['C', C]] as const) {
        const err = await blobService(gw).getContainerClient(CONTAINER).getBlobClient(o.name).getProperties().then(() => undefined, (e: { statusCode?: number }) => e)
        t.equal(err?.statusCode, 404, `${o.name} (${how}) deleted through C: 404 on ${label} (Blob)`)
        const s3 = s3Client(gw)
        const s3err = await s3.send(new HeadObjectCommand({ Bucket: CONTAINER, Key: o.name })).then(() => undefined, (e: { $metadata?: { httpStatusCode?: number } }) => e)
        t.equal(s3err?.$metadata?.httpStatusCode, 404, `${o.name}: 404 on ${label} (S3)`)
        s3.destroy()
      }
      t.same(await c.holders(CONTAINER, o.name), [], `${o.name}: no copy left on any node`)
    }
    t.equal(await totalObjects(c), before - 4, 'store counts dropped by both copies of both objects')
    const rest = objs.filter((o) => o !== local && o !== remote).map((o) => o.name).sort()
    t.same(await blobNames(blobService(B).getContainerClient(CONTAINER), 2), rest, 'B lists the rest')
  })

  t.test('9 MiB Put Blobs without Content-MD5: every node answers the MD5 A computed after the acknowledgement', async (t) => {
    const names = [0, 1, 2].map((r) => `run-1/step-300/__${r}_0.distcp`)
    const [holders] = await md5ReachesEveryCopy(t, c, names, 2) as [number[]]
    const name = names[0] as string
    // The checksums request on its own, against a real holder other than the writer.
    const replica = holders.find((i) => i !== 0) as number
    const copy = await c.copyOn(replica, CONTAINER, name)
    const want = copy?.checksums.md5 as string
    const etag = copy?.etag as string
    const other = createHash('md5').update('other').digest('base64')
    const client = createPeerClient({ self: 'test-observer', secret: c.secret })
    t.teardown(() => client.close())
    const node = { id: c.ids[replica] as string, url: `http://127.0.0.1:${c.peerPorts[replica] as number}` }
    t.same(await client.rpc(node, 'checksums', { container: CONTAINER, name, etag, md5: want }), { updated: true }, 'the same MD5 again: updated (idempotent)')
    t.same(await client.rpc(node, 'checksums', { container: CONTAINER, name, etag: '"0x1"', md5: other }), { updated: false }, 'another version: not updated')
    t.same(await client.rpc(node, 'checksums', { container: 'no-such-container', name, etag, md5: other }), { updated: false }, 'a container the node does not have: not updated')
    t.same(await client.rpc(node, 'checksums', { container: CONTAINER, name, etag, md5: other }), { updated: false }, 'another MD5 does not replace the one held')
    const bad = await client.rpc(node, 'checksums', { container: CONTAINER, name, etag, md5: 'not-an-md5' }).then(() => undefined, (e: unknown) => e)
    t.ok(isCacheError(bad, 'CC_ERR_INVALID_INPUT'), 'an md5 that is not the base64 of 16 bytes: CC_ERR_INVALID_INPUT')
    t.equal((await c.copyOn(replica, CONTAINER, name))?.checksums.md5, want, 'the copy still records the computed MD5')
  })
})

t.test('5 nodes, replicas 3, ack local: three copies after the acknowledgement, the same per-operation costs', async (t) => {
  const c = await startCluster({ nodes: 5, replicas: 3, ack: 'local' })
  t.teardown(() => c.stop())
  const A = c.nodes[0] as GatewayHandle
  await blobService(A).getContainerClient(CONTAINER).create()
  const objs = checkpoint()
  for (const o of objs) await write(A, o)
  await until('3 copies of every object', async () => await totalObjects(c), (n) => n === 3 * objs.length)
  for (const o of objs) {
    const h = await c.holders(CONTAINER, o.name)
    t.equal(h.length, 3, `${o.name}: three holders`)
    t.ok(h.includes(0), `${o.name}: the writer holds it`)
  }
  for (let i = 1; i < 5; i++) {
    const o = objs[i] as Obj
    t.ok((await readAll((await blobService(c.nodes[i] as GatewayHandle).getContainerClient(CONTAINER).getBlobClient(o.name).download()).readableStreamBody)).equals(o.data), `${o.name} through ${c.ids[i] as string}: bytes equal`)
  }
  await checkCosts(t, c, objs, 3)
  await md5ReachesEveryCopy(t, c, ['run-1/step-300/__0_0.distcp'], 3)
})
