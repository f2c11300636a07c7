import { afterPrefix } from '../../store/sorted-names.js'
import type { ObjectMeta } from '../../core/types.js'
import type { StoreListPage } from '../../store/local-store.js'
import { intParam, invalidArgument, type S3Context } from './context.js'
import { isDirectoryBucket } from './directory-buckets.js'
import { quoteEtag } from './headers.js'
import { S3_NS, XML_DECL, el, escapeXml, isoTime, urlEncodeKey } from './xml.js'

const MAX_KEYS = 1000

interface ListParams {
  prefix: string
  delimiter: string
  maxKeys: number
  encode: (s: string) => string
}

function listParams (ctx: S3Context): ListParams {
  const q = ctx.query
  const encodingType = q.get('encoding-type')
  if (encodingType !== null && encodingType !== '' && encodingType !== 'url') {
    throw invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encodingType)
  }
  const url = encodingType === 'url'
  const delimiter = q.get('delimiter') ?? ''
  // Directory buckets group by `/` only.
  if (delimiter !== '' && delimiter !== '/' && isDirectoryBucket(ctx.bucket)) {
    throw invalidArgument('Only the \'/\' delimiter is supported for directory buckets.', 'delimiter', delimiter)
  }
  return {
    prefix: q.get('prefix') ?? '',
    delimiter,
    maxKeys: intParam(q, 'max-keys', MAX_KEYS, MAX_KEYS),
    encode: url ? urlEncodeKey : (s) => s
  }
}

/** MaxKeys, Delimiter and EncodingType: what every listing answer echoes of its request. */
function echoedParams (p: ListParams, url: boolean): string {
  return el('MaxKeys', p.maxKeys) + (p.delimiter === '' ? '' : el('Delimiter', p.encode(p.delimiter))) + (url ? el('EncodingType', 'url') : '')
}


async function page (ctx: S3Context, p: ListParams, start: { startAt?: string, startAfter?: string }): Promise<StoreListPage> {
  if (p.maxKeys === 0) return { entries: [] }
  const startAfter = start.startAfter
  // A marker that is a common prefix of this listing stands for everything under it.
  if (startAfter !== undefined && p.delimiter !== '' && startAfter.endsWith(p.delimiter) && startAfter.startsWith(p.prefix) &&
      startAfter.indexOf(p.delimiter, p.prefix.length) === startAfter.length - p.delimiter.length) {
    return await ctx.service.list(ctx.bucket, { prefix: p.prefix, delimiter: p.delimiter, startAt: afterPrefix(startAfter), maxResults: p.maxKeys })
  }
  return await ctx.service.list(ctx.bucket, {
    prefix: p.prefix,
    ...(p.delimiter === '' ? {} : { delimiter: p.delimiter }),
    ...(start.startAt === undefined ? {} : { startAt: start.startAt }),
    ...(startAfter === undefined || startAfter === '' ? {} : { startAfter }),
    maxResults: p.maxKeys
  })
}

const OWNER_XML = '<Owner><ID>ckptcache</ID><DisplayName>ckptcache</DisplayName></Owner>'

/** What every listed object has after its key (and version): time, ETag, size. */
function objectFields (meta: ObjectMeta): string {
  return el('LastModified', isoTime(meta.lastModifiedMs)) + `<ETag>${escapeXml(quoteEtag(meta.etag))}</ETag>` + el('Size', meta.size)
}

function contentsXml (meta: ObjectMeta, encode: (s: string) => string, owner: boolean): string {
  return '<Contents>' + el('Key', encode(meta.name)) + objectFields(meta) + (owner ? OWNER_XML : '') + '<StorageClass>STANDARD</StorageClass></Contents>'
}

/** ListObjectVersions: the one version of an unversioned object. */
function versionXml (meta: ObjectMeta, encode: (s: string) => string): string {
  return '<Version>' + el('Key', encode(meta.name)) + el('VersionId', 'null') + el('IsLatest', true) +
    objectFields(meta) + OWNER_XML + '<StorageClass>STANDARD</StorageClass></Version>'
}

/** A page's objects (rendered by `object`) followed by its common prefixes; `last` is the page's last name. */
function entriesXml (result: StoreListPage, encode: (s: string) => string, object: (meta: ObjectMeta) => string): { xml: string, last: string | undefined } {
  let xml = ''
  let prefixes = ''
  let last: string | undefined
  for (const e of result.entries) {
    if (e.kind === 'object') {
      xml += object(e.meta)
      last = e.meta.name
    } else {
      prefixes += `<CommonPrefixes>${el('Prefix', encode(e.name))}</CommonPrefixes>`
      last = e.name
    }
  }
  return { xml: xml + prefixes, last }
}

/** ListObjectsV2: GET /<bucket>?list-type=2. The continuation token is the next name, base64url. */
export async function listObjectsV2 (ctx: S3Context): Promise<void> {
  const q = ctx.query
  if (q.get('list-type') !== '2') throw invalidArgument('Invalid List Type specified in Request', 'list-type', q.get('list-type') ?? '')
  await ctx.service.container(ctx.bucket, ctx.signal)
  const p = listParams(ctx)
  const token = q.get('continuation-token')
  let startAt: string | undefined
  if (token !== null) {
    if (token === '') throw invalidArgument('The continuation token provided is incorrect', 'continuation-token', token)
    startAt = Buffer.from(token, 'base64url').toString('utf8')
  }
  const startAfter = q.get('start-after') ?? undefined
  const result = await page(ctx, p, { ...(startAt === undefined ? {} : { startAt }), ...(startAfter === undefined || startAt !== undefined ? {} : { startAfter }) })
  const owner = q.get('fetch-owner') === 'true'
  const { xml: entries } = entriesXml(result, p.encode, (m) => contentsXml(m, p.encode, owner))
  let xml = `${XML_DECL}<ListBucketResult xmlns="${S3_NS}">` + el('Name', ctx.bucket) + el('Prefix', p.encode(p.prefix))
  if (token !== null) xml += el('ContinuationToken', token)
  if (startAfter !== undefined) xml += el('StartAfter', p.encode(startAfter))
  xml += el('KeyCount', result.entries.length) + echoedParams(p, q.get('encoding-type') === 'url')
  xml += el('IsTruncated', result.next !== undefined)
  if (result.next !== undefined) xml += el('NextContinuationToken', Buffer.from(result.next, 'utf8').toString('base64url'))
  xml += entries + '</ListBucketResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** ListObjects (v1): GET /<bucket>. `marker` is exclusive; NextMarker is sent when a delimiter is. */
export async function listObjectsV1 (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  const q = ctx.query
  const p = listParams(ctx)
  const marker = q.get('marker') ?? ''
  const result = await page(ctx, p, marker === '' ? {} : { startAfter: marker })
  const { xml: entries, last } = entriesXml(result, p.encode, (m) => contentsXml(m, p.encode, true))
  let xml = `${XML_DECL}<ListBucketResult xmlns="${S3_NS}">` + el('Name', ctx.bucket) + el('Prefix', p.encode(p.prefix)) +
    el('Marker', p.encode(marker))
  if (result.next !== undefined && p.delimiter !== '' && last !== undefined) xml += el('NextMarker', p.encode(last))
  xml += echoedParams(p, q.get('encoding-type') === 'url')
  xml += el('IsTruncated', result.next !== undefined) + entries + '</ListBucketResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/**
 * ListObjectVersions: GET /<bucket>?versions. Buckets are unversioned: each object is its one
 * version, `null`, and the latest. `key-marker` pages as ListObjects' marker does.
 */
export async function listObjectVersions (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  const q = ctx.query
  const p = listParams(ctx)
  const keyMarker = q.get('key-marker') ?? ''
  const result = await page(ctx, p, keyMarker === '' ? {} : { startAfter: keyMarker })
  const { xml: entries, last } = entriesXml(result, p.encode, (m) => versionXml(m, p.encode))
  let xml = `${XML_DECL}<ListVersionsResult xmlns="${S3_NS}">` + el('Name', ctx.bucket) + el('Prefix', p.encode(p.prefix)) +
    el('KeyMarker', p.encode(keyMarker)) + el('VersionIdMarker', q.get('version-id-marker') ?? '')
  if (result.next !== undefined && last !== undefined) xml += el('NextKeyMarker', p.encode(last)) + el('NextVersionIdMarker', 'null')
  xml += echoedParams(p, q.get('encoding-type') === 'url')
  xml += el('IsTruncated', result.next !== undefined) + entries + '</ListVersionsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}
