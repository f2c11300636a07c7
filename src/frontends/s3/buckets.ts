import { isCacheError } from '../../errors.js'
import type { S3Context } from './context.js'
import { intParam, invalidArgument, readSmallBody } from './context.js'
import { directoryBucketZone, isDirectoryBucket, validateDirectoryBucketName } from './directory-buckets.js'
import { S3Error } from './errors.js'
import { S3_NS, XML_DECL, el, isoTime, malformedXml, rootElement, type XmlNode } from './xml.js'

/** S3 bucket naming rules (general purpose buckets): 3–63 of a-z 0-9 . -, alphanumeric at both ends, not an IP address. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export function validateBucketName (name: string): void {
  if (isDirectoryBucket(name)) {
    validateDirectoryBucketName(name)
    return
  }
  if (!BUCKET_NAME.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name })
  }
}

const OWNER = '<Owner><ID>ckptcache</ID><DisplayName>ckptcache</DisplayName></Owner>'

/** ListBuckets: GET / (general purpose buckets: every container but directory buckets). */
export async function listBuckets (ctx: S3Context): Promise<void> {
  const prefix = ctx.query.get('prefix') ?? undefined
  let xml = `${XML_DECL}<ListAllMyBucketsResult xmlns="${S3_NS}">${OWNER}<Buckets>`
  for (const c of ctx.service.listContainers(prefix)) {
    if (isDirectoryBucket(c.name)) continue
    xml += `<Bucket>${el('Name', c.name)}${el('CreationDate', isoTime(c.createdMs))}</Bucket>`
  }
  xml += '</Buckets></ListAllMyBucketsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** ListDirectoryBuckets: GET /?x-id=ListDirectoryBuckets (continuation-token, max-directory-buckets). */
export async function listDirectoryBuckets (ctx: S3Context): Promise<void> {
  const max = intParam(ctx.query, 'max-directory-buckets', 1000, 1000)
  const token = ctx.query.get('continuation-token')
  const after = token === null || token === '' ? '' : Buffer.from(token, 'base64url').toString('utf8')
  const all = ctx.service.listContainers().filter((c) => isDirectoryBucket(c.name) && c.name > after)
  const shown = max === 0 ? [] : all.slice(0, max)
  let xml = `${XML_DECL}<ListAllMyDirectoryBucketsResult xmlns="${S3_NS}"><Buckets>`
  for (const c of shown) xml += `<Bucket>${el('Name', c.name)}${el('CreationDate', isoTime(c.createdMs))}${el('BucketRegion', ctx.auth.region)}</Bucket>`
  xml += '</Buckets>'
  if (all.length > shown.length && shown.length > 0) xml += el('ContinuationToken', Buffer.from(shown.at(-1)!.name, 'utf8').toString('base64url'))
  xml += '</ListAllMyDirectoryBucketsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

function child (node: XmlNode, name: string): XmlNode | undefined {
  return node.children.find((c) => c.name === name)
}

/**
 * The CreateBucketConfiguration body, if any. A directory bucket's (`Location` of type
 * AvailabilityZone or LocalZone, `Bucket` of type Directory) must name the zone its bucket
 * name carries; a general purpose bucket's must not ask for a directory bucket.
 */
function checkBucketConfiguration (bucket: string, body: Buffer): void {
  const text = body.toString('utf8').trim()
  if (text === '') return
  const root = rootElement(text, 'CreateBucketConfiguration')
  const location = child(root, 'Location')
  const bucketInfo = child(root, 'Bucket')
  const type = bucketInfo === undefined ? undefined : child(bucketInfo, 'Type')?.text.trim()
  if (!isDirectoryBucket(bucket)) {
    if (type === 'Directory' || location !== undefined) throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', { BucketName: bucket })
    return
  }
  if (type !== undefined && type !== 'Directory') throw invalidArgument('Bucket type must be Directory for a directory bucket.', 'Bucket.Type', type)
  if (location === undefined) return
  const locationType = child(location, 'Type')?.text.trim()
  const zone = child(location, 'Name')?.text.trim()
  if (locationType !== undefined && locationType !== 'AvailabilityZone' && locationType !== 'LocalZone') throw malformedXml()
  if (zone !== undefined && zone !== directoryBucketZone(bucket)) {
    throw new S3Error(400, 'InvalidBucketName', `The bucket name must end with the zone id of the location (--${zone}--x-s3).`, { BucketName: bucket })
  }
}

/** CreateBucket: PUT /<bucket>, general purpose or directory (one location: the gateway). */
export async function createBucket (ctx: S3Context): Promise<void> {
  validateBucketName(ctx.bucket)
  checkBucketConfiguration(ctx.bucket, await readSmallBody(ctx.raw, 64 * 1024))
  try {
    await ctx.service.createContainer(ctx.bucket, {})
  } catch (err) {
    // us-east-1 answers its owner's repeated CreateBucket with 200, every other region with 409.
    if (!(isCacheError(err, 'CC_ERR_CONTAINER_EXISTS') && ctx.auth.region === 'us-east-1' && !isDirectoryBucket(ctx.bucket))) throw err
  }
  ctx.reply.header('location', `/${ctx.bucket}`)
  ctx.reply.code(200).send()
}

/** HeadBucket: HEAD /<bucket> */
export async function headBucket (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  ctx.reply.header('x-amz-bucket-region', ctx.auth.region)
  const zone = directoryBucketZone(ctx.bucket)
  if (zone !== undefined) {
    ctx.reply.header('x-amz-bucket-location-type', 'AvailabilityZone')
    ctx.reply.header('x-amz-bucket-location-name', zone)
  }
  ctx.reply.code(200).send()
}

/** DeleteBucket: DELETE /<bucket>; S3 refuses a bucket that still has objects (BucketNotEmpty). */
export async function deleteBucket (ctx: S3Context): Promise<void> {
  await ctx.service.deleteContainer(ctx.bucket, undefined, true)
  ctx.reply.code(204).send()
}

/** GetBucketLocation: GET /<bucket>?location. Empty means us-east-1, which every client accepts. */
export async function getBucketLocation (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  const region = ctx.auth.region === 'us-east-1' ? '' : ctx.auth.region
  ctx.reply.code(200).header('content-type', 'application/xml')
    .send(`${XML_DECL}<LocationConstraint xmlns="${S3_NS}">${region}</LocationConstraint>`)
}

/** GetBucketVersioning: GET /<bucket>?versioning. Versioning is never enabled: an empty configuration. */
export async function getBucketVersioning (ctx: S3Context): Promise<void> {
  await ctx.service.container(ctx.bucket, ctx.signal)
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<VersioningConfiguration xmlns="${S3_NS}"/>`)
}
