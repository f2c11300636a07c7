/**
 * Incremental MD5 with the hashing done on worker threads.
 *
 * MD5 costs ~1.6 s of CPU per GiB; on the event loop of a 2-core machine that
 * halves PUT throughput (docs: CONVENTIONS.md, bench/checksum.ts). Here the
 * main thread only copies each chunk into a pooled batch buffer (1 MiB by
 * default) and posts full batches to a worker, which hashes them and hands
 * the buffers back for reuse. The buffers are SharedArrayBuffers, never
 * transferred: detaching an ArrayBuffer slows every typed-array loop in the
 * process for good (see md5-worker.ts). One hasher always talks to one worker,
 * over one port, so its chunks are hashed in order.
 *
 * Bounds: a hasher reports `pendingBytes` (copied but not yet hashed) and
 * `update()` returns false once that reaches its high-water mark, like
 * `Writable.write`; `await hasher.ready()` waits until it is below again.
 * Workers are few (default min(2, cores)), started on first use, and
 * `unref()`ed whenever they have no reply outstanding, so they never keep the
 * process alive; idle batch buffers are capped per pool.
 *
 * Small bodies never reach a worker: if `digest()` is called before the first
 * batch was sent and at most `inlineBelow` bytes were written, the digest is
 * computed inline (a worker round trip costs more than hashing a few KiB).
 */

import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { CacheError } from '../../errors.js'
import { MD5_WORKER_SOURCE, type FromMd5Worker, type ToMd5Worker } from './md5-worker.js'

export interface Md5Hasher {
  /**
   * Hash `chunk` (copied: the caller may reuse it as soon as this returns).
   * Returns false when `pendingBytes` has reached the high-water mark; the
   * caller should then `await ready()` before the next update.
   * Throws after `digest()`/`destroy()`, or if the worker failed.
   */
  update (chunk: Uint8Array): boolean
  /** Resolves when `pendingBytes` is below the high-water mark, or the hasher no longer accepts data. */
  ready (): Promise<void>
  /** Bytes copied but not yet hashed by the worker. */
  readonly pendingBytes: number
  /** The 16-byte MD5 of everything written. Call once; rejects if the worker failed or the hasher is destroyed. */
  digest (): Promise<Buffer>
  /** Abandon the hash (aborted upload): frees its buffers; a pending `digest()` rejects. Idempotent. */
  destroy (): void
}

export interface Md5PoolOptions {
  /** Worker threads at most. Default min(2, availableParallelism()). */
  workers?: number
  /** Batch buffer size. Default 1 MiB. */
  batchBytes?: number
  /** Idle batch buffers kept for reuse; beyond this they are left to GC. Default 16. */
  maxIdleBuffers?: number
  /** `digest()` hashes inline when no batch was sent and at most this many bytes were written. Default 16 KiB. */
  inlineBelow?: number
}

export interface Md5HasherOptions {
  /** `update()` returns false once this many bytes are pending. Default 4 × batchBytes; at least batchBytes. */
  highWaterMark?: number
}

const MiB = 1024 * 1024

/** One worker thread and the hashers assigned to it. */
class WorkerSlot {
  readonly worker: Worker
  readonly hashers = new Map<number, PooledMd5Hasher>()
  /** Messages posted that expect a reply; the worker is ref()ed while this is > 0. */
  #outstanding = 0
  dead = false

  constructor (private readonly pool: Md5WorkerPool) {
    this.worker = new Worker(MD5_WORKER_SOURCE, { eval: true, execArgv: [] })
    this.worker.unref()
    this.worker.on('message', (msg: FromMd5Worker) => this.#onMessage(msg))
    this.worker.on('error', (err) => this.fail(new CacheError('CC_ERR_INTERNAL', 'MD5 worker failed', { cause: err })))
    this.worker.on('exit', (code) => this.fail(new CacheError('CC_ERR_INTERNAL', `MD5 worker exited with code ${code}`)))
  }

  post (msg: ToMd5Worker, expectReply: boolean): void {
    this.worker.postMessage(msg)
    if (expectReply && this.#outstanding++ === 0) this.worker.ref()
  }

  #onMessage (msg: FromMd5Worker): void {
    // Late replies from a failed or terminating worker: its hashers are already
    // failed, and unref() here could let the process exit before terminate() settles.
    if (this.dead) return
    if (--this.#outstanding === 0) this.worker.unref()
    const hasher = this.hashers.get(msg.id)
    if (msg.op === 'buffer') {
      this.pool.releaseBuffer(msg.buf)
      hasher?.onHashed(msg.len)
    } else {
      this.hashers.delete(msg.id)
      hasher?.onDigest(Buffer.from(msg.digest.buffer, msg.digest.byteOffset, 16))
    }
  }

  /** The worker is gone (error, exit, pool closed): fail its hashers, leave the pool. */
  fail (err: CacheError): void {
    if (this.dead) return
    this.dead = true
    this.pool.removeSlot(this)
    const hashers = [...this.hashers.values()]
    this.hashers.clear()
    for (const hasher of hashers) hasher.onFailed(err)
  }
}

/**
 * A bounded set of MD5 worker threads with a pool of batch buffers. The
 * composition root may build its own; `createMd5Hasher()` uses a lazily
 * created process-wide one.
 */
export class Md5WorkerPool {
  readonly maxWorkers: number
  readonly batchBytes: number
  readonly maxIdleBuffers: number
  readonly inlineBelow: number
  #slots: WorkerSlot[] = []
  #idle: SharedArrayBuffer[] = []
  #nextId = 1
  #closed = false

  constructor (options: Md5PoolOptions = {}) {
    this.maxWorkers = Math.max(1, options.workers ?? Math.min(2, availableParallelism()))
    this.batchBytes = options.batchBytes ?? MiB
    this.maxIdleBuffers = options.maxIdleBuffers ?? 16
    this.inlineBelow = Math.min(options.inlineBelow ?? 16 * 1024, this.batchBytes)
    if (!Number.isInteger(this.batchBytes) || this.batchBytes < 4096) throw new RangeError('batchBytes must be an integer ≥ 4096')
  }

  createHasher (options: Md5HasherOptions = {}): Md5Hasher {
    if (this.#closed) throw new CacheError('CC_ERR_INTERNAL', 'MD5 worker pool is closed')
    // Below one batch, a partly filled batch (never sent until full) could hold
    // pendingBytes at the mark with nothing in flight to bring it down.
    const highWaterMark = Math.max(options.highWaterMark ?? 4 * this.batchBytes, this.batchBytes)
    return new PooledMd5Hasher(this, this.#nextId++, highWaterMark)
  }

  /** Worker threads currently running. */
  get workerCount (): number {
    return this.#slots.length
  }

  /** The running worker threads, for diagnostics and fault-injection tests. */
  get threads (): Worker[] {
    return this.#slots.map((slot) => slot.worker)
  }

  /** Terminates the workers; hashers still running fail with CC_ERR_INTERNAL. */
  async close (): Promise<void> {
    this.#closed = true
    const slots = [...this.#slots]
    for (const slot of slots) slot.fail(new CacheError('CC_ERR_INTERNAL', 'MD5 worker pool closed'))
    this.#idle = []
    // ref() so that the loop stays alive until the 'exit' that terminate() waits for.
    await Promise.all(slots.map(async (slot) => { slot.worker.ref(); await slot.worker.terminate() }))
  }

  /** @internal The least-loaded worker, starting one while below the limit and none is idle. */
  assignSlot (hasher: PooledMd5Hasher): WorkerSlot {
    if (this.#closed) throw new CacheError('CC_ERR_INTERNAL', 'MD5 worker pool is closed')
    let best: WorkerSlot | undefined
    for (const slot of this.#slots) {
      if (best === undefined || slot.hashers.size < best.hashers.size) best = slot
    }
    if (best === undefined || (best.hashers.size > 0 && this.#slots.length < this.maxWorkers)) {
      best = new WorkerSlot(this)
      this.#slots.push(best)
    }
    best.hashers.set(hasher.id, hasher)
    return best
  }

  /** @internal */
  removeSlot (slot: WorkerSlot): void {
    const i = this.#slots.indexOf(slot)
    if (i !== -1) this.#slots.splice(i, 1)
  }

  /** @internal */
  acquireBuffer (): SharedArrayBuffer {
    return this.#idle.pop() ?? new SharedArrayBuffer(this.batchBytes)
  }

  /** @internal */
  releaseBuffer (buf: SharedArrayBuffer): void {
    if (!this.#closed && buf.byteLength === this.batchBytes && this.#idle.length < this.maxIdleBuffers) this.#idle.push(buf)
  }
}

type State = 'open' | 'digesting' | 'done' | 'destroyed' | 'failed'

class PooledMd5Hasher implements Md5Hasher {
  #slot: WorkerSlot | undefined
  #batch: Uint8Array<SharedArrayBuffer> | undefined
  #batchLen = 0
  #inFlight = 0
  #state: State = 'open'
  #error: CacheError | undefined
  #waiters: Array<() => void> = []
  #resolveDigest: ((digest: Buffer) => void) | undefined
  #rejectDigest: ((err: unknown) => void) | undefined

  constructor (private readonly pool: Md5WorkerPool, readonly id: number, private readonly highWaterMark: number) {}

  get pendingBytes (): number {
    return this.#inFlight + this.#batchLen
  }

  update (chunk: Uint8Array): boolean {
    if (this.#state !== 'open') throw this.#error ?? new CacheError('CC_ERR_INTERNAL', `MD5 hasher used after ${this.#state === 'destroyed' ? 'destroy' : 'digest'}`)
    const size = this.pool.batchBytes
    let offset = 0
    while (offset < chunk.length) {
      this.#batch ??= new Uint8Array(this.pool.acquireBuffer())
      const n = Math.min(chunk.length - offset, size - this.#batchLen)
      this.#batch.set(offset === 0 && n === chunk.length ? chunk : chunk.subarray(offset, offset + n), this.#batchLen)
      this.#batchLen += n
      offset += n
      if (this.#batchLen === size) this.#send()
    }
    return this.pendingBytes < this.highWaterMark
  }

  async ready (): Promise<void> {
    if (this.#state !== 'open' || this.pendingBytes < this.highWaterMark) return
    await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  async digest (): Promise<Buffer> {
    if (this.#state !== 'open') throw this.#error ?? new CacheError('CC_ERR_INTERNAL', 'MD5 hasher digest() called twice or after destroy()')
    if (this.#slot === undefined && this.#batchLen <= this.pool.inlineBelow) {
      const digest = createHash('md5').update(this.#batch?.subarray(0, this.#batchLen) ?? new Uint8Array(0)).digest()
      this.#releaseBatch()
      this.#state = 'done'
      return digest
    }
    const promise = new Promise<Buffer>((resolve, reject) => {
      this.#resolveDigest = resolve
      this.#rejectDigest = reject
    })
    if (this.#batchLen > 0) this.#send()
    this.#state = 'digesting'
    this.#wake()
    this.#slot!.post({ op: 'digest', id: this.id }, true)
    return await promise
  }

  destroy (): void {
    if (this.#state === 'done' || this.#state === 'destroyed') return
    const wasDigesting = this.#state === 'digesting'
    this.#state = 'destroyed'
    this.#releaseBatch()
    this.#inFlight = 0 // batches still at the worker return to the pool without us
    if (this.#slot !== undefined && !this.#slot.dead) {
      this.#slot.hashers.delete(this.id)
      if (!wasDigesting) this.#slot.post({ op: 'drop', id: this.id }, false)
    }
    this.#wake()
    this.#rejectDigest?.(new CacheError('CC_ERR_CLIENT_ABORTED', 'MD5 hasher destroyed before its digest was ready'))
    this.#clearDigest()
  }

  /** Post the current batch to the worker (assigning one on first use). */
  #send (): void {
    const batch = this.#batch!
    const len = this.#batchLen
    this.#batch = undefined
    this.#batchLen = 0
    this.#slot ??= this.pool.assignSlot(this)
    if (this.#slot.dead) {
      // The worker failed earlier and the failure is already recorded.
      this.pool.releaseBuffer(batch.buffer)
      return
    }
    this.#inFlight += len
    this.#slot.post({ op: 'update', id: this.id, buf: batch.buffer, len }, true)
  }

  #releaseBatch (): void {
    if (this.#batch !== undefined) this.pool.releaseBuffer(this.#batch.buffer)
    this.#batch = undefined
    this.#batchLen = 0
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }

  #clearDigest (): void {
    this.#resolveDigest = undefined
    this.#rejectDigest = undefined
  }

  /** @internal A batch of `len` bytes was hashed. */
  onHashed (len: number): void {
    this.#inFlight -= len
    if (this.pendingBytes < this.highWaterMark) this.#wake()
  }

  /** @internal */
  onDigest (digest: Buffer): void {
    if (this.#state !== 'digesting') return
    this.#state = 'done'
    this.#inFlight = 0
    this.#resolveDigest?.(digest)
    this.#clearDigest()
  }

  /** @internal The worker died. */
  onFailed (err: CacheError): void {
    if (this.#state !== 'open' && this.#state !== 'digesting') return
    this.#state = 'failed'
    this.#error = err
    this.#inFlight = 0
    this.#releaseBatch()
    this.#wake()
    this.#rejectDigest?.(err)
    this.#clearDigest()
  }
}

let sharedPool: Md5WorkerPool | undefined

/** The process-wide pool behind `createMd5Hasher()`, created on first use. */
export function sharedMd5Pool (): Md5WorkerPool {
  sharedPool ??= new Md5WorkerPool()
  return sharedPool
}

/** A new MD5 hasher on `pool` (default: the shared pool). */
export function createMd5Hasher (options: Md5HasherOptions & { pool?: Md5WorkerPool } = {}): Md5Hasher {
  return (options.pool ?? sharedMd5Pool()).createHasher(options)
}

/** MD5 on the calling thread, for bodies too small to be worth a worker round trip. */
export function md5Inline (data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest()
}

/**
 * The MD5 of a whole stream, hashed on the worker threads with backpressure. The hasher is freed
 * whatever happens; the stream is the caller's to destroy.
 */
export async function md5OfStream (stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const hasher = createMd5Hasher()
  try {
    for await (const chunk of stream) {
      if (!hasher.update(chunk)) await hasher.ready()
    }
    return await hasher.digest()
  } finally {
    hasher.destroy()
  }
}
