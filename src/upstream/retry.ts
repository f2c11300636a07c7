/**
 * Retries and the request-rate cap of the upstream tier.
 *
 * - `withRetry` runs one attempt after another with exponential backoff and
 *   full jitter (the n-th retry waits a uniformly random time in
 *   [0, min(cap, base × 2^(n-1))], as in "Exponential Backoff And Jitter",
 *   AWS Architecture Blog), retrying only what `isTransientError` calls
 *   transient: throttling and server errors (429, 500, 502, 503, 504, Azure
 *   `ServerBusy` / `OperationTimedOut` / `InternalError`) and network errors.
 *   Other errors (4xx) are thrown as they are, at once. When the attempts are
 *   used up the last error becomes the `cause` of a
 *   `CC_ERR_UPSTREAM_UNAVAILABLE`; an aborted signal stops at once with
 *   `CC_ERR_CLIENT_ABORTED`, also while waiting between attempts.
 * - `TokenBucket` caps requests per second: `take()` waits (FIFO) for a
 *   token, it never fails unless its signal aborts.
 *
 * Nothing here knows the Azure SDK: errors are read by shape
 * (`statusCode`, `code`, `details.errorCode`, `message`).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CacheError } from '../errors.js'

export interface RetryOptions {
  /** Attempts in all, the first included. Default 8. */
  attempts: number
  /** Backoff base: the first retry waits up to this long. Default 200 ms. */
  baseMs: number
  /** Longest wait between two attempts. Default 30 s. */
  capMs: number
}

export const DEFAULT_RETRY_OPTIONS: Readonly<RetryOptions> = { attempts: 8, baseMs: 200, capMs: 30_000 }

/** The most the `retry`-th retry (1-based) waits: min(cap, base × 2^(retry-1)). */
export function backoffCeilingMs (retry: number, opts: RetryOptions): number {
  return Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, retry - 1))
}

/** Full jitter: a uniformly random wait in [0, ceiling]. `random` returns [0, 1) like Math.random. */
export function backoffDelayMs (retry: number, opts: RetryOptions, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeilingMs(retry, opts))
}

const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504])
const TRANSIENT_AZURE_CODES = new Set(['ServerBusy', 'OperationTimedOut', 'InternalError'])
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'REQUEST_SEND_ERROR'
])
const NETWORK_MESSAGE = /socket hang up|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/

interface ErrorShape {
  name?: unknown
  statusCode?: unknown
  code?: unknown
  message?: unknown
  details?: { errorCode?: unknown }
  cause?: unknown
}

/** True for throttling, server-side and network failures, which are worth another attempt. */
export function isTransientError (err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || err instanceof CacheError) return false
  const e = err as ErrorShape
  if (e.name === 'AbortError') return false
  if (typeof e.statusCode === 'number') {
    if (TRANSIENT_STATUS.has(e.statusCode)) return true
    if (e.statusCode >= 400) return false
  }
  const azureCode = e.details?.errorCode ?? e.code
  if (typeof azureCode === 'string' && (TRANSIENT_AZURE_CODES.has(azureCode) || NETWORK_CODES.has(azureCode))) return true
  if (typeof e.message === 'string' && NETWORK_MESSAGE.test(e.message)) return true
  return depth < 2 && e.cause !== undefined && isTransientError(e.cause, depth + 1)
}

export interface RetryRun extends RetryOptions {
  /** Stops the attempts and the waits between them. */
  signal?: AbortSignal
  /** Called before each wait: `retry` is 1 for the first retry. */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void
  /** Names what failed in the CC_ERR_UPSTREAM_UNAVAILABLE message. */
  operation: string
  random?: () => number
}

function isAborted (signal: AbortSignal | undefined): signal is AbortSignal {
  return signal?.aborted === true
}

function aborted (signal: AbortSignal, operation: string): CacheError {
  return new CacheError('CC_ERR_CLIENT_ABORTED', `${operation} was cancelled`, { cause: signal.reason })
}

/**
 * Runs `attempt` until it succeeds, fails with an error that is not transient (thrown as it is),
 * or the attempts are used up (CC_ERR_UPSTREAM_UNAVAILABLE with the last error as its cause).
 */
export async function withRetry<T> (attempt: (n: number) => Promise<T>, run: RetryRun): Promise<T> {
  const attempts = Math.max(1, Math.floor(run.attempts))
  for (let n = 1; ; n++) {
    if (isAborted(run.signal)) throw aborted(run.signal, run.operation)
    try {
      return await attempt(n)
    } catch (err) {
      // The attempt may have failed because of the abort: report the abort, not its symptom.
      if (isAborted(run.signal)) throw aborted(run.signal, run.operation)
      if (!isTransientError(err)) throw err
      if (n >= attempts) {
        throw new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', `${run.operation} failed after ${attempts} attempts: ${describe(err)}`, { cause: err })
      }
      const delayMs = backoffDelayMs(n, run, run.random)
      run.onRetry?.(err, n, delayMs)
      try {
        await sleep(delayMs, undefined, run.signal === undefined ? undefined : { signal: run.signal })
      } catch {
        throw aborted(run.signal!, run.operation)
      }
    }
  }
}

/** A short description of an upstream failure for messages and logs (status, code, message; no URL). */
export function describe (err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err)
  const e = err as ErrorShape
  const parts: string[] = []
  if (typeof e.statusCode === 'number') parts.push(String(e.statusCode))
  const code = e.details?.errorCode ?? e.code
  if (typeof code === 'string') parts.push(code)
  if (typeof e.message === 'string' && e.message !== '') parts.push(e.message.split('\n')[0]!.slice(0, 200))
  return parts.join(' ')
}

/** The part of an AbortSignal the bucket uses (the Azure SDK hands its own `AbortSignalLike`). */
export interface SignalLike {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener (type: 'abort', listener: () => void): void
  removeEventListener (type: 'abort', listener: () => void): void
}

interface Waiter {
  resolve: () => void
  reject: (err: unknown) => void
  signal?: SignalLike
  onAbort?: () => void
}

/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up (default one second's worth).
 * `take()` resolves when a token is had, in call order. A rate of 0 or less means no cap.
 */
export class TokenBucket {
  readonly rate: number
  readonly burst: number
  readonly #now: () => number
  #tokens: number
  #last: number
  #waiters: Waiter[] = []
  #timer: NodeJS.Timeout | undefined

  constructor (rate: number, burst = Math.max(1, rate), now: () => number = () => performance.now()) {
    this.rate = rate
    this.burst = Math.max(1, burst)
    this.#now = now
    this.#tokens = this.burst
    this.#last = now()
  }

  /** Waits for a token; rejects (CC_ERR_CLIENT_ABORTED) only when `signal` aborts first. */
  async take (signal?: SignalLike): Promise<void> {
    if (this.rate <= 0) return
    if (signal?.aborted === true) throw new CacheError('CC_ERR_CLIENT_ABORTED', 'upstream request cancelled', { cause: signal.reason })
    this.#refill()
    if (this.#waiters.length === 0 && this.#tokens >= 1) {
      this.#tokens -= 1
      return
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject }
      if (signal !== undefined) {
        waiter.signal = signal
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter)
          if (i !== -1) this.#waiters.splice(i, 1)
          reject(new CacheError('CC_ERR_CLIENT_ABORTED', 'upstream request cancelled', { cause: signal.reason }))
        }
        signal.addEventListener('abort', waiter.onAbort)
      }
      this.#waiters.push(waiter)
      this.#serve()
    })
  }

  /** Requests waiting for a token. */
  get waiting (): number {
    return this.#waiters.length
  }

  #refill (): void {
    const now = this.#now()
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000)
    this.#last = now
  }

  #serve (): void {
    if (this.#timer !== undefined) return
    this.#refill()
    while (this.#waiters.length > 0 && this.#tokens >= 1) {
      this.#tokens -= 1
      const waiter = this.#waiters.shift()!
      if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort)
      waiter.resolve()
    }
    if (this.#waiters.length === 0) return
    const waitMs = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.rate))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#serve()
    }, waitMs)
  }
}
