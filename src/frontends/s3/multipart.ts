/**
 * Multipart uploads on the core's staged blocks (the layout is in multipart-ids.ts):
 * CreateMultipartUpload, UploadPart, ListParts, AbortMultipartUpload, ListMultipartUploads.
 * CompleteMultipartUpload is in complete-multipart.ts, UploadPartCopy in upload-part-copy.ts.
 * Staged blocks survive restarts and expire with `--staged-block-max-age`.
 */
import { Readable } from 'node:stream'
import { checksumHeaderName, parseChecksumHeaders, s3AlgorithmName } from '../../core/checksum/s3-checksums.js'
import { isCombinableCrc } from '../../core/checksum/crc-combine.js'
import { CacheError } from '../../errors.js'
import type { ContentHeaders, StagedBlock, UserMetadata } from '../../core/types.js'
import type { ExpectedChecksums } from '../../core/object-inputs.js'
import { requestPayload } from './body.js'
import { intParam, invalidArgument, type S3Context } from './context.js'
import { S3Error } from './errors.js'
import { contentHeadersFrom, metadataFromHeaders, quoteEtag } from './headers.js'
import { isPartChecksumAlgorithm, isUploadId, newUploadId, parseBlockId, partBlockId, recordBlockId, uploadChecksum, type ChecksumType, type PartChecksum, type UploadChecksum } from './multipart-ids.js'
import { validateKey } from './object-write.js'
import { S3_NS, XML_DECL, el, escapeXml, isoTime, urlEncodeKey } from './xml.js'

export const MAX_PART_NUMBER = 10_000

/** What CreateMultipartUpload stores for CompleteMultipartUpload. */
export interface UploadRecord {
  content: ContentHeaders
  metadata: UserMetadata
  initiatedMs: number
}

export interface StagedPart {
  block: StagedBlock
  part: number
  /** hex */
  md5: string
  checksum?: PartChecksum
}

export interface UploadState {
  record: StagedBlock
  /** The latest staging of each part number. */
  parts: Map<number, StagedPart>
  /** Every staged part version, by `<part number>:<md5 hex>`. */
  all: Map<string, StagedPart>
}

export function noSuchUpload (): S3Error {
  return new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.')
}

export function uploadIdParam (ctx: S3Context): string {
  const id = ctx.query.get('uploadId') ?? ''
  if (!isUploadId(id)) throw noSuchUpload()
  return id
}

export function partNumberParam (ctx: S3Context): number {
  const v = ctx.query.get('partNumber') ?? ''
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > MAX_PART_NUMBER) {
    throw invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', v)
  }
  return Number(v)
}

/** The upload's record block and its parts; NoSuchUpload if it has no record (never created, completed or aborted). */
export function uploadState (ctx: S3Context, uploadId: string): UploadState {
  ctx.service.getContainer(ctx.bucket)
  let record: StagedBlock | undefined
  const parts = new Map<number, StagedPart>()
  const all = new Map<string, StagedPart>()
  for (const block of ctx.service.stagedBlocks(ctx.bucket, ctx.key)) {
    const p = parseBlockId(block.blockId)
    if (p === undefined || p.uploadId !== uploadId) continue
    if (p.md5 === undefined) {
      record = block
      continue
    }
    const staged: StagedPart = { block, part: p.part, md5: p.md5, ...(p.checksum === undefined ? {} : { checksum: p.checksum }) }
    // stagedBlocks() is in staging order: a later upload of a part number wins.
    parts.set(p.part, staged)
    all.set(`${p.part}:${p.md5}`, staged)
  }
  if (record === undefined) throw noSuchUpload()
  return { record, parts, all }
}

function invalidRequest (message: string): CacheError {
  return new CacheError('CC_ERR_INVALID_INPUT', message)
}

/**
 * The checksum an upload is created with (`x-amz-checksum-algorithm`, `x-amz-checksum-type`):
 * CRC64NVME is always FULL_OBJECT, SHA-1/SHA-256 always COMPOSITE, CRC32/CRC32C either
 * (COMPOSITE unless asked).
 */
function requestedUploadChecksum (ctx: S3Context): UploadChecksum | undefined {
  const checks = parseChecksumHeaders(ctx.raw.headers)
  const algorithm = checks.uploadAlgorithm
  if (algorithm === undefined) {
    if (checks.type !== undefined) throw invalidRequest('The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.')
    return undefined
  }
  if (!isPartChecksumAlgorithm(algorithm)) {
    throw invalidRequest('Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]')
  }
  const type: ChecksumType = checks.type ?? (algorithm === 'crc64nvme' ? 'FULL_OBJECT' : 'COMPOSITE')
  if (type === 'FULL_OBJECT' && !isCombinableCrc(algorithm)) {
    throw invalidRequest(`The FULL_OBJECT checksum type cannot be used with the ${algorithm} checksum algorithm.`)
  }
  if (type === 'COMPOSITE' && algorithm === 'crc64nvme') {
    throw invalidRequest('The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.')
  }
  return { algorithm, type }
}

/** CreateMultipartUpload: POST /<bucket>/<key>?uploads */
export async function createMultipartUpload (ctx: S3Context): Promise<void> {
  validateKey(ctx.key)
  const { headers } = ctx.raw
  const checksum = requestedUploadChecksum(ctx)
  const record: UploadRecord = { content: contentHeadersFrom(headers), metadata: metadataFromHeaders(headers), initiatedMs: Date.now() }
  const data = Buffer.from(JSON.stringify(record))
  const uploadId = newUploadId(checksum)
  await ctx.service.stageBlock({ container: ctx.bucket, name: ctx.key, blockId: recordBlockId(uploadId), body: Readable.from([data]), size: data.length, signal: ctx.signal })
  if (checksum !== undefined) {
    ctx.reply.header('x-amz-checksum-algorithm', s3AlgorithmName(checksum.algorithm))
    ctx.reply.header('x-amz-checksum-type', checksum.type)
  }
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<InitiateMultipartUploadResult xmlns="${S3_NS}">` +
    el('Bucket', ctx.bucket) + el('Key', ctx.key) + el('UploadId', uploadId) + '</InitiateMultipartUploadResult>')
}

/**
 * What a part's body is checked and hashed with: the client's checksum if it sent one (it must
 * be the upload's algorithm), else the upload's algorithm computed here, so every part of a
 * checksummed upload has its checksum for CompleteMultipartUpload.
 */
export function partExpectations (uploadId: string, expect: ExpectedChecksums): ExpectedChecksums {
  const want = uploadChecksum(uploadId)
  const sent = expect.additional?.algorithm
  if (want === undefined) return expect
  if (sent !== undefined && sent !== want.algorithm) {
    throw invalidRequest(`Checksum Type mismatch occurred, expected checksum Type: ${want.algorithm}, actual checksum Type: ${sent}`)
  }
  return sent !== undefined ? expect : { ...expect, additional: { algorithm: want.algorithm, value: () => undefined } }
}

/** UploadPart: PUT /<bucket>/<key>?partNumber=N&uploadId=U. The part's ETag is its MD5. */
export async function uploadPart (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const part = partNumberParam(ctx)
  uploadState(ctx, uploadId)
  const { body, size, expect } = requestPayload(ctx)
  const { checksums } = await ctx.service.stageBlock({
    container: ctx.bucket,
    name: ctx.key,
    blockId: (c) => partBlockId(uploadId, part, c.md5 as Buffer, c.additional),
    body,
    size,
    expect: partExpectations(uploadId, expect),
    signal: ctx.signal,
    md5: true
  })
  ctx.reply.header('etag', quoteEtag((checksums.md5 as Buffer).toString('hex')))
  if (checksums.additional !== undefined) {
    ctx.reply.header(checksumHeaderName(checksums.additional.algorithm), checksums.additional.value.toString('base64'))
  }
  ctx.reply.code(200).send()
}

/** `<ChecksumCRC32>…</ChecksumCRC32>` and the like. */
export function checksumElement (algorithm: string, value: string): string {
  return el(`Checksum${algorithm.toUpperCase()}`, value)
}

const OWNER_XML = '<ID>ckptcache</ID><DisplayName>ckptcache</DisplayName>'

/** ListParts: GET /<bucket>/<key>?uploadId=U (max-parts, part-number-marker). */
export async function listParts (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const { parts } = uploadState(ctx, uploadId)
  const checksum = uploadChecksum(uploadId)
  const maxParts = intParam(ctx.query, 'max-parts', 1000, 1000)
  const marker = intParam(ctx.query, 'part-number-marker', 0, MAX_PART_NUMBER)
  const numbers = [...parts.keys()].filter((n) => n > marker).sort((a, b) => a - b)
  const shown = numbers.slice(0, maxParts)
  const truncated = numbers.length > shown.length
  let xml = `${XML_DECL}<ListPartsResult xmlns="${S3_NS}">` + el('Bucket', ctx.bucket) + el('Key', ctx.key) + el('UploadId', uploadId) +
    el('PartNumberMarker', marker) + el('NextPartNumberMarker', shown.at(-1) ?? 0) + el('MaxParts', maxParts) + el('IsTruncated', truncated) +
    `<Initiator>${OWNER_XML}</Initiator><Owner>${OWNER_XML}</Owner><StorageClass>STANDARD</StorageClass>`
  if (checksum !== undefined) xml += el('ChecksumAlgorithm', s3AlgorithmName(checksum.algorithm)) + el('ChecksumType', checksum.type)
  for (const n of shown) {
    const p = parts.get(n)!
    xml += '<Part>' + el('PartNumber', n) + el('LastModified', isoTime(p.block.stagedMs)) +
      `<ETag>${escapeXml(quoteEtag(p.md5))}</ETag>` + el('Size', p.block.size) +
      (p.checksum === undefined ? '' : checksumElement(p.checksum.algorithm, p.checksum.value.toString('base64'))) + '</Part>'
  }
  xml += '</ListPartsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** AbortMultipartUpload: DELETE /<bucket>/<key>?uploadId=U */
export async function abortMultipartUpload (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  uploadState(ctx, uploadId)
  // The store drops staged blocks per name: other uploads of the same key go with this one.
  await ctx.service.dropStagedBlocks(ctx.bucket, ctx.key)
  ctx.reply.code(204).send()
}

/** ListMultipartUploads: GET /<bucket>?uploads (prefix, key-marker, max-uploads). */
export async function listMultipartUploads (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  const q = ctx.query
  const prefix = q.get('prefix') ?? ''
  const keyMarker = q.get('key-marker') ?? ''
  const maxUploads = intParam(q, 'max-uploads', 1000, 1000)
  const url = q.get('encoding-type') === 'url'
  const enc = url ? urlEncodeKey : (s: string): string => s
  const uploads: Array<{ key: string, uploadId: string, initiatedMs: number }> = []
  let truncated = false
  for (const name of ctx.service.stagedNames(ctx.bucket)) {
    if (!name.startsWith(prefix) || name <= keyMarker) continue
    for (const block of ctx.service.stagedBlocks(ctx.bucket, name)) {
      const p = parseBlockId(block.blockId)
      if (p === undefined || p.md5 !== undefined) continue
      if (uploads.length >= maxUploads) { truncated = true; break }
      uploads.push({ key: name, uploadId: p.uploadId, initiatedMs: block.stagedMs })
    }
    if (truncated) break
  }
  let xml = `${XML_DECL}<ListMultipartUploadsResult xmlns="${S3_NS}">` + el('Bucket', ctx.bucket) + el('KeyMarker', enc(keyMarker)) +
    el('UploadIdMarker', q.get('upload-id-marker') ?? '') + el('Prefix', enc(prefix))
  if (truncated) xml += el('NextKeyMarker', enc(uploads.at(-1)!.key)) + el('NextUploadIdMarker', uploads.at(-1)!.uploadId)
  xml += el('MaxUploads', maxUploads) + el('IsTruncated', truncated)
  if (url) xml += el('EncodingType', 'url')
  for (const u of uploads) {
    const checksum = uploadChecksum(u.uploadId)
    xml += '<Upload>' + el('Key', enc(u.key)) + el('UploadId', u.uploadId) +
      `<Initiator>${OWNER_XML}</Initiator><Owner>${OWNER_XML}</Owner>` +
      '<StorageClass>STANDARD</StorageClass>' + el('Initiated', isoTime(u.initiatedMs)) +
      (checksum === undefined ? '' : el('ChecksumAlgorithm', s3AlgorithmName(checksum.algorithm)) + el('ChecksumType', checksum.type)) + '</Upload>'
  }
  xml += '</ListMultipartUploadsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}
