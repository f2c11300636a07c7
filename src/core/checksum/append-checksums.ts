/**
 * Whole-object checksums across an append (S3 Express `x-amz-write-offset-bytes`). A CRC of the
 * whole object survives: the previous whole-object CRC is combined with the appended part's
 * (crc-combine.ts), so no byte of the previous version is read again. SHA-1/SHA-256/SHA-512 and
 * MD5 cannot be combined and are dropped, as is the Content-MD5 property: after an append the
 * object carries no checksum that was not computed over exactly its bytes.
 */
import type { ObjectChecksums, ObjectMeta } from '../types.js'
import { COMBINABLE_CRCS, crcCombine, type CombinableCrc } from './crc-combine.js'
import { decodeChecksumValue } from './s3-checksums.js'

/** CRCs of an appended part, in S3's byte form (big-endian). */
export type PartCrcs = Partial<Record<CombinableCrc, Buffer>>

/** The previous whole-object CRC of `algorithm`, if it is known and combinable. */
function previousCrc (previous: ObjectMeta, algorithm: CombinableCrc): Buffer | undefined {
  // The CRC of no bytes is 0 for all three (initial value = final xor).
  if (previous.size === 0) return Buffer.alloc(algorithm === 'crc64nvme' ? 8 : 4)
  if (previous.checksums.checksumType === 'COMPOSITE') return undefined // a checksum of part checksums
  const stored = previous.checksums[algorithm]
  return stored === undefined ? undefined : decodeChecksumValue(algorithm, stored)
}

/** Azure's CRC64 of the previous version as CRC-64/NVME bytes (Azure stores them little-endian). */
function previousAzureCrc64 (previous: ObjectMeta): Buffer | undefined {
  const stored = previous.checksums.crc64
  if (stored === undefined) return undefined
  const bytes = Buffer.from(stored, 'base64')
  return bytes.length === 8 ? bytes.reverse() : undefined
}

/**
 * The CRCs an append must compute over its part to carry the whole-object CRCs of `previous`
 * forward (besides the one the client sent, which is computed anyway).
 */
export function crcsToCarry (previous: ObjectMeta | undefined): CombinableCrc[] {
  if (previous === undefined || previous.size === 0) return []
  const out = COMBINABLE_CRCS.filter((a) => previousCrc(previous, a) !== undefined)
  if (previousAzureCrc64(previous) !== undefined && !out.includes('crc64nvme')) out.push('crc64nvme')
  return out
}

/**
 * The whole-object checksums of the version an append of `partSize` bytes with CRCs `part`
 * makes from `previous`: each CRC known for both is combined; everything else is dropped.
 */
export function appendedChecksums (previous: ObjectMeta, partSize: number, part: PartCrcs): ObjectChecksums {
  const out: ObjectChecksums = {}
  for (const algorithm of COMBINABLE_CRCS) {
    const crc = part[algorithm]
    const before = previousCrc(previous, algorithm)
    if (crc === undefined || before === undefined) continue
    out[algorithm] = crcCombine(algorithm, before, crc, partSize).toString('base64')
  }
  if (out.crc32 !== undefined || out.crc32c !== undefined || out.crc64nvme !== undefined) out.checksumType = 'FULL_OBJECT'
  const azure = previousAzureCrc64(previous)
  if (azure !== undefined && part.crc64nvme !== undefined) {
    out.crc64 = crcCombine('crc64nvme', azure, part.crc64nvme, partSize).reverse().toString('base64')
  }
  return out
}
