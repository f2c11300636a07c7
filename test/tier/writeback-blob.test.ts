/**
 * Writeback through the Blob front end of a real gateway process, to a real Azurite behind a
 * recording proxy (test/helpers/tier.ts):
 *
 * - a DCP-style checkpoint (8 shards of a few MiB, some in blocks, and `.metadata`) saved with
 *   @azure/storage-blob ends in Azurite with exactly those blobs, bytes, content type, metadata
 *   and Content-MD5 equal, one commit per object, `.metadata` sent only after Azurite answered
 *   every shard's commit (the shards' uploads are held in the proxy while `.metadata` is written,
 *   so a marker that went early would be seen going early); HEAD says dirty while the upload is
 *   held and clean after; a restore from the warm cache reads nothing from the upstream;
 * - deletes: a clean object's delete reaches Azurite; a dirty object deleted while its upload is
 *   in flight, or a marker deleted while it waits for its directory, never appears there;
 * - `ckptcache flush --prefix … --wait` and `ckptcache status` against the gateway;
 * - writethrough: a Put Blob is acknowledged only after Azurite answered its upload;
 * - names with spaces, reserved URL characters and non-ASCII text, empty objects, a version
 *   replaced during its upload, a name written again while its upstream delete is in flight.
 */
import { createHash, randomBytes } from 'node:crypto'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import t from 'tap'
import { startAzurite } from '../helpers/azurite.js'
import {
  MiB, KiB, adminStatus, azuriteBlobs, commits, flushAll, isCommit, isWrite, runCli, scrapeMetrics, startCli, startTierGateway,
  startUpstreamProxy, waitForStatus
} from '../helpers/tier.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64')

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const proxy = await startUpstreamProxy(azurite.port)
t.teardown(() => proxy.close())
// Room for every shard and the marker at once: a marker that did not wait would go at once.
const gw = await startTierGateway({ upstream: proxy.connectionString, args: ['--writeback-concurrency', '16', '--upload-block-size', '1MiB', '--upload-single-max', '1MiB'] })
t.teardown(() => gw.stop())
const client = BlobServiceClient.fromConnectionString(gw.connectionString, { retryOptions: { maxTries: 1 } })
const ckpt = client.getContainerClient('ckpt')
await ckpt.create()

async function tierState (c: ContainerClient, name: string): Promise<string | undefined> {
  const props = await c.getBlobClient(name).getProperties()
  return props._response.headers.get('x-ckptcache-state')
}

t.test('a DCP checkpoint saved through the Blob front end arrives whole, .metadata last, one commit per object; its restore reads nothing upstream', async (t) => {
  const dir = 'run-1/step-100/'
  const want = new Map<string, { data: Buffer, contentType: string, metadata: Record<string, string> }>()
  for (let rank = 0; rank < 8; rank++) {
    // 512 KiB (one Put Blob) up to 2.25 MiB (three blocks and a block list).
    want.set(`${dir}__${rank}_0.distcp`, { data: randomBytes(512 * KiB + rank * 256 * KiB), contentType: 'application/octet-stream', metadata: { rank: String(rank), step: '100' } })
  }
  const index = Buffer.from(JSON.stringify({ version: 1, shards: [...want.keys()] }))
  want.set(`${dir}.metadata`, { data: index, contentType: 'application/json', metadata: { step: '100' } })
  const before = await scrapeMetrics(gw.adminUrl)

  // The account's container exists, as it does in production (a new one costs a failed first request).
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('ckpt').createIfNotExists()
  proxy.hold((r) => isWrite(r) && r.target.startsWith(`ckpt/${dir}`))
  for (const [name, w] of want) {
    await ckpt.getBlockBlobClient(name).uploadData(w.data, { blobHTTPHeaders: { blobContentType: w.contentType }, metadata: w.metadata })
  }
  // Every shard's upload is in flight (held), the marker waits for them.
  const held = await waitForStatus(gw.adminUrl, (s) => s.writeback?.uploading === 8, 'eight shard uploads in flight')
  t.match(held.writeback, { dirtyObjects: 9, uploading: 8, queued: 1 }, 'the marker is queued, not uploading')
  t.equal(await tierState(ckpt, `${dir}__3_0.distcp`), 'dirty', 'HEAD of a shard whose upload is held: dirty')
  t.equal(await tierState(ckpt, `${dir}.metadata`), 'dirty', 'HEAD of the waiting marker: dirty')
  t.notOk(proxy.requests.some((r) => r.target === `ckpt/${dir}.metadata`), 'nothing of .metadata went upstream while shards were held')

  proxy.release()
  const lines = await flushAll(gw.adminUrl, `ckpt/${dir}`)
  t.match(lines[0], { objects: 9, bytes: [...want.values()].reduce((n, w) => n + w.data.length, 0) }, 'the flush counted the checkpoint')

  const got = await azuriteBlobs(azurite.connectionString, 'ckpt')
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'Azurite holds exactly the checkpoint')
  for (const [name, w] of want) {
    const b = got.get(name)
    t.ok(b?.data.equals(w.data), `${name}: bytes equal`)
    t.equal(b?.contentType, w.contentType, `${name}: content type carried`)
    t.same(b?.metadata, w.metadata, `${name}: metadata carried`)
    t.equal(b?.contentMd5, md5(w.data), `${name}: Content-MD5 of its bytes`)
  }

  const commitOf = (name: string): Array<typeof proxy.requests[number]> => proxy.requests.filter((r) => isCommit(r) && r.target === `ckpt/${name}`)
  const marker = commitOf(`${dir}.metadata`)
  t.equal(marker.length, 1, '.metadata: one commit request')
  for (const name of want.keys()) {
    if (name.endsWith('.metadata')) continue
    const shard = commitOf(name)
    t.equal(shard.length, 1, `${name}: one commit request`)
    t.ok(shard[0]?.answered !== undefined && marker[0] !== undefined && shard[0].answered < marker[0].arrived,
      `${name}: committed in Azurite before .metadata was sent`)
  }
  const after = await scrapeMetrics(gw.adminUrl)
  t.equal(commits(after) - commits(before), 9, 'Put Blob + Put Block List requests: one per object')
  t.equal(after.get('ckptcache_writeback_uploads_total', { result: 'ok' }) - before.get('ckptcache_writeback_uploads_total', { result: 'ok' }), 9)
  t.equal(after.get('ckptcache_writeback_uploads_total', { result: 'failed' }), 0, 'no upload failed')
  t.equal(await tierState(ckpt, `${dir}__3_0.distcp`), 'clean', 'HEAD after the upload: clean')
  t.equal(await tierState(ckpt, `${dir}.metadata`), 'clean')

  // Restore from the warm cache: every byte from the NVMe, none from Azure Blob.
  const restoreFrom = proxy.requests.length
  for (const [name, w] of want) t.ok((await ckpt.getBlobClient(name).downloadToBuffer()).equals(w.data), `restore ${name}: bytes equal`)
  const restored = await scrapeMetrics(gw.adminUrl)
  t.equal(restored.get('ckptcache_upstream_bytes_total', { direction: 'in' }) - after.get('ckptcache_upstream_bytes_total', { direction: 'in' }), 0, 'restore: 0 bytes from the upstream')
  t.equal(restored.get('ckptcache_upstream_requests_total', { operation: 'GetBlob' }), 0, 'restore: no Get Blob')
  t.same(proxy.requests.slice(restoreFrom).map((r) => `${r.op} ${r.target}`), [], 'restore: no upstream request at all')
  t.equal(restored.get('ckptcache_cache_lookups_total', { result: 'miss' }) - after.get('ckptcache_cache_lookups_total', { result: 'miss' }), 0, 'restore: no cache miss')
})

t.test('deletes: a clean object is deleted upstream; a dirty one never appears there', async (t) => {
  const c = client.getContainerClient('del')
  await c.create()
  await c.getBlockBlobClient('clean').uploadData(Buffer.from('uploaded, then deleted'))
  await c.getBlockBlobClient('kept').uploadData(Buffer.from('stays'))
  await flushAll(gw.adminUrl, 'del')
  t.same([...(await azuriteBlobs(azurite.connectionString, 'del')).keys()].sort(), ['clean', 'kept'])
  const m0 = await scrapeMetrics(gw.adminUrl)
  await c.getBlobClient('clean').delete()
  await flushAll(gw.adminUrl, 'del')
  t.same([...(await azuriteBlobs(azurite.connectionString, 'del')).keys()], ['kept'], 'the clean object is gone upstream')
  const m1 = await scrapeMetrics(gw.adminUrl)
  t.equal(m1.get('ckptcache_writeback_deletes_total') - m0.get('ckptcache_writeback_deletes_total'), 1, 'one upstream delete')
  t.equal(proxy.requests.filter((r) => r.op === 'DeleteBlob' && r.target === 'del/clean' && r.status === 202).length, 1, 'Azurite deleted it')

  // A dirty object deleted while its upload is in flight (held in the proxy), and a marker deleted
  // while it waits for that object.
  proxy.hold((r) => isWrite(r) && r.target.startsWith('del/d/'))
  const data = randomBytes(3 * MiB)
  await c.getBlockBlobClient('d/__0_0.distcp').uploadData(data)
  await c.getBlockBlobClient('d/.metadata').uploadData(Buffer.from('{}'))
  await proxy.arrived((r) => isWrite(r) && r.target === 'del/d/__0_0.distcp', 1)
  t.match((await adminStatus(gw.adminUrl)).writeback, { uploading: 1, queued: 1 })
  await c.getBlobClient('d/.metadata').delete() // first: deleting the shard first would free the marker
  await c.getBlobClient('d/__0_0.distcp').delete()
  proxy.release()
  await flushAll(gw.adminUrl, 'del')
  t.same([...(await azuriteBlobs(azurite.connectionString, 'del')).keys()], ['kept'], 'neither dirty object is upstream')
  t.same(proxy.requests.filter((r) => r.target.startsWith('del/d/') && isCommit(r) && r.answered !== undefined).map((r) => r.target), [],
    'Azurite never committed either of them')
  t.notOk(proxy.requests.some((r) => r.target === 'del/d/.metadata'), 'the deleted marker was never sent at all')
  t.match((await adminStatus(gw.adminUrl)).writeback, { dirtyObjects: 0, pendingDeletes: 0 })
  await t.rejects(c.getBlobClient('d/__0_0.distcp').getProperties(), { name: 'RestError', statusCode: 404 }, 'gone from the gateway too')
})

t.test('ckptcache flush --prefix --wait and ckptcache status against the gateway', async (t) => {
  const c = client.getContainerClient('cli')
  await c.create()
  proxy.hold((r) => isWrite(r) && r.target.startsWith('cli/'))
  for (let i = 0; i < 3; i++) await c.getBlockBlobClient(`step-1/__${i}_0.distcp`).uploadData(randomBytes(256 * KiB))
  await proxy.arrived((r) => isWrite(r) && r.target.startsWith('cli/'), 3)

  const status = await runCli(['status', '--admin', gw.adminUrl])
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /^mode\s*:?\s+writeback/m)
  t.match(status.stdout, /^dirty:\s+3 objects, 768 KiB/m, 'status shows the three dirty objects')
  t.match(status.stdout, /^uploads:\s+0 queued, 3 in progress/m)

  const flush = startCli(['flush', '--prefix', 'cli/step-1/', '--wait', '--admin', gw.adminUrl])
  // The flush has counted what is dirty (its first progress line) before anything is let through.
  await flush.printed(/^flush cli\/step-1\/: .*\n/)
  proxy.release()
  const r = await flush.done
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stderr, '')
  const lines = r.stdout.trimEnd().split('\n')
  t.match(lines[0], /^flush cli\/step-1\/: 0\/3 objects, 0 B\/768 KiB/, 'the first progress line: nothing clean of three objects')
  t.match(lines[lines.length - 1], /^flush cli\/step-1\/: done.*3 objects/, 'the done line counts the three objects')
  t.equal((await azuriteBlobs(azurite.connectionString, 'cli')).size, 3, 'all three in Azurite')

  const json = await runCli(['status', '--json', '--admin', gw.adminUrl])
  t.equal(json.code, 0)
  t.match(JSON.parse(json.stdout), { mode: 'writeback', writeback: { dirtyObjects: 0, dirtyBytes: 0 } })
})

t.test('writethrough: Put Blob is acknowledged only after Azurite answered its upload', async (t) => {
  const wt = await startTierGateway({ upstream: proxy.connectionString, mode: 'writethrough' })
  t.teardown(() => wt.stop())
  const c = BlobServiceClient.fromConnectionString(wt.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('wthru')
  await c.create()
  proxy.hold((r) => isCommit(r) && r.target === 'wthru/model.pt')
  const data = randomBytes(700 * KiB)
  let acked: number | undefined
  const put = c.getBlockBlobClient('model.pt').uploadData(data, { blobHTTPHeaders: { blobContentType: 'application/x-pytorch' } })
    .then((r) => { acked = proxy.now(); return r })
  await proxy.arrived((r) => isCommit(r) && r.target === 'wthru/model.pt', 1)
  t.equal(acked, undefined, 'not acknowledged while the upload is held')
  proxy.release()
  await put
  const commit = proxy.requests.find((r) => isCommit(r) && r.target === 'wthru/model.pt')
  t.ok(commit?.answered !== undefined && acked !== undefined && commit.answered <= acked, 'acknowledged after Azurite answered the commit')
  const got = (await azuriteBlobs(azurite.connectionString, 'wthru')).get('model.pt')
  t.ok(got?.data.equals(data), 'in Azurite right after the acknowledgement, bytes equal')
  t.equal(got?.contentType, 'application/x-pytorch')
  t.equal(await tierState(c, 'model.pt'), 'clean')
  t.match((await adminStatus(wt.adminUrl)).writeback, { mode: 'writethrough', dirtyObjects: 0 })
})

t.test('awkward names, empty objects and versions replaced during their upload reach Azurite as written', async (t) => {
  const c = client.getContainerClient('odd')
  await c.create()
  const want = new Map<string, Buffer>([
    ['with space/and+plus%25percent#hash?q=1&x.bin', randomBytes(10 * KiB)],
    ['ünïcødé/日本語/ファイル.pt', randomBytes(3 * KiB)],
    ['deep/a/b/c/d/e/f/g/h/_SUCCESS', Buffer.alloc(0)],
    ['empty.bin', Buffer.alloc(0)]
  ])
  for (const [name, data] of want) await c.getBlockBlobClient(name).uploadData(data)

  // A new version committed while the old one's upload is held: the newest ends upstream.
  proxy.hold((r) => isWrite(r) && r.target === 'odd/model.pt')
  await c.getBlockBlobClient('model.pt').uploadData(Buffer.from('version 1'))
  await proxy.arrived((r) => isWrite(r) && r.target === 'odd/model.pt', 1)
  const v2 = randomBytes(2 * MiB)
  await c.getBlockBlobClient('model.pt').uploadData(v2)
  t.equal(await tierState(c, 'model.pt'), 'dirty')
  proxy.release()
  want.set('model.pt', v2)
  await flushAll(gw.adminUrl, 'odd')

  const got = await azuriteBlobs(azurite.connectionString, 'odd')
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'exactly these names upstream')
  for (const [name, data] of want) {
    t.ok(got.get(name)?.data.equals(data), `${name}: bytes equal`)
    t.equal(got.get(name)?.contentMd5, md5(data), `${name}: Content-MD5`)
  }
  t.equal(await tierState(c, 'model.pt'), 'clean')
  t.ok((await c.getBlobClient('model.pt').downloadToBuffer()).equals(v2), 'the gateway serves the newest version')
})

t.test('a name deleted and written again while its upstream delete is held ends upstream with the new version', async (t) => {
  const c = client.getContainerClient('again')
  await c.create()
  await c.getBlockBlobClient('step/ckpt.pt').uploadData(Buffer.from('version 1'))
  await flushAll(gw.adminUrl, 'again')
  proxy.hold((r) => r.op === 'DeleteBlob' && r.target === 'again/step/ckpt.pt')
  await c.getBlobClient('step/ckpt.pt').delete()
  await proxy.arrived((r) => r.op === 'DeleteBlob' && r.target === 'again/step/ckpt.pt', 1)
  const v2 = Buffer.from('version 2, written while the delete of version 1 was in flight')
  await c.getBlockBlobClient('step/ckpt.pt').uploadData(v2)
  proxy.release()
  await flushAll(gw.adminUrl, 'again')
  const got = await azuriteBlobs(azurite.connectionString, 'again')
  t.same([...got.keys()], ['step/ckpt.pt'])
  t.equal(got.get('step/ckpt.pt')?.data.toString(), v2.toString(), 'the new version, not deleted')
  t.match((await adminStatus(gw.adminUrl)).writeback, { dirtyObjects: 0, pendingDeletes: 0 })
})
