/**
 * kill -9 of a writeback gateway process mid-writeback, and a restart on the same data directory:
 * every acknowledged object reaches Azurite with its bytes and Content-MD5, a newer version of a
 * clean object replaces it, the commit marker still goes after its shards, and a delete recorded
 * before the kill is carried out after the restart.
 *
 * The upstream is Azurite behind a recording proxy (test/helpers/tier.ts) that holds every commit
 * (Put Blob, Put Block List) and Delete Blob: at the kill, blocks of several objects are staged in
 * Azurite, uploads and the delete are in flight, and nothing of them is committed. Held requests
 * of the killed process are dropped, never forwarded.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { startAzurite } from '../helpers/azurite.js'
import type { GatewayHandle } from '../helpers/gateway.js'
import {
  KiB, MiB, azuriteBlobs, flushAll, isCommit, scrapeMetrics, startTierGateway, startUpstreamProxy, waitForStatus
} from '../helpers/tier.js'

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64')
const C = 'crash'

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const proxy = await startUpstreamProxy(azurite.port)
t.teardown(() => proxy.close())
const dataDir = await mkdtemp(join(tmpdir(), 'ckptcache-crash-'))
t.teardown(() => rm(dataDir, { recursive: true, force: true }))
const args = ['--upload-block-size', '1MiB', '--upload-single-max', '1MiB', '--writeback-concurrency', '4']

function container (gw: GatewayHandle): ReturnType<BlobServiceClient['getContainerClient']> {
  return BlobServiceClient.fromConnectionString(gw.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(C)
}

t.test('kill -9 mid-writeback, restart on the same data dir: every object arrives whole, the recorded delete is done', async (t) => {
  const gw1 = await startTierGateway({ upstream: proxy.connectionString, dataDir, args })
  t.teardown(() => gw1.kill())
  const c1 = container(gw1)
  await c1.create()
  await c1.getBlockBlobClient('old/gone').uploadData(Buffer.from('uploaded, then deleted before the kill'))
  await c1.getBlockBlobClient('old/kept').uploadData(Buffer.from('version 1'))
  await flushAll(gw1.adminUrl)
  t.same([...(await azuriteBlobs(azurite.connectionString, C)).keys()].sort(), ['old/gone', 'old/kept'])

  // From here on nothing is committed or deleted upstream: blocks are staged, commits wait.
  proxy.hold((r) => isCommit(r) || r.op === 'DeleteBlob')
  const want = new Map<string, Buffer>()
  for (let rank = 0; rank < 6; rank++) want.set(`step-1/__${rank}_0.distcp`, randomBytes(3 * MiB + rank * 100 * KiB))
  for (let i = 0; i < 10; i++) want.set(`small/${i}`, randomBytes(1 + i * 10 * KiB))
  want.set('step-1/.metadata', Buffer.from(JSON.stringify({ shards: 6 })))
  want.set('old/kept', Buffer.from('version 2, written before the kill'))
  await c1.getBlobClient('old/gone').delete()
  await proxy.arrived((r) => r.op === 'DeleteBlob' && r.target === `${C}/old/gone`, 1)
  for (const [name, data] of want) await c1.getBlockBlobClient(name).uploadData(data)
  await proxy.arrived((r) => r.op === 'PutBlockList', 2)
  const st = await waitForStatus(gw1.adminUrl, (s) => (s.writeback?.uploading ?? 0) >= 2, 'uploads in flight')
  t.equal(st.writeback?.dirtyObjects, want.size, 'every write acknowledged and dirty')
  t.equal(st.writeback?.pendingDeletes, 1, 'the delete is recorded')
  const staged = proxy.requests.filter((r) => r.op === 'PutBlock' && r.status === 201).length
  t.ok(staged >= 6, `blocks were staged in Azurite before the kill (${staged})`)

  await gw1.kill('SIGKILL')
  t.equal(gw1.child.signalCode, 'SIGKILL')
  const held = proxy.held()
  await proxy.heldAbandoned()
  proxy.release()
  t.ok(held.length >= 3, `commits and the delete were in flight at the kill (${held.length})`)
  t.ok(held.every((r) => r.dropped === true), 'none of them reached Azurite')
  const between = await azuriteBlobs(azurite.connectionString, C)
  t.same([...between.keys()].sort(), ['old/gone', 'old/kept'], 'nothing new was committed upstream')
  t.equal(between.get('old/kept')?.data.toString(), 'version 1')

  const arrivedBefore = proxy.requests.length
  const gw2 = await startTierGateway({ upstream: proxy.connectionString, dataDir, args })
  t.teardown(() => gw2.stop())
  const started = gw2.output().split('\n').find((l) => l.includes('"msg":"writeback started"'))
  t.match(JSON.parse(started ?? '{}'), { dirtyObjects: want.size, pendingDeletes: 1 }, 'the restart found every dirty object and the delete record')
  await flushAll(gw2.adminUrl)

  const got = await azuriteBlobs(azurite.connectionString, C)
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'Azurite holds every object, and not the deleted one')
  for (const [name, data] of want) {
    t.ok(got.get(name)?.data.equals(data), `${name}: bytes equal`)
    t.equal(got.get(name)?.contentMd5, md5(data), `${name}: Content-MD5 of its bytes`)
  }
  const after = proxy.requests.slice(arrivedBefore)
  const marker = after.find((r) => isCommit(r) && r.target === `${C}/step-1/.metadata`)
  for (let rank = 0; rank < 6; rank++) {
    const shard = after.find((r) => isCommit(r) && r.target === `${C}/step-1/__${rank}_0.distcp` && r.status === 201)
    t.ok(shard?.answered !== undefined && marker !== undefined && shard.answered < marker.arrived, `shard ${rank} committed before .metadata was sent`)
  }
  t.equal(after.filter((r) => r.op === 'DeleteBlob' && r.target === `${C}/old/gone` && r.status === 202).length, 1, 'the recorded delete was carried out')
  const m = await scrapeMetrics(gw2.adminUrl)
  t.equal(m.get('ckptcache_writeback_uploads_total', { result: 'ok' }), want.size, 'each object uploaded once after the restart')
  t.match((await waitForStatus(gw2.adminUrl, (s) => s.writeback?.dirtyObjects === 0, 'clean')).writeback, { dirtyObjects: 0, pendingDeletes: 0 })

  // The restarted gateway serves the same bytes, from its cache, and knows them clean.
  const c2 = container(gw2)
  for (const name of ['step-1/__5_0.distcp', 'small/9', 'old/kept']) {
    const res = await c2.getBlobClient(name).download()
    t.equal(res._response.headers.get('x-ckptcache-state'), 'clean', `${name}: clean`)
  }
  t.ok((await c2.getBlobClient('step-1/__5_0.distcp').downloadToBuffer()).equals(want.get('step-1/__5_0.distcp')!))
  await t.rejects(c2.getBlobClient('old/gone').getProperties(), { name: 'RestError', statusCode: 404 }, 'the deleted object stays deleted')
})

t.test('SIGTERM while an upload and an upstream delete hang: the gateway stops promptly, and the restart finishes both', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ckptcache-term-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const gw1 = await startTierGateway({ upstream: proxy.connectionString, dataDir: dir, args })
  t.teardown(() => gw1.kill())
  const c1 = BlobServiceClient.fromConnectionString(gw1.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('term')
  await c1.create()
  await c1.getBlockBlobClient('gone').uploadData(Buffer.from('uploaded, then deleted'))
  await flushAll(gw1.adminUrl)
  proxy.hold((r) => r.target.startsWith('term/') && (isCommit(r) || r.op === 'DeleteBlob'))
  await c1.getBlobClient('gone').delete()
  const data = randomBytes(300 * KiB)
  await c1.getBlockBlobClient('stays').uploadData(data)
  await proxy.arrived((r) => r.target === 'term/gone' && r.op === 'DeleteBlob', 1)
  await proxy.arrived((r) => r.target === 'term/stays' && isCommit(r), 1)

  const t0 = Date.now()
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([gw1.stop(), new Promise<'hung'>((resolve) => { timer = setTimeout(resolve, 15_000, 'hung') })])
  clearTimeout(timer)
  const took = Date.now() - t0
  t.equal(code, 0, 'a clean exit, not waiting for the upstream')
  t.ok(took < 10_000, `stopped in ${took} ms`)
  const held = proxy.held()
  await proxy.heldAbandoned()
  proxy.release()
  t.ok(held.length === 2 && held.every((r) => r.dropped === true), 'neither held request went on')
  t.same([...(await azuriteBlobs(azurite.connectionString, 'term')).keys()], ['gone'])

  const gw2 = await startTierGateway({ upstream: proxy.connectionString, dataDir: dir, args })
  t.teardown(() => gw2.stop())
  await flushAll(gw2.adminUrl)
  const got = await azuriteBlobs(azurite.connectionString, 'term')
  t.same([...got.keys()], ['stays'], 'the delete was carried out, the upload finished')
  t.ok(got.get('stays')?.data.equals(data))
})
