/**
 * What a home node knows of the objects it is home for beyond its own copies: where versions it
 * does not hold live (location records, e.g. with one replica), and which names were deleted
 * recently (so a returning node drops its stale copies). Both bounded (LRU); losing a record
 * costs a read one more peer request, never data.
 */
import { LRUCache } from 'lru-cache'
import { placementKey } from './hrw.js'
import type { CheckItem, CheckVerdict } from './types.js'

export interface LocationRecord {
  etag: string
  lastModifiedMs: number
  holders: string[]
}

/** How long a delete is remembered for returning nodes. */
export const TOMBSTONE_TTL_MS = 24 * 3600_000

export class Locations {
  readonly #records: LRUCache<string, LocationRecord>
  readonly #deleted: LRUCache<string, { lastModifiedMs: number }>

  constructor (opts: { maxRecords?: number, maxTombstones?: number } = {}) {
    this.#records = new LRUCache({ max: opts.maxRecords ?? 1_000_000 })
    this.#deleted = new LRUCache({ max: opts.maxTombstones ?? 200_000, ttl: TOMBSTONE_TTL_MS })
  }

  get (container: string, name: string): LocationRecord | undefined {
    return this.#records.get(placementKey(container, name))
  }

  /** Records where a version lives, unless an equally new or newer one is recorded. Returns the record it replaced. */
  record (container: string, name: string, rec: LocationRecord): LocationRecord | undefined {
    const key = placementKey(container, name)
    const old = this.#records.get(key)
    if (old !== undefined && (old.lastModifiedMs > rec.lastModifiedMs || old.etag === rec.etag)) {
      if (old.etag === rec.etag) old.holders = [...new Set([...old.holders, ...rec.holders])]
      return undefined
    }
    this.#records.set(key, { ...rec, holders: [...rec.holders] })
    this.#deleted.delete(key)
    return old
  }

  forget (container: string, name: string): void {
    this.#records.delete(placementKey(container, name))
  }

  /** The name was deleted (its last version modified at `lastModifiedMs`). */
  deleted (container: string, name: string, lastModifiedMs: number): void {
    const key = placementKey(container, name)
    this.#records.delete(key)
    this.#deleted.set(key, { lastModifiedMs })
  }

  /**
   * Whether a returning node's copy is current, given the version this home holds itself (if
   * any): the same etag is current; a newer version (held or recorded) or a delete after it is
   * stale; anything else the home cannot tell.
   */
  verdict (item: CheckItem, held: { etag: string, lastModifiedMs: number } | undefined): CheckVerdict {
    const key = placementKey(item.container, item.name)
    for (const v of [held, this.#records.get(key)]) {
      if (v === undefined) continue
      if (v.etag === item.etag) return 'current'
      if (v.lastModifiedMs >= item.lastModifiedMs) return 'stale'
    }
    const gone = this.#deleted.get(key)
    if (gone !== undefined && gone.lastModifiedMs >= item.lastModifiedMs) return 'stale'
    return 'unknown'
  }
}
