/**
 * JS client: List Blobs — flat and paged (maxresults + NextMarker continuation), and hierarchical
 * (delimiter `/`) over the layout PyTorch Distributed Checkpoint writes, which is what
 * fsspec/adlfs `ls`, `glob` and `find` turn into.
 */
import assert from 'node:assert/strict'
import type { ContainerClient } from '@azure/storage-blob'
import { mapLimit, type JsCase } from './case.js'

/** What DCP's FileSystemWriter leaves behind for 4 ranks, twice, plus a `latest` pointer. */
function dcpLayout(root: string): string[] {
  const names: string[] = [`${root}latest`]
  for (const step of ['step_100', 'step_200']) {
    for (let rank = 0; rank < 4; rank++) names.push(`${root}${step}/__${rank}_0.distcp`)
    names.push(`${root}${step}/.metadata`)
  }
  return names
}

async function putAll(container: ContainerClient, names: string[], metadata?: (name: string) => Record<string, string> | undefined): Promise<void> {
  await mapLimit(names, 8, async (name) => {
    const body = Buffer.from(name)
    const md = metadata?.(name)
    await container.getBlockBlobClient(name).upload(body, body.length, md ? { metadata: md } : {})
  })
}

interface Page { prefixes: string[], blobs: string[], token: string | undefined }

async function hierarchyPages(container: ContainerClient, prefix: string, maxPageSize?: number, includeMetadata = false): Promise<{ pages: Page[], metadata: Map<string, Record<string, string> | undefined> }> {
  const pages: Page[] = []
  const metadata = new Map<string, Record<string, string> | undefined>()
  const iter = container.listBlobsByHierarchy('/', { prefix, includeMetadata }).byPage(maxPageSize ? { maxPageSize } : {})
  for await (const page of iter) {
    const seg = page.segment
    for (const b of seg.blobItems) metadata.set(b.name, b.metadata)
    pages.push({
      prefixes: (seg.blobPrefixes ?? []).map((p) => p.name),
      blobs: seg.blobItems.map((b) => b.name),
      token: page.continuationToken || undefined,
    })
  }
  return { pages, metadata }
}

export const jsListingCases: JsCase[] = [
  {
    operation: 'list/paged',
    async run(ctx) {
      const names = Array.from({ length: 25 }, (_, i) => `${ctx.prefix}obj-${String(i).padStart(3, '0')}`)
      await putAll(ctx.container, names)
      const pages: { names: string[], token: string | undefined }[] = []
      for await (const page of ctx.container.listBlobsFlat({ prefix: ctx.prefix }).byPage({ maxPageSize: 7 })) {
        pages.push({ names: page.segment.blobItems.map((b) => b.name), token: page.continuationToken || undefined })
      }
      assert.deepEqual(pages.map((p) => p.names.length), [7, 7, 7, 4], 'page sizes with maxresults=7')
      assert.deepEqual(pages.map((p) => p.token !== undefined), [true, true, true, false], 'NextMarker on all pages but the last')
      assert.deepEqual(pages.flatMap((p) => p.names), names, 'every name exactly once, in lexicographic order')

      // A continuation token resumes exactly where its page ended.
      const resumed = ctx.container.listBlobsFlat({ prefix: ctx.prefix }).byPage({ maxPageSize: 7, continuationToken: pages[1]?.token })
      const third = (await resumed.next()).value
      assert.deepEqual(third?.segment.blobItems.map((b: { name: string }) => b.name), pages[2]?.names, 'resume from the second page\'s token')

      // Listing is bounded by the prefix.
      const sub: string[] = []
      for await (const b of ctx.container.listBlobsFlat({ prefix: `${ctx.prefix}obj-01` })) sub.push(b.name)
      assert.deepEqual(sub, names.slice(10, 20), 'prefix obj-01')
    },
  },
  {
    operation: 'list/hierarchy',
    async run(ctx) {
      const root = `${ctx.prefix}ckpt/`
      const names = dcpLayout(root)
      await putAll(ctx.container, names, (n) => (n.endsWith('/.metadata') ? { DcpVersion: '1', WorldSize: '4' } : undefined))

      // ls ckpt/ → two step directories and the `latest` file.
      const top = await hierarchyPages(ctx.container, root)
      assert.deepEqual(top.pages.flatMap((p) => p.prefixes), [`${root}step_100/`, `${root}step_200/`], 'BlobPrefix entries')
      assert.deepEqual(top.pages.flatMap((p) => p.blobs), [`${root}latest`], 'Blob entries next to the prefixes')

      // ls ckpt/step_100/ → '.metadata' sorts before '__0_0.distcp' ('.' < '_').
      const step = await hierarchyPages(ctx.container, `${root}step_100/`, undefined, true)
      assert.deepEqual(step.pages.flatMap((p) => p.prefixes), [], 'no prefixes inside a step')
      assert.deepEqual(step.pages.flatMap((p) => p.blobs),
        [`${root}step_100/.metadata`, ...[0, 1, 2, 3].map((r) => `${root}step_100/__${r}_0.distcp`)], 'shards and .metadata')
      assert.deepEqual(step.metadata.get(`${root}step_100/.metadata`), { DcpVersion: '1', WorldSize: '4' }, 'includeMetadata, key case preserved')
      // A blob without metadata lists none (the element may be absent or empty, so the SDK gives undefined or '').
      assert.deepEqual(Object.keys(step.metadata.get(`${root}step_100/__0_0.distcp`) || {}), [], 'no metadata on a shard')

      // A prefix that ends inside a name segment.
      const partial = await hierarchyPages(ctx.container, `${root}step_1`)
      assert.deepEqual(partial.pages.flatMap((p) => [...p.prefixes, ...p.blobs]), [`${root}step_100/`], 'prefix ckpt/step_1')

      // Prefixes count toward maxresults: one entry per page, continuation between them.
      const paged = await hierarchyPages(ctx.container, root, 1)
      assert.deepEqual(paged.pages.map((p) => [...p.prefixes, ...p.blobs]),
        [[`${root}latest`], [`${root}step_100/`], [`${root}step_200/`]], 'one entry per page, in name order')
      assert.deepEqual(paged.pages.map((p) => p.token !== undefined), [true, true, false], 'continuation tokens')

      // The flat listing sees all 11 names.
      const flat: string[] = []
      for await (const b of ctx.container.listBlobsFlat({ prefix: root })) flat.push(b.name)
      assert.deepEqual(flat, [...names].sort(), 'flat listing of the checkpoint')
    },
  },
]
