import type { ByteRange } from '../../core/types.js'
import { MAX_BLOCK_PUT } from '../../core/object-inputs.js'
import { header, type S3Context } from './context.js'
import { headCopySource } from './copy-source.js'
import { S3Error } from './errors.js'
import { quoteEtag } from './headers.js'
import { checksumElement, partExpectations, partNumberParam, uploadIdParam, uploadState } from './multipart.js'
import { partBlockId } from './multipart-ids.js'
import { S3_NS, XML_DECL, el, escapeXml, isoTime } from './xml.js'

/** `x-amz-copy-source-range: bytes=first-last`, both within the source. */
function copyRange (value: string | undefined, size: number): ByteRange | undefined {
  if (value === undefined) return undefined
  const m = /^bytes=(\d+)-(\d+)$/.exec(value.trim())
  if (m === null) {
    throw new S3Error(400, 'InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: value })
  }
  const start = Number(m[1])
  const end = Number(m[2])
  if (start > end || end >= size) {
    throw new S3Error(400, 'InvalidArgument', `Range specified is not valid for source object of size: ${size}`, { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: value })
  }
  return { start, end }
}

/**
 * UploadPartCopy: PUT /<bucket>/<key>?partNumber=N&uploadId=U with `x-amz-copy-source` (and
 * optionally `x-amz-copy-source-range`): a part whose bytes come from a stored object (awscli
 * and rclone copy large objects this way). The part is a new staged file, read from the
 * source's pinned version.
 */
export async function uploadPartCopy (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const part = partNumberParam(ctx)
  uploadState(ctx, uploadId)
  const source = await headCopySource(ctx)
  const range = copyRange(header(ctx.raw.headers, 'x-amz-copy-source-range'), source.meta.size)
  const size = range === undefined ? source.meta.size : range.end - range.start + 1
  if (size > MAX_BLOCK_PUT) {
    throw new S3Error(400, 'InvalidRequest', `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_BLOCK_PUT}`)
  }
  const { body } = ctx.service.read(source.meta, range)
  const { block, checksums } = await ctx.service.stageBlock({
    container: ctx.bucket,
    name: ctx.key,
    blockId: (c) => partBlockId(uploadId, part, c.md5 as Buffer, c.additional),
    body,
    size,
    expect: partExpectations(uploadId, {}),
    signal: ctx.signal,
    md5: true
  })
  let xml = `${XML_DECL}<CopyPartResult xmlns="${S3_NS}">` + el('LastModified', isoTime(block.stagedMs)) +
    `<ETag>${escapeXml(quoteEtag((checksums.md5 as Buffer).toString('hex')))}</ETag>`
  if (checksums.additional !== undefined) {
    xml += checksumElement(checksums.additional.algorithm, checksums.additional.value.toString('base64'))
  }
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml + '</CopyPartResult>')
}
