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

/**
 * The frames of one body, one at a time: the payload pieces of the frame being built (none of
 * them passed on yet) and its HMAC, which starts from the previous frame's tag.
 */
class FrameChain {
  readonly #key: Buffer
  #previous: Buffer
  #hmac: Hmac | undefined
  #pieces: Buffer[] = []
  /** Payload length of the open frame, and bytes of it added so far. */
  length = 0
  filled = 0

  constructor (key: Buffer, seed: Buffer) {
    this.#key = key
    this.#previous = seed
  }

  get open (): boolean {
    return this.#hmac !== undefined
  }

  /** Opens the next frame, of `length` payload bytes. */
  begin (length: number): void {
    this.#hmac = createHmac('sha256', this.#key).update(this.#previous).update(lengthPrefix(length))
    this.#pieces = []
    this.length = length
    this.filled = 0
  }

  add (piece: Buffer): void {
    (this.#hmac as Hmac).update(piece)
    this.#pieces.push(piece)
    this.filled += piece.length
  }

  /** Closes the open frame: its pieces and its tag (which the next frame chains from). */
  close (): { pieces: Buffer[], tag: Buffer } {
    const tag = (this.#hmac as Hmac).digest()
    const pieces = this.#pieces
    this.#previous = tag
    this.#hmac = undefined
    this.#pieces = []
    return { pieces, tag }
  }
}

/** Frames and signs exactly `size` bytes (errors when its input is longer or shorter). */
export class ChunkSigner extends Transform {
  readonly #frames: FrameChain
  readonly #size: number
  #seen = 0
  /** Payload bytes sent in whole frames. */
  #framed = 0

  constructor (key: Buffer, seed: Buffer, size: number) {
    super({ highWaterMark: CHUNK_SIZE })
    this.#frames = new FrameChain(key, seed)
    this.#size = size
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#seen + chunk.length > this.#size) {
      cb(new CacheError('CC_ERR_INTERNAL', `A replica source yielded more than its size ${this.#size}`))
      return
    }
    this.#seen += chunk.length
    const f = this.#frames
    let at = 0
    while (at < chunk.length) {
      // Every frame but the last is CHUNK_SIZE.
      if (!f.open) f.begin(Math.min(CHUNK_SIZE, this.#size - this.#framed))
      const take = Math.min(chunk.length - at, f.length - f.filled)
      f.add(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take))
      at += take
      if (f.filled === f.length) this.#emitFrame()
    }
    cb()
  }

  override _flush (cb: TransformCallback): void {
    if (this.#seen !== this.#size) {
      cb(new CacheError('CC_ERR_INTERNAL', `A replica source yielded ${this.#seen} bytes, its size is ${this.#size}`))
      return
    }
    this.#frames.begin(0)
    this.#emitFrame()
    cb()
  }

  #emitFrame (): void {
    const length = this.#frames.length
    const { pieces, tag } = this.#frames.close()
    this.push(lengthPrefix(length))
    for (const p of pieces) this.push(p)
    this.push(tag)
    this.#framed += length
  }
}

/**
 * Checks a chunk-signed body of `size` bytes and passes on its payload, a
 * frame at a time once verified; errors (CC_ERR_PEER_AUTH) at the first frame
 * that does not verify, is malformed, or when the body ends without its end frame.
 */
export class ChunkVerifier extends Transform {
  readonly #frames: FrameChain
  readonly #size: number
  /** Payload bytes passed on (verified). */
  #done = 0
  #state: 'length' | 'payload' | 'tag' | 'ended' = 'length'
  /** Bytes of the length prefix or tag being read. */
  readonly #small = Buffer.alloc(TAG_BYTES)
  #smallFilled = 0

  constructor (key: Buffer, seed: Buffer, size: number) {
    super({ highWaterMark: CHUNK_SIZE })
    this.#frames = new FrameChain(key, seed)
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
    const f = this.#frames
    let at = 0
    while (at < chunk.length) {
      if (this.#state === 'ended') throw refused('bytes after the end frame of a replica body')
      if (this.#state === 'payload') {
        const take = Math.min(chunk.length - at, f.length - f.filled)
        f.add(chunk.subarray(at, at + take))
        at += take
        if (f.filled === f.length) this.#expect('tag')
        continue
      }
      const need = (this.#state === 'length' ? LENGTH_BYTES : TAG_BYTES) - this.#smallFilled
      const take = Math.min(need, chunk.length - at)
      chunk.copy(this.#small, this.#smallFilled, at, at + take)
      this.#smallFilled += take
      at += take
      if (take < need) continue
      if (this.#state === 'length') this.#beginFrame(this.#small.readUInt32BE(0))
      else this.#endFrame()
    }
  }

  #expect (state: 'length' | 'tag'): void {
    this.#state = state
    this.#smallFilled = 0
  }

  #beginFrame (length: number): void {
    const expected = Math.min(CHUNK_SIZE, this.#size - this.#done)
    if (length !== expected) throw refused(`a replica body frame of ${length} bytes where ${expected} were due`)
    this.#frames.begin(length)
    if (length === 0) this.#expect('tag')
    else this.#state = 'payload'
  }

  #endFrame (): void {
    const length = this.#frames.length
    const { pieces, tag } = this.#frames.close()
    if (!timingSafeEqual(tag, this.#small)) throw refused('a replica body frame does not match its signature')
    for (const p of pieces) this.push(p)
    this.#done += length
    if (length === 0) this.#state = 'ended'
    else this.#expect('length')
  }
}

function refused (reason: string): CacheError {
  return new CacheError('CC_ERR_PEER_AUTH', `Peer request refused: ${reason}`)
}
