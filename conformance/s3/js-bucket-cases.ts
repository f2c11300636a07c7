/**
 * JS client (@aws-sdk/client-s3): buckets — CreateBucket, HeadBucket, ListBuckets,
 * GetBucketLocation, DeleteBucket (refused with BucketNotEmpty while objects remain), and the
 * errors a user meets: NoSuchBucket, InvalidBucketName, re-creating a bucket one owns.
 */
import assert from 'node:assert/strict'
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetBucketLocationCommand, GetObjectCommand,
  HeadBucketCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand,
} from '@aws-sdk/client-s3'
import { expectS3Error, type JsCase } from './case.js'
import { createBucketInput } from './endpoint.js'

export const jsBucketCases: JsCase[] = [
  {
    operation: 'bucket/create-head-list-delete',
    async run(ctx) {
      const name = `${ctx.runId}-b1`
      const created = await ctx.s3.send(new CreateBucketCommand(createBucketInput(ctx.endpoint, name)))
      assert.equal(created.$metadata.httpStatusCode, 200, 'CreateBucket status')
      const head = await ctx.s3.send(new HeadBucketCommand({ Bucket: name }))
      assert.equal(head.$metadata.httpStatusCode, 200, 'HeadBucket status')
      const listed = (await ctx.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? []
      assert.ok(listed.includes(name), `ListBuckets includes ${name}`)
      assert.ok(listed.includes(ctx.bucket), 'ListBuckets includes the run bucket')
      const empty = await ctx.s3.send(new ListObjectsV2Command({ Bucket: name }))
      assert.equal(empty.KeyCount, 0, 'a new bucket is empty')
      const del = await ctx.s3.send(new DeleteBucketCommand({ Bucket: name }))
      assert.equal(del.$metadata.httpStatusCode, 204, 'DeleteBucket status')
      await expectS3Error('HeadBucket after delete', ctx.s3.send(new HeadBucketCommand({ Bucket: name })), 404)
      const after = (await ctx.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? []
      assert.ok(!after.includes(name), 'ListBuckets no longer includes it')
    },
  },
  {
    operation: 'bucket/location',
    async run(ctx) {
      const loc = await ctx.s3.send(new GetBucketLocationCommand({ Bucket: ctx.bucket }))
      // us-east-1 is the empty LocationConstraint; every other region is named.
      const want = ctx.endpoint.region === 'us-east-1' ? undefined : ctx.endpoint.region
      assert.equal(loc.LocationConstraint || undefined, want, 'LocationConstraint')
    },
  },
  {
    operation: 'bucket/create-existing',
    async run(ctx) {
      // S3 answers 409 BucketAlreadyOwnedByYou in every region but us-east-1, where re-creating a
      // bucket one owns is 200 OK (legacy behaviour, documented with the error code).
      const again = (): Promise<unknown> => ctx.s3.send(new CreateBucketCommand(createBucketInput(ctx.endpoint, ctx.bucket)))
      if (ctx.endpoint.region === 'us-east-1') {
        const r = await again() as { $metadata: { httpStatusCode?: number } }
        assert.equal(r.$metadata.httpStatusCode, 200, 'CreateBucket of an owned bucket in us-east-1')
      } else {
        await expectS3Error('CreateBucket of an owned bucket', again, 409, 'BucketAlreadyOwnedByYou')
      }
      const list = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
      assert.equal(list.KeyCount, 0, 'the bucket is still there and usable')
    },
  },
  {
    operation: 'bucket/not-empty',
    async run(ctx) {
      const name = `${ctx.runId}-b2`
      await ctx.s3.send(new CreateBucketCommand(createBucketInput(ctx.endpoint, name)))
      await ctx.s3.send(new PutObjectCommand({ Bucket: name, Key: 'step_100/.metadata', Body: 'index' }))
      await expectS3Error('DeleteBucket with an object in it', ctx.s3.send(new DeleteBucketCommand({ Bucket: name })), 409, 'BucketNotEmpty')
      const still = await ctx.s3.send(new GetObjectCommand({ Bucket: name, Key: 'step_100/.metadata' }))
      assert.equal(await still.Body?.transformToString(), 'index', 'the object survived the refused delete')
      await ctx.s3.send(new DeleteObjectCommand({ Bucket: name, Key: 'step_100/.metadata' }))
      await ctx.s3.send(new DeleteBucketCommand({ Bucket: name }))
      await expectS3Error('HeadBucket after delete', ctx.s3.send(new HeadBucketCommand({ Bucket: name })), 404)
    },
  },
  {
    operation: 'bucket/no-such-bucket',
    async run(ctx) {
      const name = `${ctx.runId}-missing`
      await expectS3Error('HeadBucket', ctx.s3.send(new HeadBucketCommand({ Bucket: name })), 404)
      await expectS3Error('ListObjectsV2', ctx.s3.send(new ListObjectsV2Command({ Bucket: name })), 404, 'NoSuchBucket')
      await expectS3Error('PutObject', ctx.s3.send(new PutObjectCommand({ Bucket: name, Key: 'k', Body: 'x' })), 404, 'NoSuchBucket')
      await expectS3Error('GetObject', ctx.s3.send(new GetObjectCommand({ Bucket: name, Key: 'k' })), 404, 'NoSuchBucket')
      await expectS3Error('DeleteBucket', ctx.s3.send(new DeleteBucketCommand({ Bucket: name })), 404, 'NoSuchBucket')
    },
  },
  {
    operation: 'bucket/invalid-name',
    async run(ctx) {
      for (const bad of ['Upper-Case-Bucket', 'under_score', 'ab']) {
        await expectS3Error(`CreateBucket ${bad}`, ctx.s3.send(new CreateBucketCommand(createBucketInput(ctx.endpoint, bad))), 400, 'InvalidBucketName')
      }
    },
  },
]
