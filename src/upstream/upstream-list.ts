/**
 * Listing a local container's names in the upstream: the logical entries of every source the
 * layout names, merged in name order (JavaScript string order, as the local store sorts),
 * deduplicated, with foreign blobs (names no logical name maps to) dropped.
 *
 * Azure List Blobs has no start-after, so a listing that resumes after a name would have to page
 * through everything before it again. A `ListingCache` keeps, per (layout, container, prefix,
 * delimiter), the last few positions a listing started at with each source's next marker and the
 * entries fetched after that position: the next page, starting anywhere at or after a kept
 * position, continues from memory and from those markers, so paging through a listing costs each
 * upstream page once. A listing from the start reads the upstream afresh and makes the positions
 * of older listings of the same key forgotten. Memory is bounded: a listing holds at most `pageBudget` fetched entries
 * ahead across its sources plus the page it answers, and the cache at most `maxEntries`.
 *
 * `startAfter` semantics (those of the local store and the S3 front end): an object is listed
 * when its name is greater; with a delimiter, a startAfter that is itself a common prefix of the
 * listing (`prefix` + text + first delimiter) stands for everything under it, and a startAfter
 * inside a common prefix `p` lists `p` first when a name under `p` is greater than it (a flat
 * listing under `p` tells), except that `p` followed only by U+FFFF stands for `p`. Paging passes
 * the last entry's name, prefix or object, as the next startAfter.
 */
import { LRUCache } from 'lru-cache'
import { CacheError } from '../errors.js'
import type { ListingLayout, ListSource, UpstreamLister } from './layout.js'
import type { UpstreamListItem, UpstreamProps } from './types.js'

export type UpstreamEntry =
  | { kind: 'object', name: string, props: UpstreamProps }
  | { kind: 'prefix', name: string }

export interface UpstreamListingQuery {
  prefix?: string
  delimiter?: string
  /** Only entries after this name (see the module comment). */
  startAfter?: string
  maxResults: number
  signal?: AbortSignal
}

export interface UpstreamListing {
  entries: UpstreamEntry[]
  /** True when more entries follow the last one. */
  truncated: boolean
}

export interface ListingCacheOptions {
  /** Listings (layout, container, prefix, delimiter) remembered. Default 64. */
  maxListings?: number
  /** Fetched entries remembered across all listings. Default 200 000. */
  maxEntries?: number
  /** A remembered position is forgotten after this long unused. Default 5 minutes. */
  ttlMs?: number
  /** Entries a listing fetches ahead across its sources: the upstream page size is this / sources, 1 to 5000. Default 20 000. */
  pageBudget?: number
}

/** Where a listing stands: everything up to `name` (and, for a prefix, under it) is behind. */
interface Position {
  name: string
  prefix: boolean
}

interface Cursor {
  source: ListSource
  /** Marker of the next upstream page (undefined before the first page). */
  marker?: string
  done: boolean
  /** Entries after the state's position, in name order. Never mutated once a state holds it. */
  items: UpstreamEntry[]
}

interface State {
  pos: Position | undefined
  cursors: Cursor[]
  size: number
}

const STATES_PER_LISTING = 4
const FETCH_CONCURRENCY = 8
const MAX_PAGE = 5000

/** Remembered listing positions (see the module comment). One per Upstream is made on demand. */
export class ListingCache {
  readonly pageBudget: number
  readonly #lru: LRUCache<string, State[]>

  constructor (opts: ListingCacheOptions = {}) {
    this.pageBudget = opts.pageBudget ?? 20_000
    this.#lru = new LRUCache<string, State[]>({
      max: opts.maxListings ?? 64,
      maxSize: opts.maxEntries ?? 200_000,
      ttl: opts.ttlMs ?? 300_000,
      sizeCalculation: (states) => Math.max(1, states.reduce((n, s) => n + s.size, 0)),
    })
  }

  /** The kept state with the furthest position a listing starting at `start` can continue from. */
  take (key: string, start: Position | undefined): State | undefined {
    let best: State | undefined
    for (const s of this.#lru.get(key) ?? []) {
      if (covers(s.pos, start) && (best === undefined || best.pos === undefined || (s.pos !== undefined && s.pos.name > best.pos.name))) best = s
    }
    return best
  }

  /**
   * Remembers `state`. The state of a listing from the start replaces every other of its key:
   * a new listing's next pages must not go on from entries an older listing fetched (a blob
   * deleted since would come back).
   */
  keep (key: string, state: State): void {
    const states = state.pos === undefined ? [] : (this.#lru.get(key) ?? []).filter((s) => !samePos(s.pos, state.pos))
    states.push(state)
    if (states.length > STATES_PER_LISTING) states.shift()
    this.#lru.set(key, states)
  }
}

const defaultCaches = new WeakMap<object, ListingCache>()

function samePos (a: Position | undefined, b: Position | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.name === b.name && a.prefix === b.prefix
}

/** True when the entry `name` is after position `pos`. */
function after (pos: Position | undefined, name: string): boolean {
  if (pos === undefined) return true
  return name > pos.name && !(pos.prefix && name.startsWith(pos.name))
}

/** True when everything after `start` is also after `pos` (a state at `pos` can serve `start`). */
function covers (pos: Position | undefined, start: Position | undefined): boolean {
  if (pos === undefined) return true
  if (start === undefined) return false
  if (start.name === pos.name) return start.prefix || !pos.prefix
  return start.name > pos.name && !(pos.prefix && start.name.startsWith(pos.name))
}

function byName (a: UpstreamEntry, b: UpstreamEntry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

function checkAbort (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new CacheError('CC_ERR_CLIENT_ABORTED', 'the listing was cancelled', { cause: signal.reason })
}

/** The source's root: explicit, or the blob prefix without the logical prefix. */
function rootOf (source: ListSource, prefix: string): string {
  if (typeof source.root === 'string') return source.root
  const blob: string = source.blob
  if (!blob.endsWith(prefix)) throw new CacheError('CC_ERR_INTERNAL', `listing source ${blob} does not end with the prefix ${prefix}`)
  return blob.slice(0, blob.length - prefix.length)
}

async function forEachLimited<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * The logical entries of `container` in the upstream (see the module comment). `cache` defaults
 * to one kept per `upstream` object.
 */
export async function listUpstream (upstream: UpstreamLister, layout: ListingLayout, container: string,
  query: UpstreamListingQuery, cache?: ListingCache): Promise<UpstreamListing> {
  const { maxResults, signal } = query
  if (maxResults <= 0) return { entries: [], truncated: false }
  const prefix = query.prefix ?? ''
  const delimiter = query.delimiter === '' ? undefined : query.delimiter
  let c = cache ?? defaultCaches.get(upstream)
  if (c === undefined) defaultCaches.set(upstream, c = new ListingCache())
  const listings = c
  checkAbort(signal)

  // Where this page starts.
  let start: Position | undefined
  const entries: UpstreamEntry[] = []
  const s = query.startAfter
  if (s !== undefined && s !== '') {
    const d = delimiter !== undefined && s.startsWith(prefix) ? s.indexOf(delimiter, prefix.length) : -1
    if (d === -1) start = { name: s, prefix: false }
    else {
      const common = s.slice(0, d + (delimiter as string).length)
      start = { name: common, prefix: true }
      // Past the common prefix only U+FFFF (the object core's "after everything under p"): the same as p.
      if (!/^\uffff*$/.test(s.slice(common.length))) {
        const inside = await listUpstream(upstream, layout, container, { prefix: common, startAfter: s, maxResults: 1, ...(signal === undefined ? {} : { signal }) }, listings)
        if (inside.entries.length > 0) entries.push({ kind: 'prefix', name: common })
      }
    }
  }

  const key = JSON.stringify([layout.description, container, prefix, delimiter ?? null])
  // A listing from the start is a new listing: it reads the upstream afresh.
  const kept = start === undefined ? undefined : listings.take(key, start)
  let cursors: Cursor[]
  if (kept !== undefined) {
    cursors = kept.cursors.map((k) => ({ ...k, items: k.items.filter((e) => after(start, e.name)) }))
  } else {
    const sources = await layout.listSources(container, prefix, upstream)
    cursors = sources.map((source) => ({ source, done: false, items: [] }))
  }
  const offsets = cursors.map(() => 0)
  const pageSize = Math.max(1, Math.min(MAX_PAGE, Math.floor(listings.pageBudget / Math.max(1, cursors.length))))

  const mapPage = async (cur: Cursor, items: UpstreamListItem[]): Promise<UpstreamEntry[]> => {
    const root = rootOf(cur.source, prefix)
    const out: UpstreamEntry[] = []
    for (const item of items) {
      if (!item.name.startsWith(root)) continue
      const name = item.name.slice(root.length)
      if (name === '' || !name.startsWith(prefix)) continue
      if (item.kind === 'blob') {
        const ref = layout.toUpstream(container, name)
        if (ref.container === cur.source.container && ref.blob === item.name) out.push({ kind: 'object', name, props: item.props })
        continue
      }
      const verdict = cur.source.holds?.(name) ?? 'yes'
      if (verdict === 'no') continue
      if (verdict === 'verify' && !(await holdsName(upstream, layout, container, cur.source, root, name, signal))) continue
      out.push({ kind: 'prefix', name })
    }
    return out.sort(byName)
  }

  const fetchPage = async (i: number, pos: Position | undefined): Promise<void> => {
    const cur = cursors[i] as Cursor
    checkAbort(signal)
    const page = await upstream.list(cur.source.container, {
      prefix: cur.source.blob,
      ...(delimiter === undefined ? {} : { delimiter }),
      ...(cur.marker === undefined ? {} : { marker: cur.marker }),
      maxResults: pageSize,
    })
    checkAbort(signal)
    const mapped = (await mapPage(cur, page.items)).filter((e) => after(pos, e.name))
    // Entries after this call's start only: a kept state's arrays are never written to.
    cursors[i] = {
      source: cur.source,
      ...(page.next === undefined ? {} : { marker: page.next }),
      done: page.next === undefined,
      items: cur.items.concat(mapped),
    }
  }

  // Every cursor that is not done gets a head after `pos` (fetching pages where needed).
  const fill = async (pos: Position | undefined): Promise<void> => {
    for (;;) {
      const need: number[] = []
      cursors.forEach((cur, i) => {
        let off = offsets[i] as number
        while (off < cur.items.length && !after(pos, (cur.items[off] as UpstreamEntry).name)) off++
        offsets[i] = off
        if (off >= cur.items.length && !cur.done) need.push(i)
      })
      if (need.length === 0) return
      await forEachLimited(need, FETCH_CONCURRENCY, async (i) => await fetchPage(i, pos))
    }
  }

  let pos = start
  let truncated = false
  for (;;) {
    await fill(pos)
    let best = -1
    cursors.forEach((cur, i) => {
      const head = cur.items[offsets[i] as number]
      if (head !== undefined && (best === -1 || head.name < ((cursors[best] as Cursor).items[offsets[best] as number] as UpstreamEntry).name)) best = i
    })
    if (best === -1) break
    if (entries.length >= maxResults) {
      truncated = true
      break
    }
    const head = (cursors[best] as Cursor).items[offsets[best] as number] as UpstreamEntry
    entries.push(head)
    pos = { name: head.name, prefix: head.kind === 'prefix' }
  }

  const size = cursors.reduce((n, cur) => n + cur.items.length, 0)
  listings.keep(key, { pos: start, cursors, size })
  return { entries, truncated }
}

/** True when some blob under the common prefix `name` of `source` maps back through it (a flat scan, first hit wins). */
async function holdsName (upstream: UpstreamLister, layout: ListingLayout, container: string, source: ListSource,
  root: string, name: string, signal: AbortSignal | undefined): Promise<boolean> {
  let marker: string | undefined
  do {
    checkAbort(signal)
    const page = await upstream.list(source.container, { prefix: root + name, maxResults: MAX_PAGE, ...(marker === undefined ? {} : { marker }) })
    for (const item of page.items) {
      if (item.kind !== 'blob') continue
      const ref = layout.toUpstream(container, item.name.slice(root.length))
      if (ref.container === source.container && ref.blob === item.name) return true
    }
    marker = page.next
  } while (marker !== undefined)
  return false
}
