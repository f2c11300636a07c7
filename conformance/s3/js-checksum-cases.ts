/**
 * JS client (@aws-sdk/client-s3): integrity — a wrong Content-MD5 (BadDigest), a malformed one
 * (InvalidDigest), a wrong x-amz-checksum-crc32 header (BadDigest), and a body corrupted on the
 * wire under an aws-chunked CRC32 trailer (BadDigest); every refused upload stores nothing, and
 * the checksum the SDK sends with a good upload is stored and returned.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { expectS3Error, type JsCase, type JsContext } from './case.js'
import { crc32Base64, payload } from './data.js'

async function expectNothingStored(ctx: JsContext, key: string): Promise<void> {
  await expectS3Error(`${key} was not stored`, ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
}

/**
 * Flips the first byte of data in an aws-chunked body (the byte after the first chunk header's
 * CRLF): the bytes a flaky link or NIC would change, after the SDK computed the trailer.
 */
class FlipFirstDataByte extends Transform {
  private state: 'header' | 'data' | 'done' = 'header'
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.state !== 'done') {
      chunk = Buffer.from(chunk)
      for (let i = 0; i < chunk.length && this.state !== 'done'; i++) {
        if (this.state === 'data') {
          chunk[i] = (chunk[i] ?? 0) ^ 0xff
          this.state = 'done'
        } else if (chunk[i] === 0x0a) {
          this.state = 'data' // the header's CRLF ends here
        }
      }
    }
    cb(null, chunk)
  }
}

/** A client whose stream uploads are corrupted after checksumming; asserts a trailer was sent. */
function corruptingClient(ctx: JsContext): { client: S3Client, sawTrailer: () => string | undefined } {
  const client = ctx.client()
  let trailer: string | undefined
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { headers: Record<string, string>, body?: unknown }
      trailer = req.headers['x-amz-trailer']
      if (req.body instanceof Readable) req.body = req.body.pipe(new FlipFirstDataByte())
      return next(args)
    },
    { step: 'finalizeRequest', name: 'conformanceCorruptBody', priority: 'low' },
  )
  return { client, sawTrailer: () => trailer }
}

export const jsChecksumCases: JsCase[] = [
  {
    operation: 'checksum/bad-content-md5',
    async run(ctx) {
      const key = `${ctx.prefix}bad-md5.bin`
      const wrong = createHash('md5').update('some other body').digest('base64')
      await expectS3Error('PutObject with the MD5 of another body',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'checkpoint shard', ContentMD5: wrong })), 400, 'BadDigest')
      await expectNothingStored(ctx, key)
    },
  },
  {
    operation: 'checksum/invalid-content-md5',
    async run(ctx) {
      const key = `${ctx.prefix}invalid-md5.bin`
      await expectS3Error('PutObject with a Content-MD5 that is not a base64 MD5',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'checkpoint shard', ContentMD5: 'bm90LWFuLW1kNQ==' })), 400, 'InvalidDigest')
      await expectNothingStored(ctx, key)
    },
  },
  {
    operation: 'checksum/bad-crc32-header',
    async run(ctx) {
      const key = `${ctx.prefix}bad-crc.bin`
      const body = Buffer.from('checkpoint shard')
      // A checksum given as input is sent as is, in an x-amz-checksum-crc32 header.
      await expectS3Error('PutObject with the CRC32 of another body',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: body, ChecksumCRC32: crc32Base64(Buffer.from('other')) })), 400, 'BadDigest')
      await expectNothingStored(ctx, key)
    },
  },
  {
    operation: 'checksum/bad-crc32-trailer',
    async run(ctx) {
      const key = `${ctx.prefix}corrupted.bin`
      const data = payload(`${ctx.runId}/${key}`, 300_000)
      const { client, sawTrailer } = corruptingClient(ctx)
      await expectS3Error('aws-chunked PutObject corrupted after checksumming',
        client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: Readable.from([data]), ContentLength: data.length })), 400, 'BadDigest')
      assert.equal(sawTrailer(), 'x-amz-checksum-crc32', 'the SDK sent the CRC32 in a trailer')
      await expectNothingStored(ctx, key)
    },
  },
  {
    operation: 'checksum/stored-and-returned',
    async run(ctx) {
      const key = `${ctx.prefix}good.bin`
      const data = payload(`${ctx.runId}/${key}`, 200_000)
      const put = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: Readable.from([data]), ContentLength: data.length }))
      assert.equal(put.ChecksumCRC32, crc32Base64(data), 'PutObject returns the CRC32 it verified')
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key, ChecksumMode: 'ENABLED' }))
      assert.equal(head.ChecksumCRC32, crc32Base64(data), 'HeadObject with checksum mode returns it')
      // The SDK validates the returned checksum against the bytes it reads.
      const get = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, ChecksumMode: 'ENABLED' }))
      assert.equal(get.ChecksumCRC32, crc32Base64(data), 'GetObject with checksum mode returns it')
      assert.ok(Buffer.from(await get.Body!.transformToByteArray()).equals(data), 'bytes')
    },
  },
]
