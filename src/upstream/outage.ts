/**
 * The writeback's pause while the upstream is unavailable. The adapter has
 * already retried a failed request a few times when it reports
 * CC_ERR_UPSTREAM_UNAVAILABLE, so hammering it with the rest of the queue helps
 * nobody: after such a failure no new operation starts until a backoff is
 * over, then exactly one (the probe) with nothing else in flight. A failed
 * probe doubles the wait (with jitter, up to the maximum); any success ends the
 * outage and the queue runs at full concurrency again.
 */
import { retryDelayMs, type RetryDelay } from './backoff.js'

export class OutageGate {
  readonly #delay: RetryDelay
  readonly #onProbeDue: () => void
  #error: Error | undefined
  #probes = 0
  #probeDue = false
  #timer: NodeJS.Timeout | undefined

  /** `onProbeDue` is called when a probe may start. */
  constructor (delay: RetryDelay, onProbeDue: () => void) {
    this.#delay = delay
    this.#onProbeDue = onProbeDue
  }

  /** The error that started (or last prolonged) the outage; undefined while the upstream is fine. */
  get error (): Error | undefined {
    return this.#error
  }

  get probes (): number {
    return this.#probes
  }

  /** Whether a new operation may start now, with `active` operations in flight. */
  mayStart (active: number): boolean {
    return this.#error === undefined || (this.#probeDue && active === 0)
  }

  /** An operation started: during an outage it is the probe. Returns whether it is one. */
  started (): boolean {
    if (this.#error === undefined) return false
    this.#probeDue = false
    return true
  }

  /**
   * An operation failed with the upstream unavailable. `probe`: it started during the outage.
   * Returns true when this failure began the outage.
   */
  failed (err: Error, probe: boolean): boolean {
    const began = this.#error === undefined
    // An operation that started before the outage does not move the probe schedule.
    if (!began && !probe) return false
    this.#error = err
    this.#probes++
    this.#probeDue = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#probeDue = true
      this.#onProbeDue()
    }, retryDelayMs(this.#probes, this.#delay))
    return began
  }

  /** An operation started as the probe ended without reaching the upstream: the next one probes. */
  abandoned (probe: boolean): void {
    if (!probe || this.#error === undefined) return
    this.#probeDue = true
    this.#onProbeDue()
  }

  /** An operation succeeded: the outage is over. Returns true when there was one. */
  succeeded (): boolean {
    if (this.#error === undefined) return false
    this.close()
    this.#error = undefined
    this.#probes = 0
    return true
  }

  close (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#probeDue = false
  }
}
