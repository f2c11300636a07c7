import { CacheError } from '../errors.js'
import type { EvictionPolicy } from '../config/schema.js'

/**
 * Byte accounting for the store. Committed objects, staged blocks and
 * in-flight reservations all count toward the limit. A write reserves its
 * size before its first byte lands; one that does not fit is refused
 * (`reject`) or makes room by evicting least recently used objects (`lru`).
 * All methods are synchronous so that a check and its effect cannot
 * interleave with another request.
 */
export class Capacity {
  limit: number
  readonly policy: EvictionPolicy
  committed = 0
  staged = 0
  reserved = 0
  /** Committed object keys in recency order (first = least recently used) → size. */
  readonly #recency = new Map<string, number>()

  constructor (limit: number, policy: EvictionPolicy) {
    this.limit = limit
    this.policy = policy
  }

  get used (): number {
    return this.committed + this.staged + this.reserved
  }

  /** Records that an object now has `size` committed bytes (0 or undefined = gone). */
  setObject (key: string, oldSize: number | undefined, newSize: number | undefined): void {
    this.committed += (newSize ?? 0) - (oldSize ?? 0)
    this.#recency.delete(key)
    if (newSize !== undefined) this.#recency.set(key, newSize)
  }

  /** Marks an object as just used (reads keep hot objects in the cache). */
  touch (key: string): void {
    const size = this.#recency.get(key)
    if (size === undefined) return
    this.#recency.delete(key)
    this.#recency.set(key, size)
  }

  /**
   * Decides whether `bytes` more fit. Returns the keys to evict first (least
   * recently used, skipping `keep`); the caller removes them and then calls
   * `reserve`. Throws CC_ERR_INSUFFICIENT_STORAGE when the write cannot fit.
   */
  planRoom (bytes: number, keep?: (key: string) => boolean): string[] {
    let over = this.used + bytes - this.limit
    if (over <= 0) return []
    if (this.policy !== 'lru') throw this.#full(bytes)
    const victims: string[] = []
    for (const [key, size] of this.#recency) {
      if (over <= 0) break
      if (keep?.(key) === true) continue
      victims.push(key)
      over -= size
    }
    if (over > 0) throw this.#full(bytes)
    return victims
  }

  reserve (bytes: number): void {
    this.reserved += bytes
  }

  unreserve (bytes: number): void {
    this.reserved = Math.max(0, this.reserved - bytes)
  }

  #full (bytes: number): CacheError {
    return new CacheError('CC_ERR_INSUFFICIENT_STORAGE',
      `The cache cannot hold ${bytes} more bytes: ${this.used} of ${this.limit} bytes are in use and the eviction policy is '${this.policy}'.`,
      { detail: { used: this.used, limit: this.limit, requested: bytes } })
  }
}
