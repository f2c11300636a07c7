/**
 * rclone with an S3 remote defined entirely by environment variables (`provider = Other`,
 * `endpoint`, `force_path_style = true`, `env_auth = false`) and an empty config file of the
 * suite's: copy up and down, lsf, check (sizes and MD5s, which rclone reads from ETags), delete.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanEnv } from './endpoint.js'
import { md5Etag, sha256 } from './data.js'
import { listKeys, putKeys, readObject } from './readback.js'
import { treeDigest, writePayload, type ToolCase, type ToolClient, type ToolContext } from './tool.js'

/** The remote the environment defines. */
const REMOTE = 'cc'

const remote = (ctx: ToolContext, path: string): string => `${REMOTE}:${ctx.bucket}/${path}`

/** A small DCP-like tree under `dir`; returns relative path → bytes. */
async function writeTree(ctx: ToolContext, dir: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {}
  for (const [name, size] of [['latest', 8], ['step_100/.metadata', 3000], ['step_100/__0_0.distcp', 150_000], ['step_100/__1_0.distcp', 150_001]] as const) {
    files[name] = await writePayload(join(dir, name), `${ctx.runId}/${ctx.prefix}${name}`, size)
  }
  return files
}

const cases: ToolCase[] = [
  {
    operation: 'copy-up',
    async run(ctx) {
      const local = join(ctx.dir, 'ckpt')
      const files = await writeTree(ctx, local)
      await ctx.run(['copy', local, remote(ctx, `${ctx.prefix}ckpt`)])
      const keys = Object.keys(files).map((n) => `${ctx.prefix}ckpt/${n}`).sort()
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), keys, 'keys written by rclone copy')
      for (const [name, data] of Object.entries(files)) {
        const obj = await readObject(ctx.s3, ctx.bucket, `${ctx.prefix}ckpt/${name}`)
        assert.deepEqual(obj, { size: data.length, etag: md5Etag(data), sha256: sha256(data) }, name)
      }
    },
  },
  {
    operation: 'copy-down',
    async run(ctx) {
      const keys = ['latest', 'step_100/.metadata', 'step_100/__0_0.distcp'].map((k) => `${ctx.prefix}ckpt/${k}`)
      await putKeys(ctx.s3, ctx.bucket, keys)
      const local = join(ctx.dir, 'down')
      await ctx.run(['copy', remote(ctx, `${ctx.prefix}ckpt`), local])
      const want = Object.fromEntries(keys.map((k) => [k.slice(`${ctx.prefix}ckpt/`.length), sha256(Buffer.from(k))]))
      assert.deepEqual(await treeDigest(local), want, 'the tree rclone copied down')
    },
  },
  {
    operation: 'lsf',
    async run(ctx) {
      await putKeys(ctx.s3, ctx.bucket, ['latest', 'step_100/.metadata', 'step_100/__0_0.distcp', 'step_200/.metadata'].map((k) => `${ctx.prefix}${k}`))
      const top = (await ctx.run(['lsf', remote(ctx, ctx.prefix)])).stdout.split('\n').filter(Boolean)
      assert.deepEqual(top, ['latest', 'step_100/', 'step_200/'], 'lsf: files and directories')
      const all = (await ctx.run(['lsf', '-R', '--files-only', remote(ctx, ctx.prefix)])).stdout.split('\n').filter(Boolean)
      assert.deepEqual(all.sort(), ['latest', 'step_100/.metadata', 'step_100/__0_0.distcp', 'step_200/.metadata'], 'lsf -R --files-only')
    },
  },
  {
    operation: 'check',
    async run(ctx) {
      const local = join(ctx.dir, 'ckpt')
      const files = await writeTree(ctx, local)
      await ctx.run(['copy', local, remote(ctx, `${ctx.prefix}ckpt`)])
      const same = await ctx.run(['check', local, remote(ctx, `${ctx.prefix}ckpt`)])
      assert.match(same.stderr, /0 differences found/, 'identical trees')
      assert.match(same.stderr, new RegExp(`${Object.keys(files).length} matching files`), 'every file matched')
      // Same size, other bytes: only the hash (the ETag) can tell.
      const changed = Buffer.from(files['step_100/__0_0.distcp'] ?? Buffer.alloc(0))
      changed[0] = (changed[0] ?? 0) ^ 0xff
      await writeFile(join(local, 'step_100/__0_0.distcp'), changed)
      const diff = await ctx.run(['check', local, remote(ctx, `${ctx.prefix}ckpt`)], { expectCode: 'nonzero' })
      assert.match(diff.stderr, /1 differences found/, 'a file whose bytes changed is found by its MD5')
    },
  },
  {
    operation: 'delete',
    async run(ctx) {
      await putKeys(ctx.s3, ctx.bucket, ['step_100/.metadata', 'step_100/__0_0.distcp', 'latest'].map((k) => `${ctx.prefix}${k}`))
      await ctx.run(['delete', remote(ctx, `${ctx.prefix}step_100`)])
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), [`${ctx.prefix}latest`], 'only the key outside the path is left')
      await ctx.run(['delete', remote(ctx, ctx.prefix)])
      assert.deepEqual(await listKeys(ctx.s3, ctx.bucket, ctx.prefix), [], 'nothing left')
    },
  },
]

export const rclone: ToolClient = {
  name: 'rclone',
  command: 'rclone',
  versionArgs: ['version'],
  async setup(ep, home) {
    const config = join(home, 'rclone.conf')
    await writeFile(config, '', { mode: 0o600 })
    const r = `RCLONE_CONFIG_${REMOTE.toUpperCase()}_`
    return {
      env: cleanEnv({
        HOME: home,
        RCLONE_CONFIG: config,
        [`${r}TYPE`]: 's3',
        [`${r}PROVIDER`]: 'Other',
        [`${r}ENV_AUTH`]: 'false',
        [`${r}ACCESS_KEY_ID`]: ep.accessKeyId,
        [`${r}SECRET_ACCESS_KEY`]: ep.secretAccessKey,
        [`${r}REGION`]: ep.region,
        [`${r}ENDPOINT`]: ep.url,
        [`${r}FORCE_PATH_STYLE`]: 'true',
        // rclone creates the bucket it copies into if it can; outside us-east-1 S3 wants the region named.
        ...(ep.region === 'us-east-1' ? {} : { [`${r}LOCATION_CONSTRAINT`]: ep.region }),
      }),
      args: [],
    }
  },
  cases,
}
