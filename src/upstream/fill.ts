/**
 * One read-through fill: the bytes of one upstream blob version copied into a
 * sparse temp file of the local store, block by block (ranged Get Blob with
 * If-Match, bounded parallelism, each download streamed into positional writes
 * on one fd), then fdatasync and a commit as a clean version. Readers attached
 * to the fill (fill-reader.ts) stream their ranges from the same fd as the bytes land; the
 * blocks they need next are fetched first. A failed fill leaves nothing
 * behind; a full cache turns the readers into plain upstream reads.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { NodeMetrics } from '../admin/metrics.js'
import type { ByteRange, ObjectMeta } from '../core/types.js'
import { CacheError, isCacheError } from '../errors.js'
import type { Ingested, LocalStore } from '../store/local-store.js'
import { FillReader, toCacheError, type FillSource, type FillState } from './fill-reader.js'
import type { Upstream, UpstreamRef } from './types.js'

export type { FillState }

/** Bytes collected from a download before they are written (one writev). */
const WRITE_BATCH = 1024 * 1024
/** Attempts per block: a download cut short mid-body resumes where it stopped. */
const BLOCK_ATTEMPTS = 3

/** At most `limit` fills hold temp files and upstream connections at once; the others wait in order. */
export class FillSlots {
  readonly #limit: number
  #active = 0
  readonly #queue: Array<() => void> = []

  constructor (limit: number) {
    this.#limit = Math.max(1, limit)
  }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason if aborted first. */
  async acquire (signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) throw signal.reason
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        }
        const onAbort = (): void => {
          const i = this.#queue.indexOf(go)
          if (i >= 0) this.#queue.splice(i, 1)
          reject(signal.reason)
        }
        signal.addEventListener('abort', onAbort, { once: true })
        this.#queue.push(go)
      })
    } else {
      this.#active++
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#queue.shift()
      if (next !== undefined) next() // the slot passes on
      else this.#active--
    }
  }
}

export interface FillOptions {
  store: LocalStore
  upstream: Upstream
  ref: UpstreamRef
  /** The upstream version to copy: container, name, size, content, metadata, checksums, `upstreamEtag`. */
  meta: ObjectMeta
  blockSize: number
  concurrency: number
  slots: FillSlots
  metrics: NodeMetrics
  log: FastifyBaseLogger
  /** Refuses the commit when the name has an upstream delete pending (a fill must not resurrect it). */
  deletePending: (container: string, name: string) => boolean
  /** Called once the version is committed to the store. */
  onCommitted?: (meta: ObjectMeta) => void
}

const PENDING = 0
const RUNNING = 1
const DONE = 2

export class Fill implements FillSource {
  readonly meta: ObjectMeta
  readonly ref: UpstreamRef
  readonly etag: string
  /** Settles (never rejects) when the fill is committed, failed or handed its readers to the upstream. */
  readonly done: Promise<void>
  readonly #opts: FillOptions
  readonly #ctl = new AbortController()
  readonly #blocks: number
  readonly #blockState: Uint8Array
  /** Bytes written contiguously from the start of each block. */
  readonly #filled: Float64Array
  readonly #readers = new Set<FillReader>()
  #phase: FillState = 'waiting'
  #failure: CacheError | undefined
  #fh: FileHandle | undefined
  /** The fill itself and every attached reader hold the fd open. */
  #refs = 1
  #running = 0
  #cursor = 0
  #remaining: number
  #settle!: () => void

  constructor (opts: FillOptions) {
    this.#opts = opts
    this.meta = opts.meta
    this.ref = opts.ref
    this.etag = opts.meta.upstreamEtag ?? opts.meta.etag
    this.#blocks = Math.ceil(opts.meta.size / opts.blockSize)
    this.#blockState = new Uint8Array(this.#blocks)
    this.#filled = new Float64Array(this.#blocks)
    this.#remaining = this.#blocks
    this.done = new Promise((resolve) => { this.#settle = resolve })
  }

  get state (): FillState {
    return this.#phase
  }

  /** True while new readers can attach: the fill is waiting, filling or committing (its file still open). */
  get joinable (): boolean {
    return this.#phase === 'waiting' || this.#phase === 'filling' || this.#phase === 'committing'
  }

  /** Starts the fill (after waiting for a slot). */
  start (): void {
    this.#run().catch((err) => this.#opts.log.error({ err }, 'read-through fill crashed'))
  }

  /** Stops the fill; readers that still need bytes fail with `reason`. */
  abort (reason: CacheError): void {
    this.#ctl.abort(reason)
  }

  /** A stream of `range` (default: the whole object) fed by this fill. */
  reader (range?: ByteRange, signal?: AbortSignal): Readable {
    if (range !== undefined && (range.start < 0 || range.end >= this.meta.size || range.end < range.start - 1)) {
      throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: this.meta.size } })
    }
    return new FillReader(this, range?.start ?? 0, range?.end ?? this.meta.size - 1, this.#opts.metrics, signal)
  }

  // ---- what readers use ---------------------------------------------------

  /** @internal */ attach (r: FillReader): void {
    this.#readers.add(r)
    this.#refs++
  }

  /** @internal */ detach (r: FillReader): void {
    if (this.#readers.delete(r)) this.#unref()
  }

  /** @internal */ get failure (): CacheError | undefined {
    return this.#failure
  }

  /** @internal How many bytes from `pos` on are in the file now. */
  available (pos: number): number {
    if (this.#fh === undefined) return 0
    const bs = this.#opts.blockSize
    const i = Math.floor(pos / bs)
    return Math.max(0, i * bs + (this.#filled[i] ?? 0) - pos)
  }

  /** @internal */ async readAt (buf: Buffer, pos: number): Promise<number> {
    const fh = this.#fh
    if (fh === undefined) throw new CacheError('CC_ERR_INTERNAL', 'read-through fill has no file')
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
    return bytesRead
  }

  /** @internal A plain upstream read of a range (the cache has no room for the fill). */
  async openDirect (range: ByteRange, signal: AbortSignal): Promise<Readable> {
    return await this.#opts.upstream.download(this.ref, { range, ifMatch: this.etag, signal })
  }

  // ---- the fill -------------------------------------------------------------

  async #run (): Promise<void> {
    const { store, slots } = this.#opts
    const signal = this.#ctl.signal
    let release: (() => void) | undefined
    let data: Ingested | undefined
    try {
      release = await slots.acquire(signal)
      try {
        data = await store.allocate(this.meta.size)
      } catch (err) {
        if (isCacheError(err, 'CC_ERR_INSUFFICIENT_STORAGE')) {
          this.#phase = 'bypass'
          this.#wake()
          return
        }
        throw err
      }
      this.#fh = await open(data.path, 'r+')
      this.#phase = 'filling'
      if (this.#blocks > 0) {
        await new Promise<void>((resolve, reject) => {
          this.#pump(resolve, reject)
        })
      }
      if (signal.aborted) throw signal.reason
      await this.#fh.datasync()
      this.#phase = 'committing'
      const ingested = data
      data = undefined // the commit owns it now: committed, or discarded by the store
      const { meta, deletePending } = this.#opts
      const committed = await store.commitObject(meta.container, meta.name, ingested, {
        content: meta.content,
        metadata: meta.metadata,
        checksums: meta.checksums,
        etag: this.etag,
        fill: { upstreamEtag: this.etag }
      }, (current) => {
        if (current !== undefined) throw new CacheError('CC_ERR_CONDITION_NOT_MET', 'A local version of the object appeared during the read-through fill.')
        if (deletePending(meta.container, meta.name)) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND', 'The object is being deleted.')
      })
      this.#phase = 'committed'
      this.#opts.onCommitted?.(committed)
    } catch (err) {
      const failure = toCacheError(signal.aborted ? signal.reason : err)
      if (this.#phase === 'committing') {
        // Every byte was in: readers are unaffected, the cache just does not keep this copy.
        this.#opts.log.debug({ err: failure, container: this.meta.container, name: this.meta.name }, 'read-through fill not committed')
      } else {
        this.#opts.log.warn({ err: failure, container: this.meta.container, name: this.meta.name }, 'read-through fill failed')
      }
      this.#failure = failure
      this.#phase = 'failed'
      if (!this.#ctl.signal.aborted) this.#ctl.abort(failure)
      this.#wake()
      if (data !== undefined) await store.discard(data).catch((e) => this.#opts.log.error({ err: e }, 'discarding a fill failed'))
    } finally {
      release?.()
      this.#unref()
      this.#settle()
    }
  }

  /** Starts block downloads up to the concurrency; resolves when every block is in, rejects on the first failure. */
  #pump (resolve: () => void, reject: (err: unknown) => void): void {
    // After a failure, settle once the other downloads have stopped writing into the file.
    const settled = (): void => {
      if (this.#failure !== undefined) {
        if (this.#running === 0) reject(this.#failure)
      } else if (this.#remaining === 0) {
        resolve()
      } else {
        this.#pump(resolve, reject)
      }
    }
    while (this.#failure === undefined && this.#running < this.#opts.concurrency) {
      const i = this.#pick()
      if (i === undefined) break
      this.#blockState[i] = RUNNING
      this.#running++
      this.#fetchBlock(i).then(() => {
        this.#running--
        this.#blockState[i] = DONE
        this.#remaining--
        settled()
      }, (err: unknown) => {
        this.#running--
        if (this.#failure === undefined) {
          this.#failure = toCacheError(err)
          this.#ctl.abort(this.#failure)
        }
        settled()
      })
    }
  }

  /** The block a waiting reader needs soonest, else the first block not yet fetched. */
  #pick (): number | undefined {
    const bs = this.#opts.blockSize
    for (let d = 0; d < this.#opts.concurrency; d++) {
      for (const r of this.#readers) {
        if (r.position > r.end) continue
        const i = Math.floor(r.position / bs) + d
        if (i <= Math.floor(r.end / bs) && this.#blockState[i] === PENDING) return i
      }
    }
    while (this.#cursor < this.#blocks && this.#blockState[this.#cursor] !== PENDING) this.#cursor++
    return this.#cursor < this.#blocks ? this.#cursor : undefined
  }

  async #fetchBlock (i: number): Promise<void> {
    const bs = this.#opts.blockSize
    const start = i * bs
    const length = Math.min(bs, this.meta.size - start)
    const fh = this.#fh as FileHandle
    const signal = this.#ctl.signal
    for (let attempt = 1; ; attempt++) {
      const from = start + (this.#filled[i] as number)
      try {
        const body = await this.#opts.upstream.download(this.ref, { range: { start: from, end: start + length - 1 }, ifMatch: this.etag, signal })
        await writeStreamAt(body, fh, from, start + length - from, (n) => {
          this.#filled[i] = from - start + n
          this.#wake()
        })
        if (this.#filled[i] === length) return
        throw new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', `The upstream ended block ${i} after ${this.#filled[i] as number} of ${length} bytes.`)
      } catch (err) {
        if (signal.aborted) throw signal.reason
        const retry = attempt < BLOCK_ATTEMPTS && (!isCacheError(err) || err.code === 'CC_ERR_UPSTREAM_UNAVAILABLE')
        if (!retry) throw err
        this.#opts.log.debug({ err, block: i, attempt }, 'read-through block download resumes')
      }
    }
  }

  #wake (): void {
    for (const r of this.#readers) r.wake()
  }

  #unref (): void {
    if (--this.#refs > 0) return
    const fh = this.#fh
    this.#fh = undefined
    // Renamed into the store or unlinked: either way nobody reads this fd any more.
    fh?.close().catch(() => {})
  }
}

/**
 * Streams `body` into `fh` from `position` on, at most `max` bytes, calling `onWritten` with the
 * bytes written so far after each write. Chunks that arrive while a write is in flight go out
 * together in the next one (fewer thread-pool round trips); the body pauses while a batch's worth
 * waits, so memory stays at about one batch per download.
 */
function writeStreamAt (body: Readable, fh: FileHandle, position: number, max: number, onWritten: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let queued: Buffer[] = []
    let queuedBytes = 0
    let written = 0
    let writing = false
    let ended = false
    let failure: unknown
    const failed = (): boolean => failure !== undefined
    // Settles only once no write is in flight: a retry of the block must not race a late write.
    const fail = (err: unknown): void => {
      if (failed()) return
      failure = err ?? new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE')
      body.destroy()
      if (!writing) reject(failure)
    }
    const flush = (): void => {
      if (writing || failed()) return
      if (queuedBytes === 0) {
        if (ended) resolve()
        return
      }
      const batch = queued
      const n = queuedBytes
      queued = []
      queuedBytes = 0
      writing = true
      writeAll(fh, batch, n, position + written).then(() => {
        writing = false
        if (failed()) {
          reject(failure)
          return
        }
        written += n
        onWritten(written)
        if (!ended && body.isPaused()) body.resume()
        flush()
      }, (err: unknown) => {
        writing = false
        if (!failed()) fail(err)
        else reject(failure)
      })
    }
    body.on('data', (chunk: Buffer) => {
      if (failed()) return
      if (written + queuedBytes + chunk.length > max) {
        fail(new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', 'The upstream sent more bytes than the range asked for.'))
        return
      }
      queued.push(chunk)
      queuedBytes += chunk.length
      if (queuedBytes >= WRITE_BATCH) body.pause()
      flush()
    })
    body.once('end', () => {
      ended = true
      flush()
    })
    body.once('error', fail)
    body.once('close', () => { if (!ended) fail(new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', 'The upstream body closed before its end.')) })
  })
}

/** One writev, and plain writes for whatever a short writev left. */
async function writeAll (fh: FileHandle, bufs: Buffer[], total: number, position: number): Promise<void> {
  let done = (await fh.writev(bufs, position)).bytesWritten
  if (done === total) return
  const rest = Buffer.concat(bufs, total)
  while (done < total) done += (await fh.write(rest, done, total - done, position + done)).bytesWritten
}
