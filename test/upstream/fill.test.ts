/**
 * One read-through fill, against Azurite and a real FsStore: which blocks go first, a download
 * cut short, a client write or a delete that lands during the fill, the bound on fills running
 * at once, a reader that does not read, a blob missing upstream.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import pino from 'pino'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import { createNodeMetrics, type NodeMetrics } from '../../src/admin/metrics.js'
import type { ByteRange, ObjectMeta } from '../../src/core/types.js'
import { CacheError, isCacheError } from '../../src/errors.js'
import { FsStore } from '../../src/store/fs-store.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import { Fill, FillSlots } from '../../src/upstream/fill.js'
import { createLayout } from '../../src/upstream/layout.js'
import { upstreamMeta } from '../../src/core/tier-listing.js'
import { ReadThroughCache } from '../../src/upstream/read-through.js'
import type { Upstream, UpstreamRef } from '../../src/upstream/types.js'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'

const KiB = 1024
const MiB = 1024 * KiB
const C = 'fills'
const log = pino({ level: 'silent' })

let azurite: AzuriteHandle
let container: ContainerClient

t.before(async () => {
  azurite = await startAzurite()
  container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(C)
  await container.create()
})
t.teardown(async () => { await azurite?.stop() })

type Download = Upstream['download']

/** The adapter with its downloads routed through `download` (which gets the real one). */
function withDownload (inner: Upstream, download: (real: Download, ref: UpstreamRef, opts: Parameters<Download>[1]) => ReturnType<Download>): Upstream {
  return {
    ensureContainer: async (c) => { await inner.ensureContainer(c) },
    upload: async (req) => await inner.upload(req),
    head: async (ref, opts) => await inner.head(ref, opts),
    download: async (ref, opts = {}) => await download(async (r, o) => await inner.download(r, o), ref, opts),
    delete: async (ref, opts) => await inner.delete(ref, opts),
    list: async (c, q) => await inner.list(c, q),
    close: async () => { await inner.close() }
  }
}

interface Fixture {
  store: FsStore
  root: string
  metrics: NodeMetrics
  base: Upstream
}

async function fixture (t: Test): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'ckptcache-fill-'))
  const store = new FsStore({ root, capacity: 1 << 30, eviction: 'lru', stagedBlockMaxAgeMs: 86400000, tiered: true })
  await store.open()
  await store.createContainer(C, {})
  const metrics = createNodeMetrics()
  const base = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 * MiB, blockConcurrency: 4, maxRps: 0, metrics })
  t.teardown(async () => {
    try {
      await base.close()
      await store.close()
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
  return { store, root, metrics, base }
}

interface FillSetup {
  upstream?: Upstream
  blockSize?: number
  concurrency?: number
  deletePending?: () => boolean
}

/** A Fill of the current upstream version of `name`. */
async function startFill (f: Fixture, name: string, o: FillSetup = {}): Promise<Fill> {
  const upstream = o.upstream ?? f.base
  const ref = { container: C, blob: name }
  const props = await f.base.head(ref)
  const meta = props === undefined
    ? upstreamMeta(C, name, { size: 3 * MiB, etag: '0x8D0000000000000', lastModifiedMs: Date.now(), content: {}, metadata: {} })
    : upstreamMeta(C, name, props)
  const fill = new Fill({
    store: f.store, upstream, ref, meta, blockSize: o.blockSize ?? 256 * KiB, concurrency: o.concurrency ?? 1,
    slots: new FillSlots(4), metrics: f.metrics, log, deletePending: o.deletePending ?? (() => false)
  })
  return fill
}

async function seed (name: string, data: Buffer): Promise<string> {
  const res = await container.getBlockBlobClient(name).uploadData(data)
  return (res.etag as string).replace(/^"|"$/g, '')
}

async function collect (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks)
}

async function leftovers (f: Fixture): Promise<{ tmp: string[], reserved: number }> {
  return { tmp: await readdir(join(f.root, 'tmp')), reserved: f.store.stats().reserved }
}

t.test('the blocks readers wait for go first', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(4 * MiB)
  await seed('order', data)
  const starts: number[] = []
  const upstream = withDownload(f.base, async (real, ref, opts) => {
    starts.push(opts?.range?.start ?? -1)
    return await real(ref, opts)
  })
  const bs = 256 * KiB
  const fill = await startFill(f, 'order', { upstream, blockSize: bs, concurrency: 1 })
  const whole = collect(fill.reader())
  const late = collect(fill.reader({ start: 12 * bs + 5, end: 13 * bs + 9 }))
  fill.start()
  t.ok((await late).equals(data.subarray(12 * bs + 5, 13 * bs + 10)), 'range bytes equal')
  t.ok((await whole).equals(data), 'whole bytes equal')
  await fill.done
  t.equal(fill.state, 'committed')
  t.ok(starts.indexOf(12 * bs) <= 2, `block 12 was asked for as request ${starts.indexOf(12 * bs) + 1}, not 13th`)
  t.ok(starts.indexOf(13 * bs) <= 4, 'and the next block the range needs soon after')
  t.same([...starts].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i * bs), 'every block once')
})

t.test('a download cut short resumes where it stopped', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(MiB)
  await seed('cut', data)
  const bs = 512 * KiB
  const ranges: ByteRange[] = []
  const upstream = withDownload(f.base, async (real, ref, opts) => {
    const range = opts?.range as ByteRange
    ranges.push(range)
    const body = await real(ref, opts)
    if (ranges.length !== 2) return body
    // The second block's first response: 300 KiB, then the connection drops.
    return Readable.from((async function * () {
      let sent = 0
      for await (const c of body as AsyncIterable<Buffer>) {
        if (sent + c.length >= 300 * KiB) {
          yield c.subarray(0, 300 * KiB - sent)
          body.destroy()
          throw new Error('socket hang up')
        }
        sent += c.length
        yield c
      }
    })(), { objectMode: false })
  })
  const fill = await startFill(f, 'cut', { upstream, blockSize: bs })
  const got = collect(fill.reader())
  fill.start()
  t.ok((await got).equals(data), 'bytes equal')
  await fill.done
  t.equal(fill.state, 'committed')
  t.equal(ranges.length, 3, 'one more request')
  const resumed = ranges[2] as ByteRange
  t.ok(resumed.start >= bs && resumed.start <= bs + 300 * KiB, `resumed at ${resumed.start - bs} bytes into the block`)
  t.equal(resumed.end, MiB - 1)
  t.ok((await collect(f.store.openRead(f.store.head(C, 'cut') as ObjectMeta))).equals(data))
})

t.test('a client write that lands during the fill wins; readers still get the upstream bytes', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(MiB)
  await seed('raced', data)
  const local = randomBytes(1000)
  let written: ObjectMeta | undefined
  const upstream = withDownload(f.base, async (real, ref, opts) => {
    if (written === undefined && (opts?.range?.start ?? 0) >= 512 * KiB) {
      const ingested = await f.store.ingest({ body: Readable.from([local]), expectedSize: local.length, maxSize: local.length })
      written = await f.store.commitObject(C, 'raced', ingested, { content: {}, metadata: {}, checksums: {} }, () => {})
    }
    return await real(ref, opts)
  })
  const fill = await startFill(f, 'raced', { upstream })
  const got = collect(fill.reader())
  fill.start()
  t.ok((await got).equals(data), 'the reader gets the version it asked for')
  await fill.done
  t.equal(fill.state, 'failed', 'not committed')
  t.equal(f.store.head(C, 'raced'), written, 'the client write is the current version')
  t.equal(written?.dirty, true)
  t.ok((await collect(f.store.openRead(written as ObjectMeta))).equals(local))
  t.same(await leftovers(f), { tmp: [], reserved: 0 })
})

t.test('a delete pending when the fill ends keeps it out of the store', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(600 * KiB)
  await seed('deleted', data)
  let pending = false
  const upstream = withDownload(f.base, async (real, ref, opts) => {
    if ((opts?.range?.end ?? 0) === data.length - 1) pending = true
    return await real(ref, opts)
  })
  const fill = await startFill(f, 'deleted', { upstream, deletePending: () => pending })
  const got = collect(fill.reader())
  fill.start()
  t.ok((await got).equals(data))
  await fill.done
  t.equal(f.store.head(C, 'deleted'), undefined)
  t.same(await leftovers(f), { tmp: [], reserved: 0 })
})

t.test('a reader that does not read holds neither the fill nor more than its buffer', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(4 * MiB)
  await seed('idle-reader', data)
  const fill = await startFill(f, 'idle-reader', { blockSize: MiB, concurrency: 2 })
  const reader = fill.reader()
  reader.read(0) // asks for data once, then reads nothing
  fill.start()
  await fill.done
  t.equal(fill.state, 'committed', 'the fill completed without the reader')
  t.ok(reader.readableLength <= MiB, `the reader buffered ${reader.readableLength} bytes`)
  t.ok((await collect(reader)).equals(data), 'then reads every byte from the committed file')
})

t.test('a blob gone upstream fails the readers and leaves nothing', async (t) => {
  const f = await fixture(t)
  const fill = await startFill(f, 'never-there')
  const got = collect(fill.reader()).then(() => undefined, (e: unknown) => e)
  fill.start()
  const err = await got
  // Azure answers a conditional Get Blob of a missing blob with 404 or 412 (Azurite: 412).
  t.ok(isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND') || isCacheError(err, 'CC_ERR_CONDITION_NOT_MET'), String(err))
  await fill.done
  t.equal(f.store.head(C, 'never-there'), undefined)
  t.same(await leftovers(f), { tmp: [], reserved: 0 })
})

t.test('at most maxFills fills run at once; the others wait for a slot', async (t) => {
  const f = await fixture(t)
  const blobs = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
    const data = randomBytes(MiB)
    await seed(`slot-${i}`, data)
    return data
  }))
  let inFlight = 0
  let most = 0
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let twoStarted!: () => void
  const started = new Promise<void>((resolve) => { twoStarted = resolve })
  const upstream = withDownload(f.base, async (real, ref, opts) => {
    inFlight++
    most = Math.max(most, inFlight)
    if (inFlight === 2) twoStarted()
    try {
      await gate
      return await real(ref, opts)
    } finally {
      inFlight--
    }
  })
  const rt = new ReadThroughCache({
    store: f.store, upstream, layout: createLayout('identity', {}), deletePending: () => false,
    blockSize: MiB, concurrency: 4, revalidateAfterMs: 0, metrics: f.metrics, log, maxFills: 2
  })
  t.teardown(async () => { await rt.close() })
  const metas = await Promise.all(blobs.map(async (_, i) => await rt.head(C, `slot-${i}`) as ObjectMeta))
  const reads = metas.map(async (m) => await collect(rt.read(m)))
  await started
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(inFlight, 2, 'two fills download')
  t.equal(f.store.stats().reserved, 2 * MiB, 'and only they hold temp files')
  release()
  const got = await Promise.all(reads)
  got.forEach((b, i) => t.ok(b.equals(blobs[i] as Buffer), `blob ${i} bytes equal`))
  await rt.idle()
  t.equal(most, 2)
  for (let i = 0; i < 5; i++) t.ok(f.store.head(C, `slot-${i}`), `slot-${i} committed`)
})

t.test('FillSlots: a waiter that gives up leaves the queue', async (t) => {
  const slots = new FillSlots(1)
  const first = await slots.acquire(new AbortController().signal)
  const ac = new AbortController()
  const gaveUp = slots.acquire(ac.signal)
  const next = slots.acquire(new AbortController().signal)
  ac.abort(new CacheError('CC_ERR_CLIENT_ABORTED'))
  await t.rejects(gaveUp, { code: 'CC_ERR_CLIENT_ABORTED' })
  first()
  const second = await next
  second()
  second() // idempotent
  const third = await slots.acquire(new AbortController().signal)
  t.type(third, 'function', 'the slot is free again')
  third()
})
