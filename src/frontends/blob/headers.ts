import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import { conditionsFromHeaders as readConditions } from '../shared/conditions.js'
import type { Conditions, ContentHeaders, ObjectMeta, UserMetadata } from '../../core/types.js'
import { setTierStateHeader } from '../shared/tier-state.js'
import { BlobError } from './errors.js'

/** A header's single value (first one if repeated). */
export function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

export function httpDate (ms: number): string {
  return new Date(ms).toUTCString()
}

export function quoteEtag (etag: string): string {
  return `"${etag}"`
}

const METADATA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const META_PREFIX = 'x-ms-meta-'

/**
 * User metadata from `x-ms-meta-*` headers, names in the case the client sent
 * them (node lowercases `headers`; `rawHeaders` keeps the original case).
 * Names must be C# identifiers, as Azure requires.
 */
export function metadataFromHeaders (rawHeaders: string[]): UserMetadata {
  const out: UserMetadata = {}
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i] as string
    if (raw.length <= META_PREFIX.length || raw.slice(0, META_PREFIX.length).toLowerCase() !== META_PREFIX) continue
    const name = raw.slice(META_PREFIX.length)
    if (!METADATA_NAME.test(name)) {
      throw new BlobError(400, 'InvalidMetadata', 'The metadata specified is invalid. It has characters that are not permitted.')
    }
    for (const existing of Object.keys(out)) if (existing.toLowerCase() === name.toLowerCase()) delete out[existing]
    out[name] = (rawHeaders[i + 1] as string).trim()
  }
  return out
}

/**
 * Writes user metadata as `x-ms-meta-*` response headers in the case the
 * client stored them (set on the raw response: the framework lowercases).
 */
export function setMetadataHeaders (reply: FastifyReply, metadata: UserMetadata): void {
  for (const [k, v] of Object.entries(metadata)) reply.raw.setHeader(META_PREFIX + k, v)
}

/** If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (or their `x-ms-source-` forms); a bad date is 400 InvalidHeaderValue. */
export function conditionsFromHeaders (headers: IncomingHttpHeaders, prefix = ''): Conditions | undefined {
  return readConditions(headers, prefix, (name) => {
    throw new BlobError(400, 'InvalidHeaderValue', `The value for one of the HTTP headers is not in the correct format. Header: ${name}`)
  })
}

function decodeMd5 (value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === '') return undefined
  const b = Buffer.from(value, 'base64')
  if (b.length !== 16) throw new BlobError(400, 'InvalidHeaderValue', `The value for one of the HTTP headers is not in the correct format. Header: ${name}`)
  return b.toString('base64')
}

/**
 * The blob's content headers for a write. `x-ms-blob-*` wins over the plain
 * header (Put Blob accepts both; Put Block List and Set Blob Properties only
 * the `x-ms-blob-*` forms).
 */
export function contentHeadersFrom (headers: IncomingHttpHeaders, opts: { plain: boolean, defaultType?: string }): ContentHeaders {
  const pick = (xms: string, plain: string): string | undefined => {
    const v = header(headers, xms) ?? (opts.plain ? header(headers, plain) : undefined)
    return v === undefined || v === '' ? undefined : v
  }
  const c: ContentHeaders = {}
  const type = pick('x-ms-blob-content-type', 'content-type') ?? opts.defaultType
  if (type !== undefined) c.contentType = type
  const enc = pick('x-ms-blob-content-encoding', 'content-encoding')
  if (enc !== undefined) c.contentEncoding = enc
  const lang = pick('x-ms-blob-content-language', 'content-language')
  if (lang !== undefined) c.contentLanguage = lang
  const disp = pick('x-ms-blob-content-disposition', 'content-disposition')
  if (disp !== undefined) c.contentDisposition = disp
  const cc = pick('x-ms-blob-cache-control', 'cache-control')
  if (cc !== undefined) c.cacheControl = cc
  const md5 = decodeMd5(header(headers, 'x-ms-blob-content-md5'), 'x-ms-blob-content-md5')
  if (md5 !== undefined) c.contentMd5 = md5
  return c
}

/** The transactional Content-MD5 of a request body, if sent. */
export function requestMd5 (headers: IncomingHttpHeaders): Buffer | undefined {
  const v = decodeMd5(header(headers, 'content-md5'), 'Content-MD5')
  return v === undefined ? undefined : Buffer.from(v, 'base64')
}

/** The transactional x-ms-content-crc64 of a request body, if sent. */
export function requestCrc64 (headers: IncomingHttpHeaders): Buffer | undefined {
  const v = header(headers, 'x-ms-content-crc64')
  if (v === undefined || v === '') return undefined
  const b = Buffer.from(v, 'base64')
  if (b.length !== 8) throw new BlobError(400, 'InvalidHeaderValue', 'The value for one of the HTTP headers is not in the correct format. Header: x-ms-content-crc64')
  return b
}

/** Content-Length of a write; Azure requires it. */
export function requiredContentLength (headers: IncomingHttpHeaders): number {
  const v = header(headers, 'content-length')
  if (v === undefined) {
    if (header(headers, 'transfer-encoding') !== undefined) {
      throw new BlobError(400, 'UnsupportedHeader', 'One of the HTTP headers specified in the request is not supported. Header: Transfer-Encoding')
    }
    throw new BlobError(411, 'MissingContentLengthHeader', 'Content-Length HTTP header is missing.')
  }
  if (!/^\d+$/.test(v)) throw new BlobError(400, 'InvalidHeaderValue', 'The value for one of the HTTP headers is not in the correct format. Header: Content-Length')
  return Number(v)
}

/** Properties every blob read (GET/HEAD) carries. */
export function setBlobReadHeaders (reply: FastifyReply, meta: ObjectMeta): void {
  setTierStateHeader(reply, meta)
  reply.header('last-modified', httpDate(meta.lastModifiedMs))
  reply.header('x-ms-creation-time', httpDate(meta.createdMs))
  reply.header('etag', quoteEtag(meta.etag))
  reply.header('content-type', meta.content.contentType ?? 'application/octet-stream')
  if (meta.content.contentEncoding !== undefined) reply.header('content-encoding', meta.content.contentEncoding)
  if (meta.content.contentLanguage !== undefined) reply.header('content-language', meta.content.contentLanguage)
  if (meta.content.contentDisposition !== undefined) reply.header('content-disposition', meta.content.contentDisposition)
  if (meta.content.cacheControl !== undefined) reply.header('cache-control', meta.content.cacheControl)
  setMetadataHeaders(reply, meta.metadata)
  reply.header('x-ms-blob-type', 'BlockBlob')
  reply.header('x-ms-lease-state', 'available')
  reply.header('x-ms-lease-status', 'unlocked')
  reply.header('x-ms-server-encrypted', 'true')
  reply.header('accept-ranges', 'bytes')
}
