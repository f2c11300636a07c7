import type { S3Context } from './context.js'
import { readSmallBody } from './context.js'
import { S3Error } from './errors.js'
import { S3_NS, XML_DECL, el, isoTime } from './xml.js'

/** S3 bucket naming rules (general purpose buckets): 3–63 of a-z 0-9 . -, alphanumeric at both ends, not an IP address. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export function validateBucketName (name: string): void {
  if (!BUCKET_NAME.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name })
  }
}

const OWNER = '<Owner><ID>ckptcache</ID><DisplayName>ckptcache</DisplayName></Owner>'

/** ListBuckets: GET / */
export async function listBuckets (ctx: S3Context): Promise<void> {
  const prefix = ctx.query.get('prefix') ?? undefined
  let xml = `${XML_DECL}<ListAllMyBucketsResult xmlns="${S3_NS}">${OWNER}<Buckets>`
  for (const c of ctx.service.listContainers(prefix)) {
    xml += `<Bucket>${el('Name', c.name)}${el('CreationDate', isoTime(c.createdMs))}</Bucket>`
  }
  xml += '</Buckets></ListAllMyBucketsResult>'
  ctx.reply.code(200).header('content-type', 'application/xml').send(xml)
}

/** CreateBucket: PUT /<bucket> (a CreateBucketConfiguration body is read and ignored: one location). */
export async function createBucket (ctx: S3Context): Promise<void> {
  validateBucketName(ctx.bucket)
  await readSmallBody(ctx.raw, 64 * 1024)
  await ctx.service.createContainer(ctx.bucket, {})
  ctx.reply.header('location', `/${ctx.bucket}`)
  ctx.reply.code(200).send()
}

/** HeadBucket: HEAD /<bucket> */
export async function headBucket (ctx: S3Context): Promise<void> {
  ctx.service.getContainer(ctx.bucket)
  ctx.reply.header('x-amz-bucket-region', ctx.auth.region)
  ctx.reply.code(200).send()
}

/** DeleteBucket: DELETE /<bucket>; S3 refuses a bucket that still has objects (BucketNotEmpty). */
export async function deleteBucket (ctx: S3Context): Promise<void> {
  await ctx.service.deleteContainer(ctx.bucket, undefined, true)
  ctx.reply.code(204).send()
}

/** GetBucketLocation: GET /<bucket>?location. Empty means us-east-1, which every client accepts. */
export async function getBucketLocation (ctx: S3Context): Promise<void> {
  ctx.service.getContainer(ctx.bucket)
  const region = ctx.auth.region === 'us-east-1' ? '' : ctx.auth.region
  ctx.reply.code(200).header('content-type', 'application/xml')
    .send(`${XML_DECL}<LocationConstraint xmlns="${S3_NS}">${region}</LocationConstraint>`)
}
