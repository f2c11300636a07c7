import t from 'tap'
import { mergeNodePages } from '../../src/core/cluster-listing.js'
import type { ObjectMeta } from '../../src/core/types.js'
import type { ListedEntry, StoreListPage } from '../../src/store/local-store.js'
import { SortedNames, type ListQuery } from '../../src/store/sorted-names.js'
import { exclusiveStart } from '../../src/core/tier-listing.js'

function meta (name: string, lastModifiedMs: number, node: string): ObjectMeta {
  return { container: 'c', name, size: 1, etag: node + name, createdMs: 0, lastModifiedMs, content: {}, metadata: { node }, checksums: {}, extents: [], fromBlocks: false }
}

/** One node's store: a sorted name set answering one page the way a peer does. */
function nodePage (names: Map<string, ObjectMeta>, q: ListQuery): StoreListPage {
  const set = new SortedNames()
  for (const n of names.keys()) set.add(n)
  const start = exclusiveStart(q)
  const page = set.list({ ...(q.prefix === undefined ? {} : { prefix: q.prefix }), ...(q.delimiter === undefined ? {} : { delimiter: q.delimiter }), ...(start === undefined ? {} : { startAfter: start }), maxResults: q.maxResults })
  const entries: ListedEntry[] = page.entries.map((e) => e.kind === 'prefix' ? e : { kind: 'object', meta: names.get(e.name) as ObjectMeta })
  return page.next === undefined ? { entries } : { entries, next: page.next }
}

function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 }
}

t.test('paging through merged node pages yields exactly the union, in order, once each', async (t) => {
  const rand = rng(7)
  for (const delimiter of [undefined, '/']) {
    for (const maxResults of [1, 2, 3, 7, 50]) {
      const nodes = [new Map<string, ObjectMeta>(), new Map<string, ObjectMeta>(), new Map<string, ObjectMeta>()]
      const expected = new Set<string>()
      for (let i = 0; i < 60; i++) {
        const name = `d${Math.floor(rand() * 4)}/${rand() < 0.5 ? 'sub/' : ''}f${Math.floor(rand() * 40)}`
        // Each object on 1–2 nodes (copies), like replicas.
        const a = Math.floor(rand() * 3)
        nodes[a]?.set(name, meta(name, i, `n${a}`))
        if (rand() < 0.6) nodes[(a + 1) % 3]?.set(name, meta(name, i + 1000, `n${(a + 1) % 3}`))
        expected.add(delimiter === undefined ? name : name.slice(0, name.indexOf('/') + 1))
      }
      const seen: string[] = []
      let q: ListQuery = { maxResults, ...(delimiter === undefined ? {} : { delimiter }) }
      for (let pages = 0; pages < 200; pages++) {
        const merged = mergeNodePages(maxResults, nodes.map((n) => nodePage(n, q)))
        t.ok(merged.entries.length <= maxResults, 'a page holds at most maxResults')
        for (const e of merged.entries) seen.push(e.kind === 'prefix' ? e.name : e.meta.name)
        if (merged.next === undefined) break
        q = { ...q, startAt: merged.next }
      }
      const want = [...expected].sort()
      t.same(seen, want, `delimiter ${String(delimiter)}, pages of ${maxResults}: no gap, no duplicate`)
    }
  }
})

t.test('a name held by several nodes shows the most recently modified version', async (t) => {
  const a = new Map([['x', meta('x', 5, 'old')]])
  const b = new Map([['x', meta('x', 9, 'new')]])
  const page = mergeNodePages(10, [nodePage(a, { maxResults: 10 }), nodePage(b, { maxResults: 10 })])
  t.equal(page.entries.length, 1)
  const e = page.entries[0]
  t.equal(e?.kind === 'object' ? e.meta.metadata.node : undefined, 'new')
  t.equal(page.next, undefined, 'nothing more')
})
