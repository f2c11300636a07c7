/**
 * JS client (@aws-sdk/client-s3): DeleteObjects, verbose (every key reported deleted, missing
 * ones too: deleting what is not there succeeds) and quiet (only errors reported), and what is
 * left afterwards.
 */
import assert from 'node:assert/strict'
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import type { JsCase, JsContext } from './case.js'

async function seed(ctx: JsContext, n: number): Promise<string[]> {
  const keys = Array.from({ length: n }, (_, i) => `${ctx.prefix}step_100/__${i}_0.distcp`)
  await Promise.all(keys.map((k) => ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: k, Body: k }))))
  return keys
}

async function remaining(ctx: JsContext): Promise<string[]> {
  const list = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: ctx.prefix }))
  return (list.Contents ?? []).map((c) => c.Key ?? '')
}

export const jsDeleteCases: JsCase[] = [
  {
    operation: 'delete-objects/verbose',
    async run(ctx) {
      const keys = await seed(ctx, 4)
      const missing = `${ctx.prefix}never-written`
      const r = await ctx.s3.send(new DeleteObjectsCommand({
        Bucket: ctx.bucket,
        Delete: { Objects: [...keys.slice(0, 3), missing].map((Key) => ({ Key })) },
      }))
      assert.deepEqual((r.Deleted ?? []).map((d) => d.Key).sort(), [...keys.slice(0, 3), missing].sort(), 'Deleted lists every key, missing ones too')
      assert.deepEqual(r.Errors ?? [], [], 'no Errors')
      assert.deepEqual(await remaining(ctx), keys.slice(3), 'only the key not named is left')
    },
  },
  {
    operation: 'delete-objects/quiet',
    async run(ctx) {
      const keys = await seed(ctx, 3)
      const r = await ctx.s3.send(new DeleteObjectsCommand({
        Bucket: ctx.bucket,
        Delete: { Quiet: true, Objects: [...keys, `${ctx.prefix}never-written`].map((Key) => ({ Key })) },
      }))
      assert.deepEqual(r.Deleted ?? [], [], 'quiet mode reports no deleted keys')
      assert.deepEqual(r.Errors ?? [], [], 'no Errors')
      assert.deepEqual(await remaining(ctx), [], 'nothing left')
    },
  },
]
