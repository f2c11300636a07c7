import { createHash } from 'node:crypto'
import { CacheError } from '../../errors.js'
import { parseRange, resolveRange } from '../../core/range.js'
import type { ByteRange, ObjectMeta } from '../../core/types.js'
import type { BlobContext } from './context.js'
import { BlobError } from './errors.js'
import { conditionsFromHeaders, header, httpDate, quoteEtag, setBlobReadHeaders, setMetadataHeaders } from './headers.js'

/** Largest range Azure returns a range MD5 for (x-ms-range-get-content-md5). */
const RANGE_MD5_MAX = 4 * 1024 * 1024

function requestedRange (ctx: BlobContext, meta: ObjectMeta): ByteRange | undefined {
  const xms = header(ctx.raw.headers, 'x-ms-range')
  const value = xms ?? header(ctx.raw.headers, 'range')
  if (value === undefined) return undefined
  const spec = parseRange(value)
  if (spec === undefined) {
    if (xms !== undefined) throw new BlobError(400, 'InvalidHeaderValue', 'The value for one of the HTTP headers is not in the correct format. Header: x-ms-range')
    return undefined // A Range header HTTP cannot parse is ignored.
  }
  const r = resolveRange(spec, meta.size)
  if (r === 'unsatisfiable') throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: meta.size } })
  return r
}

async function readAll (stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c)
  return Buffer.concat(chunks)
}

/** Get Blob: GET /<account>/<container>/<blob> */
export async function getBlob (ctx: BlobContext): Promise<void> {
  const meta = await ctx.service.lookup(ctx.container, ctx.blob, conditionsFromHeaders(ctx.raw.headers), ctx.signal)
  const range = requestedRange(ctx, meta)
  const wantRangeMd5 = header(ctx.raw.headers, 'x-ms-range-get-content-md5') === 'true'
  if (wantRangeMd5 && (range === undefined || range.end - range.start + 1 > RANGE_MD5_MAX)) {
    throw new BlobError(400, 'OutOfRangeInput', 'One of the request inputs is out of range.')
  }
  const { reply } = ctx
  setBlobReadHeaders(reply, meta)
  applySasOverrides(ctx)
  if (range === undefined) {
    reply.header('content-length', String(meta.size))
    if (meta.content.contentMd5 !== undefined) reply.header('content-md5', meta.content.contentMd5)
    reply.code(200).send(ctx.service.read(meta, undefined, ctx.signal).body)
    return
  }
  reply.header('content-length', String(range.end - range.start + 1))
  reply.header('content-range', `bytes ${range.start}-${range.end}/${meta.size}`)
  if (meta.content.contentMd5 !== undefined) reply.header('x-ms-blob-content-md5', meta.content.contentMd5)
  const body = ctx.service.read(meta, range, ctx.signal).body
  if (wantRangeMd5) {
    const data = await readAll(body)
    reply.header('content-md5', createHash('md5').update(data).digest('base64'))
    reply.code(206).send(data)
    return
  }
  reply.code(206).send(body)
}

/** A service SAS's response-header overrides (rscc, rscd, rsce, rscl, rsct) apply to reads. */
function applySasOverrides (ctx: BlobContext): void {
  if (ctx.auth.kind !== 'sas' || ctx.auth.grant.kind !== 'service') return
  for (const [name, value] of Object.entries(ctx.auth.grant.responseHeaders)) {
    // Header values travel as Latin-1: send the UTF-8 bytes of the signed value.
    if (value !== undefined && value !== '') ctx.reply.header(name, Buffer.from(value, 'utf8').toString('latin1'))
  }
}

/** Get Blob Properties: HEAD /<account>/<container>/<blob> */
export async function getBlobProperties (ctx: BlobContext): Promise<void> {
  const meta = await ctx.service.lookup(ctx.container, ctx.blob, conditionsFromHeaders(ctx.raw.headers), ctx.signal)
  const { reply } = ctx
  setBlobReadHeaders(reply, meta)
  applySasOverrides(ctx)
  reply.header('content-length', String(meta.size))
  if (meta.content.contentMd5 !== undefined) reply.header('content-md5', meta.content.contentMd5)
  reply.header('x-ms-access-tier', 'Hot')
  reply.header('x-ms-access-tier-inferred', 'true')
  reply.code(200).send()
}

/** Get Blob Metadata: GET|HEAD ?comp=metadata */
export async function getBlobMetadata (ctx: BlobContext): Promise<void> {
  const meta = await ctx.service.lookup(ctx.container, ctx.blob, conditionsFromHeaders(ctx.raw.headers), ctx.signal)
  ctx.reply.header('etag', quoteEtag(meta.etag))
  ctx.reply.header('last-modified', httpDate(meta.lastModifiedMs))
  setMetadataHeaders(ctx.reply, meta.metadata)
  ctx.reply.code(200).send()
}
