/**
 * Replica bodies signed chunk by chunk, so that a sender streams a copy in one
 * pass (no digest of the whole body before its first byte) and a receiver
 * passes on only bytes it has verified. The request's own signature (auth.ts)
 * covers its headers with the content-sha256 value `STREAMING_PAYLOAD`; the
 * body is then a sequence of frames
 *
 *   u32 BE payload length | payload | tag (32 bytes)
 *   tag_i = HMAC-SHA256(key, tag_{i-1} | u32 BE length | payload), tag_0 being the request's signature
 *
 * every payload `CHUNK_SIZE` bytes but the last, then one frame with an empty
 * payload that marks the end (a body cut short never verifies). A frame's
 * payload reaches the consumer only once its tag matched, so at most one
 * frame (1 MiB) is held per stream. (AWS SigV4 streaming uploads chain their
 * chunk signatures the same way.)
 */
import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { CacheError } from '../errors.js'

/** The content-sha256 a request with a chunk-signed body signs instead of a body digest. */
export const STREAMING_PAYLOAD = 'STREAMING-CKPT-HMAC-SHA256-CHUNKS'
export const CHUNK_SIZE = 1024 * 1024
const LENGTH_BYTES = 4
const TAG_BYTES = 32
const FRAME_OVERHEAD = LENGTH_BYTES + TAG_BYTES

/** Bytes on the wire of a `size`-byte body: its data frames and the end frame. */
export function framedLength (size: number): number {
  return size + Math.ceil(size / CHUNK_SIZE) * FRAME_OVERHEAD + FRAME_OVERHEAD
}

function lengthPrefix (n: number): Buffer {
  const b = Buffer.allocUnsafe(LENGTH_BYTES)
  b.writeUInt32BE(n, 0)
  return b
}

function startTag (key: Buffer, previous: Buffer, prefix: Buffer): Hmac {
  return createHmac('sha256', key).update(previous).update(prefix)
}

/** Frames and signs exactly `size` bytes (errors when its input is longer or shorter). */
export class ChunkSigner extends Transform {
  readonly #key: Buffer
  readonly #size: number
  #previous: Buffer
  #seen = 0
  /** Payload bytes sent in whole frames. */
  #framed = 0
  /** The frame being filled: its pieces (none of it pushed yet) and its HMAC. */
  #pieces: Buffer[] = []
  #filled = 0
  #hmac: Hmac | undefined

  constructor (key: Buffer, seed: Buffer, size: number) {
    super({ highWaterMark: CHUNK_SIZE })
    this.#key = key
    this.#previous = seed
    this.#size = size
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#seen + chunk.length > this.#size) {
      cb(new CacheError('CC_ERR_INTERNAL', `A replica source yielded more than its size ${this.#size}`))
      return
    }
    this.#seen += chunk.length
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, this.#frameLength() - this.#filled)
      const piece = at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take)
      this.#hmac ??= startTag(this.#key, this.#previous, lengthPrefix(this.#frameLength()))
      this.#hmac.update(piece)
      this.#pieces.push(piece)
      this.#filled += take
      at += take
      if (this.#filled === this.#frameLength()) this.#emitFrame()
    }
    cb()
  }

  override _flush (cb: TransformCallback): void {
    if (this.#seen !== this.#size) {
      cb(new CacheError('CC_ERR_INTERNAL', `A replica source yielded ${this.#seen} bytes, its size is ${this.#size}`))
      return
    }
    this.#hmac = startTag(this.#key, this.#previous, lengthPrefix(0))
    this.#emitFrame()
    cb()
  }

  /** The payload length of the frame being filled: every frame but the last is CHUNK_SIZE. */
  #frameLength (): number {
    return Math.min(CHUNK_SIZE, this.#size - this.#framed)
  }

  #emitFrame (): void {
    const tag = (this.#hmac as Hmac).digest()
    this.push(lengthPrefix(this.#filled))
    for (const p of this.#pieces) this.push(p)
    this.push(tag)
    this.#previous = tag
    this.#framed += this.#filled
    this.#pieces = []
    this.#filled = 0
    this.#hmac = undefined
  }
}

/**
 * Checks a chunk-signed body of `size` bytes and passes on its payload, a
 * frame at a time once verified; errors (CC_ERR_PEER_AUTH) at the first frame
 * that does not verify, is malformed, or when the body ends without its end frame.
 */
export class ChunkVerifier extends Transform {
  readonly #key: Buffer
  readonly #size: number
  #previous: Buffer
  /** Payload bytes passed on (verified). */
  #done = 0
  #state: 'length' | 'payload' | 'tag' | 'ended' = 'length'
  /** Bytes of the length prefix or tag being read. */
  #small = Buffer.alloc(TAG_BYTES)
  #smallFilled = 0
  #want = 0
  #pieces: Buffer[] = []
  #filled = 0
  #hmac: Hmac | undefined

  constructor (key: Buffer, seed: Buffer, size: number) {
    super({ highWaterMark: CHUNK_SIZE })
    this.#key = key
    this.#previous = seed
    this.#size = size
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#consume(chunk)
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  override _flush (cb: TransformCallback): void {
    if (this.#state !== 'ended') cb(refused(`the replica body ended after ${this.#done} of ${this.#size} verified bytes, without its end frame`))
    else cb()
  }

  #consume (chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.#state === 'ended') throw refused('bytes after the end frame of a replica body')
      if (this.#state === 'payload') {
        const take = Math.min(chunk.length - at, this.#want - this.#filled)
        const piece = chunk.subarray(at, at + take)
        ;(this.#hmac as Hmac).update(piece)
        this.#pieces.push(piece)
        this.#filled += take
        at += take
        if (this.#filled === this.#want) this.#startSmall('tag')
        continue
      }
      const need = (this.#state === 'length' ? LENGTH_BYTES : TAG_BYTES) - this.#smallFilled
      const take = Math.min(need, chunk.length - at)
      chunk.copy(this.#small, this.#smallFilled, at, at + take)
      this.#smallFilled += take
      at += take
      if (take < need) continue
      if (this.#state === 'length') this.#startFrame(this.#small.readUInt32BE(0))
      else this.#endFrame()
    }
  }

  #startSmall (state: 'length' | 'tag'): void {
    this.#state = state
    this.#smallFilled = 0
  }

  #startFrame (length: number): void {
    const left = this.#size - this.#done
    const expected = Math.min(CHUNK_SIZE, left)
    if (length !== expected) throw refused(`a replica body frame of ${length} bytes where ${expected} were due`)
    this.#want = length
    this.#filled = 0
    this.#pieces = []
    this.#hmac = startTag(this.#key, this.#previous, lengthPrefix(length))
    if (length === 0) this.#startSmall('tag')
    else this.#state = 'payload'
  }

  #endFrame (): void {
    const tag = (this.#hmac as Hmac).digest()
    if (!timingSafeEqual(tag, this.#small)) throw refused('a replica body frame does not match its signature')
    this.#previous = tag
    for (const p of this.#pieces) this.push(p)
    this.#done += this.#want
    this.#pieces = []
    if (this.#want === 0) this.#state = 'ended'
    else this.#startSmall('length')
  }
}

function refused (reason: string): CacheError {
  return new CacheError('CC_ERR_PEER_AUTH', `Peer request refused: ${reason}`)
}
