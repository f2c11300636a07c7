/**
 * Listing with a cloud tier: a page of the cache's entries merged with a page of the upstream's,
 * and the paging markers that make the merge resumable. Pure: no I/O.
 */
import type { ListedEntry, StoreListPage } from '../store/local-store.js'
import { afterPrefix, type ListQuery } from '../store/sorted-names.js'
import type { UpstreamProps } from '../upstream/types.js'
import type { ObjectMeta } from './types.js'
import type { UpstreamListEntry } from './tier-port.js'

/** An upstream blob listed or looked up, as a version of the container that is not (yet) cached. */
export function upstreamMeta (container: string, name: string, props: UpstreamProps): ObjectMeta {
  return {
    container,
    name,
    size: props.size,
    etag: props.etag,
    createdMs: props.createdMs ?? props.lastModifiedMs,
    lastModifiedMs: props.lastModifiedMs,
    content: props.content,
    metadata: props.metadata,
    checksums: props.content.contentMd5 === undefined ? {} : { md5: props.content.contentMd5 },
    extents: [],
    fromBlocks: false,
    upstreamEtag: props.etag,
    origin: 'upstream'
  }
}

/**
 * One page of both: the cached entry wins over the upstream one of the same name (a dirty version
 * is newer), names with a pending upstream delete are left out, at most `maxResults` in name
 * order, and `next` just after the last name (or after everything under the last common prefix).
 */
export function mergePages (container: string, maxResults: number, local: StoreListPage, remote: { entries: UpstreamListEntry[], truncated: boolean },
  deletePending: (name: string) => boolean): StoreListPage {
  const merged = new Map<string, ListedEntry>()
  for (const e of local.entries) merged.set(e.kind === 'prefix' ? e.name : e.meta.name, e)
  for (const e of remote.entries) {
    if (merged.has(e.name)) continue
    if (e.kind === 'prefix') merged.set(e.name, e)
    else if (!deletePending(e.name)) merged.set(e.name, { kind: 'object', meta: upstreamMeta(container, e.name, e.props) })
  }
  const names = [...merged.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const entries = names.slice(0, maxResults).map((n) => merged.get(n) as ListedEntry)
  const more = names.length > maxResults || local.next !== undefined || remote.truncated
  if (!more || entries.length === 0) return { entries }
  const last = entries[entries.length - 1] as ListedEntry
  return { entries, next: last.kind === 'prefix' ? afterPrefix(last.name) : last.meta.name + '\u0000' }
}

/** The exclusive lower bound of a listing query (startAt is inclusive: `x\0` is "after x"). */
export function exclusiveStart (q: ListQuery): string | undefined {
  let bound = q.startAfter
  const at = q.startAt
  if (at !== undefined && at !== '') {
    // The largest name below `at`, near enough: `x\0` → `x`; otherwise the previous character then U+FFFF.
    const before = at.endsWith('\u0000') ? at.slice(0, -1) : at.slice(0, -1) + String.fromCharCode(at.charCodeAt(at.length - 1) - 1) + '\uffff'
    if (bound === undefined || before > bound) bound = before
  }
  return bound === '' ? undefined : bound
}

