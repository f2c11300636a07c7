/**
 * A sorted set of names with binary-search insert/delete and the listing walk
 * both protocols need: prefix, delimiter (common prefixes), an inclusive or
 * exclusive start, and a page size. Pure: no I/O.
 */

export interface ListQuery {
  prefix?: string
  delimiter?: string
  /** Start at this name (inclusive): an opaque marker handed out as `next`. */
  startAt?: string
  /** Start strictly after this name (S3 StartAfter). */
  startAfter?: string
  maxResults: number
}

export type ListEntry = { kind: 'object', name: string } | { kind: 'prefix', name: string }

export interface ListPage {
  entries: ListEntry[]
  /** Where the next page starts (inclusive), when the listing is truncated. */
  next?: string
}

/** The first name after every name that starts with `p` (a marker that is a common prefix skips all of it). */
export function afterPrefix (p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1)
}

export class SortedNames {
  readonly #names: string[] = []

  get size (): number {
    return this.#names.length
  }

  /** Index of the first name >= `name`. */
  lowerBound (name: string): number {
    const a = this.#names
    let lo = 0
    let hi = a.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((a[mid] as string) < name) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  add (name: string): void {
    const i = this.lowerBound(name)
    if (this.#names[i] !== name) this.#names.splice(i, 0, name)
  }

  delete (name: string): void {
    const i = this.lowerBound(name)
    if (this.#names[i] === name) this.#names.splice(i, 1)
  }

  * [Symbol.iterator] (): IterableIterator<string> {
    yield * this.#names
  }

  list (q: ListQuery): ListPage {
    const prefix = q.prefix ?? ''
    const delimiter = q.delimiter === '' ? undefined : q.delimiter
    const a = this.#names
    let start = prefix
    if (q.startAt !== undefined && q.startAt > start) start = q.startAt
    let i = this.lowerBound(start)
    if (q.startAfter !== undefined && q.startAfter >= start) {
      i = this.lowerBound(q.startAfter)
      if (a[i] === q.startAfter) i++
    }
    const entries: ListEntry[] = []
    while (i < a.length) {
      const name = a[i] as string
      if (!name.startsWith(prefix)) break
      if (entries.length >= q.maxResults) return { entries, next: name }
      if (delimiter !== undefined) {
        const d = name.indexOf(delimiter, prefix.length)
        if (d !== -1) {
          const common = name.slice(0, d + delimiter.length)
          entries.push({ kind: 'prefix', name: common })
          // Skip every name under this common prefix.
          i = this.#firstNotStartingWith(common, i + 1)
          continue
        }
      }
      entries.push({ kind: 'object', name })
      i++
    }
    return { entries }
  }

  #firstNotStartingWith (p: string, from: number): number {
    const a = this.#names
    let lo = from
    let hi = a.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((a[mid] as string).startsWith(p)) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
