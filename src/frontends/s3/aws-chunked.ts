/**
 * Decoder for `Content-Encoding: aws-chunked` request bodies, as sent to PutObject and
 * UploadPart ("Transferring Payload in Multiple Chunks (Chunked Upload)" and "Signature
 * calculations for trailing headers" in the S3 SigV4 docs):
 *
 *     <hex-size>[;chunk-signature=<sig>]\r\n <data> \r\n   … repeated …
 *     0[;chunk-signature=<sig>]\r\n [<trailer>:<value>\r\n …] \r\n
 *
 * Modes follow `x-amz-content-sha256`: `signed` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and
 * `signed-trailer` (…-PAYLOAD-TRAILER) carry a signature per chunk, chained from the request's
 * seed signature (`AWS4-HMAC-SHA256-PAYLOAD\n<amzDate>\n<scope>\n<previous>\n<sha256("")>\n
 * <sha256(data)>`), and the trailer mode ends with `x-amz-trailer-signature` over the trailers
 * (`AWS4-HMAC-SHA256-TRAILER\n<amzDate>\n<scope>\n<previous>\n<sha256("name:value\n"…)>`);
 * `unsigned-trailer` (STREAMING-UNSIGNED-PAYLOAD-TRAILER: what the JS SDK and boto3 send for
 * stream bodies) has neither. The trailers (e.g. `x-amz-checksum-crc32`) are in `trailers`
 * once the decoder has ended.
 *
 * Memory stays flat whatever the body size: payload bytes are pushed on as they arrive (slices
 * of the input, no copy), and a chunk's hash is updated incrementally; only a header or
 * trailer line (bounded) is ever held. A chunk's signature is therefore checked when its last
 * byte has passed: a consumer must not commit anything before the decoder ends without error,
 * which the store's temp-file → rename commit already guarantees. Errors are S3's:
 * IncompleteBody (malformed or truncated framing, wrong decoded length), SignatureDoesNotMatch
 * (a chunk or trailer signature), MalformedTrailerError, InvalidChunkSizeError.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { hmac, sha256Hex } from './auth/canonical.js'
import { S3AuthError, type SigV4Auth, type SigV4Payload } from './auth/sigv4.js'

export type AwsChunkedMode = 'signed' | 'signed-trailer' | 'unsigned-trailer'

export interface AwsChunkedOptions {
  mode: AwsChunkedMode
  /** The verified request (for the seed signature, key, scope and date); required in the signed modes. */
  auth?: SigV4Auth
  /** `x-amz-decoded-content-length`: the payload must be exactly this long. */
  decodedLength?: number
  /** Reject a chunk declaring more than this many bytes (InvalidChunkSizeError). Default: no limit (nothing is buffered). */
  maxChunk?: number
  /**
   * Every chunk but the last must carry at least this many bytes. S3 enforces 8192
   * (InvalidChunkSizeError, "Only the last chunk is allowed to have a size less than 8192
   * bytes"); the default 0 accepts the small chunks a client streaming small reads produces.
   */
  minChunk?: number
  /** The trailer names `x-amz-trailer` declared: each must arrive, and no other. Default: any. */
  trailerNames?: readonly string[]
}

export type AwsChunkedErrorCode = 'IncompleteBody' | 'InvalidChunkSizeError' | 'MalformedTrailerError'

const STATUS: Record<AwsChunkedErrorCode, [number, string]> = {
  IncompleteBody: [400, 'The request body terminated unexpectedly'],
  InvalidChunkSizeError: [400, 'Only the last chunk is allowed to have a size less than 8192 bytes'],
  MalformedTrailerError: [400, 'The request contained trailing data that was not well-formed or did not conform to our published schema.'],
}

/** A framing error in an aws-chunked body, with S3's status and code (the same shape as S3AuthError). */
export class AwsChunkedError extends Error {
  readonly status: number
  readonly s3Code: AwsChunkedErrorCode
  readonly detail: Record<string, string>

  constructor (s3Code: AwsChunkedErrorCode, message?: string, detail: Record<string, string> = {}) {
    super(message ?? STATUS[s3Code][1])
    this.name = 'AwsChunkedError'
    this.status = STATUS[s3Code][0]
    this.s3Code = s3Code
    this.detail = detail
  }
}

/** The aws-chunked mode an `x-amz-content-sha256` payload kind calls for, if any. */
export function awsChunkedMode (payload: SigV4Payload): AwsChunkedMode | undefined {
  switch (payload.kind) {
    case 'streaming-signed': return 'signed'
    case 'streaming-signed-trailer': return 'signed-trailer'
    case 'streaming-unsigned-trailer': return 'unsigned-trailer'
    default: return undefined
  }
}

const EMPTY_SHA256 = sha256Hex('')
const MAX_LINE = 4096
const MAX_TRAILER_BYTES = 16 * 1024
const TRAILER_SIGNATURE = 'x-amz-trailer-signature'
const CR = 13
const LF = 10

type State = 'header' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done'

/** Streaming aws-chunked decoder: encoded body in, payload out. */
export class AwsChunkedDecoder extends Transform {
  /** Trailing headers (lowercase names, signature excluded); complete once the decoder has ended. */
  readonly trailers: Record<string, string> = Object.create(null) as Record<string, string>
  readonly #mode: AwsChunkedMode
  readonly #auth: SigV4Auth | undefined
  readonly #decodedLength: number | undefined
  readonly #maxChunk: number
  readonly #minChunk: number
  readonly #trailerNames: readonly string[] | undefined
  #state: State = 'header'
  #line = ''
  #remaining = 0
  #chunkSize = 0
  #chunkNumber = 0
  #chunkSignature = ''
  #previousSignature: string
  #hash: Hash | undefined
  #decoded = 0
  #trailerBytes = 0
  #trailerLines: Array<[string, string]> = []

  constructor (options: AwsChunkedOptions) {
    super({ readableHighWaterMark: 1024 * 1024 })
    this.#mode = options.mode
    this.#auth = options.auth
    if (options.mode !== 'unsigned-trailer' && options.auth === undefined) throw new TypeError(`aws-chunked mode ${options.mode} needs the request's SigV4Auth`)
    this.#previousSignature = options.auth?.signature ?? ''
    this.#decodedLength = options.decodedLength
    this.#maxChunk = options.maxChunk ?? Number.MAX_SAFE_INTEGER
    this.#minChunk = options.minChunk ?? 0
    this.#trailerNames = options.trailerNames?.map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
  }

  /** Payload bytes decoded so far. */
  get decodedBytes (): number {
    return this.#decoded
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#consume(chunk)
      callback()
    } catch (err) {
      callback(err as Error)
    }
  }

  override _flush (callback: TransformCallback): void {
    // The JS SDK ends a body with no trailer after `0\r\n`, without the closing empty line.
    const noTrailerDue = this.#mode === 'signed' || (this.#mode === 'unsigned-trailer' && (this.#trailerNames?.length ?? 0) === 0)
    if (this.#state === 'trailer' && this.#line === '' && this.#trailerLines.length === 0 && noTrailerDue) this.#state = 'done'
    callback(this.#state === 'done' ? null : new AwsChunkedError('IncompleteBody'))
  }

  #consume (chunk: Buffer): void {
    let pos = 0
    while (pos < chunk.length) {
      switch (this.#state) {
        case 'header':
        case 'trailer': {
          const lf = chunk.indexOf(LF, pos)
          const end = lf === -1 ? chunk.length : lf + 1
          if (this.#line.length + end - pos > (this.#state === 'header' ? MAX_LINE : MAX_TRAILER_BYTES - this.#trailerBytes)) {
            throw this.#state === 'header' ? new AwsChunkedError('IncompleteBody') : new AwsChunkedError('MalformedTrailerError')
          }
          this.#line += chunk.toString('latin1', pos, end)
          pos = end
          if (lf === -1) break
          const line = this.#line
          this.#line = ''
          if (line.length < 2 || line.charCodeAt(line.length - 2) !== CR) throw new AwsChunkedError('IncompleteBody')
          if (this.#state === 'header') this.#onHeader(line.slice(0, -2))
          else this.#onTrailerLine(line.slice(0, -2))
          break
        }
        case 'data': {
          const n = Math.min(this.#remaining, chunk.length - pos)
          const slice = chunk.subarray(pos, pos + n)
          this.#hash?.update(slice)
          this.push(slice)
          pos += n
          this.#remaining -= n
          if (this.#remaining === 0) {
            this.#verifyChunk(this.#hash?.digest('hex'))
            this.#state = 'data-cr'
          }
          break
        }
        case 'data-cr':
          if (chunk[pos++] !== CR) throw new AwsChunkedError('IncompleteBody')
          this.#state = 'data-lf'
          break
        case 'data-lf':
          if (chunk[pos++] !== LF) throw new AwsChunkedError('IncompleteBody')
          this.#state = 'header'
          break
        case 'done':
          throw new AwsChunkedError('IncompleteBody', 'The request body has data after the final chunk.')
      }
    }
  }

  /** `<hex-size>[;name=value…]`: the start of a chunk. */
  #onHeader (line: string): void {
    const semi = line.indexOf(';')
    const hex = semi === -1 ? line : line.slice(0, semi)
    if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) throw new AwsChunkedError('IncompleteBody')
    const size = parseInt(hex, 16)
    this.#chunkNumber++
    let signature: string | undefined
    if (semi !== -1) {
      for (const ext of line.slice(semi + 1).split(';')) {
        const eq = ext.indexOf('=')
        if (eq !== -1 && ext.slice(0, eq).trim() === 'chunk-signature') signature = ext.slice(eq + 1).trim()
      }
    }
    if (this.#mode !== 'unsigned-trailer') {
      if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) throw new AwsChunkedError('IncompleteBody', 'A chunk of a signed aws-chunked body has no valid chunk-signature.')
      this.#chunkSignature = signature
    }
    // S3 checks the previous chunk's size when the next data chunk starts, and reports the new chunk's number.
    if (size > 0 && this.#chunkNumber > 1 && this.#chunkSize < this.#minChunk) {
      throw new AwsChunkedError('InvalidChunkSizeError', undefined, { Chunk: String(this.#chunkNumber), BadChunkSize: String(this.#chunkSize) })
    }
    if (size > this.#maxChunk) {
      throw new AwsChunkedError('InvalidChunkSizeError', `Chunk size ${size} exceeds the limit of ${this.#maxChunk} bytes`, { Chunk: String(this.#chunkNumber), BadChunkSize: String(size) })
    }
    if (this.#decodedLength !== undefined && this.#decoded + size > this.#decodedLength) {
      throw new AwsChunkedError('IncompleteBody', 'The aws-chunked body is longer than x-amz-decoded-content-length.')
    }
    this.#chunkSize = size
    if (size === 0) {
      this.#verifyChunk(EMPTY_SHA256)
      if (this.#decodedLength !== undefined && this.#decoded !== this.#decodedLength) {
        throw new AwsChunkedError('IncompleteBody', 'The aws-chunked body is shorter than x-amz-decoded-content-length.')
      }
      this.#state = 'trailer'
      return
    }
    this.#remaining = size
    this.#decoded += size
    this.#hash = this.#mode === 'unsigned-trailer' ? undefined : createHash('sha256')
    this.#state = 'data'
  }

  /** Checks the current chunk's signature (signed modes) and moves the chain on. */
  #verifyChunk (dataHash: string | undefined): void {
    if (this.#mode === 'unsigned-trailer') return
    const auth = this.#auth!
    const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${auth.amzDate}\n${auth.scope}\n${this.#previousSignature}\n${EMPTY_SHA256}\n${dataHash ?? EMPTY_SHA256}`
    this.#checkSignature(sts, this.#chunkSignature)
    this.#previousSignature = this.#chunkSignature
    this.#hash = undefined
  }

  #checkSignature (stringToSign: string, presented: string): void {
    const expected = hmac(this.#auth!.signingKey, stringToSign)
    const given = Buffer.from(presented, 'hex')
    if (presented.length !== 64 || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new S3AuthError('SignatureDoesNotMatch')
  }

  /** One line after the final chunk: a trailer, or the empty line that ends the body. */
  #onTrailerLine (line: string): void {
    this.#trailerBytes += line.length + 2
    if (line !== '') {
      const colon = line.indexOf(':')
      if (colon <= 0) throw new AwsChunkedError('MalformedTrailerError')
      this.#trailerLines.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()])
      return
    }
    const lines = this.#trailerLines
    if (this.#mode === 'signed') {
      if (lines.length > 0) throw new AwsChunkedError('MalformedTrailerError')
    } else if (this.#mode === 'signed-trailer') {
      const last = lines.pop()
      if (last === undefined || last[0] !== TRAILER_SIGNATURE || lines.some(([name]) => name === TRAILER_SIGNATURE)) {
        throw new AwsChunkedError('MalformedTrailerError')
      }
      const canonical = lines.map(([name, value]) => `${name}:${value}\n`).join('')
      const auth = this.#auth!
      this.#checkSignature(`AWS4-HMAC-SHA256-TRAILER\n${auth.amzDate}\n${auth.scope}\n${this.#previousSignature}\n${sha256Hex(canonical)}`, last[1])
    }
    for (const [name, value] of lines) {
      if (name === TRAILER_SIGNATURE || Object.hasOwn(this.trailers, name)) throw new AwsChunkedError('MalformedTrailerError')
      if (this.#trailerNames !== undefined && !this.#trailerNames.includes(name)) throw new AwsChunkedError('MalformedTrailerError')
      this.trailers[name] = value
    }
    for (const name of this.#trailerNames ?? []) {
      if (!Object.hasOwn(this.trailers, name)) throw new AwsChunkedError('MalformedTrailerError')
    }
    this.#state = 'done'
  }
}

/** A decoder for one request body; pipe the request into it and read the payload out. */
export function createAwsChunkedDecoder (options: AwsChunkedOptions): AwsChunkedDecoder {
  return new AwsChunkedDecoder(options)
}
