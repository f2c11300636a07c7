/**
 * Listing through every layout against Azurite: blobs are written with @azure/storage-blob under
 * the layout's names (plus foreign blobs no name maps to) and listed back through the real Azure
 * adapter. The expected answer comes from the local store's own listing walk (SortedNames) over
 * the logical names, with the S3 front end's rule for a startAfter that is a common prefix.
 */
import { BlobServiceClient } from '@azure/storage-blob'
import t, { type Test } from 'tap'
import { createNodeMetrics, type NodeMetrics } from '../../src/admin/metrics.js'
import { SortedNames } from '../../src/store/sorted-names.js'
import { createLayout, type ListingLayout } from '../../src/upstream/layout.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import type { Upstream } from '../../src/upstream/types.js'
import { ListingCache, listUpstream, type UpstreamEntry, type UpstreamListingQuery } from '../../src/upstream/upstream-list.js'
import { startAzurite } from '../helpers/azurite.js'

const azurite = await startAzurite()
t.teardown(async () => await azurite.stop())
const service = BlobServiceClient.fromConnectionString(azurite.connectionString)

const NAMES = [
  ...[100, 200, 300].flatMap((step) => [`ckpt/step-${step}/.metadata`, ...Array.from({ length: 5 }, (_, r) => `ckpt/step-${step}/__${r}_0.distcp`)]),
  'ckpt/step-300/__4_1.distcp', 'ckpt/notes.txt', 'readme', 'a/b/c', 'a/b/d', 'a-b', 'a', '__3_0.distcp',
  // Names that look like the strategies' prefixes.
  '10/x', '1/y', '100/__1_0.distcp', '00000000/z', 'p/q', 'b/x', 'ab/cd/__2_0.distcp', '26/ckpt/x',
  'ünïcødé/名前/🙂.bin', 'ünïcødé/__4_0.distcp', 'z'
]

/** Blob names written next to the layout's own: kept only when no name of the container maps to them. */
const FOREIGN = [
  'ckpt/step-100/__5_0.distcp', 'ckpt/step-999/__1_0.distcp', '00000000/ckpt/step-100/__1_0.distcp', '1/ckpt/step-100/__2_0.distcp',
  'b/ckpt/__0_0.distcp', 'zz/x', 'ff/ckpt/step-100/.metadata', '100/readme', '0/q/r', '10/x'
]

interface Case { spec: string, shared?: string, container: string }
const CASES: Case[] = [
  { spec: 'identity', container: 'my.bucket' },
  { spec: 'identity', shared: 'shared-identity', container: 'c1' },
  { spec: 'hash:1', container: 'hash-one' },
  { spec: 'round-robin:a,b,c', container: 'rr' },
  { spec: 'binary:3', container: 'bin' },
  { spec: 'hex:1', shared: 'shared-hex', container: 'hexc' },
]

function names (list: string[]): SortedNames {
  const s = new SortedNames()
  for (const n of list) s.add(n)
  return s
}

/** What the local store answers for the same query (a startAfter that is a common prefix skips it whole). */
function expected (all: SortedNames, q: { prefix?: string, delimiter?: string, startAfter?: string, maxResults: number }): string[] {
  const prefix = q.prefix ?? ''
  let startAfter = q.startAfter
  let startAt: string | undefined
  const d = q.delimiter
  if (startAfter !== undefined && d !== undefined && startAfter.startsWith(prefix)) {
    const i = startAfter.indexOf(d, prefix.length)
    if (i !== -1 && /^\uffff*$/.test(startAfter.slice(i + d.length))) {
      const p = startAfter.slice(0, i + d.length)
      startAt = p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1)
      startAfter = undefined
    }
  }
  return all.list({ prefix, ...(d === undefined ? {} : { delimiter: d }), ...(startAfter === undefined ? {} : { startAfter }), ...(startAt === undefined ? {} : { startAt }), maxResults: q.maxResults })
    .entries.map((e) => (e.kind === 'prefix' ? `${e.name} (prefix)` : e.name))
}

function shown (entries: UpstreamEntry[]): string[] {
  return entries.map((e) => (e.kind === 'prefix' ? `${e.name} (prefix)` : e.name))
}

/**
 * A delimiter listing may hold common prefixes made only of foreign blobs (the upstream rolls names
 * up before the gateway sees them; docs/layouts.md says so). Those are the prefixes the foreign
 * blobs would make as names, seen through any source (as they are, or without their first segment).
 */
function phantoms (all: SortedNames, foreignNames: string[], q: { prefix?: string, delimiter?: string }): Set<string> {
  if (q.delimiter === undefined) return new Set()
  const want = new Set(expected(all, { ...q, maxResults: 100_000 }))
  const loose = names([...all, ...foreignNames])
  return new Set(expected(loose, { ...q, maxResults: 100_000 }).filter((e) => e.endsWith(' (prefix)') && !want.has(e)))
}

function listRequests (metrics: NodeMetrics): number {
  return metrics.upstreamRequests.sum({ operation: 'ListBlobs' })
}

async function writeBlobs (layout: ListingLayout, c: Case): Promise<string[]> {
  const refs = NAMES.map((n) => ({ name: n, ref: layout.toUpstream(c.container, n) }))
  const up = refs[0]?.ref.container as string
  const client = service.getContainerClient(up)
  await client.createIfNotExists()
  const root = c.shared === undefined ? '' : `${c.container}/`
  const foreign = FOREIGN.map((b) => root + b).filter((b) => layout.fromUpstream({ container: up, blob: b }, c.container) === undefined)
  // Another local container's blob in the same shared upstream container is foreign too.
  if (c.shared !== undefined) foreign.push(`other/${NAMES[0] as string}`)
  const all = [...refs.map(({ name, ref }) => ({ blob: ref.blob, body: name })), ...foreign.map((b) => ({ blob: b, body: `foreign ${b}` }))]
  for (let i = 0; i < all.length; i += 16) {
    await Promise.all(all.slice(i, i + 16).map(async ({ blob, body }) => await client.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body))))
  }
  return foreign
}

/** Pages through a listing with `startAfter` = the last entry, as the object core does. */
async function pageThrough (upstream: Upstream, layout: ListingLayout, container: string, q: Omit<UpstreamListingQuery, 'startAfter'>,
  cache: ListingCache, next: (last: UpstreamEntry) => string = (last) => last.name): Promise<{ entries: UpstreamEntry[], pages: number }> {
  const entries: UpstreamEntry[] = []
  let startAfter: string | undefined
  let pages = 0
  for (;;) {
    const page = await listUpstream(upstream, layout, container, { ...q, ...(startAfter === undefined ? {} : { startAfter }) }, cache)
    pages++
    if (page.entries.length > q.maxResults) throw new Error('page too long')
    entries.push(...page.entries)
    if (!page.truncated) return { entries, pages }
    if (page.entries.length === 0) throw new Error('truncated empty page')
    startAfter = next(page.entries[page.entries.length - 1] as UpstreamEntry)
    if (pages > 500) throw new Error('no end')
  }
}

for (const c of CASES) {
  t.test(`${c.spec}${c.shared === undefined ? '' : ' in one upstream container'}`, async (t) => {
    const metrics = createNodeMetrics()
    const upstream = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 << 20, blockConcurrency: 2, maxRps: 0, metrics })
    t.teardown(async () => await upstream.close())
    const layout = createLayout(c.spec, c.shared === undefined ? {} : { upstreamContainer: c.shared })
    const foreign = await writeBlobs(layout, c)
    if (c.spec !== 'identity' || c.shared !== undefined) t.ok(foreign.length > 0, 'some foreign blobs were written')
    const root = c.shared === undefined ? '' : `${c.container}/`
    const foreignNames = foreign.filter((b) => b.startsWith(root)).map((b) => b.slice(root.length)).flatMap((b) => [b, b.slice(b.indexOf('/') + 1)])
    const all = names(NAMES)
    const list = async (q: UpstreamListingQuery): Promise<UpstreamEntry[]> => (await listUpstream(upstream, layout, c.container, q, new ListingCache())).entries
    /** The listing as shown, without the documented common prefixes of foreign blobs. */
    const check = (t: Test, got: UpstreamEntry[], q: { prefix?: string, delimiter?: string, startAfter?: string }, what: string): void => {
      const extra = phantoms(all, foreignNames, q)
      const seen = shown(got)
      t.same(seen.filter((e) => !extra.has(e)), expected(all, { ...q, maxResults: 100_000 }), what)
    }

    t.test('whole listings, flat and with a delimiter', async (t) => {
      const everything = await list({ maxResults: 1000 })
      t.same(shown(everything), expected(all, { maxResults: 1000 }), 'flat: exactly the names, no foreign blob')
      const wrongSize = everything.filter((e) => e.kind === 'object' && e.props.size !== Buffer.byteLength(e.name))
      t.same(wrongSize, [], 'each name lists the blob written for it')
      for (const q of [
        { delimiter: '/' }, { prefix: 'ckpt/', delimiter: '/' }, { prefix: 'ckpt/step-200/' }, { prefix: '1' }, { prefix: 'a', delimiter: '/' },
        { delimiter: '0' }, { prefix: 'nothing/' }
      ]) {
        check(t, await list({ ...q, maxResults: 1000 }), q, JSON.stringify(q))
      }
    })

    t.test('startAfter: names, common prefixes, a name inside a common prefix', async (t) => {
      for (const q of [
        { startAfter: 'ckpt/step-200/__3_0.distcp' }, { delimiter: '/', startAfter: 'ckpt/' }, { delimiter: '/', startAfter: 'ckpt/\uffff' },
        { delimiter: '/', startAfter: 'a/b/c' }, { prefix: 'ckpt/', delimiter: '/', startAfter: 'ckpt/step-300/__4_0.distcp' },
        { prefix: 'ckpt/', delimiter: '/', startAfter: 'ckpt/step-300/__4_1.distcp' }, { startAfter: 'zzz' }
      ]) {
        check(t, await list({ ...q, maxResults: 1000 }), q, JSON.stringify(q))
      }
    })

    t.test('paging with small pages lists everything once, each upstream page read once', async (t) => {
      for (const q of [{ maxResults: 3 }, { maxResults: 2, delimiter: '/' }, { maxResults: 4, prefix: 'ckpt/' }]) {
        // Upstream pages of a few entries, so the listing spans many of them.
        const before = listRequests(metrics)
        const { entries, pages } = await pageThrough(upstream, layout, c.container, q, new ListingCache({ pageBudget: 40 }))
        const requests = listRequests(metrics) - before
        check(t, entries, q, JSON.stringify(q))
        t.equal(pages, Math.max(1, Math.ceil(entries.length / q.maxResults)), 'full pages until the last')
        // Discovery, then per source its first page and one request per upstream page of pageSize entries;
        // under the rank strategies the unprefixed source of a short prefix also sees the prefixed blobs.
        const sources = (await layout.listSources(c.container, q.prefix ?? '', upstream)).length
        const pageSize = Math.max(1, Math.floor(40 / sources))
        const bound = 1 + sources + Math.ceil(2 * (NAMES.length + foreign.length) / pageSize) + sources
        t.ok(requests <= bound, `${JSON.stringify(q)}: ${requests} List Blobs requests for ${pages} pages (at most ${bound})`)
      }
    })

    t.test('a page resumes from a name the caller chose (the object core merges pages)', async (t) => {
      const cache = new ListingCache({ pageBudget: 20 })
      const want = expected(all, { maxResults: 1000 })
      const first = await listUpstream(upstream, layout, c.container, { maxResults: 10 }, cache)
      t.same(shown(first.entries), want.slice(0, 10))
      // The caller used only six of them and resumes after the sixth, then after the ninth: from memory.
      const before = listRequests(metrics)
      const second = await listUpstream(upstream, layout, c.container, { maxResults: 3, startAfter: want[5] as string }, cache)
      t.same(shown(second.entries), want.slice(6, 9))
      const third = await listUpstream(upstream, layout, c.container, { maxResults: 1, startAfter: want[8] as string }, cache)
      t.same(shown(third.entries), want.slice(9, 10))
      t.equal(listRequests(metrics) - before, 0, 'no upstream request for entries already fetched')
      // After a common prefix, as the object core asks for it (p + U+FFFF).
      const top = await pageThrough(upstream, layout, c.container, { maxResults: 1, delimiter: '/' }, cache,
        (last) => (last.kind === 'prefix' ? `${last.name}\uffff` : last.name))
      check(t, top.entries, { delimiter: '/' }, 'top level, one entry a page')
    })

    t.test('an aborted listing stops', async (t) => {
      const ac = new AbortController()
      ac.abort()
      await t.rejects(list({ maxResults: 10, signal: ac.signal }), { code: 'CC_ERR_CLIENT_ABORTED' })
    })
  })
}

t.test('forgetting positions costs more: each page re-reads every source from its start', async (t) => {
  const metrics = createNodeMetrics()
  const upstream = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 << 20, blockConcurrency: 2, maxRps: 0, metrics })
  t.teardown(async () => await upstream.close())
  const c: Case = { spec: 'round-robin:a,b,c', container: 'forgetful' }
  const layout = createLayout(c.spec, {})
  await writeBlobs(layout, c)
  const q = { maxResults: 8 }
  const cached = await pageThrough(upstream, layout, c.container, q, new ListingCache({ pageBudget: 100 }))
  const withCache = listRequests(metrics)
  const forgetful = await pageThrough(upstream, layout, c.container, q, new ListingCache({ pageBudget: 100, maxEntries: 1 }))
  const without = listRequests(metrics) - withCache
  t.same(shown(forgetful.entries), shown(cached.entries))
  t.ok(cached.pages >= 5)
  t.ok(without > 2 * withCache, `${without} requests without remembered positions, ${withCache} with`)
})

t.test('a listing from the start reads afresh; a continuation goes on from what it remembered', async (t) => {
  const upstream = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 << 20, blockConcurrency: 2, maxRps: 0, metrics: createNodeMetrics() })
  t.teardown(async () => await upstream.close())
  const layout = createLayout('hex', {})
  const put = async (name: string): Promise<void> => {
    const ref = layout.toUpstream('fresh', name)
    const client = service.getContainerClient(ref.container)
    await client.createIfNotExists()
    await client.getBlockBlobClient(ref.blob).upload(name, name.length)
  }
  await put('d/__0_0.distcp')
  await put('d/__2_0.distcp')
  const cache = new ListingCache()
  const first = await listUpstream(upstream, layout, 'fresh', { maxResults: 1 }, cache)
  t.same(shown(first.entries), ['d/__0_0.distcp'])
  t.equal(first.truncated, true)
  await put('d/__1_0.distcp')
  const again = await listUpstream(upstream, layout, 'fresh', { maxResults: 10 }, cache)
  t.same(shown(again.entries), ['d/__0_0.distcp', 'd/__1_0.distcp', 'd/__2_0.distcp'], 'the new blob, under a prefix nobody listed before')
})

t.test('a container with nothing upstream lists empty', async (t) => {
  const upstream = createAzureUpstream({ connectionString: azurite.connectionString, blockSize: 4 << 20, blockConcurrency: 2, maxRps: 0, metrics: createNodeMetrics() })
  t.teardown(async () => await upstream.close())
  for (const spec of ['identity', 'hash', 'binary', 'round-robin:a,b']) {
    t.same(await listUpstream(upstream, createLayout(spec, {}), 'never-written', { maxResults: 5, delimiter: '/' }), { entries: [], truncated: false }, spec)
  }
  t.same(await listUpstream(upstream, createLayout('identity', {}), 'never-written', { maxResults: 0 }), { entries: [], truncated: false })
})
