/**
 * Multipart uploads on the core's staged blocks. An upload is a set of staged blocks of the
 * object's name: one record block (the upload's content headers and metadata, as JSON) and one
 * block per part version. Every block id is the base64 of a fixed-length ASCII name, so they are
 * valid (and equal-length) Azure block ids too:
 *
 *     m.<upload id: 16 base64url>.<part number: 5 digits>.<part MD5: 22 base64url | record marker>
 *
 * Naming a part by its MD5 makes CompleteMultipartUpload's (part number, ETag) pairs block ids:
 * a pair that names no staged block is InvalidPart. Staged blocks survive restarts and expire
 * with `--staged-block-max-age`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { checksumHeaderName, parseChecksumHeaders } from '../../core/checksum/s3-checksums.js'
import { CacheError } from '../../errors.js'
import type { ContentHeaders, StagedBlock, UserMetadata } from '../../core/types.js'
import { requestPayload } from './body.js'
import { intParam, invalidArgument, readSmallBody, type S3Context } from './context.js'
import { S3Error } from './errors.js'
import { conditionsFromHeaders, contentHeadersFrom, metadataFromHeaders, quoteEtag } from './headers.js'
import { validateKey } from './object-write.js'
import { S3_NS, XML_DECL, el, escapeXml, isoTime, malformedXml, rootElement, urlEncodeKey } from './xml.js'

const RECORD_MARK = 'r'.repeat(22)
const MIN_PART_SIZE = 5 * 1024 * 1024
const MAX_PART_NUMBER = 10_000
const MAX_RECORD_BYTES = 64 * 1024
const MAX_COMPLETE_BODY = 4 * 1024 * 1024

interface UploadRecord {
  content: ContentHeaders
  metadata: UserMetadata
  initiatedMs: number
  checksumAlgorithm?: string
}

interface ParsedId {
  uploadId: string
  part: number
  /** Part MD5, hex; undefined for the record. */
  md5?: string
}

function blockId (uploadId: string, part: number, mark: string): string {
  return Buffer.from(`m.${uploadId}.${String(part).padStart(5, '0')}.${mark}`, 'ascii').toString('base64')
}

function recordId (uploadId: string): string {
  return blockId(uploadId, 0, RECORD_MARK)
}

function partId (uploadId: string, part: number, md5: Buffer): string {
  return blockId(uploadId, part, md5.toString('base64url'))
}

const ID_RE = /^m\.([A-Za-z0-9_-]{16})\.(\d{5})\.([A-Za-z0-9_-]{22})$/

function parseId (id: string): ParsedId | undefined {
  const m = ID_RE.exec(Buffer.from(id, 'base64').toString('latin1'))
  if (m === null) return undefined
  const mark = m[3] as string
  return mark === RECORD_MARK
    ? { uploadId: m[1] as string, part: 0 }
    : { uploadId: m[1] as string, part: Number(m[2]), md5: Buffer.from(mark, 'base64url').toString('hex') }
}

function uploadIdParam (ctx: S3Context): string {
  const id = ctx.query.get('uploadId') ?? ''
  if (!/^[A-Za-z0-9_-]{16}$/.test(id)) throw noSuchUpload()
  return id
}

function noSuchUpload (): S3Error {
  return new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.')
}

/** The upload's record block and its part blocks (latest staging of each part number). */
function uploadBlocks (ctx: S3Context, uploadId: string): { record: StagedBlock, parts: Map<number, { block: StagedBlock, md5: string }>, all: Map<string, { block: StagedBlock, md5: string, part: number }> } {
  ctx.service.getContainer(ctx.bucket)
  let record: StagedBlock | undefined
  const parts = new Map<number, { block: StagedBlock, md5: string }>()
  const all = new Map<string, { block: StagedBlock, md5: string, part: number }>()
  for (const block of ctx.service.stagedBlocks(ctx.bucket, ctx.key)) {
    const p = parseId(block.blockId)
    if (p === undefined || p.uploadId !== uploadId) continue
    if (p.md5 === undefined) {
      record = block
      continue
    }
    // stagedBlocks() is in staging order: a later upload of a part number wins.
    parts.set(p.part, { block, md5: p.md5 })
    all.set(`${p.part}:${p.md5}`, { block, md5: p.md5, part: p.part })
  }
  if (record === undefined) throw noSuchUpload()
  return { record, parts, all }
}

/** CreateMultipartUpload: POST /<bucket>/<key>?uploads */
export async function createMultipartUpload (ctx: S3Context): Promise<void> {
  validateKey(ctx.key)
  const { headers } = ctx.raw
  const checks = parseChecksumHeaders(headers)
  const record: UploadRecord = {
    content: contentHeadersFrom(headers),
    metadata: metadataFromHeaders(headers),
    initiatedMs: Date.now(),
    ...(checks.uploadAlgorithm === undefined ? {} : { checksumAlgorithm: checks.uploadAlgorithm })
  }
  const data = Buffer.from(JSON.stringify(record))
  const uploadId = randomBytes(12).toString('base64url')
  await ctx.service.stageBlock({ container: ctx.bucket, name: ctx.key, blockId: recordId(uploadId), body: Readable.from([data]), size: data.length, signal: ctx.signal })
  if (checks.uploadAlgorithm !== undefined) {
    ctx.reply.header('x-amz-checksum-algorithm', checks.uploadAlgorithm.toUpperCase())
    ctx.reply.header('x-amz-checksum-type', checks.type ?? 'COMPOSITE')
  }
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<InitiateMultipartUploadResult xmlns="${S3_NS}">` +
    el('Bucket', ctx.bucket) + el('Key', ctx.key) + el('UploadId', uploadId) + '</InitiateMultipartUploadResult>')
}

function partNumberParam (ctx: S3Context): number {
  const v = ctx.query.get('partNumber') ?? ''
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > MAX_PART_NUMBER) {
    throw invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', v)
  }
  return Number(v)
}

/** UploadPart: PUT /<bucket>/<key>?partNumber=N&uploadId=U. The part's ETag is its MD5. */
export async function uploadPart (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const part = partNumberParam(ctx)
  uploadBlocks(ctx, uploadId)
  const { body, size, expect } = requestPayload(ctx)
  const { checksums } = await ctx.service.stageBlock({
    container: ctx.bucket,
    name: ctx.key,
    blockId: (c) => partId(uploadId, part, c.md5 as Buffer),
    body,
    size,
    expect,
    signal: ctx.signal,
    md5: true
  })
  ctx.reply.header('etag', quoteEtag((checksums.md5 as Buffer).toString('hex')))
  if (checksums.additional !== undefined) {
    ctx.reply.header(checksumHeaderName(checksums.additional.algorithm), checksums.additional.value.toString('base64'))
  }
  ctx.reply.code(200).send()
}

/** ListParts: GET /<bucket>/<key>?uploadId=U */
export async function listParts (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const { parts } = uploadBlocks(ctx, uploadId)
  const maxParts = intParam(ctx.query, 'max-parts', 1000, 1000)
  const marker = intParam(ctx.query, 'part-number-marker', 0, MAX_PART_NUMBER)
  const numbers = [...parts.keys()].filter((n) => n > marker).sort((a, b) => a - b)
  const shown = numbers.slice(0, maxParts)
  const truncated = numbers.length > shown.length
  let xml = `${XML_DECL}<ListPartsResult xmlns="${S3_NS}">` + el('Bucket', ctx.bucket) + el('Key', ctx.key) + el('UploadId', uploadId) +
    el('PartNumberMarker', marker) + el('NextPartNumberMarker', shown.at(-1) ?? 0) + el('MaxParts', maxParts) + el('IsTruncated', truncated) +
    '<StorageClass>STANDARD</StorageClass>'
  for (const n of shown) {
    const p = parts.get(n)!
    xml += '<Part>' + el('PartNumber', n) + el('LastModified', isoTime(p.block.stagedMs)) +
      `<ETag>${escapeXml(quoteEtag(p.md5))}</ETag>` + el('Size', p.block.size) + '</Part>'
  }
  xml += '</ListPartsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

function normalizeEtag (text: string): string {
  let t = text.trim()
  if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) t = t.slice(1, -1)
  return t.toLowerCase()
}

/** CompleteMultipartUpload: POST /<bucket>/<key>?uploadId=U with the (part number, ETag) list. */
export async function completeMultipartUpload (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const body = await readSmallBody(ctx.raw, MAX_COMPLETE_BODY)
  const { record: recordBlock, all } = uploadBlocks(ctx, uploadId)
  const root = rootElement(body.toString('utf8'), 'CompleteMultipartUpload')
  const listed: Array<{ part: number, etag: string }> = []
  for (const child of root.children) {
    if (child.name !== 'Part') throw malformedXml()
    const num = child.children.find((c) => c.name === 'PartNumber')?.text.trim()
    const etag = child.children.find((c) => c.name === 'ETag')?.text
    if (num === undefined || etag === undefined || !/^\d+$/.test(num)) throw malformedXml()
    listed.push({ part: Number(num), etag: normalizeEtag(etag) })
  }
  if (listed.length === 0) throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema')
  const blocks: Array<{ id: string, size: number, md5: string }> = []
  for (let i = 0; i < listed.length; i++) {
    const { part, etag } = listed[i]!
    if (i > 0 && part <= listed[i - 1]!.part) {
      throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.', { UploadId: uploadId })
    }
    const found = all.get(`${part}:${etag}`)
    if (found === undefined) {
      throw new S3Error(400, 'InvalidPart', 'One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.',
        { UploadId: uploadId, PartNumber: String(part), ETag: etag })
    }
    blocks.push({ id: found.block.blockId, size: found.block.size, md5: found.md5 })
  }
  for (let i = 0; i < blocks.length - 1; i++) {
    if (blocks[i]!.size < MIN_PART_SIZE) {
      throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.',
        { ProposedSize: String(blocks[i]!.size), MinSizeAllowed: String(MIN_PART_SIZE), PartNumber: String(listed[i]!.part), ETag: listed[i]!.etag })
    }
  }
  let record: UploadRecord
  try {
    record = JSON.parse((await ctx.service.readStagedBlock(ctx.bucket, ctx.key, recordBlock, MAX_RECORD_BYTES)).toString('utf8')) as UploadRecord
  } catch (err) {
    throw new CacheError('CC_ERR_INTERNAL', 'unreadable multipart upload record', { cause: err })
  }
  const md5s = createHash('md5')
  for (const b of blocks) md5s.update(Buffer.from(b.md5, 'hex'))
  const etag = `${md5s.digest('hex')}-${blocks.length}`
  const conditions = conditionsFromHeaders(ctx.raw.headers)
  const meta = await ctx.service.commitBlocks({
    container: ctx.bucket,
    name: ctx.key,
    blocks: blocks.map((b) => ({ id: b.id, source: 'uncommitted' as const })),
    content: record.content,
    metadata: record.metadata,
    ...(conditions === undefined ? {} : { conditions }),
    etag
  })
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<CompleteMultipartUploadResult xmlns="${S3_NS}">` +
    el('Location', `/${ctx.bucket}/${ctx.key}`) + el('Bucket', ctx.bucket) + el('Key', ctx.key) +
    `<ETag>${escapeXml(quoteEtag(meta.etag))}</ETag></CompleteMultipartUploadResult>`)
}

/** AbortMultipartUpload: DELETE /<bucket>/<key>?uploadId=U */
export async function abortMultipartUpload (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  uploadBlocks(ctx, uploadId)
  // The store drops staged blocks per name: other uploads of the same key go with this one.
  await ctx.service.dropStagedBlocks(ctx.bucket, ctx.key)
  ctx.reply.code(204).send()
}

/** ListMultipartUploads: GET /<bucket>?uploads (prefix, key-marker, max-uploads). */
export async function listMultipartUploads (ctx: S3Context): Promise<void> {
  ctx.service.getContainer(ctx.bucket)
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
      const p = parseId(block.blockId)
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
    xml += '<Upload>' + el('Key', enc(u.key)) + el('UploadId', u.uploadId) +
      '<Initiator><ID>ckptcache</ID><DisplayName>ckptcache</DisplayName></Initiator><Owner><ID>ckptcache</ID><DisplayName>ckptcache</DisplayName></Owner>' +
      '<StorageClass>STANDARD</StorageClass>' + el('Initiated', isoTime(u.initiatedMs)) + '</Upload>'
  }
  xml += '</ListMultipartUploadsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}
