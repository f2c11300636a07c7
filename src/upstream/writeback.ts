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
 *   delete durably before the local delete proceeds. `#startDelete` says how a
 *   record is carried out. Evictions change nothing upstream.
 * - Failures: nothing is dropped. A failed attempt is retried with
 *   exponential backoff and jitter, for ever. After CC_ERR_UPSTREAM_UNAVAILABLE
 *   the whole queue pauses: one probe at a time, spaced by the same backoff,
 *   until one succeeds.
 */
import { mkdir } from 'node:fs/promises'
import type { Counter, NodeMetrics } from '../admin/metrics.js'
import type { ObjectMeta } from '../core/types.js'
import { CacheError, isCacheError } from '../errors.js'
import type { LocalStore, StoreEvent } from '../store/local-store.js'
import { DEFAULT_RETRY_DELAY, retryAfterSeconds, retryDelayMs, UploadRate, type RetryDelay } from './backoff.js'
import { DirtyNames, keyOf, type Entry, type NameState, type Upload } from './dirty-names.js'
import { FlushTracker, inFlushScope } from './flush.js'
import { markerMatcher } from './markers.js'
import { PendingDeletes, type PendingDelete } from './pending-deletes.js'
import { Tombstones } from './tombstones.js'
import type { FlushHandle, Layout, Upstream, UploadResult, Writeback, WritebackStatus } from './types.js'
import { WaiterSet } from './waiters.js'

export interface WritebackLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

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
}

interface Outage {
  error: Error
  probes: number
  probeDue: boolean
  timer: NodeJS.Timeout | undefined
}

const UNAVAILABLE = 'CC_ERR_UPSTREAM_UNAVAILABLE'
const errText = (err: unknown): string => err instanceof Error ? err.message : String(err)

export class WritebackQueue implements Writeback {
  readonly #o: WritebackOptions
  readonly #delay: RetryDelay
  readonly #tombstones: Tombstones
  readonly #names: DirtyNames
  readonly #deletes: PendingDeletes
  readonly #waiters = new WaiterSet()
  readonly #flushes = new Set<FlushTracker>()
  readonly #ops = new Set<Promise<void>>()
  readonly #timers = new Set<NodeJS.Timeout>()
  /** Names and records whose last attempt failed (status shows `lastError` while there are any). */
  readonly #failing = new Set<string>()
  readonly #rate = new UploadRate()
  readonly #uploads: Counter
  readonly #uploadedBytesTotal: Counter
  readonly #deletesTotal: Counter
  #retryTimer: NodeJS.Timeout | undefined
  #retryTimerAt: number | undefined
  #outage: Outage | undefined
  #opened: Promise<void> | undefined
  #running = false
  #closed = false
  #pumpScheduled = false
  #active = 0
  #uploading = 0
  #uploadedObjects = 0
  #uploadedBytes = 0
  #failedAttempts = 0
  #lastError: string | undefined

  constructor (opts: WritebackOptions) {
    this.#o = opts
    this.#delay = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY
    this.#tombstones = new Tombstones(opts.dir)
    this.#names = new DirtyNames(markerMatcher(opts.markerPatterns), () => this.#schedulePump())
    this.#deletes = new PendingDeletes(this.#tombstones, () => this.#schedulePump())
    const r = opts.metrics.registry
    this.#uploads = r.counter('ckptcache_writeback_uploads_total', 'Writeback upload attempts, by result (ok, failed).', ['result'])
    this.#uploadedBytesTotal = r.counter('ckptcache_writeback_uploaded_bytes_total', 'Object bytes the writeback uploaded.')
    this.#deletesTotal = r.counter('ckptcache_writeback_deletes_total', 'Upstream deletes the writeback carried out.')
    r.gauge('ckptcache_dirty_bytes', 'Bytes of dirty objects (not yet uploaded).', () => this.#names.dirtyBytes)
    r.gauge('ckptcache_dirty_objects', 'Dirty objects (not yet uploaded).', () => this.#names.dirtyObjects)
    r.gauge('ckptcache_dirty_limit_bytes', 'Dirty bytes past which writes are refused with a retryable 503.', () => opts.dirtyLimit)
    r.gauge('ckptcache_oldest_dirty_age_seconds', 'Age of the oldest dirty object.', () => this.#names.oldestDirtyAgeMs() / 1000)
    r.gauge('ckptcache_writeback_queue_depth', 'Dirty objects waiting for an upload (markers waiting for their directory included).', () => this.#names.queued)
    r.gauge('ckptcache_writeback_uploading', 'Uploads in progress.', () => this.#uploading)
    r.gauge('ckptcache_writeback_pending_deletes', 'Upstream deletes recorded and not yet done.', () => this.#deletes.size)
  }

  /** Subscribes to the store, loads delete records, queues every dirty version by seq and starts working. */
  async start (): Promise<void> {
    this.#o.store.watch((ev) => this.#onEvent(ev))
    this.#opened = (async () => {
      await mkdir(this.#o.dir, { recursive: true })
      this.#deletes.load(await this.#tombstones.open((file, why) => this.#o.log.warn({ file }, `writeback: ${why}, ignored`)))
    })()
    await this.#opened
    for (const meta of this.#o.store.objects()) if (meta.dirty === true) this.#names.track(meta)
    for (const key of this.#deletes.keys()) this.#deletes.ready(this.#deletes.get(key) as PendingDelete)
    this.#running = !this.#closed
    this.#o.log.info({ dirtyObjects: this.#names.dirtyObjects, dirtyBytes: this.#names.dirtyBytes, pendingDeletes: this.#deletes.size }, 'writeback started')
    this.#schedulePump()
  }

  status (): WritebackStatus {
    return {
      mode: this.#o.mode,
      dirtyObjects: this.#names.dirtyObjects,
      dirtyBytes: this.#names.dirtyBytes,
      dirtyLimit: this.#o.dirtyLimit,
      oldestDirtyAgeMs: this.#names.oldestDirtyAgeMs(),
      queued: this.#names.queued,
      uploading: this.#uploading,
      pendingDeletes: this.#deletes.size,
      uploadedObjects: this.#uploadedObjects,
      uploadedBytes: this.#uploadedBytes,
      failedAttempts: this.#failedAttempts,
      ...(this.#lastError !== undefined && this.#failing.size > 0 ? { lastError: this.#lastError } : {})
    }
  }

  admit (bytes: number): void {
    const dirty = this.#names.dirtyBytes
    // With nothing dirty anything goes: one object larger than the limit must not wait for ever.
    if (dirty === 0 || dirty + bytes <= this.#o.dirtyLimit) return
    const retryAfter = retryAfterSeconds(dirty + bytes - this.#o.dirtyLimit, this.#rate.bytesPerSecond(), this.#outage !== undefined)
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
    if (this.#outage !== undefined) return Promise.reject(this.#outage.error)
    if (this.#closed) return Promise.reject(closedError())
    return this.#waiters.add(keyOf(container, name), etag)
  }

  flush (container?: string, prefix?: string): FlushHandle {
    const items = new Map<string, number>()
    for (const s of this.#names.values()) if (s.dirty && inFlushScope(s.key, container, prefix)) items.set(s.key, s.dirtySize)
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

  /** Stops taking work, aborts uploads in flight (they resume after a restart) and resolves when idle. */
  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#running = false
      this.#names.closed = true
      this.#deletes.closed = true
      if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
      if (this.#outage?.timer !== undefined) clearTimeout(this.#outage.timer)
      for (const t of this.#timers) clearTimeout(t)
      this.#timers.clear()
      for (const s of this.#names.values()) s.upload?.abort.abort()
      this.#waiters.rejectAll(closedError())
      for (const f of this.#flushes) f.abandon()
      this.#flushes.clear()
    }
    while (this.#ops.size > 0) await Promise.allSettled([...this.#ops])
  }

  // ---- store events -------------------------------------------------------

  #onEvent (ev: StoreEvent): void | Promise<void> {
    if (ev.type === 'delete') return this.#onDelete(ev.meta)
    if (ev.type !== 'commit' || this.#closed) return // an eviction changes nothing upstream
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
    const mayHold = meta.upstreamEtag !== undefined || upload !== undefined || this.#deletes.has(key)
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
        p = await this.#deletes.record(meta, upload !== undefined)
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
        this.#later(check, Math.min(1000, 5 * 2 ** tries++))
        return
      }
      if (head?.etag === meta.etag && head.dirty === true) this.#names.track(head)
      if (p !== undefined && p.gen === gen && this.#deletes.get(key) === p) {
        p.confirmed = true
        this.#deletes.ready(p)
      }
      this.#settle(key)
    }
    this.#later(check, 0)
  }

  // ---- scheduling ---------------------------------------------------------

  #schedulePump (): void {
    if (this.#pumpScheduled || !this.#running) return
    this.#pumpScheduled = true
    queueMicrotask(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  #pump (): void {
    while (this.#running && this.#active < this.#o.concurrency) {
      // Paused after an outage: one probe at a time, when its backoff is over.
      const outage = this.#outage
      if (outage !== undefined && (!outage.probeDue || this.#active > 0)) break
      if (!this.#startDelete() && !this.#startUpload()) break
      if (outage !== undefined) outage.probeDue = false
    }
    this.#armRetryTimer()
  }

  #startUpload (): boolean {
    for (;;) {
      const s = this.#names.popReady()
      if (s === undefined) return false
      const entry = s.current
      if (entry === undefined) continue
      if (s.upload !== undefined || this.#deletes.get(s.key)?.busy === true) {
        s.where = 'held' // one operation per name: goes when the one in flight ends
        continue
      }
      if (s.marker && this.#names.markerBlocked(s)) {
        this.#names.park(s)
        continue
      }
      const meta = this.#o.store.head(s.container, s.name)
      if (meta?.etag !== entry.etag) {
        // Replaced or gone without our seeing it (a deleted container tells no watcher).
        this.#names.dropDirty(s)
        if (meta?.dirty === true) this.#names.track(meta)
        this.#settle(s.key)
        continue
      }
      this.#beginUpload(s, entry, meta)
      return true
    }
  }

  #beginUpload (s: NameState, entry: Entry, meta: ObjectMeta): void {
    this.#names.setCurrent(s, undefined)
    const up: Upload = { entry, abort: new AbortController(), deleted: false }
    s.upload = up
    this.#active++
    this.#uploading++
    const probe = this.#outage !== undefined
    const { store, upstream, layout } = this.#o
    this.#run(async () => {
      let result: UploadResult
      let clean: boolean
      try {
        result = await upstream.upload({
          ref: layout.toUpstream(s.container, s.name),
          source: { size: meta.size, open: (range) => store.openRead(meta, range) },
          content: meta.content,
          metadata: meta.metadata,
          version: meta.etag,
          signal: up.abort.signal
        })
        clean = await store.markClean(s.container, s.name, entry.etag, result.etag)
      } catch (err) {
        this.#uploadFailed(s, up, err, probe)
        return
      }
      this.#uploadDone(s, up, clean)
    })
  }

  #uploadDone (s: NameState, up: Upload, clean: boolean): void {
    s.upload = undefined
    this.#active--
    this.#uploading--
    this.#uploadedObjects++
    this.#uploadedBytes += up.entry.size
    this.#uploads.inc({ result: 'ok' })
    this.#uploadedBytesTotal.inc({}, up.entry.size)
    this.#rate.add(up.entry.size)
    this.#failing.delete(s.key)
    this.#upstreamBack()
    this.#waiters.resolve(s.key, (etag) => etag === up.entry.etag)
    if (s.current !== undefined) s.blockSeq = s.current.seq // the older version is upstream now
    else if (clean) this.#names.dropDirty(s)
    else if (s.dirty && !up.deleted) this.#resync(s)
    this.#afterUpload(s)
  }

  #uploadFailed (s: NameState, up: Upload, err: unknown, probe: boolean): void {
    s.upload = undefined
    this.#active--
    this.#uploading--
    if (!up.deleted && !this.#closed) {
      up.entry.failures++
      this.#failed(s.key, `${s.container}/${s.name}`, err, up.entry.failures)
      this.#uploads.inc({ result: 'failed' })
      this.#waiters.reject(s.key, up.entry.etag, err instanceof Error ? err : new CacheError('CC_ERR_INTERNAL', errText(err)))
      if (s.current === undefined && s.dirty) {
        this.#names.setCurrent(s, up.entry)
        // During an outage the probe schedule spaces the attempts; otherwise this version backs off.
        if (isCacheError(err, UNAVAILABLE)) this.#names.enqueue(s)
        else this.#names.enqueueRetry(s, Date.now() + retryDelayMs(up.entry.failures, this.#delay))
      }
      if (isCacheError(err, UNAVAILABLE)) this.#upstreamDown(err, probe)
    }
    this.#afterUpload(s)
  }

  /** After an upload of `s` ended: the name's next work, the markers of its directory, flushes. */
  #afterUpload (s: NameState): void {
    const p = this.#deletes.get(s.key)
    if (p !== undefined) this.#deletes.ready(p)
    this.#names.release(s)
    this.#names.reblock(s)
    this.#names.forgetIfIdle(s)
    this.#names.dirChanged(s)
    this.#settle(s.key)
    this.#schedulePump()
  }

  /**
   * Carries out the next ready delete record. While the store has a version of the name the
   * record waits (a dirty one: its upload replaces the blob, or its delete renews the record) or
   * is dropped (a clean one: the upstream holds that version). Without one: Delete Blob, with
   * If-Match when the upstream etag is known, then the record is removed.
   */
  #startDelete (): boolean {
    for (;;) {
      const p = this.#deletes.popReady()
      if (p === undefined) return false
      const { container, name } = p.rec
      if (this.#names.get(keyOf(container, name))?.upload !== undefined) continue // readied when that upload ends
      const head = this.#o.store.head(container, name)
      if (head === undefined) {
        this.#beginDelete(p)
        return true
      }
      if (head.dirty !== true) {
        this.#run(async () => {
          await this.#deletes.drop(p).catch((err) => this.#o.log.error({ err, container, name }, 'writeback: could not remove a delete record'))
          this.#settle(keyOf(container, name))
        })
      }
    }
  }

  #beginDelete (p: PendingDelete): void {
    p.busy = true
    this.#active++
    const { gen, rec } = p
    const key = keyOf(rec.container, rec.name)
    const probe = this.#outage !== undefined
    this.#run(async () => {
      try {
        await this.#o.upstream.delete(this.#o.layout.toUpstream(rec.container, rec.name), rec.ifMatch === undefined ? {} : { ifMatch: rec.ifMatch })
      } catch (err) {
        // A failed If-Match means the blob changed since: not ours to delete.
        if (!isCacheError(err, 'CC_ERR_CONDITION_NOT_MET')) {
          this.#deleteFailed(p, err, probe)
          return
        }
      }
      this.#deletesTotal.inc()
      this.#failing.delete('delete:' + key)
      this.#upstreamBack()
      try {
        await this.#deletes.finish(p, gen)
      } catch (err) {
        this.#o.log.error({ err, container: rec.container, name: rec.name }, 'writeback: could not remove a done delete record; retrying')
        this.#deletes.retryAt(p, Date.now() + retryDelayMs(1, this.#delay))
      }
      this.#active--
      this.#afterDelete(key)
    })
  }

  #deleteFailed (p: PendingDelete, err: unknown, probe: boolean): void {
    p.busy = false
    this.#active--
    p.failures++
    const key = keyOf(p.rec.container, p.rec.name)
    this.#failed('delete:' + key, `delete ${key}`, err, p.failures)
    if (isCacheError(err, UNAVAILABLE)) {
      this.#deletes.ready(p)
      this.#upstreamDown(err, probe)
    } else {
      this.#deletes.retryAt(p, Date.now() + retryDelayMs(p.failures, this.#delay))
    }
    this.#afterDelete(key)
  }

  #afterDelete (key: string): void {
    const s = this.#names.get(key)
    if (s !== undefined) this.#names.release(s)
    this.#settle(key)
    this.#schedulePump()
  }

  // ---- failures and outages -----------------------------------------------

  #failed (id: string, what: string, err: unknown, failures: number): void {
    this.#failedAttempts++
    this.#lastError = `${what}: ${errText(err)}`
    this.#failing.add(id)
    this.#o.log.warn({ what, failures, err: errText(err) }, 'writeback: attempt failed; retrying later')
  }

  #upstreamDown (err: unknown, probe: boolean): void {
    if (this.#closed) return
    let o = this.#outage
    if (o === undefined) {
      o = { error: err as Error, probes: 0, probeDue: false, timer: undefined }
      this.#outage = o
      this.#o.log.warn({ err: errText(err) }, 'writeback: upstream unavailable; pausing, probing with backoff')
      this.#waiters.rejectAll(o.error)
    } else if (!probe) {
      return // an operation started before the outage: the probe schedule stands
    }
    o.error = err as Error
    o.probes++
    o.probeDue = false
    if (o.timer !== undefined) clearTimeout(o.timer)
    const outage = o
    o.timer = setTimeout(() => {
      outage.timer = undefined
      outage.probeDue = true
      this.#pump()
    }, retryDelayMs(o.probes, this.#delay))
  }

  #upstreamBack (): void {
    const o = this.#outage
    if (o === undefined) return
    if (o.timer !== undefined) clearTimeout(o.timer)
    this.#outage = undefined
    this.#o.log.info({ probes: o.probes }, 'writeback: upstream reachable again; resuming')
    this.#schedulePump()
  }

  // ---- helpers ------------------------------------------------------------

  /** The store no longer names the version just uploaded: take what it has now. */
  #resync (s: NameState): void {
    const head = this.#o.store.head(s.container, s.name)
    this.#names.dropDirty(s)
    if (head?.dirty === true) this.#names.track(head)
  }

  /** Flushes count a name once nothing of it is dirty and no delete of it is pending. */
  #settle (key: string): void {
    if (this.#names.get(key)?.dirty === true || this.#deletes.has(key)) return
    this.#failing.delete(key)
    this.#failing.delete('delete:' + key)
    for (const f of this.#flushes) if (f.settle(key)) this.#flushes.delete(f)
  }

  #armRetryTimer (): void {
    if (this.#closed) return
    const a = this.#names.nextRetryAt()
    const b = this.#deletes.nextRetryAt()
    const next = a === undefined ? b : b === undefined ? a : Math.min(a, b)
    if (next === this.#retryTimerAt && this.#retryTimer !== undefined) return
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#retryTimerAt = next
    if (next === undefined) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#retryTimerAt = undefined
      const now = Date.now()
      this.#names.releaseDue(now)
      this.#deletes.releaseDue(now)
      this.#pump()
    }, Math.max(0, next - Date.now()))
  }

  #later (fn: () => void, ms: number): void {
    if (this.#closed) return
    const t = setTimeout(() => {
      this.#timers.delete(t)
      fn()
    }, ms)
    this.#timers.add(t)
  }

  #run (fn: () => Promise<void>): void {
    const p = fn().catch((err) => this.#o.log.error({ err }, 'writeback: unexpected error'))
    this.#ops.add(p)
    void p.finally(() => this.#ops.delete(p))
  }
}

function closedError (): CacheError {
  return new CacheError('CC_ERR_SERVER_BUSY', 'The writeback queue is closing; the object stays dirty and is uploaded after a restart.')
}
