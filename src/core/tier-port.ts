/**
 * The cloud tier as the object core sees it (writeback and writethrough modes): the writeback
 * queue, read-through, and the upstream's listing. Built by the composition root over `src/upstream/`.
 */
import type { ReadThrough, UpstreamProps, Writeback } from '../upstream/types.js'

/** The cloud tier as the object core sees it (writeback and writethrough modes). */
export interface ObjectTier {
  mode: 'writeback' | 'writethrough'
  writeback: Writeback
  readThrough: ReadThrough
  /** The upstream's logical entries of a container (see `listUpstream` in upstream/upstream-list.ts). */
  listUpstream: (container: string, query: UpstreamListRequest) => Promise<{ entries: UpstreamListEntry[], truncated: boolean }>
}

export interface UpstreamListRequest {
  prefix?: string
  delimiter?: string
  startAfter?: string
  maxResults: number
  signal?: AbortSignal
}

export type UpstreamListEntry = { kind: 'object', name: string, props: UpstreamProps } | { kind: 'prefix', name: string }
