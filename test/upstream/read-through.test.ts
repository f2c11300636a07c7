/**
 * Read-through on a cache miss, against Azurite and a real FsStore: the upstream meta, a read
 * that fills the cache, one fill shared by concurrent readers, ranges answered while filling,
 * a blob changed mid-fill, a full cache, aborted readers, zero-byte objects, shutdown, and
 * revalidation of cached copies.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { crc32 } from 'node:zlib'
import pino from 'pino'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import { createNodeMetrics, type NodeMetrics } from '../../src/admin/metrics.js'
import type { ObjectMeta } from '../../src/core/types.js'
import { isCacheError } from '../../src/errors.js'
import { FsStore } from '../../src/store/fs-store.js'
import { ReadThroughCache } from '../../src/upstream/read-through.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import { createLayout } from '../../src/upstream/layout.js'
import type { Upstream } from '../../src/upstream/types.js'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'

const MiB = 1024 * 1024
const C = 'ckpt'
const log = pino({ level: 'silent' })

let azurite: AzuriteHandle
let container: ContainerClient

t.before(async () => {
  azurite = await startAzurite()
  container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(C)
  await container.create()
})
t.teardown(async () => { await azurite?.stop() })

// ---- the upstream under test ----------------------------------------------------------------

/** An upstream whose downloads first run `before` (the test changes the blob at a chosen block). */
function gated (inner: Upstream, before: (range: { start: number, end: number } | undefined) => Promise<void>): Upstream {
  return {
    ensureContainer: async (c) => { await inner.ensureContainer(c) },
    upload: async (req) => await inner.upload(req),
    head: async (ref, opts) => await inner.head(ref, opts),
    download: async (ref, opts = {}) => {
      await before(opts.range)
      return await inner.download(ref, opts)
    },
    delete: async (ref, opts) => await inner.delete(ref, opts),
    list: async (c, q) => await inner.list(c, q),
    close: async () => { await inner.close() }
  }
}

// ---- fixtures ---------------------------------------------------------------------------------

interface Fixture {
  store: FsStore
  root: string
  metrics: NodeMetrics
  rt: ReadThroughCache
  upstream: Upstream
  /** Another read-through over the same store and upstream, as after a restart (nothing remembered). */
  restart: (o?: Partial<FixtureOptions>) => ReadThroughCache
}

interface FixtureOptions {
  blockSize?: number
  concurrency?: number
  revalidateAfterMs?: number
  capacity?: number
  deletePending?: (c: string, n: string) => boolean
  wrap?: (u: Upstream) => Upstream
}

async function fixture (t: Test, o: FixtureOptions = {}): Promise<Fixture> {
  // A private directory: t.testdir() names it after the test, which two runs of this file would share.
  const root = await mkdtemp(join(tmpdir(), 'ckptcache-rt-'))
  const store = new FsStore({ root, capacity: o.capacity ?? 1 << 30, eviction: 'lru', stagedBlockMaxAgeMs: 86400000, tiered: true })
  await store.open()
  await store.createContainer(C, {})
  const metrics = createNodeMetrics()
  const base = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 * MiB, blockConcurrency: 4, maxRps: 0, metrics })
  const upstream = o.wrap === undefined ? base : o.wrap(base)
  const made: ReadThroughCache[] = []
  const make = (p: FixtureOptions): ReadThroughCache => {
    const rt = new ReadThroughCache({
      store, upstream, layout: createLayout('identity', {}), deletePending: p.deletePending ?? (() => false),
      blockSize: p.blockSize ?? MiB, concurrency: p.concurrency ?? 4, revalidateAfterMs: p.revalidateAfterMs ?? 60_000, metrics, log
    })
    made.push(rt)
    return rt
  }
  const rt = make(o)
  t.teardown(async () => {
    try {
      for (const r of made) await r.close()
      await upstream.close()
      await store.close()
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
  return { store, root, metrics, rt, upstream, restart: (p = {}) => make({ ...o, ...p }) }
}

const bytesIn = (f: Fixture): number => f.metrics.upstreamBytes.get({ direction: 'in' })
const requests = (f: Fixture, operation: string): number => f.metrics.upstreamRequests.sum({ operation })

async function seed (name: string, data: Buffer, contentType = 'application/octet-stream'): Promise<string> {
  const res = await container.getBlockBlobClient(name).uploadData(data, { blobHTTPHeaders: { blobContentType: contentType }, metadata: { step: '7' } })
  return (res.etag as string).replace(/^"|"$/g, '')
}

async function collect (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks)
}

async function tmpFiles (f: Fixture): Promise<string[]> {
  return await readdir(join(f.root, 'tmp'))
}

async function headOrFail (f: Fixture, name: string): Promise<ObjectMeta> {
  const meta = await f.rt.head(C, name)
  if (meta === undefined) throw new Error(`${name} missing upstream`)
  return meta
}

// ---- tests --------------------------------------------------------------------------------------

t.test('a miss is filled: bytes equal, then the object is a clean local copy with the upstream etag', async (t) => {
  const f = await fixture(t)
  const data = randomBytes(5 * MiB + 123)
  const etag = await seed('shard-0.pt', data, 'application/x-torch')
  const meta = await headOrFail(f, 'shard-0.pt')
  t.match(meta, { container: C, name: 'shard-0.pt', size: data.length, etag, upstreamEtag: etag, origin: 'upstream', extents: [], fromBlocks: false })
  t.equal(meta.content.contentType, 'application/x-torch')
  t.same(meta.metadata, { step: '7' })
  t.equal(meta.checksums.md5, meta.content.contentMd5, 'the Content-MD5 is carried as a checksum')

  t.ok((await collect(f.rt.read(meta))).equals(data), 'bytes equal')
  await f.rt.idle()
  t.equal(bytesIn(f), data.length, 'each byte fetched once')
  t.equal(requests(f, 'GetBlob'), 6, 'six 1 MiB blocks')
  t.equal(f.metrics.servedBytes.get({ source: 'upstream' }), data.length)

  const local = f.store.head(C, 'shard-0.pt')
  t.ok(local, 'committed to the store')
  t.match(local, { etag, upstreamEtag: etag, size: data.length, content: { contentType: 'application/x-torch' }, metadata: { step: '7' } })
  t.notOk(local?.dirty, 'clean: a copy of the upstream blob')
  t.notOk(local?.origin)
  t.ok((await collect(f.store.openRead(local as ObjectMeta))).equals(data), 'the store serves the same bytes')
  t.ok((await collect(f.rt.read(meta, { start: 100, end: 2 * MiB }))).equals(data.subarray(100, 2 * MiB + 1)), 'a later read-through is local')
  t.equal(bytesIn(f), data.length, 'no more upstream bytes')
  t.same(await tmpFiles(f), [])
  t.equal(f.store.stats().reserved, 0)
})

t.test('16 concurrent readers of a 256 MiB blob share one fill, in bounded memory', async (t) => {
  const size = 256 * MiB
  const base = randomBytes(MiB)
  const pattern = function * (): Generator<Buffer> {
    for (let i = 0; i < size / MiB; i++) {
      const b = Buffer.from(base)
      b.writeUInt32BE(i, 0)
      yield b
    }
  }
  let expected = 0
  for (const b of pattern()) expected = crc32(b, expected)
  await container.getBlockBlobClient('big.pt').uploadStream(Readable.from(pattern()), 4 * MiB, 4)

  const f = await fixture(t, { blockSize: 8 * MiB, concurrency: 4 })
  const meta = await headOrFail(f, 'big.pt')
  global.gc?.()
  const rss0 = process.memoryUsage().rss
  let peak = rss0
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
  const results = await Promise.all(Array.from({ length: 16 }, async () => {
    let crc = 0
    let n = 0
    for await (const c of f.rt.read(meta) as AsyncIterable<Buffer>) {
      crc = crc32(c, crc)
      n += c.length
    }
    return { crc, n }
  }))
  clearInterval(sampler)
  await f.rt.idle()
  for (const r of results) t.same(r, { crc: expected, n: size })
  t.equal(bytesIn(f), size, 'upstream bytes = one copy of the object, not 16')
  t.equal(requests(f, 'GetBlob'), 32, 'one GET per 8 MiB block')
  t.equal(f.metrics.servedBytes.get({ source: 'upstream' }), 16 * size)
  t.ok(peak - rss0 < 128 * MiB, `rss grew ${Math.round((peak - rss0) / MiB)} MiB while serving 16 × 256 MiB`)
  t.equal(f.store.head(C, 'big.pt')?.size, size, 'committed once')
  t.same(await tmpFiles(f), [])
})

t.test('a range at the end of a large blob is answered long before the fill completes', async (t) => {
  const size = 32 * MiB
  const data = randomBytes(size)
  await seed('tail.pt', data)
  const f = await fixture(t, { blockSize: MiB, concurrency: 2 })
  const meta = await headOrFail(f, 'tail.pt')
  const range = { start: size - 1000, end: size - 1 }
  const got = await collect(f.rt.read(meta, range))
  const atAnswer = bytesIn(f)
  t.ok(got.equals(data.subarray(range.start)), 'range bytes equal')
  t.ok(atAnswer < size / 4, `answered after ${Math.round(atAnswer / MiB)} of 32 MiB were fetched`)
  t.equal(f.store.head(C, 'tail.pt'), undefined, 'the fill was still running')
  await f.rt.idle()
  t.equal(bytesIn(f), size, 'the fill goes on without readers and fetches each byte once')
  t.ok((await collect(f.store.openRead(f.store.head(C, 'tail.pt') as ObjectMeta))).equals(data), 'then the whole object is cached')
})

t.test('a blob changed mid-fill fails every reader that needs the missing bytes and leaves nothing behind', async (t) => {
  const data = randomBytes(8 * MiB)
  await seed('changing.pt', data)
  let changed = false
  const f = await fixture(t, {
    blockSize: MiB,
    concurrency: 1,
    wrap: (u) => gated(u, async (range) => {
      if (!changed && range !== undefined && range.start >= 3 * MiB) {
        changed = true
        await seed('changing.pt', randomBytes(8 * MiB)) // a writer replaces the blob while the fill runs
      }
    })
  })
  const meta = await headOrFail(f, 'changing.pt')
  const eager = f.rt.read(meta)
  const slow = f.rt.read(meta, { start: 2 * MiB, end: 8 * MiB - 1 })
  slow.pause() // a reader that has not started reading yet

  const err = await collect(eager).then(() => undefined, (e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_CONDITION_NOT_MET'), `the reader errors (${String(err)})`)
  await f.rt.idle()
  t.equal(f.store.head(C, 'changing.pt'), undefined, 'no object in the store')
  t.same(await tmpFiles(f), [], 'the temp file is gone')
  t.equal(f.store.stats().reserved, 0, 'the reservation is released')

  // The slow reader still gets the bytes that did land (its fd is open), then the same error.
  let received = 0
  const slowErr = await (async () => {
    for await (const c of slow as AsyncIterable<Buffer>) received += (c as Buffer).length
  })().then(() => undefined, (e: unknown) => e)
  t.ok(isCacheError(slowErr, 'CC_ERR_CONDITION_NOT_MET'))
  t.equal(received, MiB, 'the block that landed before the change, then the error')

  const fresh = await headOrFail(f, 'changing.pt')
  t.not(fresh.etag, meta.etag, 'the next head sees the new version')
})

t.test('heads: missing upstream, a pending delete, one request for concurrent heads', async (t) => {
  let pending = false
  const f = await fixture(t, { deletePending: () => pending })
  t.equal(await f.rt.head(C, 'never-written'), undefined)
  t.equal(await f.rt.head('no-such-container', 'x'), undefined)

  await seed('shared-head', randomBytes(10))
  const before = requests(f, 'GetBlobProperties')
  const metas = await Promise.all(Array.from({ length: 8 }, async () => await f.rt.head(C, 'shared-head')))
  t.equal(requests(f, 'GetBlobProperties') - before, 1, 'eight heads, one upstream request')
  t.ok(metas.every((m) => m?.size === 10))

  pending = true
  const n = requests(f, 'GetBlobProperties')
  t.equal(await f.rt.head(C, 'shared-head'), undefined, 'a name with a pending upstream delete is not read through')
  t.equal(requests(f, 'GetBlobProperties'), n, 'without asking the upstream')
})

t.test('a zero-byte blob is filled as an empty file', async (t) => {
  const f = await fixture(t)
  const etag = await seed('empty', Buffer.alloc(0))
  const meta = await headOrFail(f, 'empty')
  t.equal(meta.size, 0)
  t.equal((await collect(f.rt.read(meta))).length, 0)
  await f.rt.idle()
  t.match(f.store.head(C, 'empty'), { size: 0, etag })
  t.equal(requests(f, 'GetBlob'), 0, 'nothing to download')
})

t.test('an aborted reader does not stop the fill for the others', async (t) => {
  const data = randomBytes(6 * MiB)
  await seed('abort.pt', data)
  const f = await fixture(t, { blockSize: MiB, concurrency: 1 })
  const meta = await headOrFail(f, 'abort.pt')
  const ac = new AbortController()
  const quitter = f.rt.read(meta, undefined, ac.signal)
  const stayer = f.rt.read(meta)
  const kept = collect(stayer)
  const first = await new Promise<Buffer>((resolve) => quitter.once('data', resolve))
  t.ok(first.length > 0)
  const closed = new Promise<unknown>((resolve) => quitter.once('error', resolve))
  ac.abort()
  t.ok(isCacheError(await closed, 'CC_ERR_CLIENT_ABORTED'))
  t.ok((await kept).equals(data), 'the other reader gets every byte')
  await f.rt.idle()
  t.equal(f.store.head(C, 'abort.pt')?.size, data.length, 'and the fill commits')
  t.equal(bytesIn(f), data.length)
})

t.test('a cache too full for the object serves the reader straight from the upstream', async (t) => {
  const data = randomBytes(3 * MiB)
  await seed('too-big.pt', data)
  const f = await fixture(t, { capacity: 2 * MiB })
  const meta = await headOrFail(f, 'too-big.pt')
  t.ok((await collect(f.rt.read(meta, { start: MiB, end: 3 * MiB - 1 }))).equals(data.subarray(MiB)), 'range bytes equal')
  t.ok((await collect(f.rt.read(meta))).equals(data), 'whole bytes equal')
  await f.rt.idle()
  t.equal(f.store.head(C, 'too-big.pt'), undefined, 'not cached')
  t.equal(bytesIn(f), 5 * MiB, 'exactly the bytes asked for')
  t.equal(f.metrics.servedBytes.get({ source: 'upstream' }), 5 * MiB)
  t.same(await tmpFiles(f), [])
  t.equal(f.store.stats().reserved, 0)
})

t.test('close stops fills, fails their readers and removes their temp files', async (t) => {
  await seed('closing.pt', randomBytes(16 * MiB))
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let calls = 0
  const f = await fixture(t, {
    blockSize: MiB,
    concurrency: 1,
    wrap: (u) => gated(u, async () => { if (++calls === 3) await gate })
  })
  const meta = await headOrFail(f, 'closing.pt')
  const reader = collect(f.rt.read(meta)).then(() => undefined, (e: unknown) => e)
  while (calls < 3) await new Promise((resolve) => setImmediate(resolve))
  const closing = f.rt.close()
  release()
  await closing
  t.ok(isCacheError(await reader, 'CC_ERR_SERVER_BUSY'), 'the reader fails')
  t.equal(f.rt.activeFills, 0)
  t.equal(f.store.head(C, 'closing.pt'), undefined)
  t.same(await tmpFiles(f), [])
  t.equal(f.store.stats().reserved, 0)
})

t.test('revalidation', async (t) => {
  const f = await fixture(t, { revalidateAfterMs: 60_000 })
  const fill = async (name: string, data: Buffer): Promise<ObjectMeta> => {
    await seed(name, data)
    await collect(f.rt.read(await headOrFail(f, name)))
    await f.rt.idle()
    const local = f.store.head(C, name)
    if (local === undefined) throw new Error('not filled')
    return local
  }
  const heads = (): number => requests(f, 'GetBlobProperties')
  // After a restart the only clue is the version's own time: make it older than the interval.
  const old = (m: ObjectMeta): ObjectMeta => ({ ...m, lastModifiedMs: Date.now() - 120_000 })

  t.test('a copy just filled is served without asking', async (t) => {
    const local = await fill('fresh', randomBytes(100))
    const n = heads()
    const aged = old(local)
    t.equal(await f.rt.revalidate(aged), aged)
    t.equal(heads(), n, 'the fill counts as a check')
    t.equal(await f.restart().revalidate(local), local, 'after a restart, the commit time does')
    t.equal(heads(), n)
  })

  t.test('an unchanged blob costs one HEAD, then none within the interval', async (t) => {
    const local = await fill('unchanged', randomBytes(100))
    const later = f.restart()
    const n = heads()
    const results = await Promise.all(Array.from({ length: 5 }, async () => await later.revalidate(old(local))))
    t.equal(heads() - n, 1, 'concurrent revalidations share one HEAD')
    t.ok(results.every((m) => m?.etag === local.etag))
    t.equal((await later.revalidate(old(local)))?.etag, local.etag)
    t.equal(heads() - n, 1, 'remembered as checked')
    t.equal(f.store.head(C, 'unchanged'), local, 'still cached')
  })

  t.test('a changed blob is detected, the copy evicted, and the new version read through', async (t) => {
    const local = await fill('changed', randomBytes(100))
    const next = randomBytes(200)
    const etag = await seed('changed', next)
    const later = f.restart()
    const meta = await later.revalidate(old(local))
    t.match(meta, { etag, upstreamEtag: etag, size: 200, origin: 'upstream' })
    t.equal(f.store.head(C, 'changed'), undefined, 'the stale copy is evicted')
    t.ok((await collect(later.read(meta as ObjectMeta))).equals(next))
    await later.idle()
    t.equal(f.store.head(C, 'changed')?.etag, etag)
  })

  t.test('a blob gone upstream evicts the copy', async (t) => {
    const local = await fill('gone', randomBytes(100))
    await container.deleteBlob('gone')
    t.equal(await f.restart().revalidate(old(local)), undefined)
    t.equal(f.store.head(C, 'gone'), undefined)
  })

  t.test('dirty versions, local-only versions and a zero interval are never checked', async (t) => {
    const local = await fill('skip', randomBytes(100))
    const later = f.restart()
    const n = heads()
    t.equal((await later.revalidate({ ...old(local), dirty: true }))?.etag, local.etag)
    const { upstreamEtag: _, ...localOnly } = old(local)
    t.equal((await later.revalidate(localOnly))?.etag, local.etag)
    t.equal((await f.restart({ revalidateAfterMs: 0 }).revalidate(old(local)))?.etag, local.etag)
    t.equal(heads(), n)
  })
})
