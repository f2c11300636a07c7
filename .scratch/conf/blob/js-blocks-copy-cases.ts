/**
 * JS client: Put Block / Get Block List / Put Block List state transitions, Copy Blob (async,
 * what adlfs `mv` issues, then deletes the source) and Copy Blob From URL (sync), and deletes.
 */
import assert from 'node:assert/strict'
import { BlobSASPermissions } from '@azure/storage-blob'
import { expectRestError, lowerKeys, SkipCase, type JsCase } from './case.js'
import { payload, readAll, sha256 } from './data.js'

const blockId = (i: number): string => Buffer.from(`block-${String(i).padStart(6, '0')}`).toString('base64')

export const jsBlocksCopyCases: JsCase[] = [
  {
    operation: 'blocks/states',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}blocks.bin`)
      const blocks = [0, 1, 2].map((i) => payload(`${ctx.prefix}${i}`, 1000 + i * 500))
      for (const [i, data] of blocks.entries()) await blob.stageBlock(blockId(i), data, data.length)

      const staged = await blob.getBlockList('all')
      assert.deepEqual(staged.committedBlocks ?? [], [], 'nothing committed yet')
      assert.deepEqual((staged.uncommittedBlocks ?? []).map((b) => [b.name, b.size]).sort(),
        blocks.map((d, i) => [blockId(i), d.length]), 'three uncommitted blocks with their sizes')
      const unc = await blob.getBlockList('uncommitted')
      assert.equal(unc.uncommittedBlocks?.length, 3, 'blocklisttype=uncommitted')
      assert.equal(await blob.exists(), false, 'staged blocks alone do not make a blob')

      // Commit blocks 0 and 2 only: block 1 is discarded.
      await blob.commitBlockList([blockId(0), blockId(2)])
      const after = await blob.getBlockList('all')
      assert.deepEqual((after.committedBlocks ?? []).map((b) => [b.name, b.size]),
        [[blockId(0), blocks[0]?.length], [blockId(2), blocks[2]?.length]], 'committed list in commit order')
      assert.deepEqual(after.uncommittedBlocks ?? [], [], 'uncommitted blocks dropped by the commit')
      const committedOnly = await blob.getBlockList('committed')
      assert.equal(committedOnly.committedBlocks?.length, 2, 'blocklisttype=committed')
      assert.equal(committedOnly.blobContentLength, (blocks[0]?.length ?? 0) + (blocks[2]?.length ?? 0), 'x-ms-blob-content-length')

      const content = await readAll((await blob.download()).readableStreamBody)
      assert.equal(sha256(content), sha256(Buffer.concat([blocks[0] as Buffer, blocks[2] as Buffer])), 'content = committed blocks in order')

      // Re-commit reusing a committed block plus a new one (append-style checkpoint shard rewrite).
      const extra = payload(`${ctx.prefix}3`, 777)
      await blob.stageBlock(blockId(3), extra, extra.length)
      await blob.commitBlockList([blockId(2), blockId(3)])
      const content2 = await readAll((await blob.download()).readableStreamBody)
      assert.ok(content2.equals(Buffer.concat([blocks[2] as Buffer, extra])), 'recommit: committed block 2 + new block 3')

      await expectRestError('commit of an unknown block id', blob.commitBlockList([blockId(9)]), 400, 'InvalidBlockList')
    },
  },
  {
    operation: 'copy/begin-from-url-then-delete',
    async run(ctx) {
      // adlfs mv: Copy Blob (same account, source authorised by the request's own shared key),
      // poll until done, delete the source.
      const src = ctx.container.getBlockBlobClient(`${ctx.prefix}src/__0_0.distcp`)
      const dst = ctx.container.getBlockBlobClient(`${ctx.prefix}dst/__0_0.distcp`)
      const data = payload(ctx.prefix, 3 * 1024 * 1024 + 5)
      await src.uploadData(data, { metadata: { Rank: '0' }, blobHTTPHeaders: { blobContentType: 'application/octet-stream' } })
      const poller = await dst.beginCopyFromURL(src.url, { intervalInMs: 200 })
      const done = await poller.pollUntilDone()
      assert.equal(done.copyStatus, 'success', 'copy status')
      await src.delete()
      assert.equal(await src.exists(), false, 'source gone')
      const p = await dst.getProperties()
      assert.equal(p.contentLength, data.length, 'copied length')
      assert.equal(lowerKeys(p.metadata).rank, '0', 'metadata copied with the blob')
      const got = await readAll((await dst.download()).readableStreamBody)
      assert.equal(sha256(got), sha256(data), 'copied bytes')
    },
  },
  {
    operation: 'copy/sync-from-url',
    async run(ctx) {
      if (!ctx.credential) throw new SkipCase('needs an account key to sign the source SAS')
      const src = ctx.container.getBlockBlobClient(`${ctx.prefix}src.bin`)
      const dst = ctx.container.getBlockBlobClient(`${ctx.prefix}dst.bin`)
      const data = payload(ctx.prefix, 200_000)
      await src.uploadData(data)
      // Copy Blob From URL needs the source authorised by the URL itself.
      const srcUrl = await src.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) })
      const r = await dst.syncCopyFromURL(srcUrl)
      assert.equal(r.copyStatus, 'success', 'x-ms-copy-status')
      const got = await readAll((await dst.download()).readableStreamBody)
      assert.ok(got.equals(data), 'copied bytes')
      await src.delete()
      assert.equal((await dst.getProperties()).contentLength, data.length, 'destination independent of the source')
    },
  },
  {
    operation: 'delete/blob',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}d.bin`)
      await blob.upload('x', 1)
      const r = await blob.delete()
      assert.equal(r._response.status, 202, 'Delete Blob answers 202')
      assert.equal(await blob.exists(), false, 'gone')
      await expectRestError('second delete', blob.delete(), 404, 'BlobNotFound')
      assert.equal((await blob.deleteIfExists()).succeeded, false, 'deleteIfExists on a missing blob')
      const names: string[] = []
      for await (const b of ctx.container.listBlobsFlat({ prefix: ctx.prefix })) names.push(b.name)
      assert.deepEqual(names, [], 'not listed')
    },
  },
  {
    operation: 'delete/container',
    async run(ctx) {
      const c = ctx.service.getContainerClient(`${ctx.runId}-del`)
      await c.create()
      await c.getBlockBlobClient('inside').upload('x', 1)
      const r = await c.delete()
      assert.equal(r._response.status, 202, 'Delete Container answers 202')
      assert.equal(await c.exists(), false, 'container gone')
      await expectRestError('blob in a deleted container', c.getBlockBlobClient('inside').download(), 404, 'ContainerNotFound')
      await expectRestError('second delete', c.delete(), 404, 'ContainerNotFound')
    },
  },
]
