/**
 * How an S3 multipart upload lives in the store: as staged blocks of the object's name, one
 * record block (the upload's content headers and metadata, as JSON) and one block per part
 * version. Everything else a part needs is in its block id, so a part costs one staged file:
 *
 *     byte  0      'M'
 *     1..12        upload id (12 bytes; its base64url is the UploadId clients see)
 *     13..14       part number, big-endian (0 = the upload's record)
 *     15..30       the part's MD5 (its ETag)
 *     31           the part's additional checksum algorithm (0 = none)
 *     32..63       the part's additional checksum, zero-padded
 *
 * 64 bytes: the longest id Azure allows, and all the same length, as Azure requires of one
 * blob's blocks — so these are valid Azure block ids too. Naming a part by its MD5 makes
 * CompleteMultipartUpload's (part number, ETag) pairs block ids: a pair that names no staged
 * block is InvalidPart.
 *
 * The upload id's first byte says which checksum the upload was created with and whether it
 * is a FULL_OBJECT or COMPOSITE one, so UploadPart knows it without reading the record.
 */
import { randomBytes } from 'node:crypto'
import { S3_CHECKSUM_LENGTH, type S3ChecksumAlgorithm } from '../../core/checksum/s3-checksums.js'

const MARK = 0x4d // 'M'
const ID_BYTES = 64
const UPLOAD_ID_BYTES = 12
const CHECKSUM_BYTES = 32

/** Part checksums an id can carry (SHA-512 and MD5 as additional checksums are not kept per part). */
const ALGORITHMS: ReadonlyArray<S3ChecksumAlgorithm | undefined> = [undefined, 'crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256']
const FULL_OBJECT_FLAG = 0x80

export type ChecksumType = 'FULL_OBJECT' | 'COMPOSITE'

export interface UploadChecksum {
  algorithm: S3ChecksumAlgorithm
  type: ChecksumType
}

export interface PartChecksum {
  algorithm: S3ChecksumAlgorithm
  value: Buffer
}

export interface ParsedBlockId {
  uploadId: string
  /** 0 for the upload's record. */
  part: number
  /** Part MD5, hex (absent for the record). */
  md5?: string
  checksum?: PartChecksum
}

/** True when an upload's parts can carry `algorithm` in their ids. */
export function isPartChecksumAlgorithm (algorithm: S3ChecksumAlgorithm): boolean {
  return ALGORITHMS.includes(algorithm)
}

/** A new upload id that records the upload's checksum algorithm and type. */
export function newUploadId (checksum: UploadChecksum | undefined): string {
  const bytes = randomBytes(UPLOAD_ID_BYTES)
  const code = checksum === undefined ? 0 : ALGORITHMS.indexOf(checksum.algorithm)
  bytes[0] = (code > 0 ? code : 0) | (checksum?.type === 'FULL_OBJECT' ? FULL_OBJECT_FLAG : 0)
  return bytes.toString('base64url')
}

/** The raw upload id, or undefined if `uploadId` is not one of ours. */
function uploadIdBytes (uploadId: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]{16}$/.test(uploadId)) return undefined
  const bytes = Buffer.from(uploadId, 'base64url')
  const code = (bytes[0] as number) & ~FULL_OBJECT_FLAG
  return code < ALGORITHMS.length ? bytes : undefined
}

export function isUploadId (uploadId: string): boolean {
  return uploadIdBytes(uploadId) !== undefined
}

/** The checksum an upload was created with, from its id. */
export function uploadChecksum (uploadId: string): UploadChecksum | undefined {
  const bytes = uploadIdBytes(uploadId)
  if (bytes === undefined) return undefined
  const algorithm = ALGORITHMS[(bytes[0] as number) & ~FULL_OBJECT_FLAG]
  if (algorithm === undefined) return undefined
  return { algorithm, type: ((bytes[0] as number) & FULL_OBJECT_FLAG) !== 0 ? 'FULL_OBJECT' : 'COMPOSITE' }
}

function encode (uploadId: string, part: number, md5: Buffer | undefined, checksum: PartChecksum | undefined): string {
  const raw = uploadIdBytes(uploadId)
  if (raw === undefined) throw new TypeError('not an upload id')
  const id = Buffer.alloc(ID_BYTES)
  id[0] = MARK
  raw.copy(id, 1)
  id.writeUInt16BE(part, 13)
  md5?.copy(id, 15)
  if (checksum !== undefined && isPartChecksumAlgorithm(checksum.algorithm) && checksum.value.length <= CHECKSUM_BYTES) {
    id[31] = ALGORITHMS.indexOf(checksum.algorithm)
    checksum.value.copy(id, 32)
  }
  return id.toString('base64')
}

/** The block id of an upload's record. */
export function recordBlockId (uploadId: string): string {
  return encode(uploadId, 0, undefined, undefined)
}

/** The block id of one part version: its number, MD5 and (if it fits) its additional checksum. */
export function partBlockId (uploadId: string, part: number, md5: Buffer, checksum: PartChecksum | undefined): string {
  return encode(uploadId, part, md5, checksum)
}

/** Parses a block id written by this module; undefined for any other block (e.g. an Azure client's). */
export function parseBlockId (blockId: string): ParsedBlockId | undefined {
  if (blockId.length !== 88) return undefined
  const id = Buffer.from(blockId, 'base64')
  if (id.length !== ID_BYTES || id[0] !== MARK) return undefined
  const uploadId = id.subarray(1, 13).toString('base64url')
  const part = id.readUInt16BE(13)
  if (part === 0) return { uploadId, part }
  const parsed: ParsedBlockId = { uploadId, part, md5: id.subarray(15, 31).toString('hex') }
  const algorithm = ALGORITHMS[id[31] as number]
  if (algorithm !== undefined) {
    parsed.checksum = { algorithm, value: Buffer.from(id.subarray(32, 32 + S3_CHECKSUM_LENGTH[algorithm])) }
  }
  return parsed
}
