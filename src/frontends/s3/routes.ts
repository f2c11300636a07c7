import type { IncomingHttpHeaders } from 'node:http'
import { createBucket, deleteBucket, getBucketLocation, getBucketVersioning, headBucket, listBuckets, listDirectoryBuckets } from './buckets.js'
import { header, type ResourceLevel, type Route } from './context.js'
import { createSession } from './create-session.js'
import { S3Error } from './errors.js'
import { listObjectVersions, listObjectsV1, listObjectsV2 } from './list-objects.js'
import { completeMultipartUpload } from './complete-multipart.js'
import { abortMultipartUpload, createMultipartUpload, listMultipartUploads, listParts, uploadPart } from './multipart.js'
import { uploadPartCopy } from './upload-part-copy.js'
import { getObject, headObject } from './object-read.js'
import { copyObject, deleteObject, deleteObjects, putObject } from './object-write.js'

export interface Target {
  bucket: string
  key: string
  query: URLSearchParams
}

/** Subresources that select an operation, in the order they are looked for. */
const SUBRESOURCES = ['uploads', 'uploadId', 'delete', 'location', 'list-type', 'session', 'versions', 'versioning',
  'acl', 'policy', 'cors', 'lifecycle', 'tagging', 'website', 'logging', 'notification', 'replication', 'encryption',
  'ownershipControls', 'publicAccessBlock', 'object-lock', 'retention', 'legal-hold', 'attributes', 'restore', 'select',
  'accelerate', 'analytics', 'intelligent-tiering', 'inventory', 'metrics', 'requestPayment', 'torrent'] as const

/** Bucket subresources that make `/<bucket>//?sub` (the JS SDK's form) a bucket request. */
const BUCKET_SUBRESOURCES = new Set(['uploads', 'delete', 'location', 'list-type', 'session', 'versions', 'versioning'])

/**
 * The route table: (method, resource level, subresource) → operation. Hand-written and flat.
 * PUT of an object with `x-amz-copy-source` is CopyObject (UploadPartCopy with `uploadId`);
 * `list-type=2` is ListObjectsV2.
 */
const ROUTES = new Map<string, Route>([
  ['GET service ', { op: 'ListBuckets', handler: listBuckets }],
  ['GET service directory', { op: 'ListDirectoryBuckets', handler: listDirectoryBuckets }],
  ['GET bucket session', { op: 'CreateSession', handler: createSession }],
  ['GET bucket versions', { op: 'ListObjectVersions', handler: listObjectVersions }],
  ['GET bucket versioning', { op: 'GetBucketVersioning', handler: getBucketVersioning }],
  ['PUT bucket ', { op: 'CreateBucket', handler: createBucket }],
  ['HEAD bucket ', { op: 'HeadBucket', handler: headBucket }],
  ['DELETE bucket ', { op: 'DeleteBucket', handler: deleteBucket }],
  ['GET bucket location', { op: 'GetBucketLocation', handler: getBucketLocation }],
  ['GET bucket ', { op: 'ListObjects', handler: listObjectsV1 }],
  ['GET bucket list-type', { op: 'ListObjectsV2', handler: listObjectsV2 }],
  ['GET bucket uploads', { op: 'ListMultipartUploads', handler: listMultipartUploads }],
  ['POST bucket delete', { op: 'DeleteObjects', handler: deleteObjects }],
  ['PUT object ', { op: 'PutObject', handler: putObject }],
  ['PUT object copy', { op: 'CopyObject', handler: copyObject }],
  ['GET object ', { op: 'GetObject', handler: getObject }],
  ['HEAD object ', { op: 'HeadObject', handler: headObject }],
  ['DELETE object ', { op: 'DeleteObject', handler: deleteObject }],
  ['POST object uploads', { op: 'CreateMultipartUpload', handler: createMultipartUpload }],
  ['PUT object uploadId', { op: 'UploadPart', handler: uploadPart }],
  ['PUT object part-copy', { op: 'UploadPartCopy', handler: uploadPartCopy }],
  ['GET object uploadId', { op: 'ListParts', handler: listParts }],
  ['POST object uploadId', { op: 'CompleteMultipartUpload', handler: completeMultipartUpload }],
  ['DELETE object uploadId', { op: 'AbortMultipartUpload', handler: abortMultipartUpload }]
])

export function resolveRoute (method: string, target: Target, headers: IncomingHttpHeaders, signingService = 's3'): Route {
  let sub: string = SUBRESOURCES.find((name) => target.query.has(name)) ?? ''
  let level: ResourceLevel = target.bucket === '' ? 'service' : target.key === '' ? 'bucket' : 'object'
  // ListDirectoryBuckets is `GET /` too, signed for `s3express` (the JS SDK also names it in `x-id`).
  if (level === 'service' && (signingService === 's3express' || target.query.get('x-id') === 'ListDirectoryBuckets' || target.query.has('max-directory-buckets'))) sub = 'directory'
  if (level === 'object' && target.key === '/' && BUCKET_SUBRESOURCES.has(sub)) {
    level = 'bucket'
    target.key = ''
  }
  if (level === 'object' && method === 'PUT' && sub === '' && header(headers, 'x-amz-copy-source') !== undefined) sub = 'copy'
  if (level === 'object' && method === 'PUT' && sub === 'uploadId' && header(headers, 'x-amz-copy-source') !== undefined) sub = 'part-copy'
  const route = ROUTES.get(`${method} ${level} ${sub}`)
  if (route === undefined) {
    throw new S3Error(501, 'NotImplemented', `A header or query you provided implies functionality that is not implemented: ${method} ${level}${sub === '' ? '' : ' ?' + sub}`)
  }
  return route
}
