/**
 * JS client (@aws-sdk/client-s3, @aws-sdk/lib-storage): S3 Express One Zone directory buckets
 * (`<base>--<zone id>--x-s3`) with the SDK's default settings, which open CreateSession sessions
 * by themselves and sign object requests with the session (service `s3express`,
 * `x-amz-s3session-token`): CreateBucket with a CreateBucketConfiguration, HeadBucket,
 * ListDirectoryBuckets, DeleteBucket; Put/Get/Head/DeleteObject with opaque ETags;
 * ListObjectsV2 with `/` the only delimiter; lib-storage's Upload and part numbers that must run
 * 1, 2, 3, …; append writes (WriteOffsetBytes); a ReadOnly session refused writes; the five-minute
 * lifetime of session credentials. Each case makes its own directory bucket and deletes it.
 */
import assert from 'node:assert/strict'
import {
  CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteBucketCommand, DeleteObjectCommand,
  GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListBucketsCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  ListPartsCommand, paginateListObjectsV2, PutObjectCommand, UploadPartCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { expectS3Error, type JsCase } from './case.js'
import { emptyAndDeleteBucket } from './cleanup.js'
import { hashStream, KiB, md5Etag, MiB, payload, payloadSha256, payloadStream, readAll } from './data.js'
import {
  createDirectoryBucketCommand, directoryBucketName, directoryClient, listDirectoryBuckets, sessionClient,
  withDirectoryBucket, ZONE, type SentRequest,
} from './express.js'

const MIN_PART = 5 * MiB

/** Every request of `commands` in `sent` was signed with a session: service s3express and a token. */
function assertSessionSigned(sent: readonly SentRequest[], commands: readonly string[]): void {
  const objectRequests = sent.filter((r) => commands.includes(r.command))
  assert.ok(objectRequests.length > 0, `requests of ${commands.join(', ')} were sent`)
  for (const r of objectRequests) {
    assert.equal(r.service, 's3express', `${r.command} signed for service s3express`)
    assert.ok(r.sessionToken, `${r.command} carries x-amz-s3session-token`)
  }
  const sessions = sent.filter((r) => r.command === 'CreateSessionCommand')
  assert.ok(sessions.length > 0, 'the SDK opened a session with CreateSession')
  for (const r of sessions) assert.equal(r.sessionToken, undefined, 'CreateSession is signed with the long-term key')
}

async function keysOf(s3: S3Client, bucket: string, prefix: string, pageSize?: number): Promise<string[]> {
  const keys: string[] = []
  for await (const page of paginateListObjectsV2({ client: s3, ...(pageSize ? { pageSize } : {}) }, { Bucket: bucket, Prefix: prefix })) {
    if (pageSize) assert.ok((page.KeyCount ?? 0) <= pageSize, `KeyCount ${page.KeyCount} <= MaxKeys ${pageSize}`)
    for (const c of page.Contents ?? []) keys.push(c.Key ?? '')
  }
  return keys
}

/** Directory buckets do not promise lexicographic order: listings are compared as sets. */
const sorted = (xs: readonly (string | undefined)[]): string[] => xs.map((x) => x ?? '').sort()

export const jsExpressCases: JsCase[] = [
  {
    operation: 'express/bucket-create-head-list-delete',
    async run(ctx) {
      const bucket = directoryBucketName(ctx.runId, 'xb')
      const s3 = directoryClient(ctx.endpoint)
      let created = false
      try {
        const create = await s3.send(createDirectoryBucketCommand(bucket))
        created = true
        assert.equal(create.$metadata.httpStatusCode, 200, 'CreateBucket status')
        const head = await s3.send(new HeadBucketCommand({ Bucket: bucket }))
        assert.equal(head.BucketLocationType, 'AvailabilityZone', 'HeadBucket BucketLocationType')
        assert.equal(head.BucketLocationName, ZONE, 'HeadBucket BucketLocationName')
        const directories = await listDirectoryBuckets(s3)
        assert.ok(directories.includes(bucket), `ListDirectoryBuckets includes ${bucket}`)
        assert.ok(!directories.includes(ctx.bucket), 'ListDirectoryBuckets leaves out the general purpose bucket')
        const general = (await ctx.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? []
        assert.ok(!general.includes(bucket), 'ListBuckets leaves out the directory bucket')
        const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket }))
        assert.equal(list.KeyCount, 0, 'a new directory bucket is empty')
        const del = await s3.send(new DeleteBucketCommand({ Bucket: bucket }))
        created = false
        assert.equal(del.$metadata.httpStatusCode, 204, 'DeleteBucket status')
        await expectS3Error('HeadBucket after delete', s3.send(new HeadBucketCommand({ Bucket: bucket })), 404)
        assert.ok(!(await listDirectoryBuckets(s3)).includes(bucket), 'ListDirectoryBuckets no longer includes it')
      } finally {
        if (created) await emptyAndDeleteBucket(s3, bucket).catch(() => {})
        s3.destroy()
      }
    },
  },
  {
    operation: 'express/put-get-head-delete',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xo', async (s3, bucket, sent) => {
        const key = 'step_100/__0_0.distcp'
        const body = payload(`${ctx.runId}/${bucket}/${key}`, 300 * KiB + 7)
        const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-dcp', Metadata: { step: '100' } }))
        assert.match(put.ETag ?? '', /^".+"$/, 'PutObject ETag is quoted')
        assert.notEqual(put.ETag, md5Etag(body), 'a directory bucket ETag is not the MD5 of the body')
        const get = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        assert.ok((await readAll(get.Body as NodeJS.ReadableStream)).equals(body), 'GetObject bytes')
        assert.deepEqual([get.ETag, get.ContentType, get.Metadata], [put.ETag, 'application/x-dcp', { step: '100' }], 'GetObject ETag, content type, metadata')
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
        assert.deepEqual([head.ContentLength, head.ETag], [body.length, put.ETag], 'HeadObject size and ETag')

        // A stream body: aws-chunked with a CRC32 trailer, under the session's signature.
        const streamKey = 'step_100/__1_0.distcp'
        const size = MiB + 3
        const seed = `${ctx.runId}/${bucket}/${streamKey}`
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: streamKey, Body: payloadStream(seed, size), ContentLength: size }))
        const got = await hashStream((await s3.send(new GetObjectCommand({ Bucket: bucket, Key: streamKey }))).Body as NodeJS.ReadableStream)
        assert.deepEqual([got.bytes, got.sha256], [size, payloadSha256(seed, size)], 'stream upload: size and sha256 read back')

        const del = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
        assert.equal(del.$metadata.httpStatusCode, 204, 'DeleteObject status')
        await expectS3Error('GetObject after delete', s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })), 404, 'NoSuchKey')
        await expectS3Error('HeadObject after delete', s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), 404)
        assertSessionSigned(sent, ['PutObjectCommand', 'GetObjectCommand', 'HeadObjectCommand', 'DeleteObjectCommand'])
      })
    },
  },
  {
    operation: 'express/list-v2-delimiter',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xl', async (s3, bucket) => {
        const root = 'ckpt/'
        const keys = [`${root}latest`, `${root}step_100/.metadata`, `${root}step_100/__0_0.distcp`, `${root}step_100/__1_0.distcp`, `${root}step_200/__0_0.distcp`]
        await Promise.all([...keys, 'other/x'].map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))))
        assert.deepEqual(sorted(await keysOf(s3, bucket, root)), sorted(keys), 'ListObjectsV2 with a prefix')
        const paged = await keysOf(s3, bucket, root, 2)
        assert.deepEqual(sorted(paged), sorted(keys), 'pages of MaxKeys 2 list every key once')
        const top = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: root, Delimiter: '/' }))
        assert.deepEqual(sorted(top.CommonPrefixes?.map((p) => p.Prefix) ?? []), [`${root}step_100/`, `${root}step_200/`], 'CommonPrefixes with /')
        assert.deepEqual(sorted(top.Contents?.map((c) => c.Key) ?? []), [`${root}latest`], 'Contents with /')
        await expectS3Error('ListObjectsV2 with delimiter |', s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: root, Delimiter: '|' })), 400, 'InvalidArgument')
      })
    },
  },
  {
    operation: 'express/multipart-upload',
    timeoutMs: 120_000,
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xm', async (s3, bucket, sent) => {
        const key = 'step_100/__0_0.distcp'
        const size = 2 * MIN_PART + MiB + 5
        const seed = `${ctx.runId}/${bucket}/${key}`
        const done = await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: payloadStream(seed, size) }, partSize: MIN_PART, queueSize: 2 }).done()
        assert.match(done.ETag ?? '', /^".+"$/, 'CompleteMultipartUpload ETag is quoted')
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
        assert.deepEqual([head.ContentLength, head.ETag], [size, done.ETag], 'HeadObject size and ETag')
        const got = await hashStream((await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as NodeJS.ReadableStream)
        assert.deepEqual([got.bytes, got.sha256], [size, payloadSha256(seed, size)], 'size and sha256 read back')
        const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
        assert.deepEqual(open.Uploads ?? [], [], 'no upload left open')
        assert.equal(sent.filter((r) => r.command === 'UploadPartCommand').length, 3, 'three parts')
        assertSessionSigned(sent, ['CreateMultipartUploadCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand'])
      })
    },
  },
  {
    operation: 'express/multipart-consecutive-parts',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xp', async (s3, bucket) => {
        const key = 'parts.bin'
        const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
        const bodies = [payload(`${ctx.runId}/${bucket}/1`, MIN_PART), payload(`${ctx.runId}/${bucket}/2`, KiB), payload(`${ctx.runId}/${bucket}/3`, KiB)]
        const parts: CompletedPart[] = []
        for (const [i, Body] of bodies.entries()) {
          const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body }))
          parts.push({ PartNumber: i + 1, ETag: r.ETag })
        }
        const complete = (list: CompletedPart[]): Promise<unknown> =>
          s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: list } }))
        // Sizes are fine either way (the first part is 5 MiB, the last may be small): only the numbering is wrong.
        await expectS3Error('Complete with parts 1 and 3', complete([parts[0]!, parts[2]!]), 400, 'InvalidPartOrder')
        await expectS3Error('Complete with part 2 alone', complete([parts[1]!]), 400, 'InvalidPartOrder')
        await expectS3Error('the refused Completes wrote nothing', s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), 404)
        await complete([parts[0]!, parts[1]!])
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        assert.ok((await readAll(got.Body as NodeJS.ReadableStream)).equals(Buffer.concat([bodies[0]!, bodies[1]!])), 'parts 1 and 2, in order')
        await expectS3Error('ListParts after Complete', s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId })), 404, 'NoSuchUpload')
      })
    },
  },
  {
    operation: 'express/append',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xa', async (s3, bucket) => {
        const key = 'train.log'
        const a = payload(`${ctx.runId}/${bucket}/a`, 64 * KiB + 1)
        const b = payload(`${ctx.runId}/${bucket}/b`, 100 * KiB + 3)
        const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: a, WriteOffsetBytes: 0 }))
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
        assert.deepEqual([head.ContentLength, head.ETag], [a.length, first.ETag], 'WriteOffsetBytes 0 created the object')
        const second = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: b, WriteOffsetBytes: a.length }))
        assert.equal(second.Size, a.length + b.length, 'PutObject Size after the append')
        assert.notEqual(second.ETag, first.ETag, 'an append makes a new ETag')
        const whole = Buffer.concat([a, b])
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        assert.ok((await readAll(got.Body as NodeJS.ReadableStream)).equals(whole), 'bytes after the append')
        assert.equal(got.ETag, second.ETag, 'GetObject ETag')
        for (const offset of [a.length, whole.length + 1, 0]) {
          await expectS3Error(`WriteOffsetBytes ${offset} on a ${whole.length}-byte object`,
            s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'late', WriteOffsetBytes: offset })), 400, 'InvalidWriteOffset')
        }
        const after = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        assert.ok((await readAll(after.Body as NodeJS.ReadableStream)).equals(whole), 'refused appends changed nothing')
        assert.equal(after.ETag, second.ETag, 'ETag unchanged')
      })
    },
  },
  {
    operation: 'express/session-read-only',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xr', async (s3, bucket) => {
        const key = 'step_100/.metadata'
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'index' }))
        const { client: readOnly, credentials, sent } = await sessionClient(ctx.endpoint, bucket, 'ReadOnly')
        try {
          const got = await readOnly.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
          assert.equal(await got.Body?.transformToString(), 'index', 'a ReadOnly session reads')
          const listed = await readOnly.send(new ListObjectsV2Command({ Bucket: bucket }))
          assert.deepEqual(listed.Contents?.map((c) => c.Key), [key], 'and lists')
          await expectS3Error('PutObject with a ReadOnly session', readOnly.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'overwritten' })), 403, 'AccessDenied')
          await expectS3Error('DeleteObject with a ReadOnly session', readOnly.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })), 403, 'AccessDenied')
          for (const r of sent.filter((x) => x.command !== 'CreateSessionCommand')) {
            assert.deepEqual([r.service, r.sessionToken], ['s3express', credentials.SessionToken], `${r.command} signed with the ReadOnly session`)
          }
        } finally {
          readOnly.destroy()
        }
        const still = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        assert.equal(await still.Body?.transformToString(), 'index', 'the refused writes changed nothing')
      })
    },
  },
  {
    operation: 'express/session-expiry',
    async run(ctx) {
      await withDirectoryBucket(ctx.endpoint, ctx.runId, 'xs', async (_s3, bucket) => {
        const before = Date.now()
        const { client: session, credentials, sent } = await sessionClient(ctx.endpoint, bucket, 'ReadWrite')
        try {
          assert.ok(credentials.Expiration instanceof Date, 'CreateSession returns an Expiration')
          // Against the server's clock (its Date header, to the second) where it sends one.
          const date = sent.find((r) => r.command === 'CreateSessionCommand')?.date
          const lifetime = (credentials.Expiration.getTime() - (date ? Date.parse(date) : before)) / 1000
          assert.ok(lifetime >= 240 && lifetime <= 302, `credentials expire ~5 minutes out (in ${lifetime} s)`)
          // The credentials work: a ReadWrite session writes and reads.
          await session.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v' }))
          assert.equal(await (await session.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body?.transformToString(), 'v', 'read back with the session')
          assert.ok(sent.filter((r) => r.command !== 'CreateSessionCommand').every((r) => r.sessionToken === credentials.SessionToken), 'signed with that session')
        } finally {
          session.destroy()
        }
      })
    },
  },
]
