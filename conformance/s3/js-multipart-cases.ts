/**
 * JS client (@aws-sdk/client-s3, @aws-sdk/lib-storage): multipart uploads — lib-storage's Upload
 * of a stream of 21 MiB (ETag `md5-of-part-md5s-N`), ListParts, ListMultipartUploads,
 * AbortMultipartUpload, and CompleteMultipartUpload's refusals: InvalidPart (unknown part or
 * wrong ETag), InvalidPartOrder, EntityTooSmall (a part but the last under 5 MiB), NoSuchUpload.
 * A refused Complete leaves the upload open; an aborted one leaves nothing.
 */
import assert from 'node:assert/strict'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand,
  HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, UploadPartCommand, type CompletedPart,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { expectS3Error, type JsCase, type JsContext } from './case.js'
import { hashStream, md5Etag, MiB, multipartEtag, payload, payloadSha256, payloadStream } from './data.js'

const MIN_PART = 5 * MiB

/** Runs `fn` with an open multipart upload of `key`, aborted afterwards unless `fn` completed it. */
async function withUpload(ctx: JsContext, key: string, fn: (uploadId: string) => Promise<void>): Promise<void> {
  const { UploadId } = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key }))
  assert.ok(UploadId, 'CreateMultipartUpload returns an UploadId')
  try {
    await fn(UploadId)
  } finally {
    // After a Complete or an Abort this is a NoSuchUpload, which is fine.
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId })).catch(() => {})
  }
}

async function uploadPart(ctx: JsContext, key: string, uploadId: string, n: number, body: Buffer): Promise<CompletedPart> {
  const r = await ctx.s3.send(new UploadPartCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body }))
  assert.equal(r.ETag, md5Etag(body), `UploadPart ${n} ETag is the part's MD5`)
  return { PartNumber: n, ETag: r.ETag }
}

function complete(ctx: JsContext, key: string, uploadId: string, parts: CompletedPart[]): Promise<unknown> {
  return ctx.s3.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }))
}

export const jsMultipartCases: JsCase[] = [
  {
    operation: 'multipart/upload',
    timeoutMs: 120_000,
    async run(ctx) {
      const key = `${ctx.prefix}step_100/__0_0.distcp`
      const size = 4 * MIN_PART + MiB + 5
      const seed = `${ctx.runId}/${key}`
      const upload = new Upload({ client: ctx.s3, params: { Bucket: ctx.bucket, Key: key, Body: payloadStream(seed, size) }, partSize: MIN_PART, queueSize: 2 })
      const done = await upload.done()
      const data = payload(seed, size)
      const parts = Array.from({ length: Math.ceil(size / MIN_PART) }, (_, i) => data.subarray(i * MIN_PART, (i + 1) * MIN_PART))
      const want = multipartEtag(parts)
      assert.equal(done.ETag, want, 'CompleteMultipartUpload ETag is md5-of-part-md5s-5')
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.equal(head.ContentLength, size, 'HeadObject Content-Length')
      assert.equal(head.ETag, want, 'HeadObject ETag')
      const got = await hashStream((await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))).Body as NodeJS.ReadableStream)
      assert.equal(got.bytes, size, 'bytes read')
      assert.equal(got.sha256, payloadSha256(seed, size), 'sha256 of the bytes read')
      const open = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
      assert.deepEqual(open.Uploads ?? [], [], 'no upload left open')
    },
  },
  {
    operation: 'multipart/list-parts-abort',
    async run(ctx) {
      const key = `${ctx.prefix}aborted.bin`
      await withUpload(ctx, key, async (uploadId) => {
        const p1 = payload(`${ctx.runId}/${key}/1`, MIN_PART)
        const p2 = payload(`${ctx.runId}/${key}/2`, 1024)
        const parts = [await uploadPart(ctx, key, uploadId, 1, p1), await uploadPart(ctx, key, uploadId, 2, p2)]
        const listed = await ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }))
        assert.equal(listed.UploadId, uploadId, 'ListParts UploadId')
        assert.deepEqual(listed.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag]), [[1, p1.length, parts[0]?.ETag], [2, p2.length, parts[1]?.ETag]], 'ListParts parts')
        assert.equal(listed.IsTruncated, false, 'ListParts IsTruncated')
        const uploads = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
        assert.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [[key, uploadId]], 'ListMultipartUploads')
        const abort = await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }))
        assert.equal(abort.$metadata.httpStatusCode, 204, 'AbortMultipartUpload status')
        await expectS3Error('ListParts after abort', ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId })), 404, 'NoSuchUpload')
        const after = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
        assert.deepEqual(after.Uploads ?? [], [], 'ListMultipartUploads after abort')
        await expectS3Error('HeadObject after abort', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
      })
    },
  },
  {
    operation: 'multipart/invalid-part',
    async run(ctx) {
      const key = `${ctx.prefix}invalid-part.bin`
      await withUpload(ctx, key, async (uploadId) => {
        const p1 = payload(`${ctx.runId}/${key}/1`, MIN_PART)
        const p2 = payload(`${ctx.runId}/${key}/2`, 100)
        const parts = [await uploadPart(ctx, key, uploadId, 1, p1), await uploadPart(ctx, key, uploadId, 2, p2)]
        await expectS3Error('Complete with a part never uploaded',
          complete(ctx, key, uploadId, [...parts, { PartNumber: 3, ETag: parts[1]?.ETag }]), 400, 'InvalidPart')
        await expectS3Error('Complete with a wrong part ETag',
          complete(ctx, key, uploadId, [parts[0]!, { PartNumber: 2, ETag: md5Etag(Buffer.from('other')) }]), 400, 'InvalidPart')
        await expectS3Error('the refused Completes wrote nothing', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
        const done = await complete(ctx, key, uploadId, parts) as { ETag?: string }
        assert.equal(done.ETag, multipartEtag([p1, p2]), 'the upload is still open: Complete with the right parts succeeds')
        const got = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))
        assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([p1, p2])), 'bytes')
      })
    },
  },
  {
    operation: 'multipart/invalid-part-order',
    async run(ctx) {
      const key = `${ctx.prefix}order.bin`
      await withUpload(ctx, key, async (uploadId) => {
        const parts = [
          await uploadPart(ctx, key, uploadId, 1, payload(`${ctx.runId}/${key}/1`, MIN_PART)),
          await uploadPart(ctx, key, uploadId, 2, payload(`${ctx.runId}/${key}/2`, MIN_PART)),
        ]
        // Both parts are large enough, so the order is the only thing wrong.
        await expectS3Error('Complete with parts in descending order', complete(ctx, key, uploadId, [parts[1]!, parts[0]!]), 400, 'InvalidPartOrder')
        await expectS3Error('nothing was written', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
      })
    },
  },
  {
    operation: 'multipart/entity-too-small',
    async run(ctx) {
      const key = `${ctx.prefix}small.bin`
      await withUpload(ctx, key, async (uploadId) => {
        const parts = [
          await uploadPart(ctx, key, uploadId, 1, payload(`${ctx.runId}/${key}/1`, MiB)),
          await uploadPart(ctx, key, uploadId, 2, payload(`${ctx.runId}/${key}/2`, MiB)),
        ]
        await expectS3Error('Complete with a 1 MiB first part', complete(ctx, key, uploadId, parts), 400, 'EntityTooSmall')
        await expectS3Error('nothing was written', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
      })
    },
  },
  {
    operation: 'multipart/no-such-upload',
    async run(ctx) {
      const key = `${ctx.prefix}nothing.bin`
      const UploadId = 'bm8tc3VjaC11cGxvYWQ'
      await expectS3Error('UploadPart', ctx.s3.send(new UploadPartCommand({ Bucket: ctx.bucket, Key: key, UploadId, PartNumber: 1, Body: 'x' })), 404, 'NoSuchUpload')
      await expectS3Error('ListParts', ctx.s3.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: key, UploadId })), 404, 'NoSuchUpload')
      await expectS3Error('CompleteMultipartUpload', complete(ctx, key, UploadId, [{ PartNumber: 1, ETag: md5Etag(Buffer.from('x')) }]), 404, 'NoSuchUpload')
      await expectS3Error('AbortMultipartUpload', ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId })), 404, 'NoSuchUpload')
    },
  },
]
