/**
 * Writeback in a cluster (DESIGN.md promises 4 and 5), with real gateways, a real Azurite and the
 * recording proxy between them (test/helpers/tier.ts): 3 nodes, replicas 2, writeback mode.
 *
 * - a DCP-style checkpoint (8 shards and `.metadata`) saved through A reaches Azurite once: one
 *   commit request per object in the proxy's record, sent by the object's writeback owner (the
 *   first holder of its rendezvous order, which is the home: each node's upload counter equals
 *   the number of objects it is home of), bytes equal, and `.metadata` sent only after Azurite
 *   answered every shard's commit;
 * - an object deleted through A while its owner's upload is held in the proxy after its body
 *   arrived whole: A's Delete Blob reaches Azurite first, the upload commits after it (as Azure
 *   may carry out a request whose sender gave up), and the owner deletes that blob (If-Match):
 *   Azurite ends without it, every node answers 404;
 * - a second save while the uploads are held in the proxy: each node uploads exactly the objects
 *   it owns; the owner of the most is killed (SIGKILL), its held requests are dropped (never reach
 *   Azurite), and the surviving holders take its uploads over: Azurite ends up with every object,
 *   bytes equal, one commit per object that reached it, `.metadata` still last.
 */
import { randomBytes } from 'node:crypto'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import t, { type Test } from 'tap'
import { order, placementKey } from '../../src/cluster/hrw.js'
import { startAzurite } from '../helpers/azurite.js'
import { startCluster, until } from '../helpers/cluster.js'
import type { GatewayHandle } from '../helpers/gateway.js'
import { KiB, azuriteBlobs, isCommit, isWrite, startUpstreamProxy, waitForStatus, type ProxiedRequest } from '../helpers/tier.js'
import { blobService, flushUntilDone } from '../helpers/tier-read.js'

const CONTAINER = 'ckpt'
const ids = ['node0', 'node1', 'node2']
const homeOf = (name: string): number => ids.indexOf(order(ids, placementKey(CONTAINER, name))[0] as string)

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const proxy = await startUpstreamProxy(azurite.port)
t.teardown(() => proxy.close())
// The account's container exists, as it does in production.
await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).createIfNotExists()
// Room for every upload at once: a marker that did not wait would go at once.
const cluster = await startCluster({ nodes: 3, replicas: 2, upstream: proxy.connectionString, args: ['--writeback-concurrency', '16'] })
t.teardown(() => cluster.stop())
const gwA = cluster.nodes[0] as GatewayHandle
const container = (gw: GatewayHandle): ContainerClient => blobService(gw).getContainerClient(CONTAINER)
await container(gwA).create()

function checkpoint (dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>()
  for (let rank = 0; rank < 8; rank++) m.set(`${dir}__${rank}_0.distcp`, randomBytes(256 * KiB + rank * 64 * KiB))
  m.set(`${dir}.metadata`, Buffer.from(JSON.stringify({ dir, shards: 8 })))
  return m
}

/** Commit requests (Put Blob, Put Block List) of `container/name` that reached Azurite (not dropped with a killed node). */
const commitsOf = (name: string): ProxiedRequest[] => proxy.requests.filter((r) => isCommit(r) && r.target === `${CONTAINER}/${name}` && r.dropped !== true)

async function uploadsOk (i: number): Promise<number> {
  return (await cluster.metrics(i)).get('ckptcache_writeback_uploads_total', { result: 'ok' })
}

/** Azurite holds `want` exactly under `dir`, bytes equal; one commit each; `.metadata` after every shard's commit. */
async function checkUpstream (t: Test, dir: string, want: Map<string, Buffer>): Promise<void> {
  const got = await azuriteBlobs(azurite.connectionString, CONTAINER)
  t.same([...got.keys()].filter((n) => n.startsWith(dir)).sort(), [...want.keys()].sort(), `Azurite holds exactly ${dir}`)
  for (const [name, data] of want) t.ok(got.get(name)?.data.equals(data), `${name}: bytes equal in Azurite`)
  const marker = commitsOf(`${dir}.metadata`)
  t.equal(marker.length, 1, `${dir}.metadata: one commit reached Azurite`)
  for (const name of want.keys()) {
    if (name.endsWith('.metadata')) continue
    const shard = commitsOf(name)
    t.equal(shard.length, 1, `${name}: one commit reached Azurite`)
    t.ok(shard[0]?.answered !== undefined && marker[0] !== undefined && shard[0].answered < marker[0].arrived,
      `${name}: committed in Azurite before .metadata was sent`)
  }
}

t.test('a checkpoint saved through A reaches Azurite once, each object uploaded by its owner, .metadata last', async (t) => {
  const dir = 'run-1/step-100/'
  const want = checkpoint(dir)
  const before = await Promise.all([0, 1, 2].map(uploadsOk))
  for (const [name, data] of want) await container(gwA).getBlockBlobClient(name).uploadData(data)
  await flushUntilDone(gwA, `${CONTAINER}/${dir}`)
  // Every holder's copy is clean: a flush through any node is done.
  for (const gw of cluster.nodes) await flushUntilDone(gw, `${CONTAINER}/${dir}`)
  await checkUpstream(t, dir, want)
  const after = await Promise.all([0, 1, 2].map(uploadsOk))
  for (let i = 0; i < 3; i++) {
    const owned = [...want.keys()].filter((n) => homeOf(n) === i).length
    t.equal((after[i] as number) - (before[i] as number), owned, `${ids[i] as string} uploaded the ${owned} objects it owns`)
  }
})

t.test('deleted through A while its owner\'s upload is on its way: no blob is left in Azurite', async (t) => {
  const dir = 'run-1/step-150/'
  // An object the home (its writeback owner) of which is not A, the node it is written and deleted through.
  const name = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => `${dir}__${r}_0.distcp`).find((n) => homeOf(n) !== 0) as string
  const owner = homeOf(name)
  const target = `${CONTAINER}/${name}`
  const upload = (r: ProxiedRequest): boolean => isCommit(r) && r.target === target
  proxy.hold(upload)
  await container(gwA).getBlockBlobClient(name).uploadData(randomBytes(256 * KiB))
  await proxy.arrived(upload, 1)
  const held = await until('the held Put Blob received whole', async () => proxy.held()[0], (r) => r?.received === true)
  t.equal(held?.received, true, `${ids[owner] as string}'s Put Blob has reached the proxy whole`)

  // A records the delete and carries it out at once: Azurite has nothing of the name yet.
  await container(gwA).getBlobClient(name).delete()
  const deleteOf = (r: ProxiedRequest): boolean => r.op === 'DeleteBlob' && r.target === target
  await proxy.arrived(deleteOf, 1)
  const deleted = await until('the Delete Blob answered', async () => proxy.requests.find(deleteOf), (r) => r?.answered !== undefined)
  t.equal(deleted?.status, 404, 'the deleting node\'s Delete Blob came first: nothing to delete yet')

  // The owner's upload then commits (Azure may carry out a request whose sender gave up on it).
  proxy.release({ abandoned: 'forward' })
  await flushUntilDone(cluster.nodes[owner] as GatewayHandle, `${CONTAINER}/${dir}`)
  await flushUntilDone(gwA, `${CONTAINER}/${dir}`)
  const put = proxy.requests.find(upload)
  t.equal(put?.status, 201, 'the upload committed in Azurite after the delete')
  const cleanup = proxy.requests.filter((r) => deleteOf(r) && put?.answered !== undefined && r.arrived > put.answered)
  t.same(cleanup.map((r) => r.status), [202], 'its blob was deleted once, after it committed')
  t.notOk((await azuriteBlobs(azurite.connectionString, CONTAINER)).has(name), 'Azurite holds no blob of the deleted name')
  for (const [i, gw] of cluster.nodes.entries()) {
    await t.rejects(container(gw).getBlobClient(name).getProperties(), { name: 'RestError', statusCode: 404 }, `${ids[i] as string}: not found`)
  }
})

t.test('the owner of held uploads is killed: the other holders finish its uploads, .metadata still last', async (t) => {
  const dir = 'run-1/step-200/'
  const want = checkpoint(dir)
  const shards = [...want.keys()].filter((n) => !n.endsWith('.metadata'))
  const owned = [0, 1, 2].map((i) => shards.filter((n) => homeOf(n) === i))
  // The owner of the most shards (another node than A, the writer, when one owns as many) goes away.
  const victim = [1, 2, 0].reduce((best, i) => (owned[i] as string[]).length > (owned[best] as string[]).length ? i : best, 1)
  const survivor = victim === 0 ? 1 : 0
  const victims = owned[victim] as string[]
  t.ok(victims.length > 0, `${ids[victim] as string} owns ${victims.length} shards`)
  const before = await Promise.all([0, 1, 2].map(uploadsOk))
  // Its uploads wait in the proxy; the other owners' go through.
  proxy.hold((r) => isWrite(r) && victims.some((n) => r.target === `${CONTAINER}/${n}`))
  for (const [name, data] of want) await container(gwA).getBlockBlobClient(name).uploadData(data)
  await proxy.arrived((r) => isWrite(r) && victims.some((n) => r.target === `${CONTAINER}/${n}`), victims.length)
  const status = await waitForStatus(cluster.nodes[victim]!.adminUrl, (s) => s.writeback?.uploading === victims.length, `${ids[victim] as string} uploading its ${victims.length} shards`)
  t.equal(status.writeback?.uploading, victims.length, `${ids[victim] as string}: its shards' uploads in flight`)
  t.same(proxy.held().map((r) => r.target).sort(), victims.map((n) => `${CONTAINER}/${n}`).sort(), 'the proxy holds one upload per shard it owns, nothing else')
  for (let i = 0; i < 3; i++) {
    if (i === victim) continue
    const mine = (owned[i] as string[]).length
    const uploaded = await until(`${ids[i] as string}'s uploads`, async () => (await uploadsOk(i)) - (before[i] as number), (n) => n >= mine)
    t.equal(uploaded, mine, `${ids[i] as string} uploaded the ${mine} shards it owns, and only those`)
  }
  t.notOk(proxy.requests.some((r) => r.target === `${CONTAINER}/${dir}.metadata`), '.metadata waits while shards are dirty')

  await cluster.kill(victim)
  await proxy.heldAbandoned()
  proxy.release()
  const dropped = proxy.requests.filter((r) => r.dropped === true && r.target.startsWith(`${CONTAINER}/${dir}`))
  t.equal(dropped.length, victims.length, 'the killed owner\'s held uploads never reached Azurite')

  await cluster.waitLive(survivor, 2)
  await flushUntilDone(cluster.nodes[survivor] as GatewayHandle, `${CONTAINER}/${dir}`)
  await checkUpstream(t, dir, want)
  for (const name of victims) {
    const reached = commitsOf(name)[0]
    const gone = dropped.find((r) => r.target === `${CONTAINER}/${name}`)
    t.ok(reached !== undefined && gone !== undefined && reached.arrived > gone.arrived, `${name}: uploaded again by a surviving holder`)
  }
  for (const r of proxy.requests.filter((r) => isCommit(r) && r.target.startsWith(`${CONTAINER}/${dir}`) && r.dropped !== true)) {
    t.equal(r.status, 201, `${r.op} ${r.target}: Azurite answered 201`)
  }
})
