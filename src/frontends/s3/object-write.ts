import { createHash } from 'node:crypto'
import { checksumHeaderName, parseChecksumHeaders, s3Checksum } from '../../core/checksum/s3-checksums.js'
import { CacheError, isCacheError } from '../../errors.js'
import { requestPayload } from './body.js'
import { header, invalidArgument, readSmallBody, type S3Context } from './context.js'
import { headCopySource } from './copy-source.js'
import { isDirectoryBucket } from './directory-buckets.js'
import { S3Error } from './errors.js'
import { conditionsFromHeaders, contentHeadersFrom, httpDate, metadataFromHeaders, quoteEtag, requestMd5, writeConditions } from './headers.js'
import { S3_NS, XML_DECL, el, escapeXml, isoTime, malformedXml, rootElement } from './xml.js'

/** S3 keys: 1–1024 bytes of UTF-8. */
export function validateKey (key: string): void {
  if (key.length === 0 || Buffer.byteLength(key) > 1024) {
    throw new S3Error(400, 'KeyTooLongError', 'Your key is too long', { MaxSizeAllowed: '1024', Size: String(Buffer.byteLength(key)) })
  }
}

/**
 * PutObject: PUT /<bucket>/<key>. The ETag is the content's MD5 (hex), as S3 clients expect,
 * except in directory buckets, where it is opaque (as in S3 Express) and no MD5 is computed at
 * all unless the client sent a Content-MD5 to check.
 *
 * With `x-amz-write-offset-bytes: N` (directory buckets only) the body is appended to the
 * object, whose size must be N (0 creates it); the answer also has the new size
 * (`x-amz-object-size`). Content headers and `x-amz-meta-*` apply only to an object the
 * append creates.
 */
export async function putObject (ctx: S3Context): Promise<void> {
  validateKey(ctx.key)
  const { headers } = ctx.raw
  const offset = appendOffset(ctx)
  const conditions = writeConditions(ctx)
  const { body, size, expect } = requestPayload(ctx)
  const input = {
    container: ctx.bucket,
    name: ctx.key,
    body,
    size,
    content: contentHeadersFrom(headers),
    metadata: metadataFromHeaders(headers),
    ...(conditions === undefined ? {} : { conditions }),
    expect,
    signal: ctx.signal
  }
  const { meta, checksums } = offset === undefined
    ? await ctx.service.putObject({ ...input, md5Etag: !isDirectoryBucket(ctx.bucket), contentMd5: !isDirectoryBucket(ctx.bucket) })
    : await ctx.service.appendObject({ ...input, offset })
  ctx.reply.header('etag', quoteEtag(meta.etag))
  if (offset !== undefined) ctx.reply.header('x-amz-object-size', String(meta.size))
  if (checksums.additional !== undefined) {
    ctx.reply.header(checksumHeaderName(checksums.additional.algorithm), checksums.additional.value.toString('base64'))
    ctx.reply.header('x-amz-checksum-type', 'FULL_OBJECT')
  }
  ctx.reply.code(200).send()
}

/** `x-amz-write-offset-bytes`, if the request is an append: a directory bucket's only. */
function appendOffset (ctx: S3Context): number | undefined {
  const value = header(ctx.raw.headers, 'x-amz-write-offset-bytes')
  if (value === undefined) return undefined
  if (!isDirectoryBucket(ctx.bucket)) {
    throw new S3Error(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented', { Header: 'x-amz-write-offset-bytes' })
  }
  const offset = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(offset)) {
    throw invalidArgument('x-amz-write-offset-bytes must be a non-negative integer', 'x-amz-write-offset-bytes', value)
  }
  return offset
}

/** DeleteObject: DELETE /<bucket>/<key>; 204 whether or not the key existed (unless a condition was given). */
export async function deleteObject (ctx: S3Context): Promise<void> {
  const conditions = conditionsFromHeaders(ctx.raw.headers)
  try {
    await ctx.service.deleteObject(ctx.bucket, ctx.key, conditions)
  } catch (err) {
    if (!(isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND') && conditions === undefined)) throw err
  }
  ctx.reply.code(204).send()
}

const MAX_DELETE_KEYS = 1000
const MAX_DELETE_BODY = 2 * 1024 * 1024

/** DeleteObjects: POST /<bucket>?delete with `<Delete><Quiet/><Object><Key/></Object>…</Delete>`. */
export async function deleteObjects (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  const { headers } = ctx.raw
  const body = await readSmallBody(ctx.raw, MAX_DELETE_BODY)
  const md5 = requestMd5(headers)
  if (md5 !== undefined && !md5.equals(createHash('md5').update(body).digest())) throw new CacheError('CC_ERR_MD5_MISMATCH')
  const checks = parseChecksumHeaders(headers)
  if (checks.header !== undefined && s3Checksum(checks.header.algorithm, body) !== checks.header.bytes.toString('base64')) {
    throw new CacheError('CC_ERR_CHECKSUM_MISMATCH', `The ${checks.header.algorithm.toUpperCase()} you specified did not match the calculated checksum.`)
  }
  const root = rootElement(body.toString('utf8'), 'Delete')
  let quiet = false
  const keys: string[] = []
  for (const child of root.children) {
    if (child.name === 'Quiet') quiet = child.text.trim() === 'true'
    else if (child.name === 'Object') {
      const key = child.children.find((c) => c.name === 'Key')
      if (key === undefined) throw malformedXml()
      keys.push(key.text)
    } else throw malformedXml()
  }
  if (keys.length === 0 || keys.length > MAX_DELETE_KEYS) throw malformedXml()
  let xml = `${XML_DECL}<DeleteResult xmlns="${S3_NS}">`
  for (const key of keys) {
    try {
      await ctx.service.deleteObject(ctx.bucket, key)
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND')) {
        ctx.req.log.warn({ err, key }, 'DeleteObjects: one key failed')
        xml += `<Error>${el('Key', key)}${el('Code', 'InternalError')}${el('Message', 'We encountered an internal error. Please try again.')}</Error>`
        continue
      }
    }
    if (!quiet) xml += `<Deleted>${el('Key', key)}</Deleted>`
  }
  xml += '</DeleteResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** An ETag that says something about the content (MD5, or S3's multipart form) survives a copy. */
const CONTENT_ETAG = /^[0-9a-f]{32}(-\d+)?$/

/** CopyObject: PUT /<bucket>/<key> with x-amz-copy-source (metadata directive COPY or REPLACE). */
export async function copyObject (ctx: S3Context): Promise<void> {
  validateKey(ctx.key)
  const { headers } = ctx.raw
  const { bucket: srcBucket, key: srcKey, meta: source } = await headCopySource(ctx)
  const directive = (header(headers, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase()
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error(400, 'InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive })
  }
  if (directive === 'COPY' && srcBucket === ctx.bucket && srcKey === ctx.key) {
    throw new S3Error(400, 'InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.')
  }
  const conditions = writeConditions(ctx)
  const meta = await ctx.service.copyObject({
    source,
    container: ctx.bucket,
    name: ctx.key,
    ...(directive === 'REPLACE' ? { content: { ...contentHeadersFrom(headers), ...(source.content.contentMd5 === undefined ? {} : { contentMd5: source.content.contentMd5 }) }, metadata: metadataFromHeaders(headers) } : {}),
    ...(conditions === undefined ? {} : { conditions }),
    ...(CONTENT_ETAG.test(source.etag) ? { etag: source.etag } : {})
  })
  ctx.reply.header('last-modified', httpDate(meta.lastModifiedMs))
  ctx.reply.code(200).header('content-type', 'application/xml')
    .send(`${XML_DECL}<CopyObjectResult xmlns="${S3_NS}"><ETag>${escapeXml(quoteEtag(meta.etag))}</ETag>${el('LastModified', isoTime(meta.lastModifiedMs))}</CopyObjectResult>`)
}
