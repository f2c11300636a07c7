/**
 * A node that stops answering without going away (SIGSTOP: a partition, a stalled host), with
 * real gateways, 3 nodes, replicas 2, probes every 200 ms, down after 1 s:
 *
 * - while B is stopped, every object reads through C byte-equal, each read bounded (under the
 *   probe timeout plus 2 s), even before the views mark B down;
 * - an object B holds a copy of is overwritten through A at once (A still thinks B live): the
 *   write is acknowledged in bounded time all the same (its copy goes elsewhere once B is down);
 * - objects B holds are overwritten through A while B is stopped (one B is the home of, one it
 *   is not), each write acknowledged in bounded time;
 * - after SIGCONT B is live again in every view and serves the new versions, not its stale copies.
 */
import { randomBytes } from 'node:crypto'
import type { ContainerClient } from '@azure/storage-blob'
import t from 'tap'
import { order, placementKey } from '../../src/cluster/hrw.js'
import { startCluster } from '../helpers/cluster.js'
import type { GatewayHandle } from '../helpers/gateway.js'
import { KiB, blobService, readAll } from '../helpers/tier-read.js'

const CONTAINER = 'ckpt'
const PROBE_TIMEOUT_MS = 1000
const READ_BOUND_MS = PROBE_TIMEOUT_MS + 2000

const cluster = await startCluster({ nodes: 3, replicas: 2 })
t.teardown(() => cluster.stop())
const [gwA, gwB, gwC] = cluster.nodes as [GatewayHandle, GatewayHandle, GatewayHandle]
const container = (gw: GatewayHandle): ContainerClient => blobService(gw).getContainerClient(CONTAINER)
await container(gwA).create()

const ids = ['node0', 'node1', 'node2']
const orderOf = (name: string): string[] => order(ids, placementKey(CONTAINER, name))
/** A name with this rendezvous order (A writes; its other copy goes to the first other node of the order). */
const pick = (prefix: string, want: string[]): string => {
  for (let k = 0; k < 1000; k++) {
    const name = `${prefix}${k}`
    if (orderOf(name).join() === want.join()) return name
  }
  throw new Error('no such name')
}
// B takes a copy of both; B is the home of the first.
const bHome = pick('run/step-1/optim_', ['node1', 'node0', 'node2'])
const aHome = pick('run/step-1/optim_', ['node0', 'node1', 'node2'])
/** Overwritten the moment B stops. */
const early = pick('run/step-1/extra_', ['node0', 'node1', 'node2'])

const objects = new Map<string, Buffer>()
for (let rank = 0; rank < 8; rank++) objects.set(`run/step-1/__${rank}_0.distcp`, randomBytes(128 * KiB + rank * 32 * KiB))
objects.set(bHome, randomBytes(64 * KiB))
objects.set(aHome, randomBytes(64 * KiB))
objects.set(early, randomBytes(64 * KiB))
objects.set('run/step-1/.metadata', Buffer.from('{"shards":8}'))
for (const [name, data] of objects) await container(gwA).getBlockBlobClient(name).uploadData(data)

async function timedRead (gw: GatewayHandle, name: string): Promise<{ data: Buffer, ms: number }> {
  const t0 = performance.now()
  const res = await container(gw).getBlobClient(name).download(0, undefined, { abortSignal: AbortSignal.timeout(30_000) })
  const data = await readAll(res.readableStreamBody)
  return { data, ms: Math.round(performance.now() - t0) }
}

t.test('B stopped: reads through C stay correct and bounded; overwrites through A are acknowledged; B comes back current', async (t) => {
  t.same(await cluster.holders(CONTAINER, bHome), [0, 1], 'B holds a copy of the object it is home of')
  t.same(await cluster.holders(CONTAINER, aHome), [0, 1], 'and of one A is home of')

  t.same(await cluster.holders(CONTAINER, early), [0, 1], 'B holds a copy of the object overwritten first')

  await cluster.kill(1, 'SIGSTOP')
  // At once, before any view marks B down: an overwrite of an object B holds, and reads of the others.
  const overwrite = async (name: string): Promise<void> => {
    const data = randomBytes(32 * KiB)
    const t0 = performance.now()
    try {
      await container(gwA).getBlockBlobClient(name).uploadData(data, { abortSignal: AbortSignal.timeout(READ_BOUND_MS + 2000) })
    } catch (err) {
      t.fail(`overwrite of ${name} through A while B is stopped: not acknowledged after ${Math.round(performance.now() - t0)} ms (${(err as Error).message})`)
      objects.delete(name)
      return
    }
    const ms = Math.round(performance.now() - t0)
    t.ok(ms < READ_BOUND_MS, `overwrite of ${name} through A while B is stopped: acknowledged in ${ms} ms`)
    objects.set(name, data)
  }
  const readAllThroughC = async (round: string, except?: string): Promise<void> => {
    for (const [name, data] of objects) {
      if (name === except) continue
      const { data: got, ms } = await timedRead(gwC, name)
      t.ok(got.equals(data), `${name} through C (${round}): bytes equal`)
      t.ok(ms < READ_BOUND_MS, `${name} through C (${round}): ${ms} ms < ${READ_BOUND_MS} ms`)
    }
  }
  await Promise.all([overwrite(early), readAllThroughC('before the views change', early)])
  // And once they have.
  await cluster.waitLive(0, 2)
  await cluster.waitLive(2, 2)
  await readAllThroughC('after')

  for (const name of [bHome, aHome]) {
    await overwrite(name)
    const data = objects.get(name)
    if (data !== undefined) t.ok((await timedRead(gwC, name)).data.equals(data), `${name} through C: the new bytes`)
  }

  const reconciles = (): number => (gwB.output().match(/"msg":"cluster: reconciled local copies with their homes"/g) ?? []).length
  const reconciledBefore = reconciles()
  await cluster.kill(1, 'SIGCONT')
  const views = await Promise.all([0, 1, 2].map(async (i) => await cluster.waitLive(i, 3)))
  for (const s of views) t.same(s.cluster?.nodes.map((n) => [n.id, n.live]).sort(), [['node0', true], ['node1', true], ['node2', true]], `${s.cluster?.nodeId ?? '?'}: every node live`)
  // B noticed it was away and asked each object's home about its copies.
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000
    const check = (): void => {
      if (reconciles() > reconciledBefore) resolve()
      else if (Date.now() > deadline) reject(new Error(`B did not reconcile after SIGCONT:\n${gwB.output()}`))
      else setTimeout(check, 50)
    }
    check()
  })

  for (const name of [early, aHome, bHome]) {
    const want = objects.get(name)
    if (want === undefined) continue
    const { data } = await timedRead(gwB, name)
    t.ok(data.equals(want), `${name} (home ${orderOf(name)[0] as string}) through B after SIGCONT: the new bytes`)
    const mine = await cluster.copyOn(1, CONTAINER, name)
    const current = await cluster.copyOn(0, CONTAINER, name)
    t.ok(mine === undefined || mine.etag === current?.etag, `${name}: B holds no stale copy (B ${String(mine?.etag)}, A ${String(current?.etag)})`)
  }
  for (const [name, data] of objects) t.ok((await timedRead(gwB, name)).data.equals(data), `${name} through B: bytes equal`)
})
