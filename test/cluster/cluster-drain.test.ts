/**
 * `ckptcache drain --wait` on a real 3-node cluster (cache-only, replicas 2): the drained node's
 * objects end up with 2 copies on the other nodes, it is marked draining in every view, new
 * writes through it place their full count of copies elsewhere, and after it stops every object
 * still reads byte-equal through the survivors.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startCluster } from '../helpers/cluster.js'
import { runCli } from '../helpers/tier.js'
import { MiB, blobService, readAll } from '../helpers/tier-read.js'

const CONTAINER = 'ckpt'

t.test('drain hands every object to two other nodes, then the node can go', async (t) => {
  const cluster = await startCluster({ nodes: 3, replicas: 2 })
  t.teardown(() => cluster.stop())
  const a = cluster.nodes[0]!
  const container = blobService(a).getContainerClient(CONTAINER)
  await container.create()
  const objects = new Map<string, Buffer>()
  for (let i = 0; i < 6; i++) objects.set(`step-1/shard-${i}`, randomBytes(MiB + i * 1000))
  for (const [name, data] of objects) await container.getBlockBlobClient(name).uploadData(data)
  t.equal(await cluster.objectsOn(0), objects.size, 'the writer holds every object (local first)')

  const run = await runCli(['drain', '--wait', '--admin', a.adminUrl], { timeoutMs: 60_000 })
  t.equal(run.code, 0, `drain --wait exits 0 (${run.stdout}${run.stderr})`)
  const last = run.stdout.trim().split('\n').pop() ?? ''
  t.match(last, /done|100/i, 'the last progress line says it is done')

  for (let i = 0; i < 3; i++) {
    const st = await cluster.status(i)
    t.equal(st.cluster?.nodes.find((n) => n.id === 'node0')?.draining, true, `node${i} sees node0 draining`)
  }
  for (const name of objects.keys()) {
    const others = (await cluster.holders(CONTAINER, name)).filter((i) => i !== 0)
    t.equal(others.length, 2, `${name}: two copies besides the drained node`)
  }

  // A write through the draining node still gets its two copies elsewhere.
  const late = randomBytes(300_000)
  await container.getBlockBlobClient('step-2/late').uploadData(late)
  t.equal((await cluster.holders(CONTAINER, 'step-2/late')).filter((i) => i !== 0).length, 2, 'a write during the drain: two copies on other nodes')
  objects.set('step-2/late', late)

  await cluster.kill(0)
  const c = blobService(cluster.nodes[2]!).getContainerClient(CONTAINER)
  for (const [name, data] of objects) {
    const got = await readAll((await c.getBlockBlobClient(name).download()).readableStreamBody)
    t.ok(got.equals(data), `${name} reads byte-equal through a survivor after the drained node stopped`)
  }
})
