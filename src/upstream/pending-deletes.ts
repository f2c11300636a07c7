/**
 * Upstream deletes still to do, in memory (one per name) over their durable
 * records (tombstones.ts), with where each waits: `ready` to run, `retry`
 * until its backoff is over, or neither (waiting for the local delete to be
 * confirmed, for an upload of the name to end, or for a newer local version
 * to be uploaded or deleted).
 */
import type { ObjectMeta } from '../core/types.js'
import { keyOf } from './dirty-names.js'
import { MinHeap } from './min-heap.js'
import type { DeleteRecord, Tombstones } from './tombstones.js'

export interface PendingDelete {
  rec: DeleteRecord
  /** Bumped when a later delete of the name replaces the record. */
  gen: number
  /** The local delete is known to have happened (or to have been refused): the record may run. */
  confirmed: boolean
  /** The upstream delete is in flight. */
  busy: boolean
  where: 'ready' | 'retry' | undefined
  failures: number
}

export class PendingDeletes {
  readonly #byKey = new Map<string, PendingDelete>()
  readonly #ready = new Set<PendingDelete>()
  readonly #retry = new MinHeap<PendingDelete>()
  readonly #tombstones: Tombstones
  readonly #onReady: () => void
  readonly #onDropped: (key: string) => void
  readonly #onError: (err: unknown) => void
  readonly #pending = new Set<Promise<void>>()
  /** No more queueing (the writeback is closing); records are still written. */
  closed = false

  constructor (opts: {
    tombstones: Tombstones
    /** A record may run now. */
    onReady: () => void
    /** A record was dropped unrun (the upstream holds the local version). */
    onDropped: (key: string) => void
    /** A record file could not be removed in the background. */
    onError: (err: unknown) => void
  }) {
    this.#tombstones = opts.tombstones
    this.#onReady = opts.onReady
    this.#onDropped = opts.onDropped
    this.#onError = opts.onError
  }

  get size (): number { return this.#byKey.size }

  get (key: string): PendingDelete | undefined {
    return this.#byKey.get(key)
  }

  has (key: string): boolean {
    return this.#byKey.has(key)
  }

  keys (): IterableIterator<string> {
    return this.#byKey.keys()
  }

  /** Records read back at start: their local deletes happened (or never will). */
  load (recs: DeleteRecord[]): void {
    for (const rec of recs) {
      const key = keyOf(rec.container, rec.name)
      if (!this.#byKey.has(key)) this.#byKey.set(key, { rec, gen: 0, confirmed: true, busy: false, where: undefined, failures: 0 })
    }
  }

  /**
   * Records, durably, that the upstream may hold the name `meta` is deleting: with If-Match its
   * upstream etag (or the etag an earlier record of the name had), unconditional when an upload
   * was in flight (it may have committed a version whose etag nobody knows) or an earlier record
   * was. On a failure the earlier record is back as it was and the error is thrown.
   */
  async record (meta: ObjectMeta, uploadInFlight: boolean): Promise<PendingDelete> {
    const key = keyOf(meta.container, meta.name)
    let p = this.#byKey.get(key)
    const unconditional = uploadInFlight || (p !== undefined && p.rec.ifMatch === undefined)
    const ifMatch = unconditional ? undefined : meta.upstreamEtag ?? p?.rec.ifMatch
    const rec: DeleteRecord = {
      container: meta.container, name: meta.name, etag: meta.etag, ...(ifMatch === undefined ? {} : { ifMatch }), createdMs: Date.now()
    }
    const before = p === undefined ? undefined : { rec: p.rec, gen: p.gen, confirmed: p.confirmed }
    // In memory first, so that a removal of the earlier record racing this write keeps the file.
    if (p === undefined) {
      p = { rec, gen: 0, confirmed: false, busy: false, where: undefined, failures: 0 }
      this.#byKey.set(key, p)
    } else {
      this.unqueue(p)
      p.rec = rec
      p.gen++
      p.confirmed = false
    }
    try {
      await this.#tombstones.write(rec)
    } catch (err) {
      if (before === undefined) this.#byKey.delete(key)
      else {
        Object.assign(p, before)
        this.ready(p)
      }
      throw err
    }
    return p
  }

  /** Into the run queue, when it may run. */
  ready (p: PendingDelete): void {
    if (!p.confirmed || p.busy || p.where !== undefined || this.closed || this.#byKey.get(keyOf(p.rec.container, p.rec.name)) !== p) return
    p.where = 'ready'
    this.#ready.add(p)
    this.#onReady()
  }

  unqueue (p: PendingDelete): void {
    if (p.where === 'ready') this.#ready.delete(p)
    else if (p.where === 'retry') this.#retry.delete(p)
    p.where = undefined
  }

  /**
   * The next record to carry out now: Delete Blob (with If-Match when the upstream etag is known)
   * is due when the store has no version of the name and no upload of it is in flight. A record
   * of a name being uploaded waits for the upload to end (`ready` again then); of a name with a
   * dirty version it waits for that version (its upload replaces the blob, its delete renews the
   * record); of a name with a clean version it is dropped (the upstream holds that version).
   */
  next (uploading: (key: string) => boolean, head: (container: string, name: string) => ObjectMeta | undefined): PendingDelete | undefined {
    for (const p of this.#ready) {
      this.#ready.delete(p)
      p.where = undefined
      const { container, name } = p.rec
      if (uploading(keyOf(container, name))) continue
      const local = head(container, name)
      if (local === undefined) return p
      if (local.dirty !== true) {
        this.#background(this.#drop(p))
        this.#onDropped(keyOf(container, name))
      }
    }
    return undefined
  }

  /** Resolves when file work started in the background has ended. */
  async idle (): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }

  #background (work: Promise<void>): void {
    const p = work.catch((err) => this.#onError(err))
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
  }

  retryAt (p: PendingDelete, at: number): void {
    if (!p.confirmed || p.busy || this.closed) return
    this.unqueue(p)
    p.where = 'retry'
    this.#retry.set(p, at)
  }

  nextRetryAt (): number | undefined {
    return this.#retry.peekKey()
  }

  releaseDue (now: number): void {
    for (;;) {
      const p = this.#retry.peek()
      const at = this.#retry.peekKey()
      if (p === undefined || at === undefined || at > now) return
      this.#retry.delete(p)
      p.where = undefined
      this.ready(p)
    }
  }

  /** Drops a record that is not needed (the upstream holds the local version now). */
  async #drop (p: PendingDelete): Promise<void> {
    const key = keyOf(p.rec.container, p.rec.name)
    if (this.#byKey.get(key) !== p || p.busy) return
    this.unqueue(p)
    this.#byKey.delete(key)
    await this.#tombstones.remove(p.rec.container, p.rec.name, () => !this.#byKey.has(key))
  }

  /**
   * The upstream delete of generation `gen` is done: removes the record unless a later delete
   * replaced it meanwhile (which then runs again). True when the record is gone.
   */
  async finish (p: PendingDelete, gen: number): Promise<boolean> {
    const key = keyOf(p.rec.container, p.rec.name)
    const still = (): boolean => this.#byKey.get(key) === p && p.gen === gen
    try {
      await this.#tombstones.remove(p.rec.container, p.rec.name, still)
    } finally {
      p.busy = false
    }
    if (!still()) {
      this.ready(p)
      return false
    }
    this.#byKey.delete(key)
    return true
  }
}
