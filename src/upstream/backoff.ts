/**
 * Timing helpers of the writeback queue: the retry delay of a failed upload
 * or delete, and the recent upload rate that a dirty-limit refusal turns into
 * a Retry-After.
 */

export interface RetryDelay {
  /** The first retry waits about this long. */
  base: number
  /** No retry waits longer. */
  max: number
}

export const DEFAULT_RETRY_DELAY: Readonly<RetryDelay> = { base: 1000, max: 60_000 }

/**
 * The wait before attempt `failures + 1`: exponential (base × 2^(failures-1), capped at max) with
 * "equal jitter" (a uniformly random point in its upper half), so retries of many objects spread
 * out while the wait still grows with every failure.
 */
export function retryDelayMs (failures: number, d: RetryDelay, random: () => number = Math.random): number {
  const ceiling = Math.min(d.max, d.base * 2 ** Math.max(0, failures - 1))
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}

/** Bytes per second uploaded over the last uploads (a small ring of completions). */
export class UploadRate {
  readonly #times: number[] = []
  readonly #bytes: number[] = []
  readonly #keep: number

  constructor (keep = 32) {
    this.#keep = keep
  }

  add (bytes: number, now = Date.now()): void {
    this.#times.push(now)
    this.#bytes.push(bytes)
    if (this.#times.length > this.#keep) {
      this.#times.shift()
      this.#bytes.shift()
    }
  }

  /** Undefined until two uploads finished at least 100 ms apart. */
  bytesPerSecond (): number | undefined {
    const first = this.#times[0]
    const last = this.#times[this.#times.length - 1]
    if (first === undefined || last === undefined || last - first < 100) return undefined
    let total = 0
    for (let i = 1; i < this.#bytes.length; i++) total += this.#bytes[i] as number
    return total / ((last - first) / 1000)
  }
}

/** Seconds a refused writer should wait: the time to upload the excess at the recent rate, 1 to 5 s. */
export function retryAfterSeconds (excessBytes: number, rate: number | undefined, upstreamDown: boolean): number {
  if (upstreamDown) return 5
  if (rate === undefined || rate <= 0) return 2
  return Math.max(1, Math.min(5, Math.ceil(excessBytes / rate)))
}
