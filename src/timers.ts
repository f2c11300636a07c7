/**
 * One-shot timers of a component that stops them all when it closes: none
 * fires after `close()`, and none starts after it.
 */
export class Timers {
  readonly #pending = new Set<NodeJS.Timeout>()
  #closed = false

  /** Runs `fn` in `ms` milliseconds, unless closed before. */
  later (fn: () => void, ms: number): void {
    if (this.#closed) return
    const t = setTimeout(() => {
      this.#pending.delete(t)
      fn()
    }, ms)
    this.#pending.add(t)
  }

  close (): void {
    this.#closed = true
    for (const t of this.#pending) clearTimeout(t)
    this.#pending.clear()
  }
}
