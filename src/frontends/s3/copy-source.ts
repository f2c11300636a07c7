import { CacheError, isCacheError } from '../../errors.js'
import type { ObjectMeta } from '../../core/types.js'
import { header, type S3Context } from './context.js'
import { isDirectoryBucket } from './directory-buckets.js'
import { S3Error } from './errors.js'
import { conditionsFromHeaders } from './headers.js'

/** `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded (CopyObject, UploadPartCopy). */
export function parseCopySource (value: string): { bucket: string, key: string } {
  let v = value
  const q = v.indexOf('?')
  if (q !== -1) v = v.slice(0, q)
  let decoded: string
  try {
    decoded = decodeURIComponent(v)
  } catch {
    throw new S3Error(400, 'InvalidArgument', 'Invalid copy source encoding', { ArgumentName: 'x-amz-copy-source', ArgumentValue: value })
  }
  if (decoded.startsWith('/')) decoded = decoded.slice(1)
  const slash = decoded.indexOf('/')
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error(400, 'InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source', ArgumentValue: value })
  }
  const bucket = decoded.slice(0, slash)
  let key = decoded.slice(slash + 1)
  // Read as a request path is: in a directory bucket `bucket//key` names `key`.
  if (key.startsWith('/') && isDirectoryBucket(bucket)) key = key.slice(1)
  return { bucket, key }
}

/**
 * The copy source's current version, after its `x-amz-copy-source-if-*` conditions. S3 answers
 * every failed copy-source condition with 412, including the ones a GET answers with 304.
 */
export async function headCopySource (ctx: S3Context): Promise<{ bucket: string, key: string, meta: ObjectMeta }> {
  const { headers } = ctx.raw
  const src = parseCopySource(header(headers, 'x-amz-copy-source') ?? '')
  // A session reaches its own bucket only, as a source too.
  if (ctx.session !== undefined && src.bucket !== ctx.session.bucket) {
    throw new S3Error(403, 'AccessDenied', 'The session token does not grant access to the copy source bucket.')
  }
  try {
    return { ...src, meta: await ctx.service.lookup(src.bucket, src.key, conditionsFromHeaders(headers, 'x-amz-copy-source-'), ctx.signal) }
  } catch (err) {
    if (isCacheError(err, 'CC_ERR_NOT_MODIFIED')) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
    // The error names the source, not the request's own bucket and key.
    if (isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND')) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: src.key })
    if (isCacheError(err, 'CC_ERR_CONTAINER_NOT_FOUND')) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: src.bucket })
    throw err
  }
}
