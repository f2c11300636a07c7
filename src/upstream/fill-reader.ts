/**
 * A reader of a read-through fill: one client's range, streamed from the fill's sparse file as
 * the fill's blocks land (each read waits for the bytes it needs, never past what is written), or
 * straight from the upstream when the cache had no room for the fill. Bounded memory: one read
 * buffer per reader, no bigger than what is left to send.
 */
import { Readable } from 'node:stream'
import type { NodeMetrics } from '../admin/metrics.js'
import type { ByteRange } from '../core/types.js'
import { CacheError, isCacheError, type ErrorCode } from '../errors.js'

/** Read buffer of a reader: big enough for throughput, no bigger than what is left to send (see CONVENTIONS). */
const READ_BUF = 1024 * 1024

export type FillState = 'waiting' | 'filling' | 'committing' | 'committed' | 'failed' | 'bypass'

/** What a reader needs of its fill (`Fill` in fill.ts). */
export interface FillSource {
  readonly state: FillState
  /** Why the fill failed, once it has. */
  readonly failure: CacheError | undefined
  /** The reader holds the fill's file open until `detach`. */
  attach (r: FillReader): void
  detach (r: FillReader): void
  /** How many bytes from `pos` on are in the file now. */
  available (pos: number): number
  readAt (buf: Buffer, pos: number): Promise<number>
  /** A plain upstream read of a range (the cache has no room for the fill). */
  openDirect (range: ByteRange, signal: AbortSignal): Promise<Readable>
}

/** One reader's range, streamed from the fill's file as it lands (or from the upstream on a bypass). */
export class FillReader extends Readable {
  position: number
  readonly end: number
  readonly #fill: FillSource
  readonly #metrics: NodeMetrics
  readonly #signal: AbortSignal | undefined
  readonly #onAbort = (): void => { this.destroy(new CacheError('CC_ERR_CLIENT_ABORTED')) }
  #wanted = false
  #busy = false
  /** A read of the fill's fd is in flight (the fd must stay open until it returns). */
  #reading = false
  #released = false
  #direct: Readable | undefined
  #directCtl: AbortController | undefined

  constructor (fill: FillSource, start: number, end: number, metrics: NodeMetrics, signal?: AbortSignal) {
    super({ highWaterMark: Math.max(1, Math.min(READ_BUF, end - start + 1)) })
    this.#fill = fill
    this.position = start
    this.end = end
    this.#metrics = metrics
    this.#signal = signal
    fill.attach(this)
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(this.#onAbort)
      else signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  override _read (): void {
    this.#wanted = true
    if (this.#direct !== undefined) this.#direct.resume()
    else this.#pull()
  }

  /** The fill made progress (or failed, or bypassed the cache). */
  wake (): void {
    if (this.#wanted && !this.#busy && this.#direct === undefined && !this.destroyed) this.#pull()
  }

  #pull (): void {
    if (this.#busy || this.destroyed) return
    if (this.position > this.end) {
      this.#done()
      return
    }
    const fill = this.#fill
    const n = Math.min(fill.available(this.position), this.end - this.position + 1, READ_BUF)
    if (n > 0) {
      this.#busy = true
      this.#reading = true
      const buf = Buffer.allocUnsafe(n)
      fill.readAt(buf, this.position).then((got) => {
        this.#busy = false
        this.#reading = false
        if (this.destroyed) return
        if (got !== n) throw new CacheError('CC_ERR_INTERNAL', `read-through file gave ${got} of ${n} bytes`)
        this.position += n
        this.#metrics.servedBytes.inc({ source: 'upstream' }, n)
        this.#wanted = false
        if (this.push(buf)) this.#wanted = true
        if (this.position > this.end) this.#done()
        else if (this.#wanted) this.#pull()
      }).catch((err: unknown) => {
        this.#busy = false
        this.#reading = false
        this.destroy(toCacheError(err, 'CC_ERR_INTERNAL'))
      }).finally(() => {
        if (this.destroyed) this.#release()
      })
      return
    }
    if (fill.failure !== undefined) this.destroy(fill.failure)
    else if (fill.state === 'bypass') this.#startDirect()
  }

  #done (): void {
    this.push(null)
    this.#release()
  }

  #startDirect (): void {
    this.#busy = true
    const ctl = new AbortController()
    this.#directCtl = ctl
    this.#fill.openDirect({ start: this.position, end: this.end }, ctl.signal).then((body) => {
      this.#busy = false
      if (this.destroyed) {
        body.destroy()
        return
      }
      this.#direct = body
      body.on('data', (chunk: Buffer) => {
        this.position += chunk.length
        this.#metrics.servedBytes.inc({ source: 'upstream' }, chunk.length)
        if (!this.push(chunk)) body.pause()
      })
      body.on('end', () => {
        if (this.position !== this.end + 1) this.destroy(new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', 'The upstream body ended early.'))
        else this.#done()
      })
      body.on('error', (err) => this.destroy(toCacheError(err)))
    }, (err: unknown) => {
      this.#busy = false
      this.destroy(toCacheError(err))
    })
  }

  /** Lets go of the fill (and its fd); idempotent. Never while a read of the fd is in flight. */
  #release (): void {
    if (this.#released || this.#reading) return
    this.#released = true
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#fill.detach(this)
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.#direct?.destroy()
    this.#directCtl?.abort()
    this.#release()
    cb(err)
  }
}

export function toCacheError (err: unknown, code: ErrorCode = 'CC_ERR_UPSTREAM_UNAVAILABLE'): CacheError {
  if (isCacheError(err)) return err
  return new CacheError(code, err instanceof Error ? err.message : String(err), { cause: err })
}
