/**
 * The AWS CLI (`aws` on PATH: v1 from pip or v2 from Debian's awscli), configured only through
 * the environment and a config file in a temp HOME: `aws s3 cp` up and down (a file above the
 * 8 MiB multipart threshold included, downloaded with ranged GETs), `aws s3 ls`, `aws s3 sync` both ways, `aws s3 rm
 * --recursive`, `aws s3api head-object`.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { cleanEnv } from './endpoint.js'
import { md5Etag, MiB, multipartEtag, sha256 } from './data.js'
import { listKeys, putKeys, readObject } from './readback.js'
import { treeDigest, writePayload, type ToolCase, type ToolClient, type ToolContext } from './tool.js'

const url = (ctx: ToolContext, key: string): string => `s3://${ctx.bucket}/${key}`

/** Key → size from `aws s3 ls` lines (`2026-01-01 12:00:00       1234 name`; `PRE dir/` for prefixes). */
function parseLs(stdout: string): { files: Record<string, number>, dirs: string[] } {
  const files: Record<string, number> = {}
  const dirs: string[] = []
  for (const line of stdout.split('\n')) {
    const pre = /^\s*PRE (.+)$/.exec(line)
    if (pre) dirs.push(pre[1] ?? '')
    const f = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\d+) (.+)$/.exec(line)
    if (f) files[f[2] ?? ''] = Number(f[1])
  }
  return { files, dirs }
}

const cases: ToolCase[] = [
  {
    operation: 's3/cp',
    timeoutMs: 120_000,
    async run(ctx) {
      const up = join(ctx.dir, 'up')
      const seed = `${ctx.runId}/${ctx.prefix}`
      const small = await writePayload(join(up, 'small.bin'), `${seed}small`, 300 * 1024 + 1)
      // Above the CLI's default 8 MiB threshold: a multipart upload of 8 MiB parts.
      const big = await writePayload(join(up, 'big.bin'), `${seed}big`, 9 * MiB + 3)
      await ctx.run(['s3', 'cp', '--no-progress', join(up, 'small.bin'), url(ctx, `${ctx.prefix}small.bin`)])
      await ctx.run(['s3', 'cp', '--no-progress', join(up, 'big.bin'), url(ctx, `${ctx.prefix}big.bin`)], { timeoutMs: 110_000 })
      assert.deepEqual(await readObject(ctx.s3, ctx.bucket, `${ctx.prefix}small.bin`),
        { size: small.length, etag: md5Etag(small), sha256: sha256(small) }, 'the small object: size, MD5 ETag, bytes')
      assert.deepEqual(await readObject(ctx.s3, ctx.bucket, `${ctx.prefix}big.bin`),
        { size: big.length, etag: multipartEtag([big.subarray(0, 8 * MiB), big.subarray(8 * MiB)]), sha256: sha256(big) },
        'the large object: size, ETag of a 2-part upload, bytes')
      // Down, recursively: the large object with ranged GETs.
      const down = join(ctx.dir, 'down')
      await ctx.run(['s3', 'cp', '--no-progress', '--recursive', url(ctx, ctx.prefix), down], { timeoutMs: 110_000 })
      assert.deepEqual(await treeDigest(down), await treeDigest(up), 'the files aws s3 cp downloaded')
    },
  },
  {
    operation: 's3/ls',
    async run(ctx) {
      const keys = ['latest', 'step_100/.metadata', 'step_100/__0_0.distcp', 'step_200/.metadata'].map((k) => `${ctx.prefix}${k}`)
      await putKeys(ctx.s3, ctx.bucket, keys)
      const top = parseLs((await ctx.run(['s3', 'ls', url(ctx, ctx.prefix)])).stdout)
      assert.deepEqual(top.dirs, ['step_100/', 'step_200/'], 'PRE lines')
      assert.deepEqual(top.files, { latest: Buffer.byteLength(`${ctx.prefix}latest`) }, 'file lines')
    },
  },
  {
    operation: 's3/sync',
    timeoutMs: 120_000,
    async run(ctx) {
      const local = join(ctx.dir, 'ckpt')
      const seed = `${ctx.runId}/${ctx.prefix}`
      for (const [name, size] of [['latest', 8], ['step_100/.metadata', 2000], ['step_100/__0_0.distcp', 100_000], ['step_100/__1_0.distcp', 100_000]] as const) {
        await writePayload(join(local, name), `${seed}${name}`, size)
      }
      const remote = url(ctx, `${ctx.prefix}ckpt/`)
      await ctx.run(['s3', 'sync', '--no-progress', local, remote])
      const want = Object.keys(await treeDigest(local)).map((k) => `${ctx.prefix}ckpt/${k}`).sort()
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, `${ctx.prefix}ckpt/`), want, 'keys after the first sync')
      // A changed file (new size) and a new one: only those two are uploaded.
      await writeFile(join(local, 'latest'), 'step_200')
      await writePayload(join(local, 'step_200/.metadata'), `${seed}step_200`, 3000)
      const second = await ctx.run(['s3', 'sync', '--no-progress', local, remote])
      const uploads = second.stdout.split('\n').filter((l) => l.startsWith('upload:')).map((l) => l.split(' to ')[1]?.trim()).sort()
      assert.deepEqual(uploads, [`${remote}latest`, `${remote}step_200/.metadata`], 'the second sync uploads only what changed')
      const back = join(ctx.dir, 'back')
      await mkdir(back)
      await ctx.run(['s3', 'sync', '--no-progress', remote, back])
      assert.deepEqual(await treeDigest(back), await treeDigest(local), 'sync down reproduces the tree')
    },
  },
  {
    operation: 's3/rm-recursive',
    async run(ctx) {
      const keys = ['step_100/.metadata', 'step_100/__0_0.distcp', 'step_100/__1_0.distcp', 'latest'].map((k) => `${ctx.prefix}${k}`)
      await putKeys(ctx.s3, ctx.bucket, [...keys, `${ctx.prefix}-keep/x`])
      const r = await ctx.run(['s3', 'rm', '--recursive', url(ctx, `${ctx.prefix}step_100/`)])
      assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('delete:')).length, 3, 'three deletes reported')
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), [`${ctx.prefix}-keep/x`, `${ctx.prefix}latest`], 'only the keys outside the prefix are left')
    },
  },
  {
    operation: 's3api/head-object',
    async run(ctx) {
      const key = `${ctx.prefix}step_100/.metadata`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'index', Metadata: { step: '100' } }))
      const head = JSON.parse((await ctx.run(['s3api', 'head-object', '--bucket', ctx.bucket, '--key', key, '--output', 'json'])).stdout) as Record<string, unknown>
      assert.equal(head.ContentLength, 5, 'ContentLength')
      assert.equal(head.ETag, `"${createHash('md5').update('index').digest('hex')}"`, 'ETag')
      assert.deepEqual(head.Metadata, { step: '100' }, 'Metadata')
      const missing = await ctx.run(['s3api', 'head-object', '--bucket', ctx.bucket, '--key', `${ctx.prefix}missing`], { expectCode: 'nonzero' })
      assert.match(missing.stderr, /\(404\)|Not Found/, `a missing key is reported as 404 (${missing.stderr.trim().slice(0, 200)})`)
    },
  },
]

export const awscli: ToolClient = {
  name: 'awscli',
  command: 'aws',
  versionArgs: ['--version'],
  async setup(ep, home) {
    await mkdir(join(home, '.aws'))
    const config = join(home, '.aws', 'config')
    await writeFile(config, `[default]\nregion = ${ep.region}\ns3 =\n  addressing_style = path\n`)
    return {
      env: cleanEnv({
        HOME: home,
        AWS_CONFIG_FILE: config,
        AWS_SHARED_CREDENTIALS_FILE: join(home, '.aws', 'credentials'),
        AWS_ACCESS_KEY_ID: ep.accessKeyId,
        AWS_SECRET_ACCESS_KEY: ep.secretAccessKey,
        AWS_DEFAULT_REGION: ep.region,
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      }),
      args: ['--endpoint-url', ep.url],
    }
  },
  cases,
}
