/**
 * Payloads and digests for the S3 cases: the Blob suite's deterministic payloads (generated and
 * hashed chunk by chunk), plus the S3 ETag and checksum forms.
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'

export { hashStream, KiB, MiB, payload, payloadSha256, payloadStream, readAll, sha256 } from '../blob/data.js'

/** The ETag of a single PutObject: the quoted hex MD5 of the body. */
export function md5Etag(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`
}

/** The ETag of a multipart object: the quoted hex MD5 of the parts' binary MD5s, then `-<parts>`. */
export function multipartEtag(parts: readonly Uint8Array[]): string {
  const h = createHash('md5')
  for (const p of parts) h.update(createHash('md5').update(p).digest())
  return `"${h.digest('hex')}-${parts.length}"`
}

/** `x-amz-checksum-crc32` of a body: the big-endian CRC32, base64. */
export function crc32Base64(body: Uint8Array): string {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(crc32(body) >>> 0)
  return b.toString('base64')
}
