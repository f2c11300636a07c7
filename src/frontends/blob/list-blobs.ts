import type { ObjectMeta } from '../../core/types.js'
import type { BlobContext } from './context.js'
import { maxResults } from './containers.js'
import { httpDate } from './headers.js'
import { XML_DECL, el, escapeXml, metadataXml, nameEl } from './xml.js'

function blobXml (meta: ObjectMeta, includeMetadata: boolean): string {
  const c = meta.content
  let s = '<Blob>' + nameEl(meta.name) + '<Properties>' +
    el('Creation-Time', httpDate(meta.createdMs)) +
    el('Last-Modified', httpDate(meta.lastModifiedMs)) +
    el('Etag', meta.etag) +
    el('Content-Length', meta.size) +
    el('Content-Type', c.contentType ?? 'application/octet-stream') +
    el('Content-Encoding', c.contentEncoding) +
    el('Content-Language', c.contentLanguage) +
    el('Content-CRC64', undefined) +
    el('Content-MD5', c.contentMd5) +
    el('Cache-Control', c.cacheControl) +
    el('Content-Disposition', c.contentDisposition) +
    '<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>' +
    '<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>' +
    '</Properties>'
  if (includeMetadata) s += metadataXml(meta.metadata)
  return s + '</Blob>'
}

/**
 * NextMarker is opaque, as Azure's are: the name the next page starts at, base64url after a
 * version tag. With a cloud tier that name is often `<last name>` + U+0000, which XML 1.0 cannot
 * carry at all (strict parsers, Python's among them, reject the whole answer).
 */
const MARKER_TAG = '1!'

export function encodeMarker (next: string): string {
  return MARKER_TAG + Buffer.from(next, 'utf8').toString('base64url')
}

/** The start name of a marker `encodeMarker` made; any other marker is taken as a name. */
export function decodeMarker (marker: string): string {
  const body = marker.slice(MARKER_TAG.length)
  return marker.startsWith(MARKER_TAG) && /^[A-Za-z0-9_-]*$/.test(body) ? Buffer.from(body, 'base64url').toString('utf8') : marker
}

/** List Blobs: GET ?restype=container&comp=list (flat, or hierarchical with `delimiter`). */
export async function listBlobs (ctx: BlobContext): Promise<void> {
  const q = ctx.query
  const prefix = q.get('prefix') ?? ''
  const delimiter = q.get('delimiter') ?? ''
  const marker = q.get('marker') ?? ''
  const max = maxResults(ctx)
  const include = new Set((q.get('include') ?? '').split(',').map((s) => s.trim().toLowerCase()))
  const page = await ctx.service.list(ctx.container, {
    prefix,
    ...(delimiter === '' ? {} : { delimiter }),
    ...(marker === '' ? {} : { startAt: decodeMarker(marker) }),
    maxResults: max
  })
  let xml = `${XML_DECL}<EnumerationResults ServiceEndpoint="${escapeXml(ctx.endpoint)}/" ContainerName="${escapeXml(ctx.container)}">`
  if (q.has('prefix')) xml += el('Prefix', prefix)
  if (q.has('marker')) xml += el('Marker', marker)
  if (q.has('maxresults')) xml += el('MaxResults', max)
  if (q.has('delimiter')) xml += el('Delimiter', delimiter)
  xml += '<Blobs>'
  for (const e of page.entries) {
    xml += e.kind === 'prefix'
      ? '<BlobPrefix>' + nameEl(e.name) + '</BlobPrefix>'
      : blobXml(e.meta, include.has('metadata'))
  }
  xml += '</Blobs>' + el('NextMarker', page.next === undefined ? undefined : encodeMarker(page.next)) + '</EnumerationResults>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}
