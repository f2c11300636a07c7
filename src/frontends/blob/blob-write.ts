import { CacheError } from '../../errors.js'
import type { BlobContext } from './context.js'
import { BlobError } from './errors.js'
import {
  conditionsFromHeaders, contentHeadersFrom, header, httpDate, metadataFromHeaders, quoteEtag,
  requestCrc64, requestMd5, requiredContentLength
} from './headers.js'
import type { ObjectMeta } from '../../core/types.js'

const MAX_BLOB_NAME = 1024

/** Azure blob names: 1–1024 characters. */
export function validateBlobName (name: string): void {
  if (name.length === 0 || name.length > MAX_BLOB_NAME) {
    throw new BlobError(400, 'InvalidResourceName', 'The specifed resource name contains invalid characters.')
  }
}

export function requireBlockBlob (ctx: BlobContext): void {
  const type = header(ctx.raw.headers, 'x-ms-blob-type')
  if (type === undefined) {
    throw new BlobError(400, 'MissingRequiredHeader', 'An HTTP header that\'s mandatory for this request is not specified.', { 'x-ms-missing-header': 'x-ms-blob-type' })
  }
  if (type !== 'BlockBlob') {
    throw new BlobError(400, 'InvalidHeaderValue', `The value for one of the HTTP headers is not in the correct format. Only BlockBlob is supported; x-ms-blob-type: ${type}`)
  }
}

export function setWriteHeaders (ctx: BlobContext, meta: ObjectMeta): void {
  ctx.reply.header('etag', quoteEtag(meta.etag))
  ctx.reply.header('last-modified', httpDate(meta.lastModifiedMs))
  ctx.reply.header('x-ms-request-server-encrypted', 'true')
}

/** Put Blob: PUT /<account>/<container>/<blob> with x-ms-blob-type: BlockBlob */
export async function putBlob (ctx: BlobContext): Promise<void> {
  validateBlobName(ctx.blob)
  requireBlockBlob(ctx)
  const { headers } = ctx.raw
  const size = requiredContentLength(headers)
  const content = contentHeadersFrom(headers, { plain: true, defaultType: 'application/octet-stream' })
  const crc64 = requestCrc64(headers)
  // Put Blob checks the transactional Content-MD5 and the stored x-ms-blob-content-md5 alike.
  const sentMd5 = requestMd5(headers)
  const propertyMd5 = content.contentMd5 === undefined ? undefined : Buffer.from(content.contentMd5, 'base64')
  if (sentMd5 !== undefined && propertyMd5 !== undefined && !sentMd5.equals(propertyMd5)) throw new CacheError('CC_ERR_MD5_MISMATCH')
  const md5 = sentMd5 ?? propertyMd5
  const { meta, checksums } = await ctx.service.putObject({
    container: ctx.container,
    name: ctx.blob,
    body: ctx.raw,
    size,
    content,
    metadata: metadataFromHeaders(ctx.raw.rawHeaders),
    conditions: conditionsFromHeaders(headers),
    expect: { ...(md5 === undefined ? {} : { md5 }), ...(crc64 === undefined ? {} : { crc64 }) },
    signal: ctx.signal
  })
  setWriteHeaders(ctx, meta)
  if (checksums.md5 !== undefined) ctx.reply.header('content-md5', checksums.md5.toString('base64'))
  if (checksums.crc64 !== undefined) ctx.reply.header('x-ms-content-crc64', checksums.crc64.toString('base64'))
  ctx.reply.code(201).send()
}

/** Set Blob Metadata: PUT ?comp=metadata */
export async function setBlobMetadata (ctx: BlobContext): Promise<void> {
  const meta = await ctx.service.updateObject(ctx.container, ctx.blob,
    { metadata: metadataFromHeaders(ctx.raw.rawHeaders) }, conditionsFromHeaders(ctx.raw.headers))
  setWriteHeaders(ctx, meta)
  ctx.reply.code(200).send()
}

/** Set Blob Properties: PUT ?comp=properties. Every content header is replaced; one not sent is cleared. */
export async function setBlobProperties (ctx: BlobContext): Promise<void> {
  if (header(ctx.raw.headers, 'x-ms-blob-content-length') !== undefined || header(ctx.raw.headers, 'x-ms-sequence-number-action') !== undefined) {
    throw new BlobError(400, 'InvalidHeaderValue', 'Page blob properties are not supported: only block blobs are stored.')
  }
  const meta = await ctx.service.updateObject(ctx.container, ctx.blob,
    { content: contentHeadersFrom(ctx.raw.headers, { plain: false }) }, conditionsFromHeaders(ctx.raw.headers))
  setWriteHeaders(ctx, meta)
  ctx.reply.code(200).send()
}

/** Delete Blob: DELETE /<account>/<container>/<blob> */
export async function deleteBlob (ctx: BlobContext): Promise<void> {
  if (ctx.query.has('snapshot') || ctx.query.has('versionid')) {
    throw new BlobError(404, 'BlobNotFound', 'The specified blob does not exist.')
  }
  await ctx.service.deleteObject(ctx.container, ctx.blob, conditionsFromHeaders(ctx.raw.headers))
  ctx.reply.header('x-ms-delete-type-permanent', 'true')
  ctx.reply.code(202).send()
}
