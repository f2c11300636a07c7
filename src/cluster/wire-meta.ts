/** An object version as it travels between peers (WireMeta) and back into the local model. */
import { partCount, type ObjectMeta } from '../core/types.js'
import type { ObjectWrite } from '../store/local-store.js'
import type { WireMeta } from './types.js'

/** What a peer needs of a local version: no extents or commit sequence (they are this node's). */
export function toWire (meta: ObjectMeta): WireMeta {
  return {
    container: meta.container,
    name: meta.name,
    size: meta.size,
    etag: meta.etag,
    createdMs: meta.createdMs,
    lastModifiedMs: meta.lastModifiedMs,
    content: meta.content,
    metadata: meta.metadata,
    checksums: meta.checksums,
    fromBlocks: meta.fromBlocks,
    // A copy is stored as one extent: the part count S3 reports travels explicitly.
    ...(meta.parts !== undefined || meta.fromBlocks ? { parts: partCount(meta) } : {}),
    ...(meta.dirty === true ? { dirty: true } : {}),
    ...(meta.upstreamEtag === undefined ? {} : { upstreamEtag: meta.upstreamEtag }),
    ...(meta.holders === undefined ? {} : { holders: meta.holders })
  }
}

/** A peer's version as this node serves it without holding it (`origin: 'peer'`). */
export function fromWire (w: WireMeta, peer: string): ObjectMeta {
  return {
    container: w.container,
    name: w.name,
    size: w.size,
    etag: w.etag,
    createdMs: w.createdMs,
    lastModifiedMs: w.lastModifiedMs,
    content: w.content,
    metadata: w.metadata,
    checksums: w.checksums,
    extents: [],
    fromBlocks: w.fromBlocks,
    ...(w.parts === undefined ? {} : { parts: w.parts }),
    ...(w.dirty === true ? { dirty: true } : {}),
    ...(w.upstreamEtag === undefined ? {} : { upstreamEtag: w.upstreamEtag }),
    ...(w.holders === undefined ? {} : { holders: w.holders }),
    origin: 'peer',
    peer
  }
}

/**
 * How a node stores its copy of a peer's version: same etag, times, headers and checksums.
 * `asCache`: a clean read cache copy (no holders, never dirty); otherwise a placed copy keeping
 * the version's tier state and holders.
 */
export function copyWrite (w: WireMeta, asCache = false): ObjectWrite {
  return {
    content: w.content,
    metadata: w.metadata,
    checksums: w.checksums,
    etag: w.etag,
    ...(w.parts === undefined ? {} : { parts: w.parts }),
    ...(asCache || w.holders === undefined ? {} : { holders: w.holders }),
    replica: {
      createdMs: w.createdMs,
      lastModifiedMs: w.lastModifiedMs,
      dirty: !asCache && w.dirty === true,
      ...(w.upstreamEtag === undefined ? {} : { upstreamEtag: w.upstreamEtag })
    }
  }
}
