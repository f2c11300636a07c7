import { parseRange, resolveRange } from '../../core/range.js'
import { S3_CHECKSUM_ALGORITHMS } from '../../core/checksum/s3-checksums.js'
import { CacheError } from '../../errors.js'
import type { ByteRange, ObjectMeta } from '../../core/types.js'
import { header, type S3Context } from './context.js'
import { conditionsFromHeaders, setObjectReadHeaders } from './headers.js'

function requestedRange (ctx: S3Context, meta: ObjectMeta): ByteRange | undefined {
  const value = header(ctx.raw.headers, 'range')
  if (value === undefined) return undefined
  const spec = parseRange(value)
  if (spec === undefined) return undefined // S3 ignores a Range it cannot parse
  const r = resolveRange(spec, meta.size)
  if (r === 'unsatisfiable') throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: meta.size, range: value } })
  return r
}

/**
 * The stored additional checksum of a whole single-part object, when the client asked for it
 * (`x-amz-checksum-mode: ENABLED`). Never on a 206: the SDKs would check it against the range.
 */
function setChecksumHeaders (ctx: S3Context, meta: ObjectMeta): void {
  if (header(ctx.raw.headers, 'x-amz-checksum-mode')?.toUpperCase() !== 'ENABLED') return
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
    if (algorithm === 'md5') continue
    const value = meta.checksums[algorithm]
    if (value === undefined) continue
    ctx.reply.header(`x-amz-checksum-${algorithm}`, value)
    ctx.reply.header('x-amz-checksum-type', meta.checksums.checksumType ?? 'FULL_OBJECT')
    return
  }
}

function responseOverrides (ctx: S3Context): void {
  const map: Array<[string, string]> = [['response-content-type', 'content-type'], ['response-content-language', 'content-language'],
    ['response-expires', 'expires'], ['response-cache-control', 'cache-control'], ['response-content-disposition', 'content-disposition'],
    ['response-content-encoding', 'content-encoding']]
  for (const [param, name] of map) {
    const v = ctx.query.get(param)
    if (v !== null) ctx.reply.header(name, v)
  }
}

/** GetObject: GET /<bucket>/<key> (Range → 206 / 416; conditions → 412 / 304). */
export async function getObject (ctx: S3Context): Promise<void> {
  const meta = await ctx.service.lookup(ctx.bucket, ctx.key, conditionsFromHeaders(ctx.raw.headers), ctx.signal)
  const range = requestedRange(ctx, meta)
  const { reply } = ctx
  setObjectReadHeaders(reply, meta)
  responseOverrides(ctx)
  if (range === undefined) {
    setChecksumHeaders(ctx, meta)
    reply.header('content-length', String(meta.size))
    reply.code(200).send(ctx.service.read(meta, undefined, ctx.signal).body)
    return
  }
  reply.header('content-length', String(range.end - range.start + 1))
  reply.header('content-range', `bytes ${range.start}-${range.end}/${meta.size}`)
  reply.code(206).send(ctx.service.read(meta, range, ctx.signal).body)
}

/** HeadObject: HEAD /<bucket>/<key> */
export async function headObject (ctx: S3Context): Promise<void> {
  const meta = await ctx.service.lookup(ctx.bucket, ctx.key, conditionsFromHeaders(ctx.raw.headers), ctx.signal)
  const range = requestedRange(ctx, meta)
  setObjectReadHeaders(ctx.reply, meta)
  responseOverrides(ctx)
  if (range === undefined) {
    setChecksumHeaders(ctx, meta)
    ctx.reply.header('content-length', String(meta.size))
    ctx.reply.code(200).send()
    return
  }
  ctx.reply.header('content-length', String(range.end - range.start + 1))
  ctx.reply.header('content-range', `bytes ${range.start}-${range.end}/${meta.size}`)
  ctx.reply.code(206).send()
}
