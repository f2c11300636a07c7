/**
 * The writeback's worker: starts uploads and upstream deletes (at most
 * `concurrency` at once, one per name, uploads in `seq` order, markers held
 * back by their directory), books their outcomes, retries failures with
 * backoff and pauses while the upstream is unavailable (outage.ts). What is
 * dirty and what waits where lives in DirtyNames and PendingDeletes; the
 * queue (writeback.ts) feeds them from the store's events.
 */
import type { ObjectMeta } from '../core/types.js'
import { CacheError, isCacheError } from '../errors.js'
import type { LocalStore } from '../store/local-store.js'
import { retryDelayMs, UploadRate, type RetryDelay } from './backoff.js'
import { keyOf, type DirtyNames, type Entry, type NameState, type Upload } from './dirty-names.js'
import { OutageGate } from './outage.js'
import type { PendingDelete, PendingDeletes } from './pending-deletes.js'
import type { Layout, UploadGate, Upstream, UploadResult } from './types.js'
import type { WaiterSet } from './waiters.js'
import type { WritebackCounters } from './writeback-metrics.js'

export interface WorkerContext {
  store: LocalStore
  upstream: Upstream
  layout: Layout
  names: DirtyNames
  deletes: PendingDeletes
  waiters: WaiterSet
  concurrency: number
  delay: RetryDelay
  counters: WritebackCounters
  log: { info (obj: object, msg: string): void, warn (obj: object, msg: string): void, error (obj: object, msg: string): void }
  /** The name may have nothing dirty and no delete pending any more (flushes count it). */
  settle (key: string): void
  /** Cluster: which holder uploads (see UploadGate). */
  gate?: UploadGate
}

const UNAVAILABLE = 'CC_ERR_UPSTREAM_UNAVAILABLE'
export const errText = (err: unknown): string => err instanceof Error ? err.message : String(err)

export class WritebackWorker {
  readonly #c: WorkerContext
  readonly #ops = new Set<Promise<void>>()
  /** Names and records whose last attempt failed (`lastError` shows while there are any). */
  readonly #failing = new Set<string>()
  readonly #outage: OutageGate
  readonly rate = new UploadRate()
  #retryTimer: NodeJS.Timeout | undefined
  #retryTimerAt: number | undefined
  #running = false
  #closed = false
  #pumpScheduled = false
  #active = 0
  #uploading = 0
  #uploadedObjects = 0
  #uploadedBytes = 0
  #failedAttempts = 0
  #lastError: string | undefined

  constructor (ctx: WorkerContext) {
    this.#c = ctx
    this.#outage = new OutageGate(ctx.delay, () => this.#pump())
  }

  get uploading (): number { return this.#uploading }
  get uploadedObjects (): number { return this.#uploadedObjects }
  get uploadedBytes (): number { return this.#uploadedBytes }
  get failedAttempts (): number { return this.#failedAttempts }
  /** The last error, while the last attempt of some object or delete failed. */
  get lastError (): string | undefined { return this.#failing.size > 0 ? this.#lastError : undefined }
  /** The error the upstream is known to be unavailable with, if it is. */
  get outageError (): Error | undefined { return this.#outage.error }

  start (): void {
    this.#running = !this.#closed
    this.schedule()
  }

  /** Looks for work soon (after the current event). */
  schedule (): void {
    if (this.#pumpScheduled || !this.#running) return
    this.#pumpScheduled = true
    queueMicrotask(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  /** The name is settled: its earlier failures no longer count for `lastError`. */
  forget (key: string): void {
    this.#failing.delete(key)
    this.#failing.delete('delete:' + key)
  }

  /** Stops starting work, aborts uploads in flight and resolves when none is left. */
  async close (): Promise<void> {
    this.#closed = true
    this.#running = false
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#outage.close()
    for (const s of this.#c.names.values()) s.upload?.abort.abort()
    while (this.#ops.size > 0) await Promise.allSettled([...this.#ops])
  }

  #pump (): void {
    // After an outage began: one probe at a time, when its backoff is over (outage.ts).
    while (this.#running && this.#active < this.#c.concurrency && this.#outage.mayStart(this.#active)) {
      const p = this.#c.deletes.next((key) => this.#c.names.get(key)?.upload !== undefined, (c, n) => this.#c.store.head(c, n))
      if (p !== undefined) this.#beginDelete(p)
      else if (!this.#startUpload()) break
    }
    this.#armRetryTimer()
  }

  #startUpload (): boolean {
    for (;;) {
      const s = this.#c.names.popReady()
      if (s === undefined) return false
      const entry = s.current
      if (entry === undefined) continue
      if (s.upload !== undefined || this.#c.deletes.get(s.key)?.busy === true) {
        s.where = 'held' // one operation per name: goes when the one in flight ends
        continue
      }
      if (s.marker && this.#c.names.markerBlocked(s)) {
        this.#c.names.park(s)
        continue
      }
      const meta = this.#c.store.head(s.container, s.name)
      if (meta?.etag !== entry.etag) {
        // Replaced or gone without our seeing it (a deleted container tells no watcher).
        this.#c.names.dropDirty(s)
        if (meta?.dirty === true) this.#c.names.track(meta)
        this.#c.settle(s.key)
        continue
      }
      const wait = this.#c.gate?.waitMs(meta) ?? 0
      if (wait > 0) {
        // Another holder uploads it; looked at again later, or when the view changes (ownership moves).
        this.#c.names.defer(s, Date.now() + wait)
        continue
      }
      this.#beginUpload(s, entry, meta)
      return true
    }
  }

  #beginUpload (s: NameState, entry: Entry, meta: ObjectMeta): void {
    this.#c.names.setCurrent(s, undefined)
    const up: Upload = { entry, abort: new AbortController(), deleted: false, sending: false, deleteAfter: false }
    s.upload = up
    this.#active++
    this.#uploading++
    const probe = this.#outage.started()
    const { store, upstream, layout } = this.#c
    this.#run(async () => {
      let result: UploadResult
      let clean: boolean
      try {
        const gate = this.#c.gate
        if (gate !== undefined && s.marker && !(await gate.markerReady(meta, up.abort.signal))) {
          this.#deferred(s, up)
          this.#outage.abandoned(probe)
          return
        }
        up.sending = true
        result = await upstream.upload({
          ref: layout.toUpstream(s.container, s.name),
          source: { size: meta.size, open: (range) => store.openRead(meta, range) },
          content: meta.content,
          metadata: meta.metadata,
          version: meta.etag,
          signal: up.abort.signal
        })
        if (up.deleteAfter) await this.#deleteCommitted(meta, result.etag)
        clean = await store.markClean(s.container, s.name, entry.etag, result.etag, meta.checksums.md5 === undefined ? { md5: result.md5 } : undefined)
        if (clean) this.#c.gate?.uploaded(meta, result.etag, result.md5)
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
    this.#c.counters.uploads.inc({ result: 'ok' })
    this.#c.counters.uploadedBytes.inc({}, up.entry.size)
    this.rate.add(up.entry.size)
    this.#failing.delete(s.key)
    this.#upstreamBack()
    this.#c.waiters.resolve(s.key, (etag) => etag === up.entry.etag)
    if (s.current !== undefined) s.blockSeq = s.current.seq // the older version is upstream now
    else if (clean) this.#c.names.dropDirty(s)
    else if (s.dirty && !up.deleted) this.#resync(s)
    this.#afterUpload(s)
  }

  /**
   * The version `meta` was deleted through another node while its upload ran and the upload
   * committed: the blob it made goes too, If-Match `upstreamEtag` (a newer blob is not ours to
   * delete). Recorded durably; it runs once the upload has ended (`#afterUpload`).
   */
  async #deleteCommitted (meta: ObjectMeta, upstreamEtag: string): Promise<void> {
    try {
      const p = await this.#c.deletes.record({ ...meta, upstreamEtag }, false)
      p.confirmed = true
    } catch (err) {
      this.#c.log.error({ err, container: meta.container, name: meta.name }, 'writeback: could not record the delete of a blob committed after its name was deleted')
    }
  }

  /** A marker whose directory is still dirty on another node: not started, looked at again later. */
  #deferred (s: NameState, up: Upload): void {
    s.upload = undefined
    this.#active--
    this.#uploading--
    if (s.current === undefined && s.dirty && !up.deleted) {
      this.#c.names.setCurrent(s, up.entry)
      this.#c.names.enqueueRetry(s, Date.now() + (this.#c.gate?.recheckMs ?? 1000))
    }
    this.#afterUpload(s)
  }

  #uploadFailed (s: NameState, up: Upload, err: unknown, probe: boolean): void {
    s.upload = undefined
    this.#active--
    this.#uploading--
    if (!up.deleted && !this.#closed) {
      up.entry.failures++
      this.#failed(s.key, `${s.container}/${s.name}`, err, up.entry.failures)
      this.#c.counters.uploads.inc({ result: 'failed' })
      this.#c.waiters.reject(s.key, up.entry.etag, err instanceof Error ? err : new CacheError('CC_ERR_INTERNAL', errText(err)))
      if (s.current === undefined && s.dirty) {
        this.#c.names.setCurrent(s, up.entry)
        // During an outage the probe schedule spaces the attempts; otherwise this version backs off.
        if (isCacheError(err, UNAVAILABLE)) this.#c.names.enqueue(s)
        else this.#c.names.enqueueRetry(s, Date.now() + retryDelayMs(up.entry.failures, this.#c.delay))
      }
      if (isCacheError(err, UNAVAILABLE)) this.#upstreamDown(err, probe)
    }
    this.#afterUpload(s)
  }

  /** After an upload of `s` ended: the name's next work, the markers of its directory, flushes. */
  #afterUpload (s: NameState): void {
    const p = this.#c.deletes.get(s.key)
    if (p !== undefined) this.#c.deletes.ready(p)
    this.#c.names.release(s)
    this.#c.names.reblock(s)
    this.#c.names.forgetIfIdle(s)
    this.#c.names.dirChanged(s)
    this.#c.settle(s.key)
    this.schedule()
  }

  #beginDelete (p: PendingDelete): void {
    p.busy = true
    this.#active++
    const { gen, rec } = p
    const key = keyOf(rec.container, rec.name)
    const probe = this.#outage.started()
    this.#run(async () => {
      try {
        await this.#c.upstream.delete(this.#c.layout.toUpstream(rec.container, rec.name), rec.ifMatch === undefined ? {} : { ifMatch: rec.ifMatch })
      } catch (err) {
        // A failed If-Match means the blob changed since: not ours to delete.
        if (!isCacheError(err, 'CC_ERR_CONDITION_NOT_MET')) {
          this.#deleteFailed(p, err, probe)
          return
        }
      }
      this.#c.counters.deletes.inc()
      this.#failing.delete('delete:' + key)
      this.#upstreamBack()
      try {
        await this.#c.deletes.finish(p, gen)
      } catch (err) {
        this.#c.log.error({ err, container: rec.container, name: rec.name }, 'writeback: could not remove a done delete record; retrying')
        this.#c.deletes.retryAt(p, Date.now() + retryDelayMs(1, this.#c.delay))
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
      this.#c.deletes.ready(p)
      this.#upstreamDown(err, probe)
    } else {
      this.#c.deletes.retryAt(p, Date.now() + retryDelayMs(p.failures, this.#c.delay))
    }
    this.#afterDelete(key)
  }

  #afterDelete (key: string): void {
    const s = this.#c.names.get(key)
    if (s !== undefined) this.#c.names.release(s)
    this.#c.settle(key)
    this.schedule()
  }

  // ---- failures and outages ----------------------------------------------

  #failed (id: string, what: string, err: unknown, failures: number): void {
    this.#failedAttempts++
    this.#lastError = `${what}: ${errText(err)}`
    this.#failing.add(id)
    this.#c.log.warn({ what, failures, err: errText(err) }, 'writeback: attempt failed; retrying later')
  }

  #upstreamDown (err: unknown, probe: boolean): void {
    if (this.#closed) return
    if (this.#outage.failed(err as Error, probe)) {
      this.#c.log.warn({ err: errText(err) }, 'writeback: upstream unavailable; pausing, probing with backoff')
      this.#c.waiters.rejectAll(err as Error)
    }
  }

  #upstreamBack (): void {
    const probes = this.#outage.probes
    if (!this.#outage.succeeded()) return
    this.#c.log.info({ probes }, 'writeback: upstream reachable again; resuming')
    this.schedule()
  }

  // ---- helpers ------------------------------------------------------------

  /** The store no longer names the version just uploaded: take what it has now. */
  #resync (s: NameState): void {
    const head = this.#c.store.head(s.container, s.name)
    this.#c.names.dropDirty(s)
    if (head?.dirty === true) this.#c.names.track(head)
  }

  #armRetryTimer (): void {
    if (this.#closed) return
    const a = this.#c.names.nextRetryAt()
    const b = this.#c.deletes.nextRetryAt()
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
      this.#c.names.releaseDue(now)
      this.#c.deletes.releaseDue(now)
      this.#pump()
    }, Math.max(0, next - Date.now()))
  }

  #run (fn: () => Promise<void>): void {
    const p = fn().catch((err) => this.#c.log.error({ err }, 'writeback: unexpected error'))
    this.#ops.add(p)
    void p.finally(() => this.#ops.delete(p))
  }
}
