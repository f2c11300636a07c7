/**
 * Writeback through the S3 front end of a real gateway process (a general purpose bucket), to a
 * real Azurite behind a recording proxy (test/helpers/tier.ts): a DCP-style checkpoint saved with
 * @aws-sdk/client-s3 (PutObject for most shards, lib-storage's multipart Upload for one, then
 * `.metadata`) ends in Azurite with exactly those blobs, bytes, content type, metadata and
 * Content-MD5 equal, one commit per object, `.metadata` sent only after Azurite answered every
 * shard's commit; HEAD says dirty while the uploads are held and clean after; a restore with
 * GetObject reads nothing from the upstream; DeleteObjects of the clean checkpoint empties the
 * upstream container. In writethrough mode CompleteMultipartUpload and CopyObject answer only
 * after Azurite answered their upload.
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  CopyObjectCommand, CreateBucketCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { startAzurite } from '../helpers/azurite.js'
import {
  KiB, MiB, azuriteBlobs, commits, flushAll, isCommit, isWrite, scrapeMetrics, startTierGateway, startUpstreamProxy, waitForStatus
} from '../helpers/tier.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64')
const BUCKET = 'ckpt-s3'

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const proxy = await startUpstreamProxy(azurite.port)
t.teardown(() => proxy.close())
const gw = await startTierGateway({ upstream: proxy.connectionString, args: ['--writeback-concurrency', '16', '--upload-block-size', '1MiB', '--upload-single-max', '1MiB'] })
t.teardown(() => gw.stop())
const s3 = new S3Client({
  endpoint: gw.s3Endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey },
  maxAttempts: 1
})
t.teardown(() => s3.destroy())
await s3.send(new CreateBucketCommand({ Bucket: BUCKET }))
// The account's container exists, as it does in production (a new one costs a failed first request).
await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(BUCKET).createIfNotExists()

/** HEAD Object, and the gateway's `x-ckptcache-state` header (which the SDK's output leaves out). */
async function tierState (key: string): Promise<string | undefined> {
  const cmd = new HeadObjectCommand({ Bucket: BUCKET, Key: key })
  let state: string | undefined
  cmd.middlewareStack.add((next) => async (args) => {
    const out = await next(args)
    state = (out.response as { headers: Record<string, string> }).headers['x-ckptcache-state']
    return out
  }, { step: 'deserialize' })
  await s3.send(cmd)
  return state
}

t.test('a DCP checkpoint saved through the S3 front end arrives whole, .metadata last, one commit per object; its restore reads nothing upstream', async (t) => {
  const dir = 'run-2/step-200/'
  const want = new Map<string, { data: Buffer, contentType: string, metadata: Record<string, string> }>()
  for (let rank = 0; rank < 8; rank++) {
    // Shard 7 goes up as a multipart upload of three parts (5 + 5 + 1.5 MiB); the others in one PutObject.
    const size = rank === 7 ? 11.5 * MiB : 512 * KiB + rank * 256 * KiB
    want.set(`${dir}__${rank}_0.distcp`, { data: randomBytes(size), contentType: 'application/octet-stream', metadata: { rank: String(rank), step: '200' } })
  }
  const index = Buffer.from(JSON.stringify({ version: 1, shards: [...want.keys()] }))
  want.set(`${dir}.metadata`, { data: index, contentType: 'application/json', metadata: { step: '200' } })
  const before = await scrapeMetrics(gw.adminUrl)

  proxy.hold((r) => isWrite(r) && r.target.startsWith(`${BUCKET}/${dir}`))
  for (const [key, w] of want) {
    const params = { Bucket: BUCKET, Key: key, Body: w.data, ContentType: w.contentType, Metadata: w.metadata }
    if (w.data.length > 5 * MiB) {
      const upload = new Upload({ client: s3, params, partSize: 5 * MiB, queueSize: 2 })
      const out = await upload.done()
      t.match(out.ETag, /-3"$/, `${key}: a multipart upload of three parts`)
    } else {
      await s3.send(new PutObjectCommand(params))
    }
  }
  const held = await waitForStatus(gw.adminUrl, (s) => s.writeback?.uploading === 8, 'eight shard uploads in flight')
  t.match(held.writeback, { dirtyObjects: 9, uploading: 8, queued: 1 }, 'the marker is queued, not uploading')
  t.equal(await tierState(`${dir}__7_0.distcp`), 'dirty', 'HEAD of the multipart shard whose upload is held: dirty')
  t.equal(await tierState(`${dir}.metadata`), 'dirty', 'HEAD of the waiting marker: dirty')
  t.notOk(proxy.requests.some((r) => r.target === `${BUCKET}/${dir}.metadata`), 'nothing of .metadata went upstream while shards were held')

  proxy.release()
  const lines = await flushAll(gw.adminUrl, `${BUCKET}/${dir}`)
  t.match(lines[0], { objects: 9, bytes: [...want.values()].reduce((n, w) => n + w.data.length, 0) }, 'the flush counted the checkpoint')

  const got = await azuriteBlobs(azurite.connectionString, BUCKET)
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'Azurite holds exactly the checkpoint')
  for (const [key, w] of want) {
    const b = got.get(key)
    t.ok(b?.data.equals(w.data), `${key}: bytes equal`)
    t.equal(b?.contentType, w.contentType, `${key}: content type carried`)
    t.same(b?.metadata, w.metadata, `${key}: metadata carried`)
    t.equal(b?.contentMd5, md5(w.data), `${key}: Content-MD5 of its bytes`)
  }

  const commitsOf = (key: string): Array<typeof proxy.requests[number]> => proxy.requests.filter((r) => isCommit(r) && r.target === `${BUCKET}/${key}`)
  const marker = commitsOf(`${dir}.metadata`)
  t.equal(marker.length, 1, '.metadata: one commit request')
  for (const key of want.keys()) {
    if (key.endsWith('.metadata')) continue
    const shard = commitsOf(key)
    t.equal(shard.length, 1, `${key}: one commit request`)
    t.ok(shard[0]?.answered !== undefined && marker[0] !== undefined && shard[0].answered < marker[0].arrived,
      `${key}: committed in Azurite before .metadata was sent`)
  }
  t.equal(commitsOf(`${dir}__7_0.distcp`)[0]?.op, 'PutBlockList', 'the multipart shard went up in blocks')
  t.equal(proxy.requests.filter((r) => r.op === 'PutBlock' && r.target === `${BUCKET}/${dir}__7_0.distcp`).length, 12, 'twelve 1 MiB blocks, each sent once')
  const after = await scrapeMetrics(gw.adminUrl)
  t.equal(commits(after) - commits(before), 9, 'Put Blob + Put Block List requests: one per object')
  t.equal(after.get('ckptcache_writeback_uploads_total', { result: 'ok' }) - before.get('ckptcache_writeback_uploads_total', { result: 'ok' }), 9)
  t.equal(after.get('ckptcache_writeback_uploads_total', { result: 'failed' }), 0, 'no upload failed')
  t.equal(await tierState(`${dir}__7_0.distcp`), 'clean', 'HEAD after the upload: clean')
  t.equal(await tierState(`${dir}.metadata`), 'clean')

  const restoreFrom = proxy.requests.length
  for (const [key, w] of want) {
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
    t.ok(Buffer.from(await out.Body!.transformToByteArray()).equals(w.data), `restore ${key}: bytes equal`)
  }
  const restored = await scrapeMetrics(gw.adminUrl)
  t.equal(restored.get('ckptcache_upstream_bytes_total', { direction: 'in' }) - after.get('ckptcache_upstream_bytes_total', { direction: 'in' }), 0, 'restore: 0 bytes from the upstream')
  t.equal(restored.get('ckptcache_upstream_requests_total', { operation: 'GetBlob' }), 0, 'restore: no Get Blob')
  t.same(proxy.requests.slice(restoreFrom).map((r) => `${r.op} ${r.target}`), [], 'restore: no upstream request at all')

  // The clean checkpoint deleted in one DeleteObjects: the upstream container ends empty.
  const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [...want.keys()].map((Key) => ({ Key })) } }))
  t.equal(deleted.Deleted?.length, 9)
  await flushAll(gw.adminUrl, BUCKET)
  t.same([...(await azuriteBlobs(azurite.connectionString, BUCKET)).keys()], [], 'every blob deleted upstream')
  t.equal(proxy.requests.filter((r) => r.op === 'DeleteBlob' && r.status === 202).length, 9, 'one upstream delete per object')
})

t.test('writethrough: CompleteMultipartUpload and CopyObject are acknowledged only after Azurite answered their uploads', async (t) => {
  const wt = await startTierGateway({ upstream: proxy.connectionString, mode: 'writethrough', args: ['--upload-block-size', '1MiB'] })
  t.teardown(() => wt.stop())
  const client = new S3Client({ endpoint: wt.s3Endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: wt.s3AccessKey, secretAccessKey: wt.s3SecretKey }, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  // A bucket Azurite has no container for yet: the first blocks find none, the gateway creates it.
  await client.send(new CreateBucketCommand({ Bucket: 'wthru-s3' }))
  const data = randomBytes(11 * MiB)
  proxy.hold((r) => isCommit(r) && r.target.startsWith('wthru-s3/'))
  let acked: number | undefined
  const upload = new Upload({ client, params: { Bucket: 'wthru-s3', Key: 'model.pt', Body: data, ContentType: 'application/x-pytorch', Metadata: { 'model-step': '300' } }, partSize: 5 * MiB })
  const done = upload.done().then((r) => { acked = proxy.now(); return r })
  await proxy.arrived((r) => isCommit(r) && r.target === 'wthru-s3/model.pt', 1)
  t.equal(acked, undefined, 'CompleteMultipartUpload not answered while the upload is held')
  proxy.release()
  proxy.hold((r) => isCommit(r) && r.target === 'wthru-s3/copy.pt')
  await done
  const commit = proxy.requests.filter((r) => isCommit(r) && r.target === 'wthru-s3/model.pt').pop()
  t.equal(commit?.status, 201, 'the last commit request created the blob')
  t.ok(commit?.answered !== undefined && acked !== undefined && commit.answered <= acked, 'answered after Azurite answered the Put Block List')
  let got = (await azuriteBlobs(azurite.connectionString, 'wthru-s3')).get('model.pt')
  t.ok(got?.data.equals(data), 'in Azurite at the acknowledgement, bytes equal')
  t.equal(got?.contentMd5, md5(data))
  t.same(got?.metadata, { model_step: '300' }, 'S3 metadata names mapped to Azure identifiers')

  acked = undefined
  const copy = s3Copy(client).then((r) => { acked = proxy.now(); return r })
  await proxy.arrived((r) => isCommit(r) && r.target === 'wthru-s3/copy.pt', 1)
  t.equal(acked, undefined, 'CopyObject not answered while the copy\'s upload is held')
  proxy.release()
  await copy
  got = (await azuriteBlobs(azurite.connectionString, 'wthru-s3')).get('copy.pt')
  t.ok(got?.data.equals(data), 'the copy in Azurite at the acknowledgement')
  t.equal(got?.contentType, 'application/x-pytorch')
})

async function s3Copy (client: S3Client): Promise<unknown> {
  return await client.send(new CopyObjectCommand({ Bucket: 'wthru-s3', Key: 'copy.pt', CopySource: 'wthru-s3/model.pt' }))
}
