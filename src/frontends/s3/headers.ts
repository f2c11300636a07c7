import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import { conditionsFromHeaders as readConditions } from '../shared/conditions.js'
import type { Conditions, ContentHeaders, ObjectMeta, UserMetadata } from '../../core/types.js'
import { S3Error } from './errors.js'
import { setTierStateHeader } from '../shared/tier-state.js'
import { header, type S3Context } from './context.js'

const META_PREFIX = 'x-amz-meta-'
/** S3 limits user metadata to 2 KB (names and values, UTF-8). */
const MAX_METADATA_BYTES = 2048

export function httpDate (ms: number): string {
  return new Date(ms).toUTCString()
}

export function quoteEtag (etag: string): string {
  return `"${etag}"`
}

/** User metadata from `x-amz-meta-*` headers; S3 keeps names lowercase. */
export function metadataFromHeaders (headers: IncomingHttpHeaders): UserMetadata {
  const out: UserMetadata = {}
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(META_PREFIX) || name.length === META_PREFIX.length || value === undefined) continue
    const v = Array.isArray(value) ? value.join(',') : value
    const key = name.slice(META_PREFIX.length)
    out[key] = v.trim()
    bytes += Buffer.byteLength(key) + Buffer.byteLength(v)
  }
  if (bytes > MAX_METADATA_BYTES) throw new S3Error(400, 'MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size', { Size: String(bytes), MaxSizeAllowed: String(MAX_METADATA_BYTES) })
  return out
}

/** `x-amz-meta-*` response headers (lowercase names, as S3 sends them). */
export function setMetadataHeaders (reply: FastifyReply, metadata: UserMetadata): void {
  for (const [k, v] of Object.entries(metadata)) reply.raw.setHeader(META_PREFIX + k.toLowerCase(), v)
}

/** If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (or their `x-amz-copy-source-` forms); S3 ignores a date it cannot parse. */
export function conditionsFromHeaders (headers: IncomingHttpHeaders, prefix = ''): Conditions | undefined {
  return readConditions(headers, prefix, () => undefined)
}

/**
 * The preconditions of a write (PutObject, an append, CompleteMultipartUpload, CopyObject's
 * destination). S3 answers If-Match on a key with no object 404 NoSuchKey, not 412.
 */
export function writeConditions (ctx: S3Context): Conditions | undefined {
  const conditions = conditionsFromHeaders(ctx.raw.headers)
  if (conditions?.ifMatch !== undefined) ctx.service.head(ctx.bucket, ctx.key)
  return conditions
}

/** Content headers of a write (PutObject, CreateMultipartUpload, CopyObject REPLACE). */
export function contentHeadersFrom (headers: IncomingHttpHeaders): ContentHeaders {
  const c: ContentHeaders = {}
  const pick = (name: string): string | undefined => {
    const v = header(headers, name)
    return v === undefined || v === '' ? undefined : v
  }
  c.contentType = pick('content-type') ?? 'binary/octet-stream'
  // aws-chunked is the transfer framing, not a content coding of the object.
  const enc = pick('content-encoding')?.split(',').map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== 'aws-chunked').join(', ')
  if (enc !== undefined && enc !== '') c.contentEncoding = enc
  const lang = pick('content-language')
  if (lang !== undefined) c.contentLanguage = lang
  const disp = pick('content-disposition')
  if (disp !== undefined) c.contentDisposition = disp
  const cc = pick('cache-control')
  if (cc !== undefined) c.cacheControl = cc
  return c
}

/** The Content-MD5 of a request body, if sent. */
export function requestMd5 (headers: IncomingHttpHeaders): Buffer | undefined {
  const v = header(headers, 'content-md5')
  if (v === undefined || v === '') return undefined
  const b = Buffer.from(v, 'base64')
  if (b.length !== 16 || b.toString('base64') !== v.trim()) throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.')
  return b
}

/** Properties every object read (GET/HEAD) carries. */
export function setObjectReadHeaders (reply: FastifyReply, meta: ObjectMeta): void {
  setTierStateHeader(reply, meta)
  reply.header('last-modified', httpDate(meta.lastModifiedMs))
  reply.header('etag', quoteEtag(meta.etag))
  reply.header('content-type', meta.content.contentType ?? 'binary/octet-stream')
  if (meta.content.contentEncoding !== undefined) reply.header('content-encoding', meta.content.contentEncoding)
  if (meta.content.contentLanguage !== undefined) reply.header('content-language', meta.content.contentLanguage)
  if (meta.content.contentDisposition !== undefined) reply.header('content-disposition', meta.content.contentDisposition)
  if (meta.content.cacheControl !== undefined) reply.header('cache-control', meta.content.cacheControl)
  setMetadataHeaders(reply, meta.metadata)
  reply.header('accept-ranges', 'bytes')
}
