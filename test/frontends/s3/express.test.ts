/**
 * S3 Express One Zone on the gateway: directory buckets (`<base>--<zone>--x-s3`) through
 * @aws-sdk/client-s3 with default settings, which opens CreateSession sessions by itself and
 * signs everything after with the session key; the whole data path again on such a bucket;
 * session scoping (bucket, ReadOnly, tampering); directory bucket rules; Blob access to the
 * same objects.
 */
import {
  CreateBucketCommand, CreateSessionCommand, DeleteBucketCommand, GetObjectCommand, HeadBucketCommand, ListBucketsCommand,
  ListDirectoryBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client
} from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { startGateway, type GatewayHandle } from '../../helpers/gateway.js'
import { bytes, dataPathTests, s3Error } from './data-path-cases.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

const ZONE = 'use1-az4'
const directory = (base: string): string => `${base}--${ZONE}--x-s3`
const BUCKET = directory('ckpt')

let gw: GatewayHandle
let s3: S3Client

/** Default settings: no path-style flag, no checksum opt-outs; the SDK handles sessions itself. */
function client (overrides: Partial<ConstructorParameters<typeof S3Client>[0]> = {}): S3Client {
  return new S3Client({
    endpoint: gw.s3Endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey },
    maxAttempts: 1,
    ...overrides
  })
}

/** A client that signs with given session credentials as they are (no CreateSession of its own). */
function sessionClient (creds: { AccessKeyId?: string, SecretAccessKey?: string, SessionToken?: string }): S3Client {
  return client({
    disableS3ExpressSessionAuth: true,
    credentials: { accessKeyId: creds.AccessKeyId!, secretAccessKey: creds.SecretAccessKey!, sessionToken: creds.SessionToken! }
  })
}

function createDirectoryBucket (client: S3Client, bucket: string, zone = ZONE): Promise<unknown> {
  return client.send(new CreateBucketCommand({
    Bucket: bucket,
    CreateBucketConfiguration: { Location: { Type: 'AvailabilityZone', Name: zone }, Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' } }
  }))
}

t.before(async () => {
  gw = await startGateway({ args: ['--log-level', 'debug'] })
  s3 = client()
  await createDirectoryBucket(s3, BUCKET)
})
t.teardown(async () => { s3?.destroy(); await gw?.stop() })

t.test('directory buckets: create, head, list, naming rules, delete', async (t) => {
  const head = await s3.send(new HeadBucketCommand({ Bucket: BUCKET }))
  t.equal(head.BucketLocationType, 'AvailabilityZone')
  t.equal(head.BucketLocationName, ZONE)
  const scratch = directory('scratch')
  await createDirectoryBucket(s3, scratch)
  await s3Error(t, createDirectoryBucket(s3, directory('other'), 'usw2-az1'), 'InvalidBucketName', 400)
  await s3Error(t, createDirectoryBucket(s3, 'Bad--use1-az4--x-s3'), 'InvalidBucketName', 400)
  const listed = await s3.send(new ListDirectoryBucketsCommand({}))
  t.same(listed.Buckets?.map((b) => b.Name), [BUCKET, scratch], 'ListDirectoryBuckets: directory buckets only')
  const general = client({ forcePathStyle: true })
  t.teardown(() => general.destroy())
  await general.send(new CreateBucketCommand({ Bucket: 'plain' }))
  t.same((await general.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['plain'], 'ListBuckets: general purpose buckets only')
  await s3Error(t, createDirectoryBucket(general, 'plain2'), 'InvalidBucketName', 400)
  await s3Error(t, s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: '|' })), 'InvalidArgument', 400)
  t.equal((await s3.send(new DeleteBucketCommand({ Bucket: scratch }))).$metadata.httpStatusCode, 204)
  await s3Error(t, s3.send(new HeadBucketCommand({ Bucket: scratch })), 'NotFound', 404)
})

t.test('CreateSession: five-minute credentials scoped to one bucket and mode', async (t) => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'session/obj', Body: 'v1' }))
  const before = Date.now()
  const rw = await s3.send(new CreateSessionCommand({ Bucket: BUCKET }))
  const expires = rw.Credentials!.Expiration!.getTime()
  t.ok(expires > before + 4 * 60_000 && expires <= Date.now() + 5 * 60_000 + 1000, 'expires in five minutes')
  t.match(rw.Credentials, { AccessKeyId: /^[A-Z0-9]{16,}$/, SecretAccessKey: /\S{20,}/, SessionToken: /\S{40,}/ })

  const withRw = sessionClient(rw.Credentials!)
  const ro = await s3.send(new CreateSessionCommand({ Bucket: BUCKET, SessionMode: 'ReadOnly' }))
  const withRo = sessionClient(ro.Credentials!)
  t.teardown(() => { withRw.destroy(); withRo.destroy() })
  await withRw.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'session/obj', Body: 'v2' }))
  t.equal((await bytes((await withRo.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'session/obj' }))).Body)).toString(), 'v2', 'a ReadOnly session reads')
  await s3Error(t, withRo.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'session/obj', Body: 'v3' })), 'AccessDenied', 403)

  const other = directory('other')
  await createDirectoryBucket(s3, other)
  await s3Error(t, withRw.send(new GetObjectCommand({ Bucket: other, Key: 'session/obj' })), 'AccessDenied', 403)
  await s3Error(t, withRw.send(new CreateSessionCommand({ Bucket: BUCKET })), 'AccessDenied', 403)

  const tampered = sessionClient({ ...rw.Credentials!, SessionToken: rw.Credentials!.SessionToken!.replace(/.$/, (c) => c === 'A' ? 'B' : 'A') })
  const foreign = sessionClient({ ...rw.Credentials!, SessionToken: ro.Credentials!.SessionToken! })
  const wrongSecret = sessionClient({ ...rw.Credentials!, SecretAccessKey: ro.Credentials!.SecretAccessKey! })
  t.teardown(() => { tampered.destroy(); foreign.destroy(); wrongSecret.destroy() })
  await s3Error(t, tampered.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'session/obj' })), 'InvalidToken', 400)
  await s3Error(t, foreign.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'session/obj' })), 'InvalidToken', 400)
  await s3Error(t, wrongSecret.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'session/obj' })), 'SignatureDoesNotMatch', 403)
  await s3Error(t, s3.send(new CreateSessionCommand({ Bucket: 'plain-bucket' })), 'InvalidBucketName', 400)
  await s3Error(t, client({ credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: 'wrong' } }).send(new CreateSessionCommand({ Bucket: BUCKET })), 'SignatureDoesNotMatch', 403)
})

t.test('one namespace: a directory bucket\'s objects through the Blob SDK', async (t) => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'xproto/shard.pt', Body: 'from s3', ContentType: 'application/x-pt', Metadata: { rank: '3' } }))
  const blob = BlobServiceClient.fromConnectionString(gw.connectionString).getContainerClient(BUCKET)
  const props = await blob.getBlobClient('xproto/shard.pt').getProperties()
  t.equal(props.contentType, 'application/x-pt')
  t.same(props.metadata, { rank: '3' })
  t.equal((await blob.getBlobClient('xproto/shard.pt').downloadToBuffer()).toString(), 'from s3')
  t.equal(props.contentMD5, undefined, 'no MD5 is computed for a directory bucket object (opaque ETags)')
  const md5 = createHash('md5').update('checked').digest()
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'xproto/with-md5', Body: 'checked', ContentMD5: md5.toString('base64') }))
  t.same(Buffer.from((await blob.getBlobClient('xproto/with-md5').getProperties()).contentMD5 ?? []), md5, 'a Content-MD5 the client sent is verified and kept')
  await blob.getBlockBlobClient('xproto/from-blob').upload('from blob', 9)
  t.equal((await bytes((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'xproto/from-blob' }))).Body)).toString(), 'from blob')
})

dataPathTests(t, {
  get s3 () { return s3 },
  bucket: BUCKET,
  bucketName: directory,
  get endpoint () { return gw.s3Endpoint },
  md5Etags: false,
  consecutiveParts: true
})

t.test('the SDK signed every object request on a directory bucket with session credentials', async (t) => {
  const seen = gw.output().split('\n').filter((l) => l.includes('"s3 request"')).map((l) => JSON.parse(l) as { op: string, bucket: string, service: string, session: boolean })
  const objectOps = seen.filter((r) => r.bucket === BUCKET && /Object|Part|Multipart/.test(r.op))
  t.ok(objectOps.length > 50, `${objectOps.length} object requests`)
  // The SDK signs CopyObject and UploadPartCopy, which touch two buckets, with the long-term key
  // (its endpoint rules disable session auth for them); S3 Express takes both.
  const copies = new Set(['CopyObject', 'UploadPartCopy'])
  t.same(objectOps.filter((r) => r.service !== 's3express' || r.session === copies.has(r.op)), [], 'sessions for all but the copies')
  t.ok(objectOps.some((r) => copies.has(r.op)), 'copies were among them')
  t.ok(seen.filter((r) => r.op === 'CreateSession').length >= 1, 'sessions were opened with CreateSession')
})
