/**
 * Listing across the cluster: the pages the live nodes answered for one query merged into one.
 * Each node is asked for `maxResults` entries after the same start, so the first `maxResults`
 * names of the union are exactly the first of the whole cluster (a node with more entries before
 * the last of them would have returned them). Pure: no I/O.
 */
import type { ListedEntry, StoreListPage } from '../store/local-store.js'
import { afterPrefix } from '../store/sorted-names.js'

/** A name several nodes list (copies) shows once, the most recently modified version winning. */
export function mergeNodePages (maxResults: number, pages: readonly StoreListPage[]): StoreListPage {
  const merged = new Map<string, ListedEntry>()
  let truncated = false
  for (const page of pages) {
    if (page.next !== undefined) truncated = true
    for (const e of page.entries) {
      const name = e.kind === 'prefix' ? e.name : e.meta.name
      const seen = merged.get(name)
      if (seen === undefined || (seen.kind === 'object' && e.kind === 'object' && e.meta.lastModifiedMs > seen.meta.lastModifiedMs)) merged.set(name, e)
    }
  }
  const names = [...merged.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const entries = names.slice(0, maxResults).map((n) => merged.get(n) as ListedEntry)
  if (!(truncated || names.length > maxResults) || entries.length === 0) return { entries }
  const last = entries[entries.length - 1] as ListedEntry
  return { entries, next: last.kind === 'prefix' ? afterPrefix(last.name) : last.meta.name + '\u0000' }
}
