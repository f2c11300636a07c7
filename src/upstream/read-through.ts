/**
 * A local miss answered from the upstream (the `ReadThrough` seam): Get Blob
 * Properties as an ObjectMeta, reads that stream while one shared fill copies
 * the version into the cache, and revalidation of clean cached copies against
 * the upstream etag. Concurrent heads of a name, reads of a version and
 * revalidations of a version each share one upstream request or fill.
 */
import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { LRUCache } from 'lru-cache'
import type { NodeMetrics } from '../admin/metrics.js'
import type { ByteRange, ObjectMeta } from '../core/types.js'
import { CacheError } from '../errors.js'
import type { LocalStore } from '../store/local-store.js'
import { Fill, FillSlots } from './fill.js'
import { upstreamMeta } from '../core/tier-listing.js'
import type { Layout, ReadThrough, Upstream, UpstreamProps } from './types.js'

export interface ReadThroughOptions {
  store: LocalStore
  upstream: Upstream
  layout: Layout
  /** True while an upstream delete of the name is recorded and not yet done (the writeback's `deletePending`). */
  deletePending: (container: string, name: string) => boolean
  /** Bytes per ranged Get Blob of a fill. */
  blockSize: number
  /** Ranged Get Blobs in flight per fill. */
  concurrency: number
  /** How long a clean cached copy is served without asking the upstream again; 0: never ask. */
  revalidateAfterMs: number
  metrics: NodeMetrics
  log: FastifyBaseLogger
  /** Fills running at once on this node; more wait for a slot. Default 16. */
  maxFills?: number
  /** Versions whose last check time is remembered. Default 100,000. */
  maxRemembered?: number
}

export class ReadThroughCache implements ReadThrough {
  readonly #opts: ReadThroughOptions
  readonly #slots: FillSlots
  readonly #fills = new Map<string, Fill>()
  /** Every fill not yet settled, including those no longer shared (see `close`). */
  readonly #running = new Set<Fill>()
  readonly #heads = new Map<string, Promise<UpstreamProps | undefined>>()
  readonly #checks = new Map<string, Promise<ObjectMeta | undefined>>()
  /** Versions deleted upstream while a fill of them ran: the fill must not commit them. */
  readonly #deleted = new Set<string>()
  /** container/name/etag → when the upstream last confirmed that version. */
  readonly #checked: LRUCache<string, number>
  #closed = false

  constructor (opts: ReadThroughOptions) {
    if (!(opts.blockSize > 0) || !(opts.concurrency > 0)) throw new Error('read-through needs a positive block size and concurrency')
    this.#opts = opts
    this.#slots = new FillSlots(opts.maxFills ?? 16)
    this.#checked = new LRUCache({ max: opts.maxRemembered ?? 100_000 })
  }

  async head (container: string, name: string, signal?: AbortSignal): Promise<ObjectMeta | undefined> {
    if (this.#opts.deletePending(container, name)) return undefined
    const props = await this.#headUpstream(container, name, signal)
    if (props === undefined || this.#opts.deletePending(container, name)) return undefined
    return upstreamMeta(container, name, props)
  }

  read (meta: ObjectMeta, range?: ByteRange, signal?: AbortSignal): Readable {
    if (this.#closed) throw new CacheError('CC_ERR_SERVER_BUSY', 'The node is shutting down.')
    if (range !== undefined && (range.start < 0 || range.end >= meta.size || range.end < range.start)) {
      throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: meta.size } })
    }
    const etag = meta.upstreamEtag ?? meta.etag
    // Filled a moment ago: the cached copy is this very version.
    const local = this.#opts.store.head(meta.container, meta.name)
    if (local !== undefined && local.dirty !== true && local.etag === etag && local.upstreamEtag === etag) {
      return this.#opts.store.openRead(local, range)
    }
    const key = versionKey(meta.container, meta.name, etag)
    let fill = this.#fills.get(key)
    // A fill that settled (failed, bypassed the cache, or committed and let go of its file) takes no new readers.
    if (fill === undefined || !fill.joinable) {
      fill = this.#startFill(key, meta, etag)
    }
    return fill.reader(range, signal)
  }

  async revalidate (meta: ObjectMeta, signal?: AbortSignal): Promise<ObjectMeta | undefined> {
    const { revalidateAfterMs } = this.#opts
    if (meta.dirty === true || meta.upstreamEtag === undefined || meta.origin === 'upstream' || revalidateAfterMs <= 0) return meta
    const key = versionKey(meta.container, meta.name, meta.etag)
    const since = this.#checked.get(key) ?? meta.lastModifiedMs
    if (Date.now() - since < revalidateAfterMs) return meta
    let check = this.#checks.get(key)
    if (check === undefined) {
      check = this.#check(meta, key).finally(() => this.#checks.delete(key))
      this.#checks.set(key, check)
    }
    return await raceSignal(check, signal)
  }

  /**
   * Delete Blob / DeleteObject of a name the cache does not hold: Delete Blob upstream with
   * If-Match the version `meta` (from `head`) names, so a version written since stays. A fill of
   * the deleted version that is still running delivers to its readers but is not kept. False when
   * that version is no longer upstream.
   */
  async deleteUpstream (meta: ObjectMeta): Promise<boolean> {
    const etag = meta.upstreamEtag ?? meta.etag
    const deleted = await this.#opts.upstream.delete(this.#opts.layout.toUpstream(meta.container, meta.name), { ifMatch: etag })
    const key = versionKey(meta.container, meta.name, etag)
    this.#checked.delete(key)
    const fill = this.#fills.get(key)
    if (deleted && fill !== undefined) {
      this.#deleted.add(key)
      void fill.done.then(() => this.#deleted.delete(key))
    }
    return deleted
  }

  async close (): Promise<void> {
    this.#closed = true
    const reason = new CacheError('CC_ERR_SERVER_BUSY', 'The node is shutting down.')
    const fills = [...this.#running]
    for (const f of fills) f.abort(reason)
    await Promise.all(fills.map(async (f) => await f.done))
  }

  /** Fills in progress (tests, status). */
  get activeFills (): number {
    return this.#running.size
  }

  /** Resolves when every fill running now has committed or failed. */
  async idle (): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running].map(async (f) => await f.done))
  }

  #startFill (key: string, meta: ObjectMeta, etag: string): Fill {
    const o = this.#opts
    const fill = new Fill({
      store: o.store,
      upstream: o.upstream,
      ref: o.layout.toUpstream(meta.container, meta.name),
      meta: { ...meta, etag, upstreamEtag: etag },
      blockSize: o.blockSize,
      concurrency: o.concurrency,
      slots: this.#slots,
      metrics: o.metrics,
      log: o.log,
      deletePending: (c, n) => o.deletePending(c, n) || this.#deleted.has(key),
      onCommitted: (m) => { this.#checked.set(versionKey(m.container, m.name, m.etag), m.lastModifiedMs) }
    })
    this.#fills.set(key, fill)
    this.#running.add(fill)
    void fill.done.then(() => {
      this.#running.delete(fill)
      if (this.#fills.get(key) === fill) this.#fills.delete(key)
    })
    fill.start()
    return fill
  }

  async #headUpstream (container: string, name: string, signal?: AbortSignal): Promise<UpstreamProps | undefined> {
    const key = container + '\u0000' + name
    let head = this.#heads.get(key)
    if (head === undefined) {
      // Shared by every caller, so no caller's signal cancels it; each caller stops waiting on its own.
      head = this.#opts.upstream.head(this.#opts.layout.toUpstream(container, name)).finally(() => this.#heads.delete(key))
      this.#heads.set(key, head)
    }
    return await raceSignal(head, signal)
  }

  async #check (meta: ObjectMeta, key: string): Promise<ObjectMeta | undefined> {
    const { container, name } = meta
    const props = await this.#headUpstream(container, name)
    if (props !== undefined && props.etag === meta.upstreamEtag) {
      this.#checked.set(key, Date.now())
      return meta
    }
    this.#checked.delete(key)
    const evicted = await this.#opts.store.evict(container, name, meta.etag)
    if (!evicted) {
      // Replaced meanwhile (a client write, or another eviction): serve whatever is current.
      const current = this.#opts.store.head(container, name)
      if (current !== undefined) return current
    }
    this.#opts.log.debug({ container, name, etag: meta.etag, upstreamEtag: props?.etag }, 'cached copy is stale, evicted')
    if (props === undefined || this.#opts.deletePending(container, name)) return undefined
    return upstreamMeta(container, name, props)
  }
}

function versionKey (container: string, name: string, etag: string): string {
  return container + '\u0000' + name + '\u0000' + etag
}

/** Waits for `p`, or rejects with CC_ERR_CLIENT_ABORTED when `signal` aborts first (`p` goes on for others). */
async function raceSignal<T> (p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return await p
  if (signal.aborted) throw new CacheError('CC_ERR_CLIENT_ABORTED')
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(new CacheError('CC_ERR_CLIENT_ABORTED')) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
