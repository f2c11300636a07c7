/**
 * JS client: blob properties and conditional requests — Get Blob Properties, Set Blob Metadata,
 * Set Blob Properties (HTTP headers), the Content-MD5 Azure computes for a single-shot Put Blob, and
 * If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since on reads and writes.
 *
 * Metadata key case is checked through the listing XML (see `lowerKeys` for why not on headers);
 * the Python client checks it on Get Blob Properties.
 */
import assert from 'node:assert/strict'
import { expectRestError, lowerKeys, type JsCase } from './case.js'
import { md5, payload, readAll } from './data.js'

const HEADERS = {
  blobContentType: 'application/x-torch-dcp',
  blobContentEncoding: 'identity',
  blobContentLanguage: 'en-US',
  blobContentDisposition: 'attachment; filename="shard 0.distcp"',
  blobCacheControl: 'no-cache, max-age=0',
}

export const jsPropertiesCases: JsCase[] = [
  {
    operation: 'properties/round-trip',
    async run(ctx) {
      const name = `${ctx.prefix}p.bin`
      const blob = ctx.container.getBlockBlobClient(name)
      const data = payload(name, 4096)
      await blob.uploadData(data, { metadata: { Step: '100' } })
      const before = await blob.getProperties()

      const meta = { CamelCase: 'Value One', lower: 'two', UPPER_1: 'THREE' }
      const setMeta = await blob.setMetadata(meta)
      assert.notEqual(setMeta.etag, before.etag, 'Set Blob Metadata changes the etag')
      const afterMeta = await blob.getProperties()
      assert.deepEqual(lowerKeys(afterMeta.metadata), lowerKeys(meta), 'metadata replaced as a whole')
      assert.equal(afterMeta.contentLength, data.length, 'size unchanged by Set Blob Metadata')

      await blob.setHTTPHeaders(HEADERS)
      const p = await blob.getProperties()
      assert.equal(p.contentType, HEADERS.blobContentType, 'Content-Type')
      assert.equal(p.contentEncoding, HEADERS.blobContentEncoding, 'Content-Encoding')
      assert.equal(p.contentLanguage, HEADERS.blobContentLanguage, 'Content-Language')
      assert.equal(p.contentDisposition, HEADERS.blobContentDisposition, 'Content-Disposition')
      assert.equal(p.cacheControl, HEADERS.blobCacheControl, 'Cache-Control')
      assert.deepEqual(lowerKeys(p.metadata), lowerKeys(meta), 'metadata unchanged by Set Blob Properties')
      assert.equal(p.blobType, 'BlockBlob', 'x-ms-blob-type')
      assert.ok(p.lastModified instanceof Date, 'Last-Modified')

      // The same values come back on Get Blob.
      const dl = await blob.download()
      dl.readableStreamBody?.resume()
      assert.equal(dl.contentType, HEADERS.blobContentType, 'GET Content-Type')
      assert.equal(dl.contentDisposition, HEADERS.blobContentDisposition, 'GET Content-Disposition')
      assert.equal(dl.cacheControl, HEADERS.blobCacheControl, 'GET Cache-Control')
      assert.deepEqual(lowerKeys(dl.metadata), lowerKeys(meta), 'GET metadata')

      // Key case as stored, seen through the listing XML.
      for await (const item of ctx.container.listBlobsFlat({ prefix: name, includeMetadata: true })) {
        assert.deepEqual(item.metadata, meta, 'listing metadata with key case preserved')
        assert.equal(item.properties.contentType, HEADERS.blobContentType, 'listing Content-Type')
      }
    },
  },
  {
    operation: 'properties/content-md5',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}md5.bin`)
      const data = payload(ctx.prefix, 100_000)
      await blob.uploadData(data) // single shot (< 256 MiB): the service computes Content-MD5
      const p = await blob.getProperties()
      assert.ok(p.contentMD5, 'Content-MD5 present after a single-shot upload')
      assert.equal(Buffer.from(p.contentMD5).toString('base64'), md5(data).toString('base64'), 'Content-MD5 is the MD5 of the bytes')
      const dl = await blob.download()
      dl.readableStreamBody?.resume()
      assert.equal(Buffer.from(dl.contentMD5 ?? new Uint8Array()).toString('base64'), md5(data).toString('base64'), 'GET Content-MD5')
    },
  },
  {
    operation: 'checksums/md5-mismatch',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}b.bin`)
      const data = payload(ctx.prefix, 5000)
      const good = Buffer.from('block-0').toString('base64')
      const bad = Buffer.from('block-1').toString('base64')
      // A right transactional Content-MD5 on Put Block is accepted.
      await blob.stageBlock(good, data, data.length, { transactionalContentMD5: md5(data) })
      // A wrong one is refused, and the block is not staged.
      await expectRestError('Put Block with a wrong Content-MD5',
        blob.stageBlock(bad, data, data.length, { transactionalContentMD5: md5(Buffer.from('other')) }), 400, 'Md5Mismatch')
      await expectRestError('Put Block List naming the refused block', blob.commitBlockList([good, bad]), 400, 'InvalidBlockList')
      await blob.commitBlockList([good])
      assert.ok((await readAll((await blob.download()).readableStreamBody)).equals(data), 'content of the accepted block')
      // Put Blob validates x-ms-blob-content-md5 like Content-MD5 (the SDK's way to send one).
      const other = ctx.container.getBlockBlobClient(`${ctx.prefix}p.bin`)
      await expectRestError('Put Blob with a wrong x-ms-blob-content-md5',
        other.upload(data, data.length, { blobHTTPHeaders: { blobContentMD5: md5(Buffer.from('other')) } }), 400, 'Md5Mismatch')
      assert.equal(await other.exists(), false, 'the refused blob does not exist')
    },
  },
  {
    operation: 'conditions/if-match',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}c.bin`)
      const { etag } = await blob.upload('v1', 2)
      const wrong = '"0x8DC0000DEADBEEF"'
      await expectRestError('GET If-Match wrong', blob.download(0, undefined, { conditions: { ifMatch: wrong } }), 412, 'ConditionNotMet')
      await expectRestError('HEAD If-Match wrong', blob.getProperties({ conditions: { ifMatch: wrong } }), 412, 'ConditionNotMet')
      await expectRestError('PUT If-Match wrong', blob.upload('v2', 2, { conditions: { ifMatch: wrong } }), 412, 'ConditionNotMet')
      await expectRestError('Set Metadata If-Match wrong', blob.setMetadata({ a: 'b' }, { conditions: { ifMatch: wrong } }), 412, 'ConditionNotMet')
      const ok = await blob.upload('v2', 2, { conditions: { ifMatch: etag } })
      assert.notEqual(ok.etag, etag, 'PUT If-Match right succeeds with a new etag')
      const dl = await blob.download(0, undefined, { conditions: { ifMatch: ok.etag } })
      assert.equal((await text(dl.readableStreamBody)), 'v2', 'GET If-Match right')
    },
  },
  {
    operation: 'conditions/if-none-match-read-304',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}c.bin`)
      const { etag } = await blob.upload('v1', 2)
      await expectRestError('GET If-None-Match current etag', blob.download(0, undefined, { conditions: { ifNoneMatch: etag } }), 304)
      await expectRestError('HEAD If-None-Match current etag', blob.getProperties({ conditions: { ifNoneMatch: etag } }), 304)
      const dl = await blob.download(0, undefined, { conditions: { ifNoneMatch: '"0x8DC0000DEADBEEF"' } })
      assert.equal(await text(dl.readableStreamBody), 'v1', 'GET If-None-Match other etag')
    },
  },
  {
    operation: 'conditions/if-none-match-star-409',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}c.bin`)
      await blob.upload('v1', 2, { conditions: { ifNoneMatch: '*' } }) // create-only on a new name works
      await expectRestError('Put Blob If-None-Match * on existing blob',
        blob.uploadData(Buffer.from('v2'), { conditions: { ifNoneMatch: '*' } }), 409, 'BlobAlreadyExists')
      assert.equal(await text((await blob.download()).readableStreamBody), 'v1', 'content unchanged')
    },
  },
  {
    operation: 'conditions/if-modified-since',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}c.bin`)
      await blob.upload('v1', 2)
      const { lastModified } = await blob.getProperties()
      assert.ok(lastModified)
      const earlier = new Date(lastModified.getTime() - 3600_000)
      await expectRestError('GET If-Modified-Since Last-Modified', blob.download(0, undefined, { conditions: { ifModifiedSince: lastModified } }), 304)
      const dl = await blob.download(0, undefined, { conditions: { ifModifiedSince: earlier } })
      assert.equal(await text(dl.readableStreamBody), 'v1', 'GET If-Modified-Since an hour earlier')
      await expectRestError('Set Metadata If-Modified-Since Last-Modified',
        blob.setMetadata({ a: 'b' }, { conditions: { ifModifiedSince: lastModified } }), 412, 'ConditionNotMet')
    },
  },
  {
    operation: 'conditions/if-unmodified-since',
    async run(ctx) {
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}c.bin`)
      await blob.upload('v1', 2)
      const { lastModified } = await blob.getProperties()
      assert.ok(lastModified)
      const earlier = new Date(lastModified.getTime() - 3600_000)
      await expectRestError('GET If-Unmodified-Since an hour earlier',
        blob.download(0, undefined, { conditions: { ifUnmodifiedSince: earlier } }), 412, 'ConditionNotMet')
      await expectRestError('PUT If-Unmodified-Since an hour earlier',
        blob.upload('v2', 2, { conditions: { ifUnmodifiedSince: earlier } }), 412, 'ConditionNotMet')
      const dl = await blob.download(0, undefined, { conditions: { ifUnmodifiedSince: lastModified } })
      assert.equal(await text(dl.readableStreamBody), 'v1', 'GET If-Unmodified-Since Last-Modified')
      await blob.upload('v3', 2, { conditions: { ifUnmodifiedSince: lastModified } })
      assert.equal(await text((await blob.download()).readableStreamBody), 'v3', 'PUT If-Unmodified-Since Last-Modified')
    },
  },
]

async function text(body: NodeJS.ReadableStream | undefined): Promise<string> {
  return (await readAll(body)).toString('utf8')
}
