/**
 * JS client (@aws-sdk/client-s3): CopyObject — the CopyObject + DeleteObject "rename" PyTorch DCP
 * and s3torchconnector use to publish a checkpoint index (`.metadata.tmp` → `.metadata`), the
 * metadata directive (COPY keeps, REPLACE replaces), copying an object onto itself, and a
 * missing source.
 */
import assert from 'node:assert/strict'
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { expectS3Error, type JsCase } from './case.js'
import { payload } from './data.js'

/** `x-amz-copy-source`: bucket and key, the key URL-encoded except its slashes. */
function source(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

export const jsCopyCases: JsCase[] = [
  {
    operation: 'copy/rename-metadata-tmp',
    async run(ctx) {
      const dir = `${ctx.prefix}step_100/`
      const index = payload(`${ctx.runId}/${dir}.metadata`, 64 * 1024)
      const put = await ctx.s3.send(new PutObjectCommand({
        Bucket: ctx.bucket, Key: `${dir}.metadata.tmp`, Body: index, ContentType: 'application/octet-stream', Metadata: { step: '100' },
      }))
      const copy = await ctx.s3.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: `${dir}.metadata`, CopySource: source(ctx.bucket, `${dir}.metadata.tmp`) }))
      assert.equal(copy.CopyObjectResult?.ETag, put.ETag, 'the copy has the source ETag')
      assert.ok(copy.CopyObjectResult?.LastModified instanceof Date, 'CopyObjectResult has LastModified')
      const del = await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: `${dir}.metadata.tmp` }))
      assert.equal(del.$metadata.httpStatusCode, 204, 'DeleteObject of the temp key')
      const get = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: `${dir}.metadata` }))
      assert.ok(Buffer.from(await get.Body!.transformToByteArray()).equals(index), 'bytes of the renamed object')
      assert.deepEqual(get.Metadata, { step: '100' }, 'metadata copied')
      await expectS3Error('the temp key is gone', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${dir}.metadata.tmp` })), 404)
      const list = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: dir }))
      assert.deepEqual(list.Contents?.map((c) => c.Key), [`${dir}.metadata`], 'only the final name is listed')
    },
  },
  {
    operation: 'copy/metadata-directive',
    async run(ctx) {
      const src = `${ctx.prefix}src.bin`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: src, Body: 'shard', ContentType: 'application/x-a', Metadata: { a: '1', b: '2' } }))
      await ctx.s3.send(new CopyObjectCommand({
        Bucket: ctx.bucket, Key: `${ctx.prefix}copied.bin`, CopySource: source(ctx.bucket, src),
        // Ignored with the default directive (COPY): the source's headers and metadata are kept.
        ContentType: 'application/x-ignored', Metadata: { ignored: 'yes' },
      }))
      const copied = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}copied.bin` }))
      assert.equal(copied.ContentType, 'application/x-a', 'COPY keeps the Content-Type')
      assert.deepEqual(copied.Metadata, { a: '1', b: '2' }, 'COPY keeps the metadata')
      await ctx.s3.send(new CopyObjectCommand({
        Bucket: ctx.bucket, Key: `${ctx.prefix}replaced.bin`, CopySource: source(ctx.bucket, src),
        MetadataDirective: 'REPLACE', ContentType: 'application/x-b', Metadata: { c: '3' },
      }))
      const replaced = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}replaced.bin` }))
      assert.equal(await replaced.Body?.transformToString(), 'shard', 'bytes of the copy')
      assert.equal(replaced.ContentType, 'application/x-b', 'REPLACE sets the Content-Type')
      assert.deepEqual(replaced.Metadata, { c: '3' }, 'REPLACE replaces the metadata')
      const original = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: src }))
      assert.deepEqual(original.Metadata, { a: '1', b: '2' }, 'the source is untouched')
    },
  },
  {
    operation: 'copy/onto-itself',
    async run(ctx) {
      const key = `${ctx.prefix}self.bin`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'self', Metadata: { v: '1' } }))
      await expectS3Error('copy onto itself without changes',
        ctx.s3.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: key, CopySource: source(ctx.bucket, key) })), 400, 'InvalidRequest')
      await ctx.s3.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: key, CopySource: source(ctx.bucket, key), MetadataDirective: 'REPLACE', Metadata: { v: '2' } }))
      const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.deepEqual(head.Metadata, { v: '2' }, 'copy onto itself with REPLACE updates the metadata')
    },
  },
  {
    operation: 'copy/missing-source',
    async run(ctx) {
      await expectS3Error('copy of a missing key',
        ctx.s3.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}dst`, CopySource: source(ctx.bucket, `${ctx.prefix}missing`) })), 404, 'NoSuchKey')
      await expectS3Error('nothing was written', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}dst` })), 404)
    },
  },
]
