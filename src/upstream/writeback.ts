/**
 * The writeback queue: every dirty version in the local store reaches the
 * upstream, in commit order, commit markers last, deletes propagated.
 *
 * - Durable and resumable: dirty state lives in the store's metadata (`dirty`,
 *   `seq`); upstream deletes to do live in `<dir>/deletes/` (tombstones.ts).
 *   `start()` rebuilds the queue from both, so a kill -9 loses nothing.
 * - Order: uploads start in `seq` order, at most `concurrency` uploads and
 *   deletes in flight, one operation per name at a time. Right before an
 *   upload the store must still name that version (else the newer one is
 *   queued instead); after it, `markClean`. A version committed during an
 *   upload of its name waits for that upload to end, then goes.
 * - Commit markers (markers.ts) wait until every object of their directory
 *   committed before them is clean upstream or deleted.
 * - Deletes: a client delete cancels the name's queued upload, aborts one in
 *   flight and, when the upstream may hold the name (a known upstream etag, an
 *   upload that may have committed, an earlier record), records the upstream
 *   delete durably before the local delete proceeds. `PendingDeletes.next` says how a
 *   record is carried out. Evictions change nothing upstream.
 * - Failures: nothing is dropped. A failed attempt is retried with
 *   exponential backoff and jitter, for ever. After CC_ERR_UPSTREAM_UNAVAILABLE
 *   the whole queue pauses: one probe at a time, spaced by the same backoff,
 *   until one succeeds.
 */
import { mkdir } from 'node:fs/promises'
import type { NodeMetrics } from '../admin/metrics.js'
import type { ObjectMeta } from '../core/types.js'
import { CacheError } from '../errors.js'
import type { LocalStore, StoreEvent } from '../store/local-store.js'
import { DEFAULT_RETRY_DELAY, retryAfterSeconds, type RetryDelay } from './backoff.js'
import { DirtyNames, keyOf } from './dirty-names.js'
import { FlushTracker, inFlushScope } from './flush.js'
import { markerMatcher } from './markers.js'
import { PendingDeletes, type PendingDelete } from './pending-deletes.js'
import { Tombstones } from './tombstones.js'
import type { FlushHandle, Layout, UploadGate, Upstream, Writeback, WritebackStatus } from './types.js'
import { WaiterSet } from './waiters.js'
import { registerWritebackMetrics } from './writeback-metrics.js'
import { WritebackWorker } from './writeback-worker.js'
import type { Log } from '../log.js'
import { Timers } from '../timers.js'

export type WritebackLog = Pick<Log, 'info' | 'warn' | 'error'>

export interface WritebackOptions {
  store: LocalStore
  upstream: Upstream
  layout: Layout
  /** The queue's own state directory (delete records), e.g. `<dataDir>/writeback`. */
  dir: string
  mode: 'writeback' | 'writethrough'
  /** Dirty bytes past which `admit` refuses writes. */
  dirtyLimit: number
  /** Uploads and deletes in flight at most. */
  concurrency: number
  /** Basename globs of commit markers. */
  markerPatterns: string[]
  metrics: NodeMetrics
  log: WritebackLog
  /** Backoff of retries after a failure; default base 1 s, max 60 s. */
  retryDelayMs?: RetryDelay
  /**
   * Cluster: which holder uploads each version. With a gate, the delete of a dirty version also
   * records an upstream delete (another holder may be uploading it).
   */
  gate?: UploadGate
}

export class WritebackQueue implements Writeback {
  readonly #o: WritebackOptions
  readonly #tombstones: Tombstones
  readonly #names: DirtyNames
  readonly #deletes: PendingDeletes
  readonly #worker: WritebackWorker
  readonly #waiters = new WaiterSet()
  readonly #flushes = new Set<FlushTracker>()
  readonly #timers = new Timers()
  /** Aborted by close(): upstream deletes in flight stop being waited for. */
  readonly #closing = new AbortController()
  #opened: Promise<void> | undefined
  #closed = false

  constructor (opts: WritebackOptions) {
    this.#o = opts
    this.#tombstones = new Tombstones(opts.dir)
    this.#names = new DirtyNames(markerMatcher(opts.markerPatterns), () => this.#worker.schedule())
    this.#deletes = new PendingDeletes({
      tombstones: this.#tombstones,
      onReady: () => this.#worker.schedule(),
      onDropped: (key) => this.#settle(key),
      onError: (err) => opts.log.error({ err }, 'writeback: could not remove a delete record')
    })
    const names = this.#names
    const counters = registerWritebackMetrics(opts.metrics.registry, {
      dirtyBytes: () => names.dirtyBytes,
      dirtyObjects: () => names.dirtyObjects,
      dirtyLimit: () => opts.dirtyLimit,
      oldestDirtyAgeMs: () => names.oldestDirtyAgeMs(),
      queued: () => names.queued,
      uploading: () => this.#worker.uploading,
      pendingDeletes: () => this.#deletes.size
    })
    this.#worker = new WritebackWorker({
      store: opts.store,
      upstream: stoppableDeletes(opts.upstream, this.#closing.signal),
      layout: opts.layout,
      names,
      deletes: this.#deletes,
      waiters: this.#waiters,
      concurrency: opts.concurrency,
      delay: opts.retryDelayMs ?? DEFAULT_RETRY_DELAY,
      counters,
      log: opts.log,
      settle: (key) => this.#settle(key),
      ...(opts.gate === undefined ? {} : { gate: opts.gate })
    })
  }

  /** Subscribes to the store, loads delete records, queues every dirty version by seq and starts working. */
  async start (): Promise<void> {
    this.#o.store.watch((ev) => this.#onEvent(ev))
    this.#o.gate?.onViewChange(() => {
      this.#names.releaseDeferred()
      this.#worker.schedule()
    })
    this.#opened = (async () => {
      await mkdir(this.#o.dir, { recursive: true })
      this.#deletes.load(await this.#tombstones.open((file, why) => this.#o.log.warn({ file }, `writeback: ${why}, ignored`)))
    })()
    await this.#opened
    for (const meta of this.#o.store.objects()) if (meta.dirty === true) this.#names.track(meta)
    for (const key of this.#deletes.keys()) this.#deletes.ready(this.#deletes.get(key) as PendingDelete)
    this.#o.log.info({ dirtyObjects: this.#names.dirtyObjects, dirtyBytes: this.#names.dirtyBytes, pendingDeletes: this.#deletes.size }, 'writeback started')
    this.#worker.start()
  }

  status (): WritebackStatus {
    return {
      mode: this.#o.mode,
      dirtyObjects: this.#names.dirtyObjects,
      dirtyBytes: this.#names.dirtyBytes,
      dirtyLimit: this.#o.dirtyLimit,
      oldestDirtyAgeMs: this.#names.oldestDirtyAgeMs(),
      queued: this.#names.queued,
      uploading: this.#worker.uploading,
      pendingDeletes: this.#deletes.size,
      uploadedObjects: this.#worker.uploadedObjects,
      uploadedBytes: this.#worker.uploadedBytes,
      failedAttempts: this.#worker.failedAttempts,
      ...(this.#worker.lastError === undefined ? {} : { lastError: this.#worker.lastError })
    }
  }

  admit (bytes: number): void {
    const dirty = this.#names.dirtyBytes
    // With nothing dirty anything goes: one object larger than the limit must not wait for ever.
    if (dirty === 0 || dirty + bytes <= this.#o.dirtyLimit) return
    const retryAfter = retryAfterSeconds(dirty + bytes - this.#o.dirtyLimit, this.#worker.rate.bytesPerSecond(), this.#worker.outageError !== undefined)
    throw new CacheError('CC_ERR_SERVER_BUSY',
      `${dirty} bytes are waiting for writeback to the upstream; ${bytes} more would pass the dirty limit of ` +
      `${this.#o.dirtyLimit} bytes. Retry after ${retryAfter} s, when the writeback has caught up.`,
      { detail: { retryAfter, dirtyBytes: dirty, dirtyLimit: this.#o.dirtyLimit } })
  }

  whenClean (container: string, name: string, etag: string): Promise<void> {
    const head = this.#o.store.head(container, name)
    if (head === undefined || head.etag !== etag || head.dirty !== true) return Promise.resolve()
    // While the upstream is known to be down a writethrough write fails at once instead of
    // waiting for the outage to end; its object stays queued.
    const down = this.#worker.outageError
    if (down !== undefined) return Promise.reject(down)
    if (this.#closed) return Promise.reject(closedError())
    return this.#waiters.add(keyOf(container, name), etag)
  }

  flush (container?: string, prefix?: string): FlushHandle {
    const items = new Map<string, number>()
    for (const s of this.#names.values()) if ((s.dirty || s.upload?.deleteAfter === true) && inFlushScope(s.key, container, prefix)) items.set(s.key, s.dirtySize)
    for (const key of this.#deletes.keys()) if (!items.has(key) && inFlushScope(key, container, prefix)) items.set(key, 0)
    const f = new FlushTracker(items)
    if (!f.finished) {
      if (this.#closed) f.abandon()
      else this.#flushes.add(f)
    }
    return f
  }

  deletePending (container: string, name: string): boolean {
    return this.#deletes.has(keyOf(container, name))
  }

  async cleaned (container: string, name: string, etag: string, upstreamEtag: string, md5?: string): Promise<boolean> {
    const ok = await this.#o.store.markClean(container, name, etag, upstreamEtag, md5 === undefined ? undefined : { md5 })
    if (!ok) return false
    const key = keyOf(container, name)
    const s = this.#names.get(key)
    if (s !== undefined && s.current?.etag === etag) this.#names.dropDirty(s)
    this.#waiters.resolve(key, (e) => e === etag)
    this.#settle(key)
    return true
  }

  /**
   * Stops taking work, aborts uploads in flight and stops waiting for upstream deletes in flight
   * (both resume after a restart: their objects stay dirty, their records stay), then resolves
   * when idle. A hanging or unreachable upstream never holds a shutdown up.
   */
  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#closing.abort()
      this.#names.closed = true
      this.#deletes.closed = true
      this.#timers.close()
      this.#waiters.rejectAll(closedError())
      for (const f of this.#flushes) f.abandon()
      this.#flushes.clear()
    }
    await this.#worker.close()
    await this.#deletes.idle()
  }

  // ---- store events -------------------------------------------------------

  #onEvent (ev: StoreEvent): void | Promise<void> {
    if (ev.type === 'delete') return this.#onDelete(ev.meta)
    if (ev.type === 'evict') {
      // Nothing changes upstream; a dirty copy dropped (held elsewhere) is no longer this node's to upload.
      if (ev.meta.dirty === true) this.#dropped(ev.meta, ev.deleted === true)
      return
    }
    if (ev.type !== 'commit' || this.#closed) return
    const meta = ev.meta
    const key = keyOf(meta.container, meta.name)
    try {
      if (meta.dirty === true) {
        if (this.#names.track(meta)) this.#waiters.resolve(key, (etag) => etag !== meta.etag)
        return
      }
      // A clean version (a read-through fill) replaced whatever was dirty of the name.
      const s = this.#names.get(key)
      if (s !== undefined) this.#names.dropDirty(s)
      this.#waiters.resolve(key, () => true)
      const p = this.#deletes.get(key)
      if (p !== undefined) this.#deletes.ready(p)
      this.#settle(key)
    } catch (err) {
      // Never fail a client's commit: the version is durable and dirty, a restart queues it.
      this.#o.log.error({ err, container: meta.container, name: meta.name }, 'writeback: could not queue a commit')
    }
  }

  /**
   * A client delete, before the store removes the object. Resolves once the upstream delete (if
   * the upstream may hold the name) is recorded durably; a failure refuses the local delete.
   */
  async #onDelete (meta: ObjectMeta): Promise<void> {
    const key = keyOf(meta.container, meta.name)
    const s = this.#names.get(key)
    const upload = s?.upload?.deleted === false ? s.upload : undefined
    // In a cluster another holder may be uploading a dirty version: its upload may commit.
    const elsewhere = this.#o.gate !== undefined && meta.dirty === true
    const mayHold = meta.upstreamEtag !== undefined || upload !== undefined || this.#deletes.has(key) || elsewhere
    if (s !== undefined) {
      if (upload !== undefined) {
        upload.deleted = true
        upload.abort.abort()
      }
      this.#names.dropDirty(s)
    }
    let p: PendingDelete | undefined
    if (mayHold) {
      try {
        await this.#opened
        p = await this.#deletes.record(meta, upload !== undefined || elsewhere)
      } catch (err) {
        if (meta.dirty === true && !this.#closed) this.#names.track(meta)
        this.#o.log.error({ err, container: meta.container, name: meta.name }, 'writeback: could not record an upstream delete; the delete is refused')
        throw new CacheError('CC_ERR_INTERNAL', 'The upstream delete could not be recorded durably.', { cause: err })
      }
    }
    this.#waiters.resolve(key, () => true)
    this.#confirmDelete(meta, p)
  }

  /**
   * A dirty copy dropped from this node (cluster): forget it, stop an upload of it. An upload
   * already sending when a client deleted the name elsewhere runs on (see `Upload.deleteAfter`).
   */
  #dropped (meta: ObjectMeta, deleted: boolean): void {
    const key = keyOf(meta.container, meta.name)
    const s = this.#names.get(key)
    if (s === undefined) return
    const up = s.upload?.entry.etag === meta.etag ? s.upload : undefined
    if (up !== undefined && !up.deleted) {
      up.deleted = true
      if (deleted && up.sending) up.deleteAfter = true
      else up.abort.abort()
    }
    // The store held no other version of the name: nothing of it is dirty here now.
    if (up !== undefined || s.current?.etag === meta.etag) this.#names.dropDirty(s)
    this.#waiters.resolve(key, (e) => e === meta.etag)
    this.#settle(key)
  }

  /**
   * The store removes the object right after its watchers resolve; until then the record must
   * not run (the object is still there). If the object stays (another watcher refused the
   * delete), its dirty version is queued again and the record waits like any other.
   */
  #confirmDelete (meta: ObjectMeta, p: PendingDelete | undefined): void {
    const gen = p?.gen
    const key = keyOf(meta.container, meta.name)
    let tries = 0
    const check = (): void => {
      const head = this.#o.store.head(meta.container, meta.name)
      if (head?.etag === meta.etag && tries < 12) {
        this.#timers.later(check, Math.min(1000, 5 * 2 ** tries++))
        return
      }
      if (head?.etag === meta.etag && head.dirty === true) this.#names.track(head)
      if (p !== undefined && p.gen === gen && this.#deletes.get(key) === p) {
        p.confirmed = true
        this.#deletes.ready(p)
      }
      this.#settle(key)
    }
    this.#timers.later(check, 0)
  }

  /** Flushes count a name once nothing of it is dirty and no delete of it is pending (or to come: `deleteAfter`). */
  #settle (key: string): void {
    const s = this.#names.get(key)
    if (s?.dirty === true || s?.upload?.deleteAfter === true || this.#deletes.has(key)) return
    this.#worker.forget(key)
    for (const f of this.#flushes) if (f.settle(key)) this.#flushes.delete(f)
  }
}

/**
 * The upstream as the worker uses it: a Delete Blob in flight (which, unlike an upload, takes no
 * signal) fails with CC_ERR_CLIENT_ABORTED as soon as `closing` aborts, so that closing the queue
 * does not wait for it; the request itself ends when the upstream closes. Its record stays, so a
 * restart carries the delete out (again: deletes are idempotent).
 */
function stoppableDeletes (upstream: Upstream, closing: AbortSignal): Upstream {
  return {
    ensureContainer: (container) => upstream.ensureContainer(container),
    upload: (req) => upstream.upload(req),
    head: (ref, opts) => upstream.head(ref, opts),
    download: (ref, opts) => upstream.download(ref, opts),
    list: (container, query) => upstream.list(container, query),
    close: () => upstream.close(),
    delete: (ref, opts) => {
      const deleting = upstream.delete(ref, opts)
      if (closing.aborted) {
        deleting.catch(() => {})
        return Promise.reject(closedDeleteError())
      }
      return new Promise<boolean>((resolve, reject) => {
        const onClose = (): void => { reject(closedDeleteError()) }
        closing.addEventListener('abort', onClose, { once: true })
        deleting.then(resolve, reject).finally(() => { closing.removeEventListener('abort', onClose) })
      })
    }
  }
}

function closedDeleteError (): CacheError {
  return new CacheError('CC_ERR_CLIENT_ABORTED', 'The writeback queue closed during an upstream delete; its record stays and the delete runs after a restart.')
}

function closedError (): CacheError {
  return new CacheError('CC_ERR_SERVER_BUSY', 'The writeback queue is closing; the object stays dirty and is uploaded after a restart.')
}
