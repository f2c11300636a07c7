/** Protocol-neutral object model shared by the front ends, the core and the store. */

/** Standard content headers stored with an object and returned on reads. */
export interface ContentHeaders {
  contentType?: string
  contentEncoding?: string
  contentLanguage?: string
  contentDisposition?: string
  cacheControl?: string
  /** Base64 MD5 of the whole object as a stored property (Azure `Content-MD5`). */
  contentMd5?: string
}

/** User metadata, keys in the case the client sent them. Lookups are case-insensitive. */
export type UserMetadata = Record<string, string>

/** One file of an object's data. Objects committed from blocks have one extent per block. */
export interface Extent {
  /** File name inside the object's directory. */
  file: string
  size: number
  /** Azure block id (base64 as the client sent it) when the extent is a committed block. */
  blockId?: string
}

/** Checksums received or computed for the whole object. Values are base64 unless noted. */
export interface ObjectChecksums {
  md5?: string
  crc64?: string
  /** The additional checksum a client sent with the object (S3 `x-amz-checksum-*`), as sent. */
  crc32?: string
  crc32c?: string
  crc64nvme?: string
  sha1?: string
  sha256?: string
  sha512?: string
  /** How `crc32`… cover a multipart object: the whole object, or a checksum of the parts' checksums. */
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE'
}

export interface ObjectMeta {
  container: string
  name: string
  size: number
  /** Opaque version tag without quotes; changes on every commit. */
  etag: string
  createdMs: number
  lastModifiedMs: number
  content: ContentHeaders
  metadata: UserMetadata
  checksums: ObjectChecksums
  extents: Extent[]
  /** True when committed through a block list (Put Block List / multipart). */
  fromBlocks: boolean
  /**
   * Parts toward S3's limit of 10,000 per object, when set by an append (S3 Express
   * `x-amz-write-offset-bytes`: the parts before it plus one), a copy (one) or a PutObject in a
   * directory bucket (one). Absent: one, or one per block for an object committed from blocks
   * (see `partCount`).
   */
  parts?: number
  /** Cloud tier (writeback modes): true while this version is not yet uploaded. Absent when clean or in cache-only mode. */
  dirty?: boolean
  /** Store-wide increasing commit sequence of a dirty version: the writeback uploads in this order. */
  seq?: number
  /**
   * The etag of the upstream blob holding this name, as last known: this version's own once it is
   * clean; an older version's while this one is dirty (what a delete must remove upstream).
   */
  upstreamEtag?: string
  /**
   * Cluster: the node ids holding a copy of this version, as this node knows them (the writer and
   * its replicas); absent on a node without peers. The writeback owner is the first live holder
   * of the object's rendezvous order.
   */
  holders?: string[]
  /**
   * Never stored: set on metas of objects this node does not hold, answered from the upstream
   * (read-through) or from a peer (`peer` names the node holding the copy).
   */
  origin?: 'upstream' | 'peer'
  peer?: string
}

/** S3's limit on the parts of one object: appends plus multipart parts (a copy starts again at one). */
export const MAX_PARTS = 10_000

/** How many parts an object has toward S3's per-object limit (appends and multipart parts). */
export function partCount (meta: ObjectMeta): number {
  return meta.parts ?? (meta.fromBlocks ? meta.extents.length : 1)
}

export interface ContainerMeta {
  name: string
  etag: string
  createdMs: number
  lastModifiedMs: number
  metadata: UserMetadata
}

/** A staged (uncommitted) block. */
export interface StagedBlock {
  blockId: string
  size: number
  file: string
  stagedMs: number
}

/** Preconditions on the current version of an object (or container). */
export interface Conditions {
  ifMatch?: string[]
  ifNoneMatch?: string[]
  ifModifiedSinceMs?: number
  ifUnmodifiedSinceMs?: number
}

/** An inclusive byte range already resolved against an object size. */
export interface ByteRange {
  start: number
  /** Inclusive. */
  end: number
}
