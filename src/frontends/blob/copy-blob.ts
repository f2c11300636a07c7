import { randomUUID } from 'node:crypto'
import { CacheError, isCacheError } from '../../errors.js'
import { checkReadConditions } from '../../core/conditions.js'
import type { BlobContext } from './context.js'
import { BlobError } from './errors.js'
import { conditionsFromHeaders, header, metadataFromHeaders } from './headers.js'
import { setWriteHeaders, validateBlobName } from './blob-write.js'

/** Resolves `x-ms-copy-source` to a blob of this account: path-style `/<account>/<container>/<blob>`. */
function copySource (ctx: BlobContext, value: string): { container: string, name: string } {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new BlobError(400, 'InvalidHeaderValue', 'The value for one of the HTTP headers is not in the correct format. Header: x-ms-copy-source')
  }
  const segments = url.pathname.split('/')
  // ['', account, container, ...blob]
  if (segments.length < 4 || segments[1] !== ctx.account) {
    throw new CacheError('CC_ERR_COPY_SOURCE_NOT_FOUND', 'Copy sources outside this account are not supported by the gateway.')
  }
  try {
    return {
      container: decodeURIComponent(segments[2] as string),
      name: decodeURIComponent(segments.slice(3).join('/'))
    }
  } catch {
    throw new BlobError(400, 'InvalidHeaderValue', 'The value for one of the HTTP headers is not in the correct format. Header: x-ms-copy-source')
  }
}

/**
 * Copy Blob (PUT with x-ms-copy-source) and Copy Blob From URL
 * (x-ms-requires-sync: true) within the gateway. The copy is synchronous
 * (hard links, no data copied) and reports `x-ms-copy-status: success`.
 */
export async function copyBlob (ctx: BlobContext): Promise<void> {
  validateBlobName(ctx.blob)
  const src = copySource(ctx, header(ctx.raw.headers, 'x-ms-copy-source') as string)
  let source
  try {
    source = await ctx.service.lookup(src.container, src.name, undefined, ctx.signal)
  } catch (err) {
    if (isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND') || isCacheError(err, 'CC_ERR_CONTAINER_NOT_FOUND')) {
      throw new CacheError('CC_ERR_COPY_SOURCE_NOT_FOUND', undefined, { cause: err })
    }
    throw err
  }
  try {
    checkReadConditions(source, conditionsFromHeaders(ctx.raw.headers, 'x-ms-source-'))
  } catch (err) {
    if (isCacheError(err)) throw new BlobError(412, 'SourceConditionNotMet', 'The source condition specified using HTTP conditional header(s) is not met.')
    throw err
  }
  const metadata = metadataFromHeaders(ctx.raw.rawHeaders)
  const meta = await ctx.service.copyObject({
    source,
    container: ctx.container,
    name: ctx.blob,
    ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
    conditions: conditionsFromHeaders(ctx.raw.headers)
  })
  setWriteHeaders(ctx, meta)
  ctx.reply.header('x-ms-copy-id', randomUUID())
  ctx.reply.header('x-ms-copy-status', 'success')
  if (header(ctx.raw.headers, 'x-ms-requires-sync') === 'true' && meta.content.contentMd5 !== undefined) {
    ctx.reply.header('content-md5', meta.content.contentMd5)
  }
  ctx.reply.code(202).send()
}

/** Abort Copy Blob: copies finish before they are acknowledged, so there is never one to abort. */
export async function abortCopy (ctx: BlobContext): Promise<void> {
  ctx.service.head(ctx.container, ctx.blob)
  throw new BlobError(409, 'NoPendingCopyOperation', 'There is currently no pending copy operation.')
}
