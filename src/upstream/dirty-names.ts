/**
 * The writeback's view of dirty objects: one small record per name with a
 * dirty version or an upload in flight (etag, seq, size; never a meta), the
 * dirty byte and object counts, and where each queued version waits:
 *
 * - `ready`: in the upload order (by seq);
 * - `retry`: until its backoff is over;
 * - `deferred`: another node of the cluster uploads it; looked at again after a while, or at once
 *   when the cluster view changes (`releaseDeferred`);
 * - `marker`: a commit marker parked until its directory is clean (markers.ts);
 * - `held`: until the operation in flight on its name (an upload of an older
 *   version, an upstream delete) ends.
 */
import type { ObjectMeta } from '../core/types.js'
import { DirectoryOrder, directoryOf } from './markers.js'
import { MinHeap } from './min-heap.js'

/** One dirty version: all the queue keeps of it. */
export interface Entry {
  readonly etag: string
  readonly seq: number
  readonly size: number
  /** Failed attempts of this version. */
  failures: number
}

export interface Upload {
  readonly entry: Entry
  readonly abort: AbortController
  /** The name was deleted while this upload ran (it was aborted, or see `deleteAfter`; a delete record is pending). */
  deleted: boolean
  /** Its requests are going to the upstream (an abort from now on may come after Azure committed them). */
  sending: boolean
  /**
   * Cluster: a client deleted the name through another node after this upload began sending.
   * It is not aborted (Azure may commit a request whose sender gave up); once it commits, the
   * blob it made is deleted here, If-Match its etag (the deleting node's own delete may have
   * reached Azure first).
   */
  deleteAfter: boolean
}

export type Place = 'ready' | 'retry' | 'deferred' | 'marker' | 'held' | undefined

export interface NameState {
  readonly key: string
  readonly container: string
  readonly name: string
  /** `<container>/<directory of the name>`. */
  readonly dir: string
  readonly marker: boolean
  /** The store's current dirty version, while it is not uploading. */
  current: Entry | undefined
  where: Place
  upload: Upload | undefined
  /** The store's current version of the name is dirty. */
  dirty: boolean
  dirtySize: number
  dirtySinceMs: number
  /** Non-markers: the seq of the earliest version not yet upstream (what markers of the directory wait for). */
  blockSeq: number
}

export const keyOf = (container: string, name: string): string => container + '/' + name

export class DirtyNames {
  readonly #names = new Map<string, NameState>()
  readonly #ready = new MinHeap<NameState>()
  /** Versions waiting for a time: retries after a failure and deferred ones, by when they are due. */
  readonly #retry = new MinHeap<NameState>()
  readonly #deferred = new Set<NameState>()
  readonly #dirs = new DirectoryOrder<NameState>((s) => s.dir)
  readonly #isMarker: (name: string) => boolean
  /** Called when a version becomes ready to upload. */
  readonly #onReady: () => void
  #dirtyBytes = 0
  #dirtyObjects = 0
  #queued = 0
  /** No more queueing (the writeback is closing). */
  closed = false

  constructor (isMarker: (name: string) => boolean, onReady: () => void) {
    this.#isMarker = isMarker
    this.#onReady = onReady
  }

  get dirtyBytes (): number { return this.#dirtyBytes }
  get dirtyObjects (): number { return this.#dirtyObjects }
  /** Dirty versions waiting for an upload (markers included). */
  get queued (): number { return this.#queued }

  get (key: string): NameState | undefined {
    return this.#names.get(key)
  }

  values (): IterableIterator<NameState> {
    return this.#names.values()
  }

  /**
   * Queues the dirty version `meta` unless the name already has it or a newer one (in the queue
   * or uploading). Returns true when it was queued (replacing an older queued version).
   */
  track (meta: ObjectMeta): boolean {
    const seq = meta.seq ?? 0
    const key = keyOf(meta.container, meta.name)
    let s = this.#names.get(key)
    if (s === undefined) {
      s = {
        key, container: meta.container, name: meta.name, dir: meta.container + '/' + directoryOf(meta.name),
        marker: this.#isMarker(meta.name), current: undefined, where: undefined, upload: undefined,
        dirty: false, dirtySize: 0, dirtySinceMs: 0, blockSeq: seq
      }
      this.#names.set(key, s)
    }
    const latest = live(s)
    if (latest !== undefined && latest.seq >= seq) return false
    if (latest === undefined) s.blockSeq = seq
    if (!s.dirty) {
      s.dirty = true
      s.dirtySinceMs = meta.lastModifiedMs
      this.#dirtyObjects++
    }
    this.#dirtyBytes += meta.size - s.dirtySize
    s.dirtySize = meta.size
    this.unqueue(s)
    this.setCurrent(s, { etag: meta.etag, seq, size: meta.size, failures: 0 })
    this.reblock(s)
    this.enqueue(s)
    // A marker's newer version blocks from a later seq: an earlier marker it held may go now.
    if (s.marker) this.dirChanged(s)
    return true
  }

  /** Nothing of the name is dirty any more (uploaded, deleted, or replaced by a clean version). */
  dropDirty (s: NameState): void {
    this.unqueue(s)
    this.setCurrent(s, undefined)
    if (s.dirty) {
      s.dirty = false
      this.#dirtyObjects--
      this.#dirtyBytes -= s.dirtySize
      s.dirtySize = 0
    }
    this.reblock(s)
    this.forgetIfIdle(s)
    this.dirChanged(s)
  }

  setCurrent (s: NameState, entry: Entry | undefined): void {
    if (s.current === undefined && entry !== undefined) this.#queued++
    else if (s.current !== undefined && entry === undefined) this.#queued--
    s.current = entry
  }

  /** Into the upload order (from wherever it waited). */
  enqueue (s: NameState): void {
    if (s.current === undefined || this.closed) return
    this.unqueue(s)
    s.where = 'ready'
    this.#ready.set(s, s.current.seq)
    this.#onReady()
  }

  /** Waits until `at` (ms since the epoch), then goes into the upload order. */
  enqueueRetry (s: NameState, at: number): void {
    if (s.current === undefined || this.closed) return
    this.unqueue(s)
    s.where = 'retry'
    this.#retry.set(s, at)
  }

  /** Not this node's to upload now (cluster): looked at again at `at`, or when `releaseDeferred` is called. */
  defer (s: NameState, at: number): void {
    this.enqueueRetry(s, at)
    if (s.where !== 'retry') return
    s.where = 'deferred'
    this.#deferred.add(s)
  }

  /** The cluster view changed: every deferred version goes back into the upload order. */
  releaseDeferred (): void {
    for (const s of [...this.#deferred]) this.enqueue(s)
  }

  unqueue (s: NameState): void {
    if (s.where === 'ready') this.#ready.delete(s)
    else if (s.where === 'retry') this.#retry.delete(s)
    else if (s.where === 'deferred') {
      this.#retry.delete(s)
      this.#deferred.delete(s)
    }
    else if (s.where === 'marker') this.#dirs.unpark(s)
    s.where = undefined
  }

  /** The first version in upload order; the caller starts it, holds it or parks it. */
  popReady (): NameState | undefined {
    const s = this.#ready.pop()
    if (s !== undefined) s.where = undefined
    return s
  }

  /** Re-queues a version held while an operation on its name ran. */
  release (s: NameState): void {
    if (s.where === 'held') this.enqueue(s)
  }

  /** True when an object of the directory committed before `s`'s current version is not upstream yet. */
  markerBlocked (s: NameState): boolean {
    return s.current !== undefined && this.#dirs.blocked(s, s.current.seq)
  }

  park (s: NameState): void {
    if (s.current === undefined) return
    s.where = 'marker'
    this.#dirs.park(s, s.current.seq)
  }

  /**
   * Which seq the name holds its directory's markers back from, if any: a non-marker from its
   * earliest version not yet upstream, a marker from its latest (see markers.ts).
   */
  reblock (s: NameState): void {
    const l = live(s)
    if (l === undefined) this.#dirs.unblock(s)
    else this.#dirs.block(s, s.marker ? l.seq : s.blockSeq)
  }

  /** Markers of `s`'s directory that nothing holds back any more go into the upload order. */
  dirChanged (s: NameState): void {
    for (const m of this.#dirs.release(s.dir)) {
      m.where = undefined
      this.enqueue(m)
    }
  }

  forgetIfIdle (s: NameState): void {
    if (s.current === undefined && s.upload === undefined && !s.dirty && this.#names.get(s.key) === s) {
      this.unqueue(s)
      this.#dirs.unblock(s)
      this.#names.delete(s.key)
    }
  }

  /** When the next retry is due, if any waits. */
  nextRetryAt (): number | undefined {
    return this.#retry.peekKey()
  }

  /** Moves the retries due by `now` into the upload order. */
  releaseDue (now: number): void {
    for (;;) {
      const s = this.#retry.peek()
      const at = this.#retry.peekKey()
      if (s === undefined || at === undefined || at > now) return
      this.#retry.delete(s)
      this.#deferred.delete(s)
      s.where = undefined
      this.enqueue(s)
    }
  }

  oldestDirtyAgeMs (now = Date.now()): number {
    let oldest = Infinity
    for (const s of this.#names.values()) if (s.dirty && s.dirtySinceMs < oldest) oldest = s.dirtySinceMs
    return oldest === Infinity ? 0 : Math.max(0, now - oldest)
  }
}

/** The newest version of the name not known to be upstream: queued, or uploading (not deleted). */
function live (s: NameState): Entry | undefined {
  return s.current ?? (s.upload?.deleted === false ? s.upload.entry : undefined)
}
