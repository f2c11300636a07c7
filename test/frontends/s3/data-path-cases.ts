/**
 * The data path through @aws-sdk/client-s3 with default settings (checksums, aws-chunked stream
 * bodies): the same cases for a general purpose bucket (client-s3.test.ts) and for an S3
 * Express directory bucket reached through CreateSession sessions (express.test.ts).
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, UploadPartCopyCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsCommand,
  ListObjectsV2Command, ListPartsCommand, PutObjectCommand, S3ServiceException, UploadPartCommand, paginateListObjectsV2, type S3Client
} from '@aws-sdk/client-s3'
import { Crc32, Crc64Nvme } from '@aws-sdk/checksums/crc'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { Test } from 'tap'

export interface DataPathEnv {
  /** A client with default settings (directory buckets: it opens sessions itself). */
  s3: S3Client
  /** An existing, empty bucket of the kind under test. */
  bucket: string
  /** A bucket name of the kind under test for `base` (not created). */
  bucketName: (base: string) => string
  /** `http://127.0.0.1:<s3 port>` */
  endpoint: string
  /** PutObject answers the content MD5 as ETag (general purpose buckets; directory buckets' are opaque). */
  md5Etags: boolean
  /** Parts must be numbered 1, 2, 3, … (directory buckets). */
  consecutiveParts: boolean
}

export async function bytes (body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray())
}

export function md5hex (b: Buffer): string {
  return createHash('md5').update(b).digest('hex')
}

/** `name` undefined: a body-less answer (304, HEAD), which the SDK cannot name. */
export async function s3Error (t: Test, p: Promise<unknown>, name: string | undefined, status: number): Promise<S3ServiceException> {
  try {
    await p
  } catch (err) {
    const e = err as S3ServiceException
    if (name !== undefined) t.equal(e.name, name, `error code ${name}`)
    t.equal(e.$metadata.httpStatusCode, status, `status ${status}`)
    return e
  }
  t.fail(`expected ${name}`)
  throw new Error('unreachable')
}

async function checksum (algorithm: typeof Crc32 | typeof Crc64Nvme, data: Uint8Array): Promise<Buffer> {
  const hash = new algorithm()
  hash.update(data)
  return Buffer.from(await hash.digest())
}

export function dataPathTests (t: Test, env: DataPathEnv): void {
  const B = env.bucket

  t.test('PutObject / GetObject: Buffer and stream bodies of 0 B, 1 B, 10 MiB', async (t) => {
    for (const size of [0, 1, 10 * 1024 * 1024]) {
      const data = Buffer.alloc(size)
      for (let i = 0; i < size; i += 4096) data[i] = (i / 4096) & 0xff
      if (size > 0) data[size - 1] = 7
      const put = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: `buf/${size}`, Body: data }))
      const stream = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: `stream/${size}`, Body: Readable.from(size === 0 ? [] : [data.subarray(0, size >> 1), data.subarray(size >> 1)]), ContentLength: size }))
      if (env.md5Etags) {
        t.equal(put.ETag, `"${md5hex(data)}"`, `${size} B buffer: ETag is the content MD5`)
        t.equal(stream.ETag, `"${md5hex(data)}"`, `${size} B stream (aws-chunked with a trailer)`)
      } else {
        t.not(put.ETag, stream.ETag, 'directory buckets: every version has its own opaque ETag')
      }
      for (const [key, etag] of [[`buf/${size}`, put.ETag], [`stream/${size}`, stream.ETag]]) {
        const got = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: key }))
        t.equal(got.ContentLength, size)
        t.ok((await bytes(got.Body)).equals(data), `${key}: bytes equal`)
        t.equal(got.ETag, etag)
      }
    }
    const head = await env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'buf/1', ChecksumMode: 'ENABLED' }))
    t.equal(head.ContentLength, 1)
    t.ok(head.ChecksumCRC32 !== undefined || head.ChecksumCRC64NVME !== undefined || head.ChecksumCRC32C !== undefined, 'the checksum the SDK sent is stored and echoed')
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'missing' })), 'NoSuchKey', 404)
  })

  t.test('checksums are verified before commit', async (t) => {
    const body = Buffer.from('checkpoint shard')
    await s3Error(t, env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad-md5', Body: body, ContentMD5: createHash('md5').update('other').digest('base64') })), 'BadDigest', 400)
    await s3Error(t, env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'bad-crc', Body: body, ChecksumCRC32: 'AAAAAA==' })), 'BadDigest', 400)
    await s3Error(t, env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'bad-crc' })), 'NotFound', 404)
    const ok = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'good-sha', Body: body, ChecksumAlgorithm: 'SHA256' }))
    t.equal(ok.ChecksumSHA256, createHash('sha256').update(body).digest('base64'))
    const got = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'good-sha', ChecksumMode: 'ENABLED' }))
    t.equal(got.ChecksumSHA256, ok.ChecksumSHA256, 'full GET echoes the stored checksum')
    await bytes(got.Body)
    const ranged = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'good-sha', Range: 'bytes=0-3', ChecksumMode: 'ENABLED' }))
    t.equal(ranged.ChecksumSHA256, undefined, 'never on a 206')
    t.equal((await bytes(ranged.Body)).toString(), 'chec')
  })

  t.test('ranged GETs, 416, conditional GETs', async (t) => {
    const data = Buffer.from('0123456789')
    const { ETag } = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'range', Body: data }))
    const cases: Array<[string, string, string]> = [['bytes=2-5', '2345', 'bytes 2-5/10'], ['bytes=7-', '789', 'bytes 7-9/10'], ['bytes=-3', '789', 'bytes 7-9/10'], ['bytes=8-100', '89', 'bytes 8-9/10']]
    for (const [range, want, contentRange] of cases) {
      const r = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', Range: range }))
      t.equal(r.$metadata.httpStatusCode, 206, range)
      t.equal(r.ContentRange, contentRange)
      t.equal((await bytes(r.Body)).toString(), want)
    }
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', Range: 'bytes=10-' })), 'InvalidRange', 416)
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', IfMatch: '"nope"' })), 'PreconditionFailed', 412)
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', IfNoneMatch: ETag })), undefined, 304)
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', IfModifiedSince: new Date(Date.now() + 60_000) })), undefined, 304)
    await s3Error(t, env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', IfUnmodifiedSince: new Date(Date.now() - 3600_000) })), 'PreconditionFailed', 412)
    const ok = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'range', IfMatch: ETag }))
    t.equal((await bytes(ok.Body)).toString(), '0123456789')
  })

  t.test('conditional PutObject: If-None-Match * and If-Match', async (t) => {
    const first = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'cond', Body: 'v1', IfNoneMatch: '*' }))
    await s3Error(t, env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'cond', Body: 'v2', IfNoneMatch: '*' })), 'PreconditionFailed', 412)
    await s3Error(t, env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'cond', Body: 'v2', IfMatch: '"0123456789abcdef0123456789abcdef"' })), 'PreconditionFailed', 412)
    await env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'cond', Body: 'v2', IfMatch: first.ETag }))
    t.equal((await bytes((await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'cond' }))).Body)).toString(), 'v2')
  })

  t.test('presigned GET and PUT', async (t) => {
    const putUrl = await getSignedUrl(env.s3, new PutObjectCommand({ Bucket: B, Key: 'presigned/obj' }), { expiresIn: 300 })
    const put = await fetch(putUrl, { method: 'PUT', body: 'presigned body' })
    t.equal(put.status, 200, await put.text())
    const getUrl = await getSignedUrl(env.s3, new GetObjectCommand({ Bucket: B, Key: 'presigned/obj' }), { expiresIn: 300 })
    const got = await fetch(getUrl)
    t.equal(got.status, 200)
    t.equal(await got.text(), 'presigned body')
    const tampered = await fetch(getUrl.replace('presigned%2Fobj', 'presigned%2Fother').replace('presigned/obj', 'presigned/other'))
    t.equal(tampered.status, 403)
    t.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/)
    const anonymous = await fetch(`${env.endpoint}/${B}/presigned/obj`)
    t.equal(anonymous.status, 403)
    t.match(await anonymous.text(), new RegExp(`<Error><Code>AccessDenied</Code><Message>Access Denied</Message><Resource>/${B}/presigned/obj</Resource><RequestId>\\w+</RequestId></Error>`))
    t.ok(anonymous.headers.get('x-amz-request-id'))
  })

  t.test('CopyObject + DeleteObject rename (DCP .metadata.tmp → .metadata); metadata directive', async (t) => {
    const put = await env.s3.send(new PutObjectCommand({ Bucket: B, Key: 'step_1/.metadata.tmp', Body: 'index', ContentType: 'application/x-dcp', Metadata: { step: '1' } }))
    const copy = await env.s3.send(new CopyObjectCommand({ Bucket: B, Key: 'step_1/.metadata', CopySource: `${B}/step_1/.metadata.tmp` }))
    if (env.md5Etags) t.equal(copy.CopyObjectResult?.ETag, put.ETag, 'a copy keeps the MD5 ETag')
    else t.match(copy.CopyObjectResult?.ETag, /^"[^"]+"$/, 'a copy has an ETag')
    t.equal((await env.s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'step_1/.metadata.tmp' }))).$metadata.httpStatusCode, 204)
    t.equal((await env.s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'step_1/.metadata.tmp' }))).$metadata.httpStatusCode, 204, 'deleting a missing key is 204')
    const head = await env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'step_1/.metadata' }))
    t.equal(head.ContentType, 'application/x-dcp')
    t.same(head.Metadata, { step: '1' })
    await env.s3.send(new CopyObjectCommand({ Bucket: B, Key: 'step_1/.metadata', CopySource: `${B}/step_1/.metadata`, MetadataDirective: 'REPLACE', ContentType: 'text/plain', Metadata: { step: '2' } }))
    const replaced = await env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'step_1/.metadata' }))
    t.equal(replaced.ContentType, 'text/plain')
    t.same(replaced.Metadata, { step: '2' })
    await s3Error(t, env.s3.send(new CopyObjectCommand({ Bucket: B, Key: 'step_1/.metadata', CopySource: `${B}/step_1/.metadata` })), 'InvalidRequest', 400)
    await s3Error(t, env.s3.send(new CopyObjectCommand({ Bucket: B, Key: 'x', CopySource: `${B}/missing` })), 'NoSuchKey', 404)
    await s3Error(t, env.s3.send(new CopyObjectCommand({ Bucket: B, Key: 'x', CopySource: `${B}/step_1/.metadata`, CopySourceIfMatch: '"nope"' })), 'PreconditionFailed', 412)
  })

  t.test('ListObjectsV2 paging over a DCP layout; ListObjects v1; DeleteObjects', async (t) => {
    const dcp = env.bucketName('dcp')
    await env.s3.send(new CreateBucketCommand({ Bucket: dcp }))
    const keys: string[] = []
    for (const step of [100, 200]) {
      for (let rank = 0; rank < 6; rank++) keys.push(`step_${step}/__${rank}_0.distcp`)
      keys.push(`step_${step}/.metadata`)
    }
    keys.push('a b+c&d.txt')
    for (const key of keys) await env.s3.send(new PutObjectCommand({ Bucket: dcp, Key: key, Body: key }))
    keys.sort()

    const seen: string[] = []
    let pages = 0
    for await (const page of paginateListObjectsV2({ client: env.s3, pageSize: 4 }, { Bucket: dcp })) {
      pages++
      t.ok((page.KeyCount ?? 0) <= 4)
      for (const c of page.Contents ?? []) seen.push(c.Key!)
    }
    t.same(seen, keys, 'every key once, in order')
    t.equal(pages, Math.ceil(keys.length / 4))

    const top = await env.s3.send(new ListObjectsV2Command({ Bucket: dcp, Delimiter: '/' }))
    t.same(top.CommonPrefixes?.map((p) => p.Prefix), ['step_100/', 'step_200/'])
    t.same(top.Contents?.map((c) => c.Key), ['a b+c&d.txt'])
    t.equal(top.KeyCount, 3)
    t.equal(top.IsTruncated, false)

    const prefixed = await env.s3.send(new ListObjectsV2Command({ Bucket: dcp, Prefix: 'step_200/', StartAfter: 'step_200/__2_0.distcp', MaxKeys: 2 }))
    t.same(prefixed.Contents?.map((c) => c.Key), ['step_200/__3_0.distcp', 'step_200/__4_0.distcp'])
    t.equal(prefixed.IsTruncated, true)
    t.ok(prefixed.NextContinuationToken)
    const rest = await env.s3.send(new ListObjectsV2Command({ Bucket: dcp, Prefix: 'step_200/', ContinuationToken: prefixed.NextContinuationToken }))
    t.same(rest.Contents?.map((c) => c.Key), ['step_200/__5_0.distcp'])

    const v1 = await env.s3.send(new ListObjectsCommand({ Bucket: dcp, Delimiter: '/', MaxKeys: 2 }))
    t.same(v1.CommonPrefixes?.map((p) => p.Prefix), ['step_100/'])
    t.equal(v1.IsTruncated, true)
    t.equal(v1.NextMarker, 'step_100/')
    const v1b = await env.s3.send(new ListObjectsCommand({ Bucket: dcp, Delimiter: '/', Marker: v1.NextMarker }))
    t.same(v1b.CommonPrefixes?.map((p) => p.Prefix), ['step_200/'])
    t.equal(v1b.IsTruncated, false)

    const del = await env.s3.send(new DeleteObjectsCommand({ Bucket: dcp, Delete: { Objects: [{ Key: 'step_100/.metadata' }, { Key: 'never-existed' }] } }))
    t.same(del.Deleted?.map((d) => d.Key).sort(), ['never-existed', 'step_100/.metadata'])
    const quiet = await env.s3.send(new DeleteObjectsCommand({ Bucket: dcp, Delete: { Quiet: true, Objects: keys.filter((k) => k.startsWith('step_100/__')).map((Key) => ({ Key })) } }))
    t.equal(quiet.Deleted, undefined, 'Quiet: only errors are listed')
    const left = await env.s3.send(new ListObjectsV2Command({ Bucket: dcp, Prefix: 'step_100/' }))
    t.equal(left.KeyCount, 0)
    await s3Error(t, env.s3.send(new DeleteObjectsCommand({ Bucket: dcp, Delete: { Objects: [] } })), 'MalformedXML', 400)
  })

  t.test('multipart: lib-storage Upload of 100 MiB; ETag is md5-of-md5s-N', async (t) => {
    const partSize = 8 * 1024 * 1024
    const size = 100 * 1024 * 1024
    const data = Buffer.alloc(size)
    for (let i = 0; i < size; i += 1024) data.writeUInt32LE(i, i)
    const upload = new Upload({ client: env.s3, params: { Bucket: B, Key: 'big/100MiB', Body: Readable.from((function * () { for (let o = 0; o < size; o += 1024 * 1024) yield data.subarray(o, o + 1024 * 1024) })()), ContentType: 'application/octet-stream', Metadata: { kind: 'shard' } }, partSize, queueSize: 4 })
    const done = await upload.done()
    const md5s = createHash('md5')
    for (let o = 0; o < size; o += partSize) md5s.update(createHash('md5').update(data.subarray(o, o + partSize)).digest())
    const etag = `"${md5s.digest('hex')}-${Math.ceil(size / partSize)}"`
    t.equal(done.ETag, etag)
    const head = await env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'big/100MiB' }))
    t.equal(head.ContentLength, size)
    t.equal(head.ETag, etag)
    t.same(head.Metadata, { kind: 'shard' })
    const got = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'big/100MiB' }))
    const hash = createHash('sha256')
    for await (const chunk of got.Body as Readable) hash.update(chunk as Buffer)
    t.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'), 'bytes equal')
    const mid = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'big/100MiB', Range: `bytes=${partSize - 4}-${partSize + 3}` }))
    t.ok((await bytes(mid.Body)).equals(data.subarray(partSize - 4, partSize + 4)), 'a range across a part boundary')
  })

  t.test('multipart rules: ListParts, InvalidPart, InvalidPartOrder, EntityTooSmall, Abort, ListMultipartUploads', async (t) => {
    const { UploadId } = await env.s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', ContentType: 'text/x-test' }))
    const big = Buffer.alloc(5 * 1024 * 1024, 1)
    const p1 = await env.s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId, PartNumber: 1, Body: big }))
    t.equal(p1.ETag, `"${md5hex(big)}"`, 'a part ETag is its MD5')
    const small = Buffer.from('tail')
    const p2 = await env.s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId, PartNumber: 2, Body: small }))
    const p3 = await env.s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId, PartNumber: 3, Body: small }))
    const parts = await env.s3.send(new ListPartsCommand({ Bucket: B, Key: 'mpu/obj', UploadId }))
    t.same(parts.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]), [[1, p1.ETag, big.length], [2, p2.ETag, 4], [3, p3.ETag, 4]])
    const uploads = await env.s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'mpu/' }))
    t.same(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [['mpu/obj', UploadId]])

    const complete = (Parts: Array<{ PartNumber: number, ETag?: string }>): Promise<unknown> =>
      env.s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', UploadId, MultipartUpload: { Parts } }))
    await s3Error(t, complete([{ PartNumber: 1, ETag: p2.ETag }]), 'InvalidPart', 400)
    await s3Error(t, complete([{ PartNumber: 2, ETag: p2.ETag }, { PartNumber: 1, ETag: p1.ETag }]), 'InvalidPartOrder', 400)
    await s3Error(t, complete([{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }, { PartNumber: 3, ETag: p3.ETag }]), 'EntityTooSmall', 400)
    await s3Error(t, env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpu/obj' })), 'NotFound', 404)
    // A directory bucket takes parts 1, 2, 3, … only; a general purpose bucket any ascending subset.
    const last = env.consecutiveParts ? { PartNumber: 2, ETag: p2.ETag } : { PartNumber: 3, ETag: p3.ETag }
    if (env.consecutiveParts) await s3Error(t, complete([{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 3, ETag: p3.ETag }]), 'InvalidPartOrder', 400)
    const done = await env.s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, last] } }))
    t.match(done.ETag, /^"[0-9a-f]{32}-2"$/)
    const got = await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpu/obj' }))
    t.equal(got.ContentType, 'text/x-test')
    t.ok((await bytes(got.Body)).equals(Buffer.concat([big, small])), 'only the listed parts, in order')
    await s3Error(t, env.s3.send(new ListPartsCommand({ Bucket: B, Key: 'mpu/obj', UploadId })), 'NoSuchUpload', 404)

    const again = await env.s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj' }))
    const q = await env.s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId: again.UploadId, PartNumber: 1, Body: small }))
    await s3Error(t, env.s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', UploadId: again.UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: q.ETag }] } })), 'PreconditionFailed', 412)
    t.equal((await env.s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/obj', UploadId: again.UploadId }))).$metadata.httpStatusCode, 204)
    await s3Error(t, env.s3.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/obj', UploadId: again.UploadId, PartNumber: 2, Body: small })), 'NoSuchUpload', 404)
    t.equal((await env.s3.send(new ListMultipartUploadsCommand({ Bucket: B }))).Uploads, undefined)
  })

  t.test('multipart checksums (COMPOSITE from lib-storage, FULL_OBJECT CRC64NVME) and UploadPartCopy', async (t) => {
    const MiB = 1024 * 1024
    const data = Buffer.alloc(11 * MiB)
    for (let i = 0; i < data.length; i += 512) data.writeUInt32BE(i * 2654435761 >>> 0, i)
    const done = await new Upload({ client: env.s3, params: { Bucket: B, Key: 'mpc/composite', Body: data }, partSize: 5 * MiB }).done()
    const partCrcs: Buffer[] = []
    for (let o = 0; o < data.length; o += 5 * MiB) partCrcs.push(await checksum(Crc32, data.subarray(o, o + 5 * MiB)))
    const composite = `${(await checksum(Crc32, Buffer.concat(partCrcs))).toString('base64')}-3`
    t.equal(done.ChecksumCRC32, composite, 'lib-storage: the CRC32 of the part CRC32s, -3')
    t.equal(done.ChecksumType, 'COMPOSITE')
    const head = await env.s3.send(new HeadObjectCommand({ Bucket: B, Key: 'mpc/composite', ChecksumMode: 'ENABLED' }))
    t.equal(head.ChecksumCRC32, composite)
    t.equal(head.ChecksumType, 'COMPOSITE')
    t.ok((await bytes((await env.s3.send(new GetObjectCommand({ Bucket: B, Key: 'mpc/composite', ChecksumMode: 'ENABLED' }))).Body)).equals(data))

    const Key = 'mpc/full-object'
    const { UploadId } = await env.s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key, ChecksumAlgorithm: 'CRC64NVME' }))
    const first = data.subarray(0, 5 * MiB)
    const p1 = await env.s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId, PartNumber: 1, Body: first, ChecksumAlgorithm: 'CRC64NVME' }))
    t.equal(p1.ChecksumCRC64NVME, (await checksum(Crc64Nvme, first)).toString('base64'), 'UploadPart echoes the part checksum')
    await s3Error(t, env.s3.send(new UploadPartCopyCommand({ Bucket: B, Key, UploadId, PartNumber: 2, CopySource: `${B}/mpc/composite`, CopySourceRange: `bytes=0-${data.length}` })), 'InvalidArgument', 400)
    await s3Error(t, env.s3.send(new UploadPartCopyCommand({ Bucket: B, Key, UploadId, PartNumber: 2, CopySource: `${B}/mpc/composite`, CopySourceIfMatch: '"nope"' })), 'PreconditionFailed', 412)
    const p2 = await env.s3.send(new UploadPartCopyCommand({ Bucket: B, Key, UploadId, PartNumber: 2, CopySource: `${B}/mpc/composite`, CopySourceRange: 'bytes=100-1099' }))
    const copied = data.subarray(100, 1100)
    t.equal(p2.CopyPartResult?.ETag, `"${md5hex(copied)}"`, 'UploadPartCopy: the part ETag is the MD5 of the copied range')
    t.equal(p2.CopyPartResult?.ChecksumCRC64NVME, (await checksum(Crc64Nvme, copied)).toString('base64'), 'and its checksum is the upload\'s algorithm')
    const listed = await env.s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId }))
    t.same(listed.Parts?.map((p) => [p.PartNumber, p.ChecksumCRC64NVME]), [[1, p1.ChecksumCRC64NVME], [2, p2.CopyPartResult?.ChecksumCRC64NVME]])
    t.equal(listed.ChecksumAlgorithm, 'CRC64NVME')
    const parts = [{ PartNumber: 1, ETag: p1.ETag, ChecksumCRC64NVME: p1.ChecksumCRC64NVME }, { PartNumber: 2, ETag: p2.CopyPartResult?.ETag, ChecksumCRC64NVME: p2.CopyPartResult?.ChecksumCRC64NVME }]
    await s3Error(t, env.s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key, UploadId, MultipartUpload: { Parts: [parts[0]!, { ...parts[1]!, ChecksumCRC64NVME: p1.ChecksumCRC64NVME }] } })), 'InvalidPart', 400)
    const whole = Buffer.concat([first, copied])
    const full = await env.s3.send(new CompleteMultipartUploadCommand({ Bucket: B, Key, UploadId, MultipartUpload: { Parts: parts } }))
    t.equal(full.ChecksumCRC64NVME, (await checksum(Crc64Nvme, whole)).toString('base64'), 'FULL_OBJECT: the CRC64NVME of the whole object, combined from the parts')
    t.equal(full.ChecksumType, 'FULL_OBJECT')
    const got = await env.s3.send(new GetObjectCommand({ Bucket: B, Key, ChecksumMode: 'ENABLED' }))
    t.equal(got.ChecksumCRC64NVME, full.ChecksumCRC64NVME)
    t.ok((await bytes(got.Body)).equals(whole), 'bytes equal (and the SDK checked them against the full-object checksum)')
  })
}
