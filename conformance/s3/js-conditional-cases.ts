/**
 * JS client (@aws-sdk/client-s3): conditional requests — GetObject with If-Match / If-None-Match /
 * If-Modified-Since / If-Unmodified-Since (304 Not Modified, 412 PreconditionFailed), and
 * conditional writes: PutObject with If-None-Match: * (create only) and If-Match (compare and
 * swap), which leave the object as it was when they fail.
 */
import assert from 'node:assert/strict'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { expectS3Error, type JsCase, type JsContext } from './case.js'
import { md5Etag } from './data.js'

const OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'

async function body(ctx: JsContext, key: string): Promise<string | undefined> {
  return (await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))).Body?.transformToString()
}

export const jsConditionalCases: JsCase[] = [
  {
    operation: 'get/conditional',
    async run(ctx) {
      const key = `${ctx.prefix}c.bin`
      const { ETag } = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: '0123456789' }))
      const get = (input: Partial<ConstructorParameters<typeof GetObjectCommand>[0]>): Promise<unknown> =>
        ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, ...input }))
      const future = new Date(Date.now() + 3600_000)
      const past = new Date(Date.now() - 24 * 3600_000)
      await expectS3Error('If-None-Match: <etag>', get({ IfNoneMatch: ETag }), 304)
      await expectS3Error('If-Modified-Since: <future>', get({ IfModifiedSince: future }), 304)
      await expectS3Error('If-Match: <other etag>', get({ IfMatch: OTHER_ETAG }), 412, 'PreconditionFailed')
      await expectS3Error('If-Unmodified-Since: <yesterday>', get({ IfUnmodifiedSince: past }), 412, 'PreconditionFailed')
      await expectS3Error('HeadObject If-Match: <other etag>', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key, IfMatch: OTHER_ETAG })), 412)
      const ok = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, IfMatch: ETag, IfNoneMatch: OTHER_ETAG }))
      assert.equal(await ok.Body?.transformToString(), '0123456789', 'If-Match: <etag> and If-None-Match: <other> read the object')
      const since = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, IfModifiedSince: past }))
      assert.equal(since.$metadata.httpStatusCode, 200, 'If-Modified-Since: <yesterday> is 200')
      await since.Body?.transformToString()
    },
  },
  {
    operation: 'put/if-none-match',
    async run(ctx) {
      const key = `${ctx.prefix}step_100/.metadata`
      const first = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'first', IfNoneMatch: '*' }))
      assert.equal(first.ETag, md5Etag(Buffer.from('first')), 'a create-only put of a new key succeeds')
      await expectS3Error('create-only put of an existing key',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'second', IfNoneMatch: '*' })), 412, 'PreconditionFailed')
      assert.equal(await body(ctx, key), 'first', 'the object is unchanged')
    },
  },
  {
    operation: 'put/if-match',
    async run(ctx) {
      const key = `${ctx.prefix}latest`
      const v1 = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'step_100' }))
      await expectS3Error('If-Match with another ETag',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'step_150', IfMatch: OTHER_ETAG })), 412, 'PreconditionFailed')
      assert.equal(await body(ctx, key), 'step_100', 'unchanged after a failed If-Match')
      const v2 = await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'step_200', IfMatch: v1.ETag }))
      assert.equal(v2.ETag, md5Etag(Buffer.from('step_200')), 'If-Match with the current ETag replaces the object')
      assert.equal(await body(ctx, key), 'step_200', 'the new bytes')
      await expectS3Error('If-Match with the replaced ETag',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'step_300', IfMatch: v1.ETag })), 412, 'PreconditionFailed')
    },
  },
  {
    operation: 'put/if-match-missing-key',
    async run(ctx) {
      // S3 answers a conditional write with If-Match to a key that has no object 404 NoSuchKey.
      const key = `${ctx.prefix}missing`
      await expectS3Error('If-Match on a missing key',
        ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'x', IfMatch: OTHER_ETAG })), 404, 'NoSuchKey')
      await expectS3Error('nothing was written', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })), 404)
    },
  },
]
