/**
 * Test payloads and how they are verified: deterministic pseudo-random bytes (no two MiB alike, so
 * blocks committed out of order or twice change the digest), generated and hashed
 * chunk by chunk so that no case holds more than the one copy it has to hand to the SDK.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { Readable } from 'node:stream'

export const KiB = 1024
export const MiB = 1024 * KiB

const CHUNK = MiB

const ZEROS = Buffer.alloc(CHUNK)

/** Chunk `i` of the payload named `seed`: AES-128-CTR keystream keyed by the seed, starting at i. */
function chunk(seed: string, i: number, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(i, 0) // chunks use disjoint counter ranges (a chunk is 2^16 AES blocks)
  return createCipheriv('aes-128-ctr', key, iv).update(ZEROS.subarray(0, size))
}

/** The whole payload in one buffer (for `uploadData`, which needs one). */
export function payload(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  for (let i = 0, off = 0; off < size; i++, off += CHUNK) {
    chunk(seed, i, Math.min(CHUNK, size - off)).copy(out, off)
  }
  return out
}

/** The same payload as a stream of 1 MiB chunks (for `uploadStream`), never materialised whole. */
export function payloadStream(seed: string, size: number): Readable {
  let i = 0
  let off = 0
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (off >= size) {
        this.push(null)
        return
      }
      const n = Math.min(CHUNK, size - off)
      this.push(chunk(seed, i++, n))
      off += n
    },
  })
}

/** sha256 (hex) of the payload, computed chunk by chunk. */
export function payloadSha256(seed: string, size: number): string {
  const h = createHash('sha256')
  for (let i = 0, off = 0; off < size; i++, off += CHUNK) h.update(chunk(seed, i, Math.min(CHUNK, size - off)))
  return h.digest('hex')
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex')
}

export function md5(buf: Uint8Array): Buffer {
  return createHash('md5').update(buf).digest()
}

/** Consumes a download body, returning its length and sha256 without keeping the bytes. */
export async function hashStream(body: NodeJS.ReadableStream | undefined): Promise<{ bytes: number, sha256: string }> {
  if (!body) throw new Error('download returned no body stream')
  const h = createHash('sha256')
  let bytes = 0
  for await (const c of body as AsyncIterable<Buffer>) {
    h.update(c)
    bytes += c.length
  }
  return { bytes, sha256: h.digest('hex') }
}

/** Reads a (small) download body into memory. */
export async function readAll(body: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!body) throw new Error('download returned no body stream')
  const parts: Buffer[] = []
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c)
  return Buffer.concat(parts)
}
