import { createHash } from 'node:crypto'
import { CacheError } from '../../errors.js'
import { crc64 } from '../../core/checksum/crc64.js'
import type { BlockRef, BlockSource } from '../../store/local-store.js'
import type { StagedBlock } from '../../core/types.js'
import { readSmallBody, type BlobContext } from './context.js'
import { BlobError } from './errors.js'
import {
  conditionsFromHeaders, contentHeadersFrom, httpDate, metadataFromHeaders, quoteEtag,
  requestCrc64, requestMd5, requiredContentLength
} from './headers.js'
import { setWriteHeaders, validateBlobName } from './blob-write.js'
import { XML_DECL, el, escapeXml, parseXml } from './xml.js'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const MAX_BLOCK_ID_BYTES = 64
const MAX_COMMITTED_BLOCKS = 50_000
/** 50,000 `<Latest>` entries of 88-character ids fit comfortably. */
const MAX_BLOCK_LIST_BODY = 8 * 1024 * 1024

/** A block id must be Base64 of at most 64 bytes. */
export function validateBlockId (id: string | null): string {
  if (id === null || id === '' || !BASE64.test(id) || Buffer.from(id, 'base64').length > MAX_BLOCK_ID_BYTES) {
    throw new CacheError('CC_ERR_INVALID_BLOCK_ID')
  }
  return id
}

/** Put Block: PUT ?comp=block&blockid=<base64> */
export async function putBlock (ctx: BlobContext): Promise<void> {
  validateBlobName(ctx.blob)
  const blockId = validateBlockId(ctx.query.get('blockid'))
  // Azure requires every block id of a blob to have the same length.
  const other = ctx.service.stagedBlocks(ctx.container, ctx.blob)[0]
  if (other !== undefined && other.blockId.length !== blockId.length) {
    throw new BlobError(400, 'InvalidBlobOrBlock', 'The specified blob or block content is invalid.')
  }
  const { headers } = ctx.raw
  const size = requiredContentLength(headers)
  const md5 = requestMd5(headers)
  const crc64 = requestCrc64(headers)
  const { checksums } = await ctx.service.stageBlock({
    container: ctx.container,
    name: ctx.blob,
    blockId,
    body: ctx.raw,
    size,
    expect: { ...(md5 === undefined ? {} : { md5 }), ...(crc64 === undefined ? {} : { crc64 }) },
    signal: ctx.signal
  })
  if (checksums.md5 !== undefined) ctx.reply.header('content-md5', checksums.md5.toString('base64'))
  if (checksums.crc64 !== undefined) ctx.reply.header('x-ms-content-crc64', checksums.crc64.toString('base64'))
  ctx.reply.header('x-ms-request-server-encrypted', 'true')
  ctx.reply.code(201).send()
}

const SOURCES: Record<string, BlockSource> = { Committed: 'committed', Uncommitted: 'uncommitted', Latest: 'latest' }

function parseBlockList (body: Buffer): BlockRef[] {
  const nodes = parseXml(body.toString('utf8'))
  const root = nodes.find((n) => n.name === 'BlockList')
  if (root === undefined) throw new BlobError(400, 'InvalidXmlDocument', 'XML specified is not syntactically valid.')
  const refs: BlockRef[] = []
  for (const child of root.children) {
    const source = SOURCES[child.name]
    if (source === undefined) throw new BlobError(400, 'InvalidXmlNodeValue', `The value for one of the XML nodes is not in the correct format. Node: ${child.name}`)
    refs.push({ id: validateBlockId(child.text), source })
  }
  if (refs.length > MAX_COMMITTED_BLOCKS) throw new BlobError(400, 'BlockListTooLong', 'The block list may not contain more than 50,000 blocks.')
  return refs
}

/** Put Block List: PUT ?comp=blocklist */
export async function putBlockList (ctx: BlobContext): Promise<void> {
  validateBlobName(ctx.blob)
  const { headers } = ctx.raw
  const body = await readSmallBody(ctx.raw, MAX_BLOCK_LIST_BODY)
  const bodyMd5 = createHash('md5').update(body).digest()
  const sent = requestMd5(headers)
  if (sent !== undefined && !sent.equals(bodyMd5)) throw new CacheError('CC_ERR_MD5_MISMATCH')
  const crc = requestCrc64(headers)
  if (crc !== undefined) {
    if (!crc.equals(crc64(body))) throw new CacheError('CC_ERR_CRC64_MISMATCH')
  }
  const meta = await ctx.service.commitBlocks({
    container: ctx.container,
    name: ctx.blob,
    blocks: parseBlockList(body),
    content: contentHeadersFrom(headers, { plain: false, defaultType: 'application/octet-stream' }),
    metadata: metadataFromHeaders(ctx.raw.rawHeaders),
    conditions: conditionsFromHeaders(headers)
  })
  setWriteHeaders(ctx, meta)
  ctx.reply.header('content-md5', bodyMd5.toString('base64'))
  ctx.reply.code(201).send()
}

function blocksXml (tag: string, blocks: Array<{ blockId: string, size: number }>): string {
  let s = `<${tag}>`
  for (const b of blocks) s += '<Block>' + `<Name>${escapeXml(b.blockId)}</Name>` + el('Size', b.size) + '</Block>'
  return s + `</${tag}>`
}

/** Get Block List: GET ?comp=blocklist[&blocklisttype=committed|uncommitted|all] */
export async function getBlockList (ctx: BlobContext): Promise<void> {
  const type = (ctx.query.get('blocklisttype') ?? 'committed').toLowerCase()
  if (type !== 'committed' && type !== 'uncommitted' && type !== 'all') {
    throw new BlobError(400, 'InvalidQueryParameterValue', 'Value for one of the query parameters specified in the request URI is invalid.', { 'x-ms-query-parameter-name': 'blocklisttype' })
  }
  await ctx.service.container(ctx.container, ctx.signal)
  const meta = ctx.service.store.head(ctx.container, ctx.blob)
  const staged: StagedBlock[] = ctx.service.stagedBlocks(ctx.container, ctx.blob)
  if (meta === undefined && staged.length === 0) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
  const committed = meta?.fromBlocks === true
    ? meta.extents.map((e) => ({ blockId: e.blockId ?? '', size: e.size }))
    : []
  let xml = `${XML_DECL}<BlockList>`
  if (type !== 'uncommitted') xml += blocksXml('CommittedBlocks', committed)
  if (type !== 'committed') xml += blocksXml('UncommittedBlocks', staged)
  xml += '</BlockList>'
  if (meta !== undefined) {
    ctx.reply.header('etag', quoteEtag(meta.etag))
    ctx.reply.header('last-modified', httpDate(meta.lastModifiedMs))
  }
  ctx.reply.header('x-ms-blob-content-length', String(meta?.size ?? 0))
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}
