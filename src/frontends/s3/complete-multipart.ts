/** CompleteMultipartUpload: the listed parts become the object, with S3's multipart ETag and checksum. */
import { createHash } from 'node:crypto'
import { crcCombine, isCombinableCrc } from '../../core/checksum/crc-combine.js'
import { createS3Hasher, decodeChecksumValue, parseAlgorithmName, parseChecksumHeaders, type S3ChecksumAlgorithm } from '../../core/checksum/s3-checksums.js'
import { CacheError } from '../../errors.js'
import type { ObjectChecksums } from '../../core/types.js'
import { readSmallBody, type S3Context } from './context.js'
import { isDirectoryBucket } from './directory-buckets.js'
import { S3Error } from './errors.js'
import { quoteEtag, writeConditions } from './headers.js'
import { checksumElement, uploadIdParam, uploadState, type StagedPart, type UploadRecord } from './multipart.js'
import { uploadChecksum, type UploadChecksum } from './multipart-ids.js'
import { S3_NS, XML_DECL, el, escapeXml, malformedXml, rootElement } from './xml.js'

const MIN_PART_SIZE = 5 * 1024 * 1024
const MAX_RECORD_BYTES = 64 * 1024
const MAX_COMPLETE_BODY = 4 * 1024 * 1024

interface ListedPart {
  part: number
  etag: string
  /** A `Checksum<ALG>` element of the part, if the client listed one. */
  checksum?: { algorithm: S3ChecksumAlgorithm, value: string }
}

function normalizeEtag (text: string): string {
  let t = text.trim()
  if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) t = t.slice(1, -1)
  return t.toLowerCase()
}

function invalidPart (uploadId: string, part: number, etag: string, message?: string): S3Error {
  return new S3Error(400, 'InvalidPart', message ?? 'One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.',
    { UploadId: uploadId, PartNumber: String(part), ETag: etag })
}

function parsePartList (body: Buffer): ListedPart[] {
  const root = rootElement(body.toString('utf8'), 'CompleteMultipartUpload')
  const listed: ListedPart[] = []
  for (const child of root.children) {
    if (child.name !== 'Part') throw malformedXml()
    let num: string | undefined
    let etag: string | undefined
    let checksum: ListedPart['checksum']
    for (const field of child.children) {
      if (field.name === 'PartNumber') num = field.text.trim()
      else if (field.name === 'ETag') etag = field.text
      else if (field.name.startsWith('Checksum') && field.name !== 'ChecksumType') {
        const algorithm = parseAlgorithmName(field.name.slice('Checksum'.length))
        if (algorithm === undefined) throw malformedXml()
        checksum = { algorithm, value: field.text.trim() }
      }
    }
    if (num === undefined || etag === undefined || !/^\d+$/.test(num)) throw malformedXml()
    listed.push({ part: Number(num), etag: normalizeEtag(etag), ...(checksum === undefined ? {} : { checksum }) })
  }
  if (listed.length === 0) throw malformedXml()
  return listed
}

/**
 * The object's checksum from its parts': COMPOSITE is the checksum of the concatenated part
 * checksums, suffixed `-<parts>`; FULL_OBJECT is the CRC of the whole object, combined from the
 * part CRCs and sizes without reading the data.
 */
function objectChecksum (checksum: UploadChecksum, parts: StagedPart[]): string {
  if (checksum.type === 'FULL_OBJECT' && isCombinableCrc(checksum.algorithm)) {
    const algorithm = checksum.algorithm
    let value = (parts[0]!.checksum as { value: Buffer }).value
    for (const p of parts.slice(1)) value = crcCombine(algorithm, value, (p.checksum as { value: Buffer }).value, p.block.size)
    return value.toString('base64')
  }
  const hasher = createS3Hasher(checksum.algorithm)
  for (const p of parts) hasher.update((p.checksum as { value: Buffer }).value)
  return `${hasher.digest().toString('base64')}-${parts.length}`
}

/** CompleteMultipartUpload: POST /<bucket>/<key>?uploadId=U with the (part number, ETag[, checksum]) list. */
export async function completeMultipartUpload (ctx: S3Context): Promise<void> {
  const uploadId = uploadIdParam(ctx)
  const body = await readSmallBody(ctx.raw, MAX_COMPLETE_BODY)
  const { record: recordBlock, all } = uploadState(ctx, uploadId)
  const listed = parsePartList(body)
  const checksum = uploadChecksum(uploadId)
  // Directory buckets, and uploads with checksums, number their parts 1, 2, 3, … with no gaps.
  const consecutive = isDirectoryBucket(ctx.bucket) || checksum !== undefined
  const parts: StagedPart[] = []
  for (let i = 0; i < listed.length; i++) {
    const { part, etag } = listed[i]!
    if ((i > 0 && part <= listed[i - 1]!.part) || (consecutive && part !== i + 1)) {
      throw new S3Error(400, 'InvalidPartOrder', consecutive
        ? 'The list of parts was not in ascending order. The parts list must be specified in order by part number, starting at 1 with no gaps.'
        : 'The list of parts was not in ascending order. Parts must be ordered by part number.', { UploadId: uploadId })
    }
    const found = all.get(`${part}:${etag}`)
    if (found === undefined) throw invalidPart(uploadId, part, etag)
    const sent = listed[i]!.checksum
    if (sent !== undefined) {
      const bytes = decodeChecksumValue(sent.algorithm, sent.value)
      if (found.checksum === undefined || found.checksum.algorithm !== sent.algorithm || bytes === undefined || !bytes.equals(found.checksum.value)) {
        throw invalidPart(uploadId, part, etag, `The ${sent.algorithm} you specified for part ${part} did not match what we received.`)
      }
    }
    if (checksum !== undefined && found.checksum?.algorithm !== checksum.algorithm) throw invalidPart(uploadId, part, etag)
    parts.push(found)
  }
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i]!.block.size < MIN_PART_SIZE) {
      throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.',
        { ProposedSize: String(parts[i]!.block.size), MinSizeAllowed: String(MIN_PART_SIZE), PartNumber: String(listed[i]!.part), ETag: listed[i]!.etag })
    }
  }
  const stored: ObjectChecksums = {}
  let checksumXml = ''
  if (checksum !== undefined) {
    const value = objectChecksum(checksum, parts)
    // A client may state the whole object's checksum (FULL_OBJECT) on the request.
    const claimed = parseChecksumHeaders(ctx.raw.headers).header
    if (claimed !== undefined && (claimed.algorithm !== checksum.algorithm || claimed.value !== value)) {
      throw new CacheError('CC_ERR_CHECKSUM_MISMATCH', `The ${claimed.algorithm.toUpperCase()} you specified did not match the calculated checksum.`)
    }
    stored[checksum.algorithm as Exclude<S3ChecksumAlgorithm, 'md5'>] = value
    stored.checksumType = checksum.type
    checksumXml = checksumElement(checksum.algorithm, value) + el('ChecksumType', checksum.type)
  }
  let record: UploadRecord
  try {
    record = JSON.parse((await ctx.service.readStagedBlock(ctx.bucket, ctx.key, recordBlock, MAX_RECORD_BYTES)).toString('utf8')) as UploadRecord
  } catch (err) {
    throw new CacheError('CC_ERR_INTERNAL', 'unreadable multipart upload record', { cause: err })
  }
  const md5s = createHash('md5')
  for (const p of parts) md5s.update(Buffer.from(p.md5, 'hex'))
  const conditions = writeConditions(ctx)
  const meta = await ctx.service.commitBlocks({
    container: ctx.bucket,
    name: ctx.key,
    blocks: parts.map((p) => ({ id: p.block.blockId, source: 'uncommitted' as const })),
    content: record.content,
    metadata: record.metadata,
    checksums: stored,
    ...(conditions === undefined ? {} : { conditions }),
    etag: `${md5s.digest('hex')}-${parts.length}`
  })
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<CompleteMultipartUploadResult xmlns="${S3_NS}">` +
    el('Location', `/${ctx.bucket}/${ctx.key}`) + el('Bucket', ctx.bucket) + el('Key', ctx.key) +
    `<ETag>${escapeXml(quoteEtag(meta.etag))}</ETag>${checksumXml}</CompleteMultipartUploadResult>`)
}
