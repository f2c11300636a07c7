/**
 * S3 Express append writes (PutObject with `x-amz-write-offset-bytes`) against a real gateway:
 * SigV4-signed requests with the long-term key, @aws-sdk/client-s3 (`WriteOffsetBytes`, default
 * CRC32 checksums, aws-chunked stream bodies; long-term and CreateSession credentials), boto3
 * (`WriteOffsetBytes`), and the appended object read back through the Azure Blob SDK.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { BlobServiceClient } from '@azure/storage-blob'
import t, { type Test } from 'tap'
import { s3Checksum } from '../../../src/core/checksum/s3-checksums.js'
import { startGateway, type GatewayHandle } from '../../helpers/gateway.js'
import { runPythonChecks } from '../../helpers/python-checks.js'
import { signedS3Request, type S3Answer as Answer } from '../../helpers/sigv4.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

const DIR = 'ckpt--use1-az4--x-s3'
const GENERAL = 'general'
const MiB = 1024 * 1024

let gw: GatewayHandle

/** A request signed with the long-term key for service `s3`, payload UNSIGNED-PAYLOAD. */
function s3 (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
  return signedS3Request(gw, method, path, { 'content-length': String(body?.length ?? 0), ...headers }, body)
}

function append (key: string, offset: number | string, data: Buffer, headers: Record<string, string> = {}, bucket = DIR): Promise<Answer> {
  return s3('PUT', `/${bucket}/${key}`, { 'x-amz-write-offset-bytes': String(offset), ...headers }, data)
}

function errorCode (a: Answer): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(a.body.toString())?.[1]
}

function isError (t: Test, a: Answer, status: number, code: string, what: string): void {
  t.equal(a.status, status, `${what}: status ${status}`)
  t.equal(errorCode(a), code, `${what}: ${code}`)
}

function client (extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    endpoint: gw.s3Endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey }, ...extra
  })
}

async function bytes (body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray())
}

async function blobBytes (container: string, name: string): Promise<{ data: Buffer, etag: string | undefined, contentMd5: Uint8Array | undefined, contentType: string | undefined }> {
  const b = BlobServiceClient.fromConnectionString(gw.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(container).getBlockBlobClient(name)
  const props = await b.getProperties()
  return { data: await b.downloadToBuffer(), etag: props.etag, contentMd5: props.contentMD5, contentType: props.contentType }
}

t.before(async () => {
  gw = await startGateway()
  t.equal((await s3('PUT', `/${DIR}`)).status, 200, 'directory bucket created with CreateBucket')
  t.equal((await s3('PUT', `/${GENERAL}`)).status, 200)
})
t.teardown(async () => { await gw?.stop() })

t.test('appends: create at 0, append at the size; ETag, x-amz-object-size; bytes read back through S3 and Blob', async (t) => {
  const a = randomBytes(1000)
  const b = randomBytes(3 * MiB + 17)
  const c = Buffer.from('tail')
  const r1 = await append('log', 0, a, { 'content-type': 'application/x-ndjson', 'x-amz-meta-run': '7' })
  t.equal(r1.status, 200)
  t.equal(r1.headers['x-amz-object-size'], '1000')
  const r2 = await append('log', 1000, b, { 'content-type': 'text/ignored', 'x-amz-meta-run': 'ignored' })
  t.equal(r2.status, 200)
  t.equal(r2.headers['x-amz-object-size'], String(1000 + b.length))
  t.not(r2.headers.etag, r1.headers.etag, 'a new version, a new ETag')
  t.notMatch(String(r2.headers.etag), /^"[0-9a-f]{32}"$/, 'the ETag is opaque, not an MD5 of the content')
  const r3 = await append('log', 1000 + b.length, c)
  const whole = Buffer.concat([a, b, c])
  const got = await s3('GET', `/${DIR}/log`)
  t.equal(got.status, 200)
  t.ok(got.body.equals(whole), 'GetObject: the appended bytes, in order')
  t.equal(got.headers.etag, r3.headers.etag)
  t.equal(got.headers['content-type'], 'application/x-ndjson', 'content type of the creating write kept')
  t.equal(got.headers['x-amz-meta-run'], '7', 'metadata of the creating write kept')
  const ranged = await s3('GET', `/${DIR}/log`, { range: 'bytes=990-1009' })
  t.equal(ranged.status, 206)
  t.ok(ranged.body.equals(whole.subarray(990, 1010)), 'a range across the first append boundary')
  const tailRange = await s3('GET', `/${DIR}/log`, { range: 'bytes=-6' })
  t.ok(tailRange.body.equals(whole.subarray(-6)), 'a suffix range across the last boundary')
  // The same version through the Blob SDK.
  const blob = await blobBytes(DIR, 'log')
  t.ok(blob.data.equals(whole), 'Blob SDK: byte-equal')
  t.equal(blob.etag, r3.headers.etag, 'Blob SDK: same ETag')
  t.equal(blob.contentMd5, undefined, 'no Content-MD5: the content changed after the first write')
  t.equal(blob.contentType, 'application/x-ndjson')
})

t.test('InvalidWriteOffset, InvalidArgument, NotImplemented on a general purpose bucket', async (t) => {
  t.equal((await append('o', 0, Buffer.from('hello'))).status, 200)
  for (const offset of [0, 4, 6, 999_999]) isError(t, await append('o', offset, Buffer.from('!')), 400, 'InvalidWriteOffset', `offset ${offset} on a 5-byte object`)
  isError(t, await append('missing', 3, Buffer.from('x')), 400, 'InvalidWriteOffset', 'offset 3 on a missing object')
  t.equal((await s3('HEAD', `/${DIR}/missing`)).status, 404, 'nothing created')
  for (const bad of ['-1', 'abc', '1.5', '', '0x10', '99999999999999999999']) {
    isError(t, await append('o', bad, Buffer.from('!')), 400, 'InvalidArgument', `x-amz-write-offset-bytes: '${bad}'`)
  }
  const general = await append('o', 0, Buffer.from('x'), {}, GENERAL)
  isError(t, general, 501, 'NotImplemented', 'a general purpose bucket')
  t.match(general.body.toString(), /<Header>x-amz-write-offset-bytes<\/Header>/)
  t.equal((await s3('HEAD', `/${GENERAL}/o`)).status, 404, 'nothing created in the general purpose bucket')
  t.ok((await s3('GET', `/${DIR}/o`)).body.equals(Buffer.from('hello')), 'unchanged')
})

t.test('conditions: If-Match and If-None-Match apply to an append', async (t) => {
  const r1 = await append('cond', 0, Buffer.from('v1'))
  isError(t, await append('cond', 2, Buffer.from('x'), { 'if-match': '"0xNOTIT"' }), 412, 'PreconditionFailed', 'If-Match another ETag')
  isError(t, await append('cond', 2, Buffer.from('x'), { 'if-none-match': '*' }), 412, 'PreconditionFailed', 'If-None-Match: * on an existing object')
  const r2 = await append('cond', 2, Buffer.from('v2'), { 'if-match': String(r1.headers.etag) })
  t.equal(r2.status, 200, 'If-Match the current ETag')
  t.ok((await s3('GET', `/${DIR}/cond`)).body.equals(Buffer.from('v1v2')))
})

t.test('checksums: the part is verified; CRC32 of the whole object is combined; SHA dropped', async (t) => {
  const a = randomBytes(5000)
  const b = randomBytes(7000)
  const r1 = await append('sum', 0, a, { 'x-amz-checksum-crc32': s3Checksum('crc32', a) })
  t.equal(r1.headers['x-amz-checksum-crc32'], s3Checksum('crc32', a))
  const bad = await append('sum', a.length, b, { 'x-amz-checksum-crc32': s3Checksum('crc32', a) })
  isError(t, bad, 400, 'BadDigest', 'a wrong CRC32 for the part')
  isError(t, await append('sum', a.length, b, { 'content-md5': createHash('md5').update(a).digest('base64') }), 400, 'BadDigest', 'a wrong Content-MD5 for the part')
  t.equal((await s3('HEAD', `/${DIR}/sum`)).headers['content-length'], String(a.length), 'nothing appended')
  const r2 = await append('sum', a.length, b, { 'x-amz-checksum-crc32': s3Checksum('crc32', b) })
  t.equal(r2.status, 200)
  t.equal(r2.headers['x-amz-checksum-crc32'], s3Checksum('crc32', b), 'the answer carries the part checksum')
  const head = await s3('HEAD', `/${DIR}/sum`, { 'x-amz-checksum-mode': 'ENABLED' })
  t.equal(head.headers['x-amz-checksum-crc32'], s3Checksum('crc32', Buffer.concat([a, b])), 'HeadObject: CRC32 of the whole object')
  t.equal(head.headers['x-amz-checksum-type'], 'FULL_OBJECT')
  // SHA-256 of a part is not a checksum of the object.
  await append('sha', 0, a, { 'x-amz-checksum-sha256': s3Checksum('sha256', a) })
  t.equal((await s3('HEAD', `/${DIR}/sha`, { 'x-amz-checksum-mode': 'ENABLED' })).headers['x-amz-checksum-sha256'], s3Checksum('sha256', a))
  await append('sha', a.length, b, { 'x-amz-checksum-sha256': s3Checksum('sha256', b) })
  t.equal((await s3('HEAD', `/${DIR}/sha`, { 'x-amz-checksum-mode': 'ENABLED' })).headers['x-amz-checksum-sha256'], undefined, 'dropped after an append')
})

t.test('@aws-sdk/client-s3: PutObject WriteOffsetBytes with its default CRC32 (header and aws-chunked trailer)', async (t) => {
  // Long-term credentials: this path needs no CreateSession.
  const s3c = client({ disableS3ExpressSessionAuth: true })
  t.teardown(() => { s3c.destroy() })
  const key = 'sdk/shard-0'
  const a = randomBytes(2 * MiB)
  const b = randomBytes(5 * MiB + 3)
  const p1 = await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: a, WriteOffsetBytes: 0 }))
  t.equal(p1.Size, a.length, 'Size (x-amz-object-size)')
  t.equal(p1.ChecksumCRC32, s3Checksum('crc32', a), 'the part CRC32 the SDK sent, verified and echoed')
  // A stream body: aws-chunked with the CRC32 in the trailer.
  const p2 = await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: Readable.from([b.subarray(0, MiB), b.subarray(MiB)]), ContentLength: b.length, WriteOffsetBytes: a.length }))
  t.equal(p2.Size, a.length + b.length)
  t.not(p2.ETag, p1.ETag)
  try {
    await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: 'late', WriteOffsetBytes: a.length }))
    t.fail('a stale offset must fail')
  } catch (err) {
    const e = err as S3ServiceException
    t.equal(e.name, 'InvalidWriteOffset')
    t.equal(e.$metadata.httpStatusCode, 400)
  }
  const whole = Buffer.concat([a, b])
  const got = await s3c.send(new GetObjectCommand({ Bucket: DIR, Key: key, ChecksumMode: 'ENABLED' }))
  t.ok((await bytes(got.Body)).equals(whole), 'GetObject: whole')
  t.equal(got.ChecksumCRC32, s3Checksum('crc32', whole), 'GetObject: the whole-object CRC32, combined from the parts')
  t.equal(got.ETag, p2.ETag)
  const range = await s3c.send(new GetObjectCommand({ Bucket: DIR, Key: key, Range: `bytes=${a.length - 10}-${a.length + 9}` }))
  t.ok((await bytes(range.Body)).equals(whole.subarray(a.length - 10, a.length + 10)), 'ranged GetObject across the boundary')
  const head = await s3c.send(new HeadObjectCommand({ Bucket: DIR, Key: key }))
  t.equal(head.ContentLength, whole.length)
  const blob = await blobBytes(DIR, key)
  t.ok(blob.data.equals(whole), 'Blob SDK: byte-equal')
  t.equal(blob.etag, p2.ETag, 'Blob SDK: same ETag')
})

t.test('@aws-sdk/client-s3 with S3 Express session credentials (CreateSession)', async (t) => {
  const s3c = client()
  t.teardown(() => { s3c.destroy() })
  const key = 'session/log'
  const a = randomBytes(100)
  const b = randomBytes(200)
  await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: a, WriteOffsetBytes: 0 }))
  const p2 = await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: b, WriteOffsetBytes: a.length }))
  t.equal(p2.Size, 300)
  try {
    await s3c.send(new PutObjectCommand({ Bucket: DIR, Key: key, Body: b, WriteOffsetBytes: a.length }))
    t.fail('a repeated append must fail')
  } catch (err) {
    t.equal((err as S3ServiceException).name, 'InvalidWriteOffset')
  }
  const got = await s3c.send(new GetObjectCommand({ Bucket: DIR, Key: key }))
  t.ok((await bytes(got.Body)).equals(Buffer.concat([a, b])))
  t.equal(got.ETag, p2.ETag)
})

const BOTO3 = String.raw`
import base64, os, struct, zlib
import boto3
from botocore.exceptions import ClientError

s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'], aws_access_key_id=os.environ['S3_KEY'],
                  aws_secret_access_key=os.environ['S3_SECRET'], region_name='us-east-1')
B = 'pyappend--use1-az4--x-s3'
def check(cond, what):
    print(('ok ' if cond else 'FAIL ') + what)

s3.create_bucket(Bucket=B, CreateBucketConfiguration={'Location': {'Type': 'AvailabilityZone', 'Name': 'use1-az4'},
                                                      'Bucket': {'Type': 'Directory', 'DataRedundancy': 'SingleAvailabilityZone'}})
pieces = [os.urandom(1000), os.urandom(3 * 1024 * 1024 + 1), b'end\n']
offset = 0
for p in pieces:
    r = s3.put_object(Bucket=B, Key='train.log', Body=p, WriteOffsetBytes=offset)
    offset += len(p)
    check(r['Size'] == offset, 'put_object WriteOffsetBytes=%d: Size %d' % (offset - len(p), r['Size']))
try:
    s3.put_object(Bucket=B, Key='train.log', Body=b'x', WriteOffsetBytes=1)
    check(False, 'InvalidWriteOffset')
except ClientError as e:
    check(e.response['Error']['Code'] == 'InvalidWriteOffset' and e.response['ResponseMetadata']['HTTPStatusCode'] == 400, 'InvalidWriteOffset')
whole = b''.join(pieces)
g = s3.get_object(Bucket=B, Key='train.log', ChecksumMode='ENABLED')
check(g['Body'].read() == whole, 'get_object: the appended bytes')
crc = base64.b64encode(struct.pack('>I', zlib.crc32(whole))).decode()
check(g.get('ChecksumCRC32') == crc, 'whole-object CRC32 %s (expected %s)' % (g.get('ChecksumCRC32'), crc))
`

t.test('boto3: put_object WriteOffsetBytes on a directory bucket (CreateSession, default CRC32)', async (t) => {
  await runPythonChecks(t, {
    script: BOTO3,
    env: { S3_ENDPOINT: gw.s3Endpoint, S3_KEY: gw.s3AccessKey, S3_SECRET: gw.s3SecretKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
    checks: 6
  })
})
