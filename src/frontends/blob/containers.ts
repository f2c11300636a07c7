import { isAzureContainerName } from '../../core/container-names.js'
import type { ContainerMeta } from '../../core/types.js'
import type { BlobContext } from './context.js'
import { BlobError } from './errors.js'
import { conditionsFromHeaders, header, httpDate, metadataFromHeaders, quoteEtag, setMetadataHeaders } from './headers.js'
import { XML_DECL, el, escapeXml, metadataXml } from './xml.js'

/** Azure container naming rules: 3–63 chars of lowercase letters, digits and single hyphens, starting and ending alphanumeric. */
export function validateContainerName (name: string): void {
  if (!isAzureContainerName(name)) {
    throw new BlobError(400, 'InvalidResourceName', 'The specifed resource name contains invalid characters.')
  }
}

function rejectPublicAccess (ctx: BlobContext): void {
  const access = header(ctx.raw.headers, 'x-ms-blob-public-access')
  if (access !== undefined && access !== '') {
    throw new BlobError(409, 'PublicAccessNotPermitted', 'Public access is not permitted on this storage account.')
  }
}

function setContainerHeaders (ctx: BlobContext, c: ContainerMeta): void {
  ctx.reply.header('etag', quoteEtag(c.etag))
  ctx.reply.header('last-modified', httpDate(c.lastModifiedMs))
}

/** Create Container: PUT ?restype=container */
export async function createContainer (ctx: BlobContext): Promise<void> {
  validateContainerName(ctx.container)
  rejectPublicAccess(ctx)
  const c = await ctx.service.createContainer(ctx.container, metadataFromHeaders(ctx.raw.rawHeaders))
  setContainerHeaders(ctx, c)
  ctx.reply.code(201).send()
}

/** Get Container Properties / Get Container Metadata: GET|HEAD ?restype=container[&comp=metadata] */
export async function getContainerProperties (ctx: BlobContext): Promise<void> {
  const c = await ctx.service.container(ctx.container, ctx.signal)
  setContainerHeaders(ctx, c)
  setMetadataHeaders(ctx.reply, c.metadata)
  if (ctx.query.get('comp') !== 'metadata') {
    ctx.reply.header('x-ms-lease-status', 'unlocked')
    ctx.reply.header('x-ms-lease-state', 'available')
    ctx.reply.header('x-ms-has-immutability-policy', 'false')
    ctx.reply.header('x-ms-has-legal-hold', 'false')
    ctx.reply.header('x-ms-default-encryption-scope', '$account-encryption-key')
    ctx.reply.header('x-ms-deny-encryption-scope-override', 'false')
  }
  ctx.reply.code(200).send()
}

/** Set Container Metadata: PUT ?restype=container&comp=metadata */
export async function setContainerMetadata (ctx: BlobContext): Promise<void> {
  const conditions = conditionsFromHeaders(ctx.raw.headers)
  if (conditions?.ifMatch !== undefined || conditions?.ifNoneMatch !== undefined || conditions?.ifUnmodifiedSinceMs !== undefined) {
    throw new BlobError(400, 'UnsupportedHeader', 'One of the HTTP headers specified in the request is not supported.')
  }
  const c = await ctx.service.setContainerMetadata(ctx.container, metadataFromHeaders(ctx.raw.rawHeaders), conditions)
  setContainerHeaders(ctx, c)
  ctx.reply.code(200).send()
}

/** Delete Container: DELETE ?restype=container */
export async function deleteContainer (ctx: BlobContext): Promise<void> {
  const conditions = conditionsFromHeaders(ctx.raw.headers)
  if (conditions?.ifMatch !== undefined || conditions?.ifNoneMatch !== undefined) {
    throw new BlobError(400, 'UnsupportedHeader', 'One of the HTTP headers specified in the request is not supported.')
  }
  await ctx.service.deleteContainer(ctx.container, conditions)
  ctx.reply.code(202).send()
}

function maxResults (ctx: BlobContext): number {
  const v = ctx.query.get('maxresults')
  if (v === null) return 5000
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    throw new BlobError(400, 'OutOfRangeQueryParameterValue', 'One of the query parameters specified in the request URI is outside the permissible range.')
  }
  return Math.min(Number(v), 5000)
}

export { maxResults }

/** List Containers: GET ?comp=list */
export async function listContainers (ctx: BlobContext): Promise<void> {
  const prefix = ctx.query.get('prefix') ?? ''
  const marker = ctx.query.get('marker') ?? ''
  const max = maxResults(ctx)
  const includeMetadata = (ctx.query.get('include') ?? '').split(',').includes('metadata')
  const all = ctx.service.listContainers(prefix).filter((c) => c.name >= marker)
  const page = all.slice(0, max)
  const next = all.length > max ? (all[max] as ContainerMeta).name : ''
  let xml = `${XML_DECL}<EnumerationResults ServiceEndpoint="${escapeXml(ctx.endpoint)}/">`
  if (ctx.query.has('prefix')) xml += el('Prefix', prefix)
  if (ctx.query.has('marker')) xml += el('Marker', marker)
  if (ctx.query.has('maxresults')) xml += el('MaxResults', max)
  xml += '<Containers>'
  for (const c of page) {
    xml += '<Container>' + el('Name', c.name) + '<Properties>' +
      el('Last-Modified', httpDate(c.lastModifiedMs)) + el('Etag', quoteEtag(c.etag)) +
      '<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>' +
      '<DefaultEncryptionScope>$account-encryption-key</DefaultEncryptionScope><DenyEncryptionScopeOverride>false</DenyEncryptionScopeOverride>' +
      '<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>' +
      '</Properties>'
    if (includeMetadata) xml += metadataXml(c.metadata)
    xml += '</Container>'
  }
  xml += '</Containers>' + el('NextMarker', next) + '</EnumerationResults>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** Get Account Information: GET|HEAD ?restype=account&comp=properties (any level) */
export async function getAccountInfo (ctx: BlobContext): Promise<void> {
  ctx.reply.header('x-ms-sku-name', 'Standard_LRS')
  ctx.reply.header('x-ms-account-kind', 'StorageV2')
  ctx.reply.header('x-ms-is-hns-enabled', 'false')
  ctx.reply.code(200).send()
}
