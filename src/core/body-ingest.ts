import type { Readable } from 'node:stream'
import { CacheError } from '../errors.js'
import type { ChunkObserver } from '../store/durable.js'
import type { Ingested, LocalStore } from '../store/local-store.js'
import type { BodyChecksums, ExpectedChecksums } from './object-inputs.js'
import type { PartCrcs } from './checksum/append-checksums.js'
import { isCombinableCrc, type CombinableCrc } from './checksum/crc-combine.js'
import { Crc64 } from './checksum/crc64.js'
import { createS3Hasher } from './checksum/s3-checksums.js'
import { createMd5Hasher, type Md5Hasher } from './checksum/md5.js'
import type { ObjectChecksums } from './types.js'

/**
 * Streams a write's body into the store while hashing it, then verifies the checksums the client
 * sent (Content-MD5, x-ms-content-crc64, x-amz-checksum-*). On a mismatch the ingested data is
 * discarded and the error thrown; nothing is committed here. `alwaysMd5`: compute the MD5 even
 * when the client sent none. `carry`: CRCs to compute besides the ones the client sent (an append
 * carrying whole-object CRCs forward).
 */
export async function ingestBody (store: LocalStore, body: Readable, size: number, max: number, alwaysMd5: boolean, expect: ExpectedChecksums | undefined, signal: AbortSignal | undefined, carry: CombinableCrc[] = []): Promise<{ data: Ingested, checksums: BodyChecksums }> {
  if (size > max) throw new CacheError('CC_ERR_BODY_TOO_LARGE', undefined, { detail: { max } })
  const md5: Md5Hasher | undefined = alwaysMd5 || expect?.md5 !== undefined ? createMd5Hasher() : undefined
  const crc = expect?.crc64 !== undefined ? new Crc64() : undefined
  const extra = expect?.additional === undefined ? undefined : createS3Hasher(expect.additional.algorithm)
  const carried = carry.filter((a) => a !== extra?.algorithm).map((a) => createS3Hasher(a))
  const observers: ChunkObserver[] = []
  if (extra !== undefined) observers.push((chunk) => { extra.update(chunk) })
  for (const h of carried) observers.push((chunk) => { h.update(chunk) })
  if (md5 !== undefined) observers.push((chunk) => md5.update(chunk) ? undefined : md5.ready())
  if (crc !== undefined) observers.push((chunk) => { crc.update(chunk) })
  let data: Ingested
  try {
    data = await store.ingest({ body, expectedSize: size, maxSize: max, observers, ...(signal === undefined ? {} : { signal }) })
  } catch (err) {
    md5?.destroy()
    throw err
  }
  const checksums: BodyChecksums = {}
  try {
    if (md5 !== undefined) checksums.md5 = await md5.digest()
    if (crc !== undefined) checksums.crc64 = crc.digest()
    if (expect?.md5 !== undefined && !expect.md5.equals(checksums.md5 as Buffer)) throw new CacheError('CC_ERR_MD5_MISMATCH')
    if (expect?.crc64 !== undefined && !expect.crc64.equals(checksums.crc64 as Buffer)) throw new CacheError('CC_ERR_CRC64_MISMATCH')
    if (extra !== undefined && expect?.additional !== undefined) {
      const value = extra.digest()
      const sent = expect.additional.value()
      if (sent !== undefined && !sent.equals(value)) {
        throw new CacheError('CC_ERR_CHECKSUM_MISMATCH', `The ${expect.additional.algorithm.toUpperCase()} you specified did not match the calculated checksum.`)
      }
      checksums.additional = { algorithm: extra.algorithm, value }
    }
    const crcs: PartCrcs = {}
    for (const h of carried) crcs[h.algorithm as CombinableCrc] = h.digest()
    if (checksums.additional !== undefined && isCombinableCrc(checksums.additional.algorithm)) crcs[checksums.additional.algorithm] = checksums.additional.value
    if (Object.keys(crcs).length > 0) checksums.crcs = crcs
  } catch (err) {
    await store.discard(data)
    throw err
  }
  return { data, checksums }
}

/** What a single-shot write stores of its body's checksums (Put Blob, PutObject, an append that creates the object). */
export function storedChecksums (checksums: BodyChecksums): ObjectChecksums {
  const stored: ObjectChecksums = {
    ...(checksums.md5 === undefined ? {} : { md5: checksums.md5.toString('base64') }),
    ...(checksums.crc64 === undefined ? {} : { crc64: checksums.crc64.toString('base64') })
  }
  if (checksums.additional !== undefined) {
    stored[checksums.additional.algorithm === 'md5' ? 'md5' : checksums.additional.algorithm] = checksums.additional.value.toString('base64')
    stored.checksumType = 'FULL_OBJECT'
  }
  return stored
}
