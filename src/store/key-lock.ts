/**
 * Per-key mutual exclusion for the short critical sections that check a
 * precondition and commit. Data is written to temp files outside the lock;
 * only rename + metadata commit run under it.
 */
export class KeyLock {
  readonly #tails = new Map<string, Promise<void>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => { release = resolve })
    const tail = prev.then(() => mine)
    this.#tails.set(key, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
