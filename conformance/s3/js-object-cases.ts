/**
 * JS client (@aws-sdk/client-s3): writing and reading objects — PutObject of 0 B, 1 B and a few
 * MiB from a Buffer and from a stream (aws-chunked with a CRC32 trailer), GetObject whole and
 * ranged (206 with Content-Range; 416 InvalidRange for a range that starts at or after the end),
 * HeadObject, user metadata and content headers, NoSuchKey, DeleteObject.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { expectS3Error, type JsCase, type JsContext } from './case.js'
import { hashStream, md5Etag, MiB, payload, readAll, sha256 } from './data.js'

type Body = 'buffer' | 'stream'

/** PutObject of `size` bytes, then GetObject and HeadObject: bytes, length and ETag equal. */
async function roundTrip(ctx: JsContext, size: number, body: Body): Promise<void> {
  const key = `${ctx.prefix}obj.bin`
  const data = payload(`${ctx.runId}/${key}`, size)
  const put = await ctx.s3.send(new PutObjectCommand({
    Bucket: ctx.bucket,
    Key: key,
    // A stream with a known length is sent aws-chunked with a CRC32 trailer; a Buffer is sent
    // whole with an x-amz-checksum-crc32 header.
    Body: body === 'buffer' ? data : Readable.from(split(data, 256 * 1024)),
    ...(body === 'stream' ? { ContentLength: size } : {}),
  }))
  assert.equal(put.ETag, md5Etag(data), 'PutObject ETag is the MD5 of the body')
  const get = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))
  assert.equal(get.$metadata.httpStatusCode, 200, 'GetObject status')
  assert.equal(get.ContentLength, size, 'GetObject Content-Length')
  assert.equal(get.ETag, put.ETag, 'GetObject ETag')
  const got = await hashStream(get.Body as NodeJS.ReadableStream)
  assert.equal(got.bytes, size, 'bytes read')
  assert.equal(got.sha256, sha256(data), 'sha256 of the bytes read')
  const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
  assert.equal(head.ContentLength, size, 'HeadObject Content-Length')
  assert.equal(head.ETag, put.ETag, 'HeadObject ETag')
}

function split(data: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = []
  for (let off = 0; off < data.length; off += chunk) out.push(data.subarray(off, off + chunk))
  return out
}

async function seeded(ctx: JsContext, leaf: string, size: number): Promise<{ key: string, data: Buffer, etag: string }> {
  const key = `${ctx.prefix}${leaf}`
  const data = payload(`${ctx.runId}/${key}`, size)
  const put = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: data }))
  return { key, data, etag: put.ETag ?? '' }
}

export const jsObjectCases: JsCase[] = [
  { operation: 'put-get/0B-buffer', run: (ctx) => roundTrip(ctx, 0, 'buffer') },
  { operation: 'put-get/0B-stream', run: (ctx) => roundTrip(ctx, 0, 'stream') },
  { operation: 'put-get/1B-buffer', run: (ctx) => roundTrip(ctx, 1, 'buffer') },
  { operation: 'put-get/1B-stream', run: (ctx) => roundTrip(ctx, 1, 'stream') },
  { operation: 'put-get/3MiB-buffer', run: (ctx) => roundTrip(ctx, 3 * MiB + 17, 'buffer') },
  { operation: 'put-get/3MiB-stream', run: (ctx) => roundTrip(ctx, 3 * MiB + 17, 'stream') },
  {
    operation: 'get/range',
    async run(ctx) {
      const { key, data } = await seeded(ctx, 'range.bin', MiB)
      const size = data.length
      const ranges: Array<[string, number, number]> = [
        ['bytes=0-0', 0, 0], ['bytes=1000-5095', 1000, 5095], ['bytes=1048000-', 1048000, size - 1],
        ['bytes=-10', size - 10, size - 1], ['bytes=1048570-2000000', 1048570, size - 1],
      ]
      for (const [range, first, last] of ranges) {
        const r = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, Range: range }))
        assert.equal(r.$metadata.httpStatusCode, 206, `status for ${range}`)
        assert.equal(r.ContentLength, last - first + 1, `Content-Length for ${range}`)
        assert.equal(r.ContentRange, `bytes ${first}-${last}/${size}`, `Content-Range for ${range}`)
        assert.ok((await readAll(r.Body as NodeJS.ReadableStream)).equals(data.subarray(first, last + 1)), `bytes for ${range}`)
      }
    },
  },
  {
    operation: 'get/range-416',
    async run(ctx) {
      const { key } = await seeded(ctx, 'short.bin', 1000)
      await expectS3Error('range starting at the size', ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, Range: 'bytes=1000-1009' })), 416, 'InvalidRange')
      await expectS3Error('range starting past the size', ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, Range: 'bytes=5000-' })), 416, 'InvalidRange')
      const empty = await seeded(ctx, 'empty.bin', 0)
      await expectS3Error('range on a 0-byte object', ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: empty.key, Range: 'bytes=0-0' })), 416, 'InvalidRange')
    },
  },
  {
    operation: 'head',
    async run(ctx) {
      const { key, data, etag } = await seeded(ctx, 'h.bin', 4096)
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.equal(head.$metadata.httpStatusCode, 200, 'status')
      assert.equal(head.ContentLength, data.length, 'Content-Length')
      assert.equal(head.ETag, etag, 'ETag')
      assert.ok(head.LastModified instanceof Date && Math.abs(head.LastModified.getTime() - Date.now()) < 15 * 60_000, `Last-Modified ${String(head.LastModified)}`)
      assert.equal(head.AcceptRanges, 'bytes', 'Accept-Ranges')
      assert.ok(head.ContentType, 'a Content-Type')
      await expectS3Error('HeadObject of a missing key', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}missing` })), 404)
    },
  },
  {
    operation: 'metadata/round-trip',
    async run(ctx) {
      const key = `${ctx.prefix}meta.bin`
      const headers = {
        ContentType: 'application/x-torch-dcp',
        CacheControl: 'no-cache',
        ContentDisposition: 'attachment; filename="meta.bin"',
        ContentEncoding: 'identity',
        ContentLanguage: 'en-US',
      }
      // S3 lowercases metadata names; values come back as sent.
      const metadata = { step: '100', 'world-size': '8', layout: 'dp=4,tp=2' }
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'meta', ...headers, Metadata: metadata }))
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
      const get = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.equal(await get.Body?.transformToString(), 'meta', 'bytes')
      for (const [what, r] of [['HeadObject', head], ['GetObject', get]] as const) {
        assert.deepEqual(r.Metadata, metadata, `${what} metadata`)
        for (const [k, v] of Object.entries(headers)) assert.equal(r[k as keyof typeof headers], v, `${what} ${k}`)
      }
    },
  },
  {
    operation: 'metadata/underscore-name',
    async run(ctx) {
      // `Metadata={'rank_layout': …}` is what a Python user writes; S3 keeps such names.
      const key = `${ctx.prefix}meta.bin`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'meta', Metadata: { rank_layout: 'dp=4,tp=2', step: '1' } }))
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.deepEqual(head.Metadata, { rank_layout: 'dp=4,tp=2', step: '1' }, 'metadata with an underscore in its name')
    },
  },
  {
    operation: 'get/no-such-key',
    async run(ctx) {
      const err = await expectS3Error('GetObject of a missing key', ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}missing` })), 404, 'NoSuchKey')
      assert.ok(err.message, 'the error has a message')
    },
  },
  {
    operation: 'delete',
    async run(ctx) {
      const { key } = await seeded(ctx, 'd.bin', 10)
      const del = await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.equal(del.$metadata.httpStatusCode, 204, 'DeleteObject status')
      await expectS3Error('GetObject after delete', ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key })), 404, 'NoSuchKey')
      const again = await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.equal(again.$metadata.httpStatusCode, 204, 'deleting a missing key is 204')
      const list = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
      assert.equal(list.KeyCount, 0, 'nothing listed')
    },
  },
]
