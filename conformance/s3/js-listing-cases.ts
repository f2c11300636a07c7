/**
 * JS client (@aws-sdk/client-s3): listing over a PyTorch DCP-like layout (`latest`,
 * `step_N/.metadata`, `step_N/__<rank>_0.distcp`) — ListObjectsV2 with prefix, delimiter,
 * continuation tokens, start-after and max-keys (common prefixes count towards max-keys), the
 * SDK's paginator, and ListObjects (v1) paged with markers (NextMarker only with a delimiter).
 */
import assert from 'node:assert/strict'
import {
  ListObjectsCommand, ListObjectsV2Command, paginateListObjectsV2, PutObjectCommand, type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3'
import type { JsCase, JsContext } from './case.js'

/** Writes the layout under `<prefix>ckpt/` and returns the root and the sorted keys. */
async function dcpLayout(ctx: JsContext): Promise<{ root: string, keys: string[] }> {
  const root = `${ctx.prefix}ckpt/`
  const keys = [`${root}latest`]
  for (const step of ['step_100', 'step_200']) {
    keys.push(`${root}${step}/.metadata`)
    for (let rank = 0; rank < 4; rank++) keys.push(`${root}${step}/__${rank}_0.distcp`)
  }
  await Promise.all(keys.map((k) => ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: k, Body: k }))))
  return { root, keys: keys.sort() }
}

const names = (page: { Contents?: Array<{ Key?: string }> }): string[] => (page.Contents ?? []).map((c) => c.Key ?? '')
const prefixes = (page: { CommonPrefixes?: Array<{ Prefix?: string }> }): string[] => (page.CommonPrefixes ?? []).map((p) => p.Prefix ?? '')

export const jsListingCases: JsCase[] = [
  {
    operation: 'list-v2/prefix',
    async run(ctx) {
      const { root, keys } = await dcpLayout(ctx)
      const all = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root }))
      assert.deepEqual(names(all), keys, 'every key under the prefix, in byte order')
      assert.equal(all.KeyCount, keys.length, 'KeyCount')
      assert.equal(all.IsTruncated, false, 'IsTruncated')
      assert.equal(all.Prefix, root, 'Prefix echoed')
      for (const c of all.Contents ?? []) {
        assert.equal(c.Size, Buffer.byteLength(c.Key ?? ''), `Size of ${c.Key}`)
        assert.match(c.ETag ?? '', /^"[0-9a-f]{32}"$/, `ETag of ${c.Key}`)
        assert.ok(c.LastModified instanceof Date, `LastModified of ${c.Key}`)
      }
      const step = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: `${root}step_200/` }))
      assert.deepEqual(names(step), keys.filter((k) => k.includes('/step_200/')), 'keys under step_200/')
      const none = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: `${root}step_300/` }))
      assert.equal(none.KeyCount, 0, 'KeyCount under a prefix with no keys')
      assert.deepEqual(names(none), [], 'no Contents')
    },
  },
  {
    operation: 'list-v2/delimiter',
    async run(ctx) {
      const { root, keys } = await dcpLayout(ctx)
      const top = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root, Delimiter: '/' }))
      assert.deepEqual(prefixes(top), [`${root}step_100/`, `${root}step_200/`], 'CommonPrefixes')
      assert.deepEqual(names(top), [`${root}latest`], 'Contents')
      assert.equal(top.KeyCount, 3, 'KeyCount counts keys and common prefixes')
      assert.equal(top.Delimiter, '/', 'Delimiter echoed')
      const inner = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: `${root}step_100/`, Delimiter: '/' }))
      assert.deepEqual(prefixes(inner), [], 'no CommonPrefixes inside a step')
      assert.deepEqual(names(inner), keys.filter((k) => k.includes('/step_100/')), 'the step\'s files')
      const byRank = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: `${root}step_100/__`, Delimiter: '_0' }))
      assert.deepEqual(prefixes(byRank), [0, 1, 2, 3].map((r) => `${root}step_100/__${r}_0`), 'a delimiter other than /')
    },
  },
  {
    operation: 'list-v2/paging',
    async run(ctx) {
      const { root, keys } = await dcpLayout(ctx)
      const pages: ListObjectsV2CommandOutput[] = []
      let token: string | undefined
      do {
        const page = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root, MaxKeys: 4, ContinuationToken: token }))
        assert.equal(page.MaxKeys, 4, 'MaxKeys echoed')
        pages.push(page)
        token = page.IsTruncated ? page.NextContinuationToken : undefined
        if (page.IsTruncated) assert.ok(token, 'a truncated page has a NextContinuationToken')
      } while (token !== undefined && pages.length < 10)
      assert.deepEqual(pages.map((p) => p.KeyCount), [4, 4, 3], 'KeyCount per page')
      assert.deepEqual(pages.map((p) => p.IsTruncated), [true, true, false], 'IsTruncated per page')
      assert.deepEqual(pages.flatMap(names), keys, 'the pages together')
      const seen: string[] = []
      for await (const page of paginateListObjectsV2({ client: ctx.s3, pageSize: 3 }, { Bucket: ctx.bucket, Prefix: root })) seen.push(...names(page))
      assert.deepEqual(seen, keys, 'paginateListObjectsV2')
    },
  },
  {
    operation: 'list-v2/paging-delimiter',
    async run(ctx) {
      const { root } = await dcpLayout(ctx)
      const entries: string[] = []
      let token: string | undefined
      let pages = 0
      do {
        const page = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root, Delimiter: '/', MaxKeys: 1, ContinuationToken: token }))
        pages++
        assert.equal(page.KeyCount, 1, `KeyCount of page ${pages}`)
        entries.push(...names(page), ...prefixes(page))
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token !== undefined && pages < 10)
      assert.deepEqual(entries, [`${root}latest`, `${root}step_100/`, `${root}step_200/`], 'one key or common prefix per page, in order')
    },
  },
  {
    operation: 'list-v2/start-after',
    async run(ctx) {
      const { root, keys } = await dcpLayout(ctx)
      const after = `${root}step_100/__3_0.distcp`
      const page = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root, StartAfter: after }))
      assert.deepEqual(names(page), keys.filter((k) => k > after), 'keys after StartAfter')
      assert.equal(page.StartAfter, after, 'StartAfter echoed')
      const between = await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: root, StartAfter: `${root}step_150`, MaxKeys: 2 }))
      assert.deepEqual(names(between), keys.filter((k) => k > `${root}step_150`).slice(0, 2), 'StartAfter a key that does not exist, with MaxKeys')
      assert.equal(between.IsTruncated, true, 'IsTruncated')
    },
  },
  {
    operation: 'list-v1/marker',
    async run(ctx) {
      const { root, keys } = await dcpLayout(ctx)
      const seen: string[] = []
      let marker: string | undefined
      let pages = 0
      for (;;) {
        const page = await ctx.s3.send(new ListObjectsCommand({ Bucket: ctx.bucket, Prefix: root, MaxKeys: 4, Marker: marker }))
        pages++
        assert.equal(page.Contents?.length, pages < 3 ? 4 : 3, `keys on page ${pages}`)
        seen.push(...names(page))
        if (!page.IsTruncated || pages >= 10) break
        // Without a delimiter the next marker is the last key of the page.
        marker = page.Contents?.at(-1)?.Key
      }
      assert.equal(pages, 3, 'pages of 4')
      assert.deepEqual(seen, keys, 'the pages together')
      const after = await ctx.s3.send(new ListObjectsCommand({ Bucket: ctx.bucket, Prefix: root, Marker: `${root}step_150` }))
      assert.deepEqual(names(after), keys.filter((k) => k > `${root}step_150`), 'keys after a marker that is not a key')
    },
  },
  {
    operation: 'list-v1/next-marker',
    async run(ctx) {
      const { root } = await dcpLayout(ctx)
      const plain = await ctx.s3.send(new ListObjectsCommand({ Bucket: ctx.bucket, Prefix: root, MaxKeys: 2 }))
      assert.equal(plain.IsTruncated, true, 'IsTruncated')
      assert.equal(plain.NextMarker, undefined, 'no NextMarker without a delimiter')
      const first = await ctx.s3.send(new ListObjectsCommand({ Bucket: ctx.bucket, Prefix: root, Delimiter: '/', MaxKeys: 2 }))
      assert.deepEqual([...names(first), ...prefixes(first)], [`${root}latest`, `${root}step_100/`], 'first page with a delimiter')
      assert.equal(first.IsTruncated, true, 'IsTruncated')
      assert.equal(first.NextMarker, `${root}step_100/`, 'with a delimiter, NextMarker is the last key or common prefix')
      const rest = await ctx.s3.send(new ListObjectsCommand({ Bucket: ctx.bucket, Prefix: root, Delimiter: '/', Marker: first.NextMarker }))
      assert.deepEqual([...names(rest), ...prefixes(rest)], [`${root}step_200/`], 'the page after NextMarker')
      assert.equal(rest.IsTruncated, false, 'last page')
    },
  },
]
