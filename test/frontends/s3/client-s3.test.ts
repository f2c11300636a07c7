/**
 * The S3 front end through @aws-sdk/client-s3 with default settings (checksums, aws-chunked
 * stream bodies) against a real gateway process, on general purpose buckets.
 */
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetBucketLocationCommand, GetBucketVersioningCommand, HeadBucketCommand,
  ListBucketsCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutObjectCommand, S3Client
} from '@aws-sdk/client-s3'
import t from 'tap'
import { startGateway, type GatewayHandle } from '../../helpers/gateway.js'
import { dataPathTests, s3Error } from './data-path-cases.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

let gw: GatewayHandle
let s3: S3Client

function client (secret?: string, accessKeyId?: string): S3Client {
  return new S3Client({
    endpoint: gw.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKeyId ?? gw.s3AccessKey, secretAccessKey: secret ?? gw.s3SecretKey },
    maxAttempts: 1
  })
}

t.before(async () => {
  gw = await startGateway()
  s3 = client()
  await s3.send(new CreateBucketCommand({ Bucket: 'ckpt' }))
})
t.teardown(async () => { s3?.destroy(); await gw?.stop() })

t.test('buckets: create, head, location, list, BucketNotEmpty, delete', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'scratch' }))
  t.equal((await s3.send(new CreateBucketCommand({ Bucket: 'scratch' }))).$metadata.httpStatusCode, 200, 'us-east-1: an owned bucket is created again with 200')
  const euWest = new S3Client({ endpoint: gw.s3Endpoint, region: 'eu-west-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey } })
  t.teardown(() => euWest.destroy())
  await s3Error(t, euWest.send(new CreateBucketCommand({ Bucket: 'scratch' })), 'BucketAlreadyOwnedByYou', 409)
  await s3Error(t, s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })), 'InvalidBucketName', 400)
  t.equal((await s3.send(new HeadBucketCommand({ Bucket: 'scratch' }))).$metadata.httpStatusCode, 200)
  await s3Error(t, s3.send(new HeadBucketCommand({ Bucket: 'nope' })), 'NotFound', 404)
  t.equal((await s3.send(new GetBucketLocationCommand({ Bucket: 'scratch' }))).LocationConstraint, undefined)
  const names = (await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)
  t.same(names, ['ckpt', 'scratch'])
  await s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'x', Body: 'x' }))
  await s3Error(t, s3.send(new DeleteBucketCommand({ Bucket: 'scratch' })), 'BucketNotEmpty', 409)
  await s3.send(new DeleteObjectCommand({ Bucket: 'scratch', Key: 'x' }))
  t.equal((await s3.send(new DeleteBucketCommand({ Bucket: 'scratch' }))).$metadata.httpStatusCode, 204)
  await s3Error(t, s3.send(new PutObjectCommand({ Bucket: 'scratch', Key: 'x', Body: 'x' })), 'NoSuchBucket', 404)
})

t.test('authentication failures', async (t) => {
  await s3Error(t, client('wrong-secret-key').send(new HeadBucketCommand({ Bucket: 'ckpt' })), undefined, 403)
  await s3Error(t, client('wrong-secret-key').send(new ListObjectsV2Command({ Bucket: 'ckpt' })), 'SignatureDoesNotMatch', 403)
  await s3Error(t, client(undefined, 'AKIDUNKNOWN').send(new ListObjectsV2Command({ Bucket: 'ckpt' })), 'InvalidAccessKeyId', 403)
})

t.test('unversioned buckets: GetBucketVersioning, ListObjectVersions (one null version per key)', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'versions' }))
  const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: 'versions' }))
  t.equal(versioning.Status, undefined, 'never enabled')
  const keys = ['a/1', 'a/2', 'b/1', 'c']
  const etags = new Map<string, string | undefined>()
  for (const Key of keys) etags.set(Key, (await s3.send(new PutObjectCommand({ Bucket: 'versions', Key, Body: Key }))).ETag)
  const first = await s3.send(new ListObjectVersionsCommand({ Bucket: 'versions', MaxKeys: 2 }))
  t.same(first.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest, v.ETag, v.Size]), [['a/1', 'null', true, etags.get('a/1'), 3], ['a/2', 'null', true, etags.get('a/2'), 3]])
  t.equal(first.IsTruncated, true)
  t.equal(first.NextKeyMarker, 'a/2')
  const rest = await s3.send(new ListObjectVersionsCommand({ Bucket: 'versions', KeyMarker: first.NextKeyMarker }))
  t.same(rest.Versions?.map((v) => v.Key), ['b/1', 'c'])
  t.equal(rest.IsTruncated, false)
  const grouped = await s3.send(new ListObjectVersionsCommand({ Bucket: 'versions', Delimiter: '/' }))
  t.same(grouped.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'b/'])
  t.same(grouped.Versions?.map((v) => v.Key), ['c'])
  await s3Error(t, s3.send(new ListObjectVersionsCommand({ Bucket: 'no-such-bucket' })), 'NoSuchBucket', 404)
})

dataPathTests(t, {
  get s3 () { return s3 },
  bucket: 'ckpt',
  bucketName: (base) => base,
  get endpoint () { return gw.s3Endpoint },
  md5Etags: true,
  consecutiveParts: false
})
