/**
 * Writethrough waiters: callers waiting for one version of one name to be
 * clean upstream. Resolved when that version is uploaded, replaced or
 * deleted; rejected with the error of its next failed attempt.
 */
interface Waiter {
  etag: string
  resolve: () => void
  reject: (err: Error) => void
}

export class WaiterSet {
  readonly #byKey = new Map<string, Waiter[]>()

  add (key: string, etag: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const list = this.#byKey.get(key)
      const w = { etag, resolve, reject }
      if (list === undefined) this.#byKey.set(key, [w])
      else list.push(w)
    })
  }

  /** Resolves the waiters of `key` whose version `which` selects. */
  resolve (key: string, which: (etag: string) => boolean): void {
    this.#take(key, which, (w) => w.resolve())
  }

  /** Rejects the waiters of version `etag` of `key`. */
  reject (key: string, etag: string, err: Error): void {
    this.#take(key, (e) => e === etag, (w) => w.reject(err))
  }

  rejectAll (err: Error): void {
    const all = [...this.#byKey.values()].flat()
    this.#byKey.clear()
    for (const w of all) w.reject(err)
  }

  #take (key: string, which: (etag: string) => boolean, settle: (w: Waiter) => void): void {
    const list = this.#byKey.get(key)
    if (list === undefined) return
    const keep = list.filter((w) => !which(w.etag))
    if (keep.length === 0) this.#byKey.delete(key)
    else this.#byKey.set(key, keep)
    for (const w of list) if (which(w.etag)) settle(w)
  }
}
