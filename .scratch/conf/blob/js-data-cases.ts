/**
 * JS client (@azure/storage-blob): writing and reading bytes — Put Blob of every size class, the
 * SDK's staged-block path above 256 MiB, uploadStream, downloads whole, streamed, parallel and
 * ranged (Get Blob with x-ms-range), including the edges Azure defines: a range past the end is
 * clamped, a range that starts at or after the end (so any range on an empty blob) is 416
 * InvalidRange.
 */
import assert from 'node:assert/strict'
import type { BlockBlobClient } from '@azure/storage-blob'
import { expectRestError, type JsCase, type JsContext } from './case.js'
import { hashStream, MiB, payload, payloadSha256, payloadStream, readAll, sha256 } from './data.js'

/** Uploads `size` bytes with uploadData and checks a streamed download returns exactly them. */
async function uploadDataRoundTrip(ctx: JsContext, size: number, opts: { expectStaged?: boolean } = {}): Promise<void> {
  const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}blob.bin`)
  const seed = `${ctx.runId}/${ctx.prefix}`
  let expected: string
  {
    // Scoped so the one copy of the payload can be collected before the download.
    const data = payload(seed, size)
    expected = sha256(data)
    const up = await blob.uploadData(data)
    assert.ok(up.etag, 'upload response has an etag')
  }
  const props = await blob.getProperties()
  assert.equal(props.contentLength, size, 'Content-Length after upload')
  if (opts.expectStaged) {
    // uploadData above 256 MiB must have gone Put Block ×N + Put Block List.
    const list = await blob.getBlockList('committed')
    assert.ok((list.committedBlocks?.length ?? 0) > 1, `committed block count ${list.committedBlocks?.length}`)
  }
  const dl = await blob.download()
  assert.equal(dl.contentLength, size, 'download Content-Length')
  const got = await hashStream(dl.readableStreamBody)
  assert.equal(got.bytes, size, 'bytes streamed')
  assert.equal(got.sha256, expected, 'sha256 of streamed download')
}

/** A small blob of known bytes for the read cases. */
async function seeded(ctx: JsContext, name: string, size: number): Promise<{ blob: BlockBlobClient, data: Buffer }> {
  const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}${name}`)
  const data = payload(`${ctx.runId}/${ctx.prefix}${name}`, size)
  await blob.uploadData(data)
  return { blob, data }
}

export const jsDataCases: JsCase[] = [
  { operation: 'upload/0B', run: (ctx) => uploadDataRoundTrip(ctx, 0) },
  { operation: 'upload/1B', run: (ctx) => uploadDataRoundTrip(ctx, 1) },
  { operation: 'upload/8MiB', run: (ctx) => uploadDataRoundTrip(ctx, 8 * MiB) },
  {
    operation: 'upload/300MiB-staged',
    timeoutMs: 240_000,
    run: (ctx) => uploadDataRoundTrip(ctx, 300 * MiB, { expectStaged: true }),
  },
  {
    operation: 'upload/stream',
    async run(ctx) {
      const size = 10 * MiB + 123
      const seed = `${ctx.runId}/${ctx.prefix}`
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}streamed.bin`)
      await blob.uploadStream(payloadStream(seed, size), 4 * MiB, 2, {
        blobHTTPHeaders: { blobContentType: 'application/x-ckpt' },
      })
      const dl = await blob.download()
      assert.equal(dl.contentType, 'application/x-ckpt', 'content type set by uploadStream')
      const got = await hashStream(dl.readableStreamBody)
      assert.equal(got.bytes, size, 'bytes streamed')
      assert.equal(got.sha256, payloadSha256(seed, size), 'sha256')
    },
  },
  {
    operation: 'download/to-buffer',
    async run(ctx) {
      // 5 MiB + 7 with 1 MiB blocks: downloadToBuffer issues 6 parallel ranged GETs.
      const { blob, data } = await seeded(ctx, 'buf.bin', 5 * MiB + 7)
      const buf = await blob.downloadToBuffer(0, undefined, { blockSize: MiB, concurrency: 3 })
      assert.equal(buf.length, data.length, 'length')
      assert.ok(buf.equals(data), 'bytes equal')
      const part = await blob.downloadToBuffer(MiB - 3, 2 * MiB, { blockSize: 512 * 1024 })
      assert.ok(part.equals(data.subarray(MiB - 3, 3 * MiB - 3)), 'offset/count bytes equal')
    },
  },
  {
    operation: 'download/stream',
    async run(ctx) {
      const { blob, data } = await seeded(ctx, 'stream.bin', 3 * MiB + 1)
      const dl = await blob.download()
      assert.equal(dl._response.status, 200, 'status')
      assert.equal(dl.contentLength, data.length, 'Content-Length')
      assert.equal(dl.blobType, 'BlockBlob', 'x-ms-blob-type')
      assert.equal(dl.acceptRanges, 'bytes', 'Accept-Ranges')
      const got = await hashStream(dl.readableStreamBody)
      assert.equal(got.sha256, sha256(data), 'sha256')
    },
  },
  {
    operation: 'download/range',
    async run(ctx) {
      const { blob, data } = await seeded(ctx, 'range.bin', 2 * MiB)
      for (const [offset, count] of [[0, 1], [1000, 4096], [MiB - 1, 2], [2 * MiB - 10, 10]] as const) {
        const dl = await blob.download(offset, count)
        assert.equal(dl._response.status, 206, `status for ${offset}+${count}`)
        assert.equal(dl.contentLength, count, `Content-Length for ${offset}+${count}`)
        assert.equal(dl.contentRange, `bytes ${offset}-${offset + count - 1}/${data.length}`, 'Content-Range')
        const got = await readAll(dl.readableStreamBody)
        assert.ok(got.equals(data.subarray(offset, offset + count)), `bytes for ${offset}+${count}`)
      }
      // Offset only: from there to the end.
      const tail = await blob.download(2 * MiB - 5)
      assert.ok((await readAll(tail.readableStreamBody)).equals(data.subarray(2 * MiB - 5)), 'open-ended range')
    },
  },
  {
    operation: 'download/range-past-end',
    async run(ctx) {
      const { blob, data } = await seeded(ctx, 'clamp.bin', 1000)
      const dl = await blob.download(990, 100)
      assert.equal(dl._response.status, 206, 'status')
      assert.equal(dl.contentLength, 10, 'clamped Content-Length')
      assert.equal(dl.contentRange, 'bytes 990-999/1000', 'clamped Content-Range')
      assert.ok((await readAll(dl.readableStreamBody)).equals(data.subarray(990)), 'bytes')
      const whole = await blob.download(0, 5000)
      assert.equal(whole.contentRange, 'bytes 0-999/1000', 'range larger than the blob')
      assert.ok((await readAll(whole.readableStreamBody)).equals(data), 'bytes of the larger range')
    },
  },
  {
    operation: 'download/range-start-past-end-416',
    async run(ctx) {
      const { blob } = await seeded(ctx, 'short.bin', 1000)
      const err = await expectRestError('range starting at the size', blob.download(1000, 10), 416, 'InvalidRange')
      assert.equal(err.response?.headers.get('content-range'), 'bytes */1000', 'Content-Range of the 416 tells the size')
      await expectRestError('range starting past the size', blob.download(5000), 416, 'InvalidRange')
    },
  },
  {
    operation: 'download/range-empty-416',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}empty.bin`)
      await blob.uploadData(Buffer.alloc(0))
      // Without a range the empty blob reads fine...
      const dl = await blob.download()
      assert.equal(dl._response.status, 200, 'status without a range')
      assert.equal((await readAll(dl.readableStreamBody)).length, 0, 'empty body')
      // ...with any range it is 416, and Content-Range tells the size (clients use it to learn it).
      const err = await expectRestError('range 0-0 on a 0-byte blob', blob.download(0, 1), 416, 'InvalidRange')
      assert.equal(err.response?.headers.get('content-range'), 'bytes */0', 'Content-Range of the 416')
    },
  },
]
