/**
 * Read-through through the real gateway process: a checkpoint saved through a writeback gateway,
 * flushed, and restored from a wiped cache with @azure/storage-blob and @aws-sdk/client-s3; one
 * upstream fetch for 16 concurrent readers of a 256 MiB object; a range answered before the fill
 * completes; blobs changed or deleted in Azure by another writer seen after the revalidation
 * interval; an S3 Express directory bucket and a bucket with dots round-tripped through Azure.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { RestError, type BlobServiceClient } from '@azure/storage-blob'
import {
  CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand,
  S3ServiceException, type S3Client
} from '@aws-sdk/client-s3'
import { upstreamContainerName } from '../../src/upstream/container-map.js'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'
import type { GatewayHandle } from '../helpers/gateway.js'
import {
  BigBody, KiB, MiB, azuriteService, blobService, digestOf, digestStream, flushUntilDone, readAll, s3Client, tierGateway,
  upstreamBytesIn, upstreamNames
} from '../helpers/tier-read.js'

process.removeAllListeners('warning') // client-s3's "Node ≥ 22 after 2027" notice

let azurite: AzuriteHandle
let upstream: BlobServiceClient

t.before(async () => {
  azurite = await startAzurite()
  upstream = azuriteService(azurite)
})
t.teardown(async () => { await azurite?.stop() })

/** A gateway stopped when the test ends (its fresh data dir removed with it). */
async function gateway (t: Test, args: string[] = []): Promise<GatewayHandle> {
  const gw = await tierGateway(azurite, { args })
  t.teardown(async () => { await gw.stop() })
  return gw
}

async function blobError (t: Test, p: Promise<unknown>, status: number, code: string): Promise<void> {
  try {
    await p
    t.fail(`expected ${status} ${code}`)
  } catch (err) {
    if (!(err instanceof RestError)) throw err
    t.equal(err.statusCode, status, `status ${status}`)
    // A HEAD has no body: the code comes from x-ms-error-code.
    t.equal(err.code ?? err.response?.headers.get('x-ms-error-code'), code, `error code ${code}`)
  }
}

async function s3Error (t: Test, p: Promise<unknown>, status: number, name: string): Promise<void> {
  try {
    await p
    t.fail(`expected ${status} ${name}`)
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err
    t.equal(err.$metadata.httpStatusCode, status, `status ${status}`)
    t.equal(err.name, name, `error ${name}`)
  }
}

interface Saved {
  name: string
  data: Buffer
  contentType: string
  metadata: Record<string, string>
}

const C = 'restore'
/** A DCP-style checkpoint in a Blob container (the last file written through S3). */
const files: Saved[] = [
  { name: 'step-100/__0_0.distcp', data: randomBytes(3 * MiB + 17), contentType: 'application/octet-stream', metadata: { rank: '0' } },
  // More than one upload block: Put Block + Put Block List upstream.
  { name: 'step-100/__1_0.distcp', data: randomBytes(9 * MiB + 5), contentType: 'application/octet-stream', metadata: { rank: '1' } },
  { name: 'step-100/.metadata', data: randomBytes(4 * KiB), contentType: 'application/x-python-pickle', metadata: { step: '100', world: '2' } },
  { name: 'step-100/config.json', data: Buffer.from('{"lr":0.001}'), contentType: 'application/json', metadata: { kind: 'config' } }
]
/** S3 buckets whose names Azure does not take: an S3 Express directory bucket and one with dots. */
const buckets = [{ name: 'ckpt--usw2-az1--x-s3', directory: true }, { name: 'my.dotted.bucket', directory: false }]
const objects = [
  { key: 'run/step-1/__0_0.distcp', data: randomBytes(2 * MiB + 3) },
  { key: 'run/step-1/.metadata', data: randomBytes(1000) }
]
/** Directory buckets through the SDK's defaults (it opens sessions itself); the dotted bucket path-style. */
const s3For = (gw: GatewayHandle, b: { directory: boolean }): S3Client => s3Client(gw, { forcePathStyle: !b.directory })

/** Saves everything through a writeback gateway, flushes, and stops it: its data dir goes with it. */
async function saveAndWipe (): Promise<void> {
  const saver = await tierGateway(azurite)
  try {
    const container = blobService(saver).getContainerClient(C)
    await container.create()
    for (const f of files.slice(0, 3)) {
      await container.getBlockBlobClient(f.name).uploadData(f.data, {
        blockSize: 4 * MiB, maxSingleShotSize: 4 * MiB, blobHTTPHeaders: { blobContentType: f.contentType }, metadata: f.metadata
      })
    }
    const s3 = s3Client(saver)
    const json = files[3] as Saved
    await s3.send(new PutObjectCommand({ Bucket: C, Key: json.name, Body: json.data, ContentType: json.contentType, Metadata: json.metadata }))
    s3.destroy()
    for (const b of buckets) {
      const client = s3For(saver, b)
      await client.send(new CreateBucketCommand({
        Bucket: b.name,
        ...(b.directory ? { CreateBucketConfiguration: { Location: { Type: 'AvailabilityZone', Name: 'usw2-az1' }, Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' } } } : {})
      }))
      for (const o of objects) await client.send(new PutObjectCommand({ Bucket: b.name, Key: o.key, Body: o.data }))
      client.destroy()
    }
    await flushUntilDone(saver)
  } finally {
    await saver.stop()
  }
}

t.test('a checkpoint saved through a writeback gateway restores from a wiped cache', async (t) => {
  await saveAndWipe()
  const up = upstream.getContainerClient(C)
  t.same(await upstreamNames(up), files.map((f) => f.name).sort(), 'every file is in Azure under its name')
  for (const b of buckets) {
    const mapped = upstreamContainerName(b.name)
    t.not(mapped, b.name, `${b.name} is not an Azure container name`)
    t.same(await upstreamNames(upstream.getContainerClient(mapped)), objects.map((o) => o.key).sort(), `${b.name} is in Azure container ${mapped}`)
  }

  const gw = await gateway(t)
  t.equal(await upstreamBytesIn(gw), 0, 'a fresh gateway has read nothing yet')
  const blob = blobService(gw)
  const s3 = s3Client(gw)
  t.teardown(() => s3.destroy())

  t.test('with @azure/storage-blob and @aws-sdk/client-s3', async (t) => {
    // The container is known without anyone creating it.
    t.equal((await s3.send(new HeadBucketCommand({ Bucket: C }))).$metadata.httpStatusCode, 200, 'HeadBucket finds the container')
    t.ok(await blob.getContainerClient(C).exists(), 'Get Container Properties finds the container')

    const expectEtag = async (name: string): Promise<string> => {
      const etag = (await up.getBlobClient(name).getProperties()).etag
      if (etag === undefined) throw new Error('no etag upstream')
      return etag
    }
    // Cold reads: half through Blob, half through S3, each the first read of its object.
    const byBlob = [files[0], files[2]] as Saved[]
    const byS3 = [files[1], files[3]] as Saved[]
    for (const f of byBlob) {
      const client = blob.getContainerClient(C).getBlobClient(f.name)
      const props = await client.getProperties()
      t.equal(props.etag, await expectEtag(f.name), `${f.name}: HEAD answers the upstream ETag`)
      t.equal(props.contentLength, f.data.length)
      t.equal(props.contentType, f.contentType, `${f.name}: content type`)
      t.same(props.metadata, f.metadata, `${f.name}: metadata`)
      const res = await client.download()
      t.equal(res.etag, props.etag)
      t.ok((await readAll(res.readableStreamBody)).equals(f.data), `${f.name}: Blob bytes equal`)
    }
    for (const f of byS3) {
      const res = await s3.send(new GetObjectCommand({ Bucket: C, Key: f.name }))
      t.equal(res.ETag, await expectEtag(f.name), `${f.name}: GetObject answers the upstream ETag`)
      t.equal(res.ContentType, f.contentType, `${f.name}: content type`)
      t.same(res.Metadata, f.metadata, `${f.name}: metadata`)
      t.ok(Buffer.from(await res.Body!.transformToByteArray()).equals(f.data), `${f.name}: S3 bytes equal`)
    }
    const total = files.reduce((n, f) => n + f.data.length, 0)
    const afterCold = await upstreamBytesIn(gw)
    t.equal(afterCold, total, 'each object came from the upstream once')

    // Second reads, through the other protocol: all local.
    for (const f of byS3) {
      const res = await blob.getContainerClient(C).getBlobClient(f.name).download()
      t.ok((await readAll(res.readableStreamBody)).equals(f.data), `${f.name}: Blob bytes equal from the cache`)
    }
    for (const f of byBlob) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: C, Key: f.name }))
      t.equal(head.ETag, await expectEtag(f.name))
      const res = await s3.send(new GetObjectCommand({ Bucket: C, Key: f.name }))
      t.ok(Buffer.from(await res.Body!.transformToByteArray()).equals(f.data), `${f.name}: S3 bytes equal from the cache`)
    }
    t.equal(await upstreamBytesIn(gw), afterCold, 'second reads download nothing')

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: C }))
    t.same(listed.Contents?.map((o) => o.Key), files.map((f) => f.name).sort(), 'ListObjectsV2 lists the checkpoint')
  })

  t.test('conditional reads compare with the upstream ETag', async (t) => {
    const name = (files[0] as Saved).name
    const etag = (await up.getBlobClient(name).getProperties()).etag as string
    const client = blob.getContainerClient(C).getBlobClient(name)
    t.equal((await client.getProperties({ conditions: { ifMatch: etag } })).etag, etag, 'If-Match the upstream ETag')
    await blobError(t, client.download(0, undefined, { conditions: { ifMatch: '"0x1"' } }), 412, 'ConditionNotMet')
    try {
      await client.download(0, undefined, { conditions: { ifNoneMatch: etag } })
      t.fail('expected 304')
    } catch (err) {
      t.equal((err as RestError).statusCode, 304, 'If-None-Match the upstream ETag: 304')
    }
    await s3Error(t, s3.send(new GetObjectCommand({ Bucket: C, Key: name, IfMatch: '"0x1"' })), 412, 'PreconditionFailed')
  })

  t.test('copies of objects only upstream, and a delete of one nobody read', async (t) => {
    const src = randomBytes(5 * MiB + 1)
    await up.getBlockBlobClient('seeded/src.bin').uploadData(src)
    await up.getBlockBlobClient('seeded/old.bin').uploadData(randomBytes(100))
    const before = await upstreamBytesIn(gw)
    await s3.send(new CopyObjectCommand({ Bucket: C, Key: 'copies/by-s3.bin', CopySource: `${C}/seeded/src.bin` }))
    const source = blob.getContainerClient(C).getBlobClient('seeded/src.bin')
    await blob.getContainerClient(C).getBlobClient('copies/by-blob.bin').syncCopyFromURL(source.url)
    t.equal(await upstreamBytesIn(gw) - before, src.length, 'the source came from the upstream once')
    for (const n of ['copies/by-s3.bin', 'copies/by-blob.bin']) {
      t.ok((await readAll((await blob.getContainerClient(C).getBlobClient(n).download()).readableStreamBody)).equals(src), `${n}: bytes equal`)
    }
    // DeleteObject of a name this cache never held: gone upstream when it answers.
    await s3.send(new DeleteObjectCommand({ Bucket: C, Key: 'seeded/old.bin' }))
    t.notOk(await up.getBlobClient('seeded/old.bin').exists(), 'the uncached object is deleted in Azure')
    await s3Error(t, s3.send(new HeadObjectCommand({ Bucket: C, Key: 'seeded/old.bin' })), 404, 'NotFound')
    await flushUntilDone(gw, C)
    for (const n of ['copies/by-s3.bin', 'copies/by-blob.bin']) {
      t.ok((await up.getBlobClient(n).downloadToBuffer()).equals(src), `${n}: written back to Azure`)
    }
  })

  t.test('missing keys and containers keep their protocol errors', async (t) => {
    const missing = blob.getContainerClient(C).getBlobClient('step-100/__9_0.distcp')
    await blobError(t, missing.getProperties(), 404, 'BlobNotFound')
    await blobError(t, missing.download(), 404, 'BlobNotFound')
    await s3Error(t, s3.send(new HeadObjectCommand({ Bucket: C, Key: 'step-100/__9_0.distcp' })), 404, 'NotFound')
    await s3Error(t, s3.send(new GetObjectCommand({ Bucket: C, Key: 'step-100/__9_0.distcp' })), 404, 'NoSuchKey')
    await blobError(t, blob.getContainerClient('nowhere').getBlobClient('x').download(), 404, 'ContainerNotFound')
    await blobError(t, blob.getContainerClient('nowhere').getProperties(), 404, 'ContainerNotFound')
    await s3Error(t, s3.send(new GetObjectCommand({ Bucket: 'nowhere', Key: 'x' })), 404, 'NoSuchBucket')
    await s3Error(t, s3.send(new ListObjectsV2Command({ Bucket: 'nowhere' })), 404, 'NoSuchBucket')
    await s3Error(t, s3.send(new HeadBucketCommand({ Bucket: 'nowhere' })), 404, 'NotFound')
  })

  t.test('an S3 Express directory bucket and a bucket with dots, through their mapped Azure containers', async (t) => {
    for (const b of buckets) {
      const client = s3For(gw, b)
      t.teardown(() => client.destroy())
      t.equal((await client.send(new HeadBucketCommand({ Bucket: b.name }))).$metadata.httpStatusCode, 200, `${b.name}: HeadBucket`)
      const listed = await client.send(new ListObjectsV2Command({ Bucket: b.name, Prefix: 'run/' }))
      t.same(listed.Contents?.map((o) => o.Key), objects.map((o) => o.key).sort(), `${b.name}: listed`)
      for (const o of objects) {
        const res = await client.send(new GetObjectCommand({ Bucket: b.name, Key: o.key }))
        t.same(await digestStream(res.Body as NodeJS.ReadableStream), digestOf(o.data), `${b.name}/${o.key}: bytes equal`)
      }
      await s3Error(t, client.send(new GetObjectCommand({ Bucket: b.name, Key: 'run/none' })), 404, 'NoSuchKey')
    }
  })
})

/** One 256 MiB blob seeded straight into Azure, shared by the next two tests (each on its own cold gateway). */
const big = new BigBody(256 * MiB)
let seeded: Promise<void> | undefined
async function seedBig (): Promise<void> {
  seeded ??= (async () => {
    const up = upstream.getContainerClient('big')
    await up.create()
    await up.getBlockBlobClient('model.bin').uploadStream(big.stream(), 8 * MiB, 4)
  })()
  await seeded
}

t.test('16 concurrent readers of a 256 MiB object on a cold gateway: one upstream fetch', async (t) => {
  await seedBig()
  const gw = await gateway(t)
  const blob = blobService(gw).getContainerClient('big').getBlobClient('model.bin')
  const digests = await Promise.all(Array.from({ length: 16 }, async () => await digestStream((await blob.download()).readableStreamBody)))
  for (const [i, d] of digests.entries()) t.same(d, big.digest, `reader ${i}: bytes equal`)
  const fetched = await upstreamBytesIn(gw)
  t.ok(fetched >= big.size && fetched < big.size + 8 * MiB, `one fetch: ${fetched} bytes in for a ${big.size}-byte object`)
  t.same(await digestStream((await blob.download()).readableStreamBody), big.digest, 'a later read')
  t.equal(await upstreamBytesIn(gw), fetched, 'is served from the cache')
})

t.test('a range read is answered before the fill completes', async (t) => {
  await seedBig()
  // 1 MiB blocks at 20 upstream requests a second: the whole fill would take over ten seconds.
  const gw = await gateway(t, ['--upload-block-size', '1MiB', '--upstream-max-rps', '20'])
  const client = blobService(gw).getContainerClient('big').getBlobClient('model.bin')
  const tail = await client.download(big.size - KiB, KiB)
  t.equal(tail.contentRange, `bytes ${big.size - KiB}-${big.size - 1}/${big.size}`)
  t.ok((await readAll(tail.readableStreamBody)).equals(big.slice(big.size - KiB, big.size - 1)), 'the last KiB')
  const inAfterTail = await upstreamBytesIn(gw)
  t.ok(inAfterTail < big.size, `answered with ${inAfterTail} of ${big.size} bytes fetched`)

  const s3 = s3Client(gw)
  t.teardown(() => s3.destroy())
  const mid = 128 * MiB + 3
  const res = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'model.bin', Range: `bytes=${mid}-${mid + KiB - 1}` }))
  t.equal(res.ContentRange, `bytes ${mid}-${mid + KiB - 1}/${big.size}`)
  t.ok(Buffer.from(await res.Body!.transformToByteArray()).equals(big.slice(mid, mid + KiB - 1)), 'a range in the middle through S3')
  const inAfterMid = await upstreamBytesIn(gw)
  t.ok(inAfterMid < big.size, `answered with ${inAfterMid} of ${big.size} bytes fetched`)
})

t.test('a blob another writer changes in Azure is seen after the revalidation interval', async (t) => {
  const C = 'fresh'
  const gw = await gateway(t, ['--revalidate-after', '1s'])
  const blob = blobService(gw).getContainerClient(C)
  const up = upstream.getContainerClient(C)
  await blob.create()
  const v1 = randomBytes(64 * KiB)
  await blob.getBlockBlobClient('written.bin').uploadData(v1)
  await flushUntilDone(gw, C)
  t.ok((await readAll((await blob.getBlobClient('written.bin').download()).readableStreamBody)).equals(v1), 'the written version')

  // A miss answers the upstream's ETag.
  const other = randomBytes(32 * KiB)
  const seeded = await up.getBlockBlobClient('seeded.bin').uploadData(other)
  const head = await blob.getBlobClient('seeded.bin').getProperties()
  t.equal(head.etag, seeded.etag, 'HEAD of a miss: the upstream ETag')
  const first = await blob.getBlobClient('seeded.bin').download()
  t.equal(first.etag, seeded.etag, 'GET of a miss: the upstream ETag')
  t.ok((await readAll(first.readableStreamBody)).equals(other))

  // Another writer replaces one and deletes the other, straight in Azure.
  const v2 = randomBytes(48 * KiB)
  const changed = await up.getBlockBlobClient('written.bin').uploadData(v2)
  await up.getBlobClient('seeded.bin').delete()
  await delay(1100) // past the revalidation interval: nothing to wait on but the clock
  const fresh = await blob.getBlobClient('written.bin').download()
  t.equal(fresh.etag, changed.etag, 'the new upstream ETag')
  t.ok((await readAll(fresh.readableStreamBody)).equals(v2), 'the new bytes')
  await blobError(t, blob.getBlobClient('seeded.bin').download(), 404, 'BlobNotFound')
})
