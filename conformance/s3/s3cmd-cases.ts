/**
 * s3cmd with a config file the suite writes (path-style: host_base and host_bucket are the
 * endpoint; plain HTTP; signature v4): mb and rb, put and get (a multipart put of a file above
 * 5 MiB in 5 MiB chunks included), ls, del.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HeadBucketCommand } from '@aws-sdk/client-s3'
import { expectS3Error } from './case.js'
import { cleanEnv } from './endpoint.js'
import { md5Etag, MiB, multipartEtag, sha256 } from './data.js'
import { listKeys, putKeys, readObject } from './readback.js'
import { treeDigest, writePayload, type ToolCase, type ToolClient, type ToolContext } from './tool.js'

const url = (ctx: ToolContext, key: string): string => `s3://${ctx.bucket}/${key}`

const cases: ToolCase[] = [
  {
    operation: 'mb-rb',
    async run(ctx) {
      const name = `${ctx.runId}-s3cmd`
      await ctx.run(['mb', `s3://${name}`])
      const head = await ctx.s3.send(new HeadBucketCommand({ Bucket: name }))
      assert.equal(head.$metadata.httpStatusCode, 200, 'the bucket s3cmd made exists')
      await ctx.run(['rb', `s3://${name}`])
      await expectS3Error('HeadBucket after rb', ctx.s3.send(new HeadBucketCommand({ Bucket: name })), 404)
    },
  },
  {
    operation: 'put-get',
    async run(ctx) {
      const src = join(ctx.dir, 'shard.bin')
      const data = await writePayload(src, `${ctx.runId}/${ctx.prefix}`, 200 * 1024 + 3)
      await ctx.run(['put', src, url(ctx, `${ctx.prefix}shard.bin`)])
      const obj = await readObject(ctx.s3, ctx.bucket, `${ctx.prefix}shard.bin`)
      assert.deepEqual(obj, { size: data.length, etag: md5Etag(data), sha256: sha256(data) }, 'object written by s3cmd put')
      await ctx.run(['get', url(ctx, `${ctx.prefix}shard.bin`), join(ctx.dir, 'back.bin')])
      assert.equal((await treeDigest(ctx.dir))['back.bin'], sha256(data), 'file written by s3cmd get')
    },
  },
  {
    operation: 'put-multipart',
    timeoutMs: 120_000,
    async run(ctx) {
      const src = join(ctx.dir, 'big.bin')
      const size = 6 * MiB + 5
      const data = await writePayload(src, `${ctx.runId}/${ctx.prefix}`, size)
      await ctx.run(['put', '--multipart-chunk-size-mb=5', src, url(ctx, `${ctx.prefix}big.bin`)], { timeoutMs: 110_000 })
      const obj = await readObject(ctx.s3, ctx.bucket, `${ctx.prefix}big.bin`)
      assert.equal(obj.size, size, 'size')
      assert.equal(obj.etag, multipartEtag([data.subarray(0, 5 * MiB), data.subarray(5 * MiB)]), 'ETag of a 2-part upload')
      assert.equal(obj.sha256, sha256(data), 'sha256')
      await ctx.run(['get', url(ctx, `${ctx.prefix}big.bin`), join(ctx.dir, 'back.bin')], { timeoutMs: 110_000 })
      assert.equal((await treeDigest(ctx.dir))['back.bin'], sha256(data), 'file written by s3cmd get')
    },
  },
  {
    operation: 'ls',
    async run(ctx) {
      await putKeys(ctx.s3, ctx.bucket, ['latest', 'step_100/.metadata', 'step_100/__0_0.distcp'].map((k) => `${ctx.prefix}${k}`))
      const out = (await ctx.run(['ls', url(ctx, ctx.prefix)])).stdout
      const lines = out.split('\n').map((l) => l.trim()).filter(Boolean)
      assert.ok(lines.some((l) => /^DIR\s+/.test(l) && l.endsWith(` ${url(ctx, `${ctx.prefix}step_100/`)}`)), `a DIR line for step_100/ in:\n${out}`)
      assert.ok(lines.some((l) => l.endsWith(` ${url(ctx, `${ctx.prefix}latest`)}`) && new RegExp(`\\s${Buffer.byteLength(`${ctx.prefix}latest`)}\\s`).test(l)), `a line for latest with its size in:\n${out}`)
      assert.equal(lines.length, 2, 'one DIR and one file')
      const rec = (await ctx.run(['ls', '--recursive', url(ctx, ctx.prefix)])).stdout
      assert.equal(rec.split('\n').filter((l) => l.includes(url(ctx, ctx.prefix))).length, 3, 'ls --recursive lists three objects')
    },
  },
  {
    operation: 'del',
    async run(ctx) {
      await putKeys(ctx.s3, ctx.bucket, [`${ctx.prefix}a`, `${ctx.prefix}b`])
      await ctx.run(['del', url(ctx, `${ctx.prefix}a`)])
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), [`${ctx.prefix}b`], 'the deleted key is gone, the other is left')
      await ctx.run(['del', '--recursive', '--force', url(ctx, ctx.prefix)])
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), [], 'del --recursive removed the rest')
    },
  },
]

export const s3cmd: ToolClient = {
  name: 's3cmd',
  command: 's3cmd',
  versionArgs: ['--version'],
  async setup(ep, home) {
    const host = new URL(ep.url).host
    const config = join(home, 's3cfg')
    await writeFile(config, [
      '[default]',
      `access_key = ${ep.accessKeyId}`,
      `secret_key = ${ep.secretAccessKey}`,
      `host_base = ${host}`,
      `host_bucket = ${host}`,
      `use_https = ${new URL(ep.url).protocol === 'https:' ? 'True' : 'False'}`,
      'signature_v2 = False',
      `bucket_location = ${ep.region}`,
      'progress_meter = False',
      '',
    ].join('\n'), { mode: 0o600 })
    return { env: cleanEnv({ HOME: home }), args: ['-c', config] }
  },
  cases,
}
