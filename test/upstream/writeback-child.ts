/**
 * A writeback process to kill -9 (writeback-azurite.test.ts): opens the store and the queue
 * under `<root>`, deletes `old/gone`, writes `new/0..4`, says `ready` once all of that is
 * acknowledged, and then keeps uploading (into an upstream that never answers) until killed.
 *
 * Usage: node --import tsx writeback-child.ts <root> <container> <connection string>
 */
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createNodeMetrics } from '../../src/admin/metrics.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import { createLayout } from '../../src/upstream/layout.js'
import { DEFAULT_MARKER_PATTERNS } from '../../src/upstream/markers.js'
import { WritebackQueue } from '../../src/upstream/writeback.js'
import { del, openStore, put, silentLog } from './writeback-fixture.js'

const [root, container, connectionString] = process.argv.slice(2) as [string, string, string]
const store = await openStore(join(root, 'store'))
if (store.getContainer(container) === undefined) await store.createContainer(container, {})
const metrics = createNodeMetrics()
const upstream = createAzureUpstream({ connectionString, blockSize: 64 * 1024, blockConcurrency: 2, maxRps: 0, metrics, retry: { attempts: 2, baseMs: 10, capMs: 50 } })
const queue = new WritebackQueue({
  store, upstream, layout: createLayout('identity', {}), dir: join(root, 'writeback'), mode: 'writeback', dirtyLimit: 1 << 30,
  concurrency: 4, markerPatterns: [...DEFAULT_MARKER_PATTERNS], metrics, log: silentLog
})
await queue.start()
await del(store, 'old/gone', container)
for (let i = 0; i < 5; i++) await put(store, `new/${i}`, i === 0 ? randomBytes(1024 * 1024) : `written before the kill ${i}`, container)
process.stdout.write(`ready ${JSON.stringify(queue.status())}\n`)
setInterval(() => {}, 60_000)
