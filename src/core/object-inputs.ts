/**
 * What the object core's operations take and give: request shapes of writes and blocks, the
 * checksums a client sent and those computed over a body, a read's result, and the size limits.
 */
import type { Readable } from 'node:stream'
import type { S3ChecksumAlgorithm } from './checksum/s3-checksums.js'
import type { PartCrcs } from './checksum/append-checksums.js'
import type { BlockRef } from '../store/local-store.js'
import type { ByteRange, Conditions, ContentHeaders, ObjectChecksums, ObjectMeta, UserMetadata } from './types.js'

/** Largest single-shot object or block body accepted (Azure: 5000 MiB Put Blob, 4000 MiB block). */
export const MAX_OBJECT_PUT = 5000 * 1024 * 1024
export const MAX_BLOCK_PUT = 4000 * 1024 * 1024

/** Checksums a client sent with a body, to verify before commit. */
export interface ExpectedChecksums {
  md5?: Buffer
  crc64?: Buffer
  /**
   * An additional checksum (S3 `x-amz-checksum-*`). `value` is read once the body has ended,
   * so it may come from a trailer; undefined there means "compute, nothing to compare".
   */
  additional?: { algorithm: S3ChecksumAlgorithm, value: () => Buffer | undefined }
}

/** Checksums computed over a body. */
export interface BodyChecksums {
  md5?: Buffer
  crc64?: Buffer
  additional?: { algorithm: S3ChecksumAlgorithm, value: Buffer }
  /** CRCs computed to carry an object's whole-object CRCs across an append (the additional one included). */
  crcs?: PartCrcs
}

export interface PutObjectInput {
  container: string
  name: string
  body: Readable
  size: number
  content: ContentHeaders
  metadata: UserMetadata
  conditions?: Conditions
  expect?: ExpectedChecksums
  signal?: AbortSignal
  /**
   * The version tag is the hex MD5 of the content (S3 PutObject: clients compare it with their
   * own MD5). The MD5 is then computed before the commit whatever the size.
   */
  md5Etag?: boolean
  /**
   * Compute the Content-MD5 Azure stores (default true: inline for small bodies, after the
   * acknowledgement for large ones). False for S3 Express directory buckets, whose ETags are
   * opaque: no MD5 is computed unless the client sent one to check, and the object is recorded as
   * one part (as S3 Express counts it), which also keeps it out of the start-up MD5 scan.
   */
  contentMd5?: boolean
}

/** Content headers and metadata apply only to an object the append creates; an existing object keeps its own. */
export interface AppendObjectInput extends Omit<PutObjectInput, 'md5Etag' | 'contentMd5'> {
  /** Where the body goes: must be the object's current size; 0 on a missing object creates it. */
  offset: number
}

export interface StageBlockInput {
  container: string
  name: string
  /** The block id, or a function of the body's checksums (S3 parts are named by their MD5). */
  blockId: string | ((checksums: BodyChecksums) => string)
  body: Readable
  size: number
  expect?: ExpectedChecksums
  signal?: AbortSignal
  /** Compute the MD5 even when the client sent none to check (S3 part ETags). */
  md5?: boolean
}

export interface CommitBlocksInput {
  container: string
  name: string
  blocks: BlockRef[]
  content: ContentHeaders
  metadata: UserMetadata
  conditions?: Conditions
  /** Writer-supplied version tag (S3 multipart `<md5 of md5s>-N`); default: a new unique tag. */
  etag?: string
  checksums?: ObjectChecksums
}

export interface ReadResult {
  meta: ObjectMeta
  /** The resolved range, when the caller asked for one. */
  range?: ByteRange
  body: Readable
}
