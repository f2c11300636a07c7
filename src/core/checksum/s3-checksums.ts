/**
 * The additional checksums of S3's flexible-checksum API (PutObject, UploadPart,
 * CompleteMultipartUpload, and the `Checksum*` of GetObject/HeadObject when asked with
 * `x-amz-checksum-mode: ENABLED`): incremental hashers, the value format, and which checksum a
 * request carries.
 *
 * Value format: base64 of the checksum's big-endian bytes for the CRCs (CRC32 of "123456789"
 * is 0xCBF43926 → `y/Q5Jg==`, CRC32C 0xE3069283 → `4waSgw==`, CRC64NVME 0xAE8B14860A799888 →
 * `rosUhgp5mIg=`), base64 of the digest for SHA-1/SHA-256/SHA-512/MD5 — exactly what
 * `@aws-sdk/client-s3` and botocore send, so `digest().toString('base64')` is the header value.
 * S3 decodes values strictly: wrong length, characters outside the alphabet and non-zero pad
 * bits (`y/Q5Jh==`) are all "Value for x-amz-checksum-crc32 header is invalid."
 *
 * Speed (per GiB on this class of machine, CONVENTIONS.md): CRC32 via `zlib.crc32` ~0.2 s,
 * CRC32C via `@node-rs/crc32` ~0.15 s, CRC64NVME via crc64.ts ~1 s, SHA-256 ~0.74 s, MD5 ~1.6 s.
 * These all run on the calling thread; for Content-MD5 on large bodies use md5.ts, which hashes
 * on worker threads.
 *
 * This module knows S3's header names because the request's checksum has to be found before
 * the body is read; the errors it raises are protocol-neutral (CC_ERR_INVALID_INPUT carrying
 * S3's message, which the S3 front end renders as 400 InvalidRequest).
 */
import { createHash, type Hash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import * as zlib from 'node:zlib'
import { crc32 as crc32Native, crc32c } from '@node-rs/crc32'
import { CacheError } from '../../errors.js'
import { Crc64 } from './crc64.js'

export type S3ChecksumAlgorithm = 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256' | 'sha512' | 'md5'

/** Every algorithm this module computes. */
export const S3_CHECKSUM_ALGORITHMS: readonly S3ChecksumAlgorithm[] = ['crc64nvme', 'crc32', 'crc32c', 'sha1', 'sha256', 'sha512', 'md5']

/** Algorithms S3 accepts that this gateway cannot verify (no xxHash implementation here). */
const UNSUPPORTED = new Set(['xxhash64', 'xxhash3', 'xxhash128'])

/** Digest length in bytes per algorithm. */
export const S3_CHECKSUM_LENGTH: Readonly<Record<S3ChecksumAlgorithm, number>> = {
  crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32, sha512: 64, md5: 16,
}

/** `CRC32`, `CRC64NVME`, … as the `ChecksumAlgorithm` members and `x-amz-sdk-checksum-algorithm` spell them. */
export function s3AlgorithmName (algorithm: S3ChecksumAlgorithm): string {
  return algorithm.toUpperCase()
}

/** `x-amz-checksum-<algorithm>`. */
export function checksumHeaderName (algorithm: S3ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm}`
}

export interface S3Hasher {
  readonly algorithm: S3ChecksumAlgorithm
  update (chunk: Uint8Array): void
  /** The checksum bytes as S3 encodes them (big-endian for the CRCs); base64 of this is the header value. */
  digest (): Buffer
}

// zlib.crc32 exists from Node 20.15 / 22.2; @node-rs/crc32 is the fallback (same CRC-32/ISO-HDLC).
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
const crc32Update: (data: Uint8Array, value: number) => number = typeof zlibCrc32 === 'function'
  ? (data, value) => zlibCrc32(data, value)
  : (data, value) => crc32Native(data, value)

class Crc32Hasher implements S3Hasher {
  #value = 0
  constructor (readonly algorithm: 'crc32' | 'crc32c', private readonly fn: (data: Uint8Array, value: number) => number) {}
  update (chunk: Uint8Array): void {
    this.#value = this.fn(chunk, this.#value)
  }

  digest (): Buffer {
    const out = Buffer.allocUnsafe(4)
    out.writeUInt32BE(this.#value >>> 0, 0)
    return out
  }
}

class Crc64NvmeHasher implements S3Hasher {
  readonly algorithm = 'crc64nvme' as const
  readonly #crc = new Crc64()
  update (chunk: Uint8Array): void {
    this.#crc.update(chunk)
  }

  /** crc64.ts gives Azure's little-endian bytes; S3 sends the same value big-endian. */
  digest (): Buffer {
    return this.#crc.digest().reverse()
  }
}

class CryptoHasher implements S3Hasher {
  readonly #hash: Hash
  constructor (readonly algorithm: 'sha1' | 'sha256' | 'sha512' | 'md5') {
    this.#hash = createHash(algorithm)
  }

  update (chunk: Uint8Array): void {
    this.#hash.update(chunk)
  }

  digest (): Buffer {
    return this.#hash.digest()
  }
}

/** An incremental hasher for one of S3's checksum algorithms. `digest()` may be called once. */
export function createS3Hasher (algorithm: S3ChecksumAlgorithm): S3Hasher {
  switch (algorithm) {
    case 'crc32': return new Crc32Hasher('crc32', crc32Update)
    case 'crc32c': return new Crc32Hasher('crc32c', (data, value) => crc32c(data, value))
    case 'crc64nvme': return new Crc64NvmeHasher()
    case 'sha1':
    case 'sha256':
    case 'sha512':
    case 'md5':
      return new CryptoHasher(algorithm)
    default:
      throw new TypeError(`unknown S3 checksum algorithm ${String(algorithm)}`)
  }
}

/** The header value (base64) of `data`'s checksum, for responses and tests. */
export function s3Checksum (algorithm: S3ChecksumAlgorithm, data: Uint8Array): string {
  const hasher = createS3Hasher(algorithm)
  hasher.update(data)
  return hasher.digest().toString('base64')
}

/** Strictly decodes a checksum value: canonical base64 of exactly the algorithm's length, else undefined. */
export function decodeChecksumValue (algorithm: S3ChecksumAlgorithm, value: string): Buffer | undefined {
  const text = value.trim()
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined
  const bytes = Buffer.from(text, 'base64')
  if (bytes.length !== S3_CHECKSUM_LENGTH[algorithm] || bytes.toString('base64') !== text) return undefined
  return bytes
}

/** An algorithm from its S3 name (`CRC32`, `crc64nvme`, …), or undefined. */
export function parseAlgorithmName (name: string): S3ChecksumAlgorithm | undefined {
  const lower = name.trim().toLowerCase()
  return (S3_CHECKSUM_ALGORITHMS as readonly string[]).includes(lower) ? lower as S3ChecksumAlgorithm : undefined
}

/** The checksum-related headers of one request, validated. */
export interface S3ChecksumRequest {
  /** The `x-amz-checksum-<alg>` header: the checksum the body must have (decoded bytes and the value as sent). */
  header?: { algorithm: S3ChecksumAlgorithm, value: string, bytes: Buffer }
  /** The checksum announced by `x-amz-trailer`: its value arrives in the aws-chunked trailer of that name. */
  trailer?: { algorithm: S3ChecksumAlgorithm, name: string }
  /** `x-amz-sdk-checksum-algorithm` (PutObject, UploadPart). */
  sdkAlgorithm?: S3ChecksumAlgorithm
  /** `x-amz-checksum-algorithm` (CreateMultipartUpload: the algorithm the parts will carry). */
  uploadAlgorithm?: S3ChecksumAlgorithm
  /** `x-amz-checksum-type` (CreateMultipartUpload, CompleteMultipartUpload). */
  type?: 'FULL_OBJECT' | 'COMPOSITE'
  /** `x-amz-checksum-mode: ENABLED` (GetObject, HeadObject): return the stored checksum. */
  mode?: 'ENABLED'
  /** The algorithm the body is to be hashed with: the header's, else the trailer's; undefined if none. */
  algorithm?: S3ChecksumAlgorithm
}

function invalid (message: string): CacheError {
  return new CacheError('CC_ERR_INVALID_INPUT', message)
}

function single (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  return (Array.isArray(value) ? value.join(',') : value).trim()
}

/**
 * A presigned URL from `@aws-sdk/s3-request-presigner` carries the request's `x-amz-*` headers
 * as query parameters (`x-amz-checksum-crc32`, `x-amz-sdk-checksum-algorithm`, …): the signature
 * covers them there, and S3 applies them as if they were headers. Headers sent as headers win.
 */
function withHoisted (headers: IncomingHttpHeaders, query: Iterable<{ name: string, value: string }>): IncomingHttpHeaders {
  const merged: IncomingHttpHeaders = { ...headers }
  for (const { name, value } of query) {
    const lower = name.toLowerCase()
    if ((lower.startsWith('x-amz-checksum-') || lower === 'x-amz-sdk-checksum-algorithm' || lower === 'x-amz-trailer') && merged[lower] === undefined) merged[lower] = value
  }
  return merged
}

/**
 * Finds and validates the checksum a request carries (`query`: the decoded query parameters of
 * a presigned request, whose hoisted `x-amz-checksum-*` count as headers). Throws CC_ERR_INVALID_INPUT with S3's
 * message for: two checksum headers (or a header and a checksum trailer), a malformed value, an
 * `x-amz-sdk-checksum-algorithm` with no matching header or trailer, or naming another
 * algorithm, an unknown algorithm, or one this gateway cannot verify (xxHash).
 */
export function parseChecksumHeaders (headers: IncomingHttpHeaders, query?: Iterable<{ name: string, value: string }>): S3ChecksumRequest {
  if (query !== undefined) headers = withHoisted(headers, query)
  const result: S3ChecksumRequest = {}
  const found: Array<[S3ChecksumAlgorithm, string]> = []
  for (const rawName of Object.keys(headers)) {
    const name = rawName.toLowerCase()
    if (!name.startsWith('x-amz-checksum-')) continue
    const suffix = name.slice('x-amz-checksum-'.length)
    if (suffix === 'algorithm' || suffix === 'type' || suffix === 'mode') continue
    if (UNSUPPORTED.has(suffix)) throw invalid(`The ${name} algorithm is not supported.`)
    const algorithm = parseAlgorithmName(suffix)
    if (algorithm === undefined) throw invalid(`The ${name} algorithm is not supported.`)
    found.push([algorithm, single(headers, rawName) ?? ''])
  }

  const trailerHeader = single(headers, 'x-amz-trailer')
  if (trailerHeader !== undefined && trailerHeader !== '') {
    for (const part of trailerHeader.split(',')) {
      const name = part.trim().toLowerCase()
      if (!name.startsWith('x-amz-checksum-')) continue
      const suffix = name.slice('x-amz-checksum-'.length)
      const algorithm = parseAlgorithmName(suffix)
      if (algorithm === undefined || UNSUPPORTED.has(suffix)) throw invalid(`The value specified in the x-amz-trailer header is not supported: ${name}`)
      if (result.trailer !== undefined) throw invalid('Expecting a single x-amz-checksum- header')
      result.trailer = { algorithm, name }
    }
  }

  if (found.length > 1) throw invalid('Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.')
  if (found.length === 1 && result.trailer !== undefined) throw invalid('Expecting a single x-amz-checksum- header')
  if (found.length === 1) {
    const [algorithm, value] = found[0]!
    const bytes = decodeChecksumValue(algorithm, value)
    if (bytes === undefined) throw invalid(`Value for ${checksumHeaderName(algorithm)} header is invalid.`)
    result.header = { algorithm, value, bytes }
  }

  const sdk = single(headers, 'x-amz-sdk-checksum-algorithm')
  if (sdk !== undefined) {
    const algorithm = parseAlgorithmName(sdk)
    if (algorithm === undefined) throw invalid('Value for x-amz-sdk-checksum-algorithm header is invalid.')
    const announced = result.header?.algorithm ?? result.trailer?.algorithm
    if (announced === undefined) throw invalid('x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.')
    if (announced !== algorithm) throw invalid('Value for x-amz-sdk-checksum-algorithm header is invalid.')
    result.sdkAlgorithm = algorithm
  }

  const upload = single(headers, 'x-amz-checksum-algorithm')
  if (upload !== undefined) {
    const algorithm = parseAlgorithmName(upload)
    if (algorithm === undefined) throw invalid('Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]')
    result.uploadAlgorithm = algorithm
  }
  const type = single(headers, 'x-amz-checksum-type')?.toUpperCase()
  if (type !== undefined) {
    if (type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw invalid('Value for x-amz-checksum-type header is invalid.')
    result.type = type
  }
  if (single(headers, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED') result.mode = 'ENABLED'

  const algorithm = result.header?.algorithm ?? result.trailer?.algorithm
  if (algorithm !== undefined) result.algorithm = algorithm
  return result
}
