/**
 * Losing a node (DESIGN.md, Placement: node loss, a returning node), with real gateways:
 *
 * - 3 nodes, replicas 2, refill grace 1 s. A checkpoint (8 shards and `.metadata`) is saved
 *   through A; B is killed with SIGKILL while a second save is in progress. Every write A
 *   acknowledged, before, during and after the kill, reads byte-equal through A and C;
 * - after the grace period the survivors re-replicate: A and C hold two copies of every object
 *   between them, and `ckptcache_cluster_repairs_total` counts the copies;
 * - objects B held are overwritten while it is away (one B is the home of, one it is not); B
 *   restarts with its data dir, rejoins every view, and serves the new bytes of both, not its
 *   stale copies.
 */
import { randomBytes } from 'node:crypto'
import type { ContainerClient } from '@azure/storage-blob'
import t from 'tap'
import { order, placementKey } from '../../src/cluster/hrw.js'
import { startCluster, until } from '../helpers/cluster.js'
import type { GatewayHandle } from '../helpers/gateway.js'
import { KiB, blobService, readAll } from '../helpers/tier-read.js'

const CONTAINER = 'ckpt'

const cluster = await startCluster({ nodes: 3, replicas: 2, args: ['--refill-grace', '1s'] })
t.teardown(() => cluster.stop())
const gwA = cluster.nodes[0] as GatewayHandle
const container = (gw: GatewayHandle): ContainerClient => blobService(gw).getContainerClient(CONTAINER)
await container(gwA).create()

/** What the cluster acknowledged: name → bytes. */
const acked = new Map<string, Buffer>()

const ids = ['node0', 'node1', 'node2']
const orderOf = (name: string): string[] => order(ids, placementKey(CONTAINER, name))
/**
 * Two names of the first save B takes a copy of (A writes; its other copy goes to the first
 * other node of the order): one whose home is B, one whose home is A.
 */
const pick = (want: string[]): string => {
  for (let k = 0; k < 1000; k++) {
    const name = `run/step-1/optim_${k}.pt`
    if (orderOf(name).join() === want.join()) return name
  }
  throw new Error('no such name')
}
const bHome = pick(['node1', 'node0', 'node2'])
const otherHome = pick(['node0', 'node1', 'node2'])

function checkpoint (dir: string): Array<[string, Buffer]> {
  const shards: Array<[string, Buffer]> = []
  for (let rank = 0; rank < 8; rank++) shards.push([`${dir}__${rank}_0.distcp`, randomBytes(256 * KiB + rank * 64 * KiB)])
  if (dir === 'run/step-1/') for (const name of [bHome, otherHome]) shards.push([name, randomBytes(100 * KiB)])
  shards.push([`${dir}.metadata`, Buffer.from(JSON.stringify({ dir, shards: 8 }))])
  return shards
}

async function readThrough (gw: GatewayHandle, name: string): Promise<Buffer> {
  return await readAll((await container(gw).getBlobClient(name).download()).readableStreamBody)
}

t.test('B killed during a save: every acknowledged write reads through A and C; refill restores two copies', async (t) => {
  for (const [name, data] of checkpoint('run/step-1/')) {
    await container(gwA).getBlockBlobClient(name).uploadData(data)
    acked.set(name, data)
  }
  t.equal(await cluster.objectsOn(0) + await cluster.objectsOn(1) + await cluster.objectsOn(2), 2 * acked.size, 'two copies of each object of the first save')
  t.ok(await cluster.objectsOn(1) > 0, 'B holds copies of the first save')
  for (const name of [bHome, otherHome]) t.ok(await cluster.copyOn(1, CONTAINER, name) !== undefined, `B holds ${name}`)

  // The second save: four writes at a time; B goes away after the third acknowledgement.
  const second = checkpoint('run/step-2/')
  const failed: string[] = []
  let done = 0
  let killing: Promise<void> | undefined
  const pending = [...second]
  await Promise.all([0, 1, 2, 3].map(async () => {
    for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
      const [name, data] = next
      try {
        await container(gwA).getBlockBlobClient(name).uploadData(data)
        acked.set(name, data)
      } catch (err) {
        failed.push(`${name}: ${(err as Error).message}`)
      }
      if (++done === 3) killing = cluster.kill(1)
    }
  }))
  await killing
  t.same(failed, [], 'A acknowledged every write of the second save (the copies B did not take went to C)')
  t.equal(acked.size, 20)

  for (const [name, data] of acked) {
    t.ok((await readThrough(gwA, name)).equals(data), `${name} through A: bytes equal`)
    t.ok((await readThrough(cluster.nodes[2] as GatewayHandle, name)).equals(data), `${name} through C: bytes equal`)
  }

  await cluster.waitLive(0, 2)
  await cluster.waitLive(2, 2)
  const copies = await until('two copies of every object on A and C', async () => await cluster.objectsOn(0) + await cluster.objectsOn(2), (n) => n === 2 * acked.size)
  t.equal(copies, 2 * acked.size, 'A and C hold two copies of every acknowledged object')
  for (const name of acked.keys()) t.same(await cluster.holders(CONTAINER, name), [0, 2], `${name}: on A and C`)
  const repairs = (await cluster.metrics(0)).get('ckptcache_cluster_repairs_total') + (await cluster.metrics(2)).get('ckptcache_cluster_repairs_total')
  t.ok(repairs > 0, `the refill made copies (ckptcache_cluster_repairs_total ${repairs})`)
  const status = await cluster.status(0)
  t.ok((status.cluster?.refill.copiedObjects ?? 0) + ((await cluster.status(2)).cluster?.refill.copiedObjects ?? 0) > 0, '/status counts refilled objects')
  t.same(status.cluster?.nodes.map((n) => [n.id, n.live]).sort(), [['node0', true], ['node1', false], ['node2', true]], 'A\'s view: B down')
})

t.test('B returns: it rejoins and serves what was overwritten while it was away, not its stale copies', async (t) => {
  const overwritten = [bHome, otherHome]
  for (const name of overwritten) {
    const data = randomBytes(200 * KiB)
    await container(gwA).getBlockBlobClient(name).uploadData(data)
    acked.set(name, data)
  }

  const gwB = await cluster.restart(1)
  await Promise.all([0, 1, 2].map(async (i) => await cluster.waitLive(i, 3)))
  for (const name of overwritten) {
    t.ok((await readThrough(gwB, name)).equals(acked.get(name) as Buffer), `${name} (home ${orderOf(name)[0] as string}) through B after its return: the new bytes`)
    const mine = await cluster.copyOn(1, CONTAINER, name)
    const current = await cluster.copyOn(0, CONTAINER, name)
    t.ok(mine === undefined || mine.etag === current?.etag, `${name}: B keeps no stale copy`)
  }
  for (const [name, data] of acked) t.ok((await readThrough(gwB, name)).equals(data), `${name} through B: bytes equal`)
  t.match(gwB.output(), /reconciled local copies with their homes/, 'B reconciled its copies')
})
