/**
 * The payload of a PutObject / UploadPart request as the core ingests it: the raw body, an
 * aws-chunked body decoded while it streams, or a body checked against the signed SHA-256; plus
 * the checksums the client sent (Content-MD5, `x-amz-checksum-*` as a header or a trailer).
 */
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { decodeChecksumValue, checksumHeaderName, parseChecksumHeaders } from '../../core/checksum/s3-checksums.js'
import { CacheError } from '../../errors.js'
import type { ExpectedChecksums } from '../../core/object-inputs.js'
import { awsChunkedMode, createAwsChunkedDecoder, type AwsChunkedDecoder } from './aws-chunked.js'
import { header, type S3Context } from './context.js'
import { S3Error } from './errors.js'
import { requestMd5 } from './headers.js'

export interface RequestPayload {
  body: Readable
  size: number
  expect: ExpectedChecksums
}

/** Fails the stream at its end when the payload's SHA-256 is not the signed one. */
class Sha256Check extends Transform {
  readonly #hash = createHash('sha256')
  constructor (private readonly expected: string) { super({ readableHighWaterMark: 1024 * 1024 }) }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk)
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    const actual = this.#hash.digest('hex')
    cb(actual === this.expected
      ? null
      : new S3Error(400, 'XAmzContentSHA256Mismatch', 'The provided \'x-amz-content-sha256\' header does not match what was computed.', { ClientComputedContentSHA256: this.expected, S3ComputedContentSHA256: actual }))
  }
}

function contentLength (ctx: S3Context): number {
  const v = header(ctx.raw.headers, 'content-length')
  if (v === undefined) throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.')
  if (!/^\d+$/.test(v)) throw new S3Error(400, 'InvalidArgument', 'Content-Length must be a non-negative integer.')
  return Number(v)
}

/** The request body as the core should ingest it, with the checksums to verify before commit. */
export function requestPayload (ctx: S3Context): RequestPayload {
  const { headers } = ctx.raw
  const checks = parseChecksumHeaders(headers)
  const md5 = requestMd5(headers)
  const mode = awsChunkedMode(ctx.auth.payload)
  let body: Readable = ctx.raw
  let size: number
  let decoder: AwsChunkedDecoder | undefined
  if (mode !== undefined) {
    const decoded = header(headers, 'x-amz-decoded-content-length')
    if (decoded === undefined) throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.')
    if (!/^\d+$/.test(decoded)) throw new S3Error(400, 'InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer.')
    size = Number(decoded)
    const trailer = header(headers, 'x-amz-trailer')
    decoder = createAwsChunkedDecoder({
      mode,
      auth: ctx.auth,
      decodedLength: size,
      ...(trailer === undefined || trailer === '' ? {} : { trailerNames: trailer.split(',') })
    })
    pipeline(ctx.raw, decoder, () => {})
    body = decoder
  } else {
    size = contentLength(ctx)
    if (ctx.auth.payload.kind === 'sha256') {
      const check = new Sha256Check(ctx.auth.payload.hex)
      pipeline(ctx.raw, check, () => {})
      body = check
    }
  }
  if (checks.trailer !== undefined && decoder === undefined) {
    throw new CacheError('CC_ERR_INVALID_INPUT', 'x-amz-trailer is only valid with an aws-chunked body.')
  }
  const expect: ExpectedChecksums = {}
  if (md5 !== undefined) expect.md5 = md5
  if (checks.header !== undefined) {
    const bytes = checks.header.bytes
    expect.additional = { algorithm: checks.header.algorithm, value: () => bytes }
  } else if (checks.trailer !== undefined && decoder !== undefined) {
    const { algorithm, name } = checks.trailer
    const d = decoder
    expect.additional = {
      algorithm,
      value: () => {
        const sent = d.trailers[name]
        if (sent === undefined) return undefined
        const bytes = decodeChecksumValue(algorithm, sent)
        if (bytes === undefined) throw new CacheError('CC_ERR_INVALID_INPUT', `Value for ${checksumHeaderName(algorithm)} trailing header is invalid.`)
        return bytes
      }
    }
  }
  return { body, size, expect }
}
