import { getAccountInfo, createContainer, deleteContainer, getContainerProperties, listContainers, setContainerMetadata } from './containers.js'
import { getBlob, getBlobMetadata, getBlobProperties } from './blob-read.js'
import { deleteBlob, putBlob, setBlobMetadata, setBlobProperties } from './blob-write.js'
import { getBlockList, putBlock, putBlockList } from './blocks.js'
import { abortCopy, copyBlob } from './copy-blob.js'
import type { BlobContext, ResourceLevel, Route } from './context.js'
import { listBlobs } from './list-blobs.js'
import { header } from './headers.js'

const accountInfo: Route = { op: 'GetAccountInformation', handler: getAccountInfo, permission: 'r' }
const containerProps: Route = { op: 'GetContainerProperties', handler: getContainerProperties, permission: 'r' }
const containerMeta: Route = { op: 'GetContainerMetadata', handler: getContainerProperties, permission: 'r' }
const blobMeta: Route = { op: 'GetBlobMetadata', handler: getBlobMetadata, permission: 'r' }

async function putBlobOrCopy (ctx: BlobContext): Promise<void> {
  if (header(ctx.raw.headers, 'x-ms-copy-source') !== undefined) return copyBlob(ctx)
  return putBlob(ctx)
}

/**
 * The route table: (method, resource level, restype, comp) → operation.
 * Hand-written and flat, so a lookup is one map access.
 */
const ROUTES = new Map<string, Route>([
  ['GET service  list', { op: 'ListContainers', handler: listContainers, permission: 'l' }],

  ['PUT container container ', { op: 'CreateContainer', handler: createContainer, permission: 'c' }],
  ['GET container container ', containerProps],
  ['HEAD container container ', containerProps],
  ['DELETE container container ', { op: 'DeleteContainer', handler: deleteContainer, permission: 'd' }],
  ['PUT container container metadata', { op: 'SetContainerMetadata', handler: setContainerMetadata, permission: 'w' }],
  ['GET container container metadata', containerMeta],
  ['HEAD container container metadata', containerMeta],
  ['GET container container list', { op: 'ListBlobs', handler: listBlobs, permission: 'l' }],

  ['PUT blob  ', { op: 'PutBlob', handler: putBlobOrCopy, permission: 'w', createAllowed: true }],
  ['PUT blob  block', { op: 'PutBlock', handler: putBlock, permission: 'w', createAllowed: true }],
  ['PUT blob  blocklist', { op: 'PutBlockList', handler: putBlockList, permission: 'w', createAllowed: true }],
  ['GET blob  blocklist', { op: 'GetBlockList', handler: getBlockList, permission: 'r' }],
  ['GET blob  ', { op: 'GetBlob', handler: getBlob, permission: 'r' }],
  ['HEAD blob  ', { op: 'GetBlobProperties', handler: getBlobProperties, permission: 'r' }],
  ['PUT blob  metadata', { op: 'SetBlobMetadata', handler: setBlobMetadata, permission: 'w' }],
  ['GET blob  metadata', blobMeta],
  ['HEAD blob  metadata', blobMeta],
  ['PUT blob  properties', { op: 'SetBlobProperties', handler: setBlobProperties, permission: 'w' }],
  ['DELETE blob  ', { op: 'DeleteBlob', handler: deleteBlob, permission: 'd' }],
  ['PUT blob  copy', { op: 'AbortCopyBlob', handler: abortCopy, permission: 'w' }]
])

export function resolveRoute (method: string, level: ResourceLevel, query: URLSearchParams): Route | undefined {
  const restype = query.get('restype') ?? ''
  const comp = query.get('comp') ?? ''
  if (restype === 'account' && comp === 'properties' && (method === 'GET' || method === 'HEAD')) return accountInfo
  return ROUTES.get(`${method} ${level} ${restype} ${comp}`)
}
