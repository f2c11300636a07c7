/**
 * JS client: containers, account info, authentication and authorisation (SharedKey, SAS), blob
 * names that stress URL encoding, and the error codes clients branch on (404 BlobNotFound /
 * ContainerNotFound, 403 AuthenticationFailed / AuthorizationPermissionMismatch).
 */
import assert from 'node:assert/strict'
import { BlobSASPermissions, BlobServiceClient, BlockBlobClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { expectRestError, lowerKeys, mapLimit, SkipCase, type JsCase, type JsContext } from './case.js'
import { readAll } from './data.js'

const SPECIAL_NAMES = [
  'チェックポイント/模型 ünïcødé ✓.bin',
  'with space/a b  c.bin',
  '100%.bin',
  'a%20b.bin', // a literal "%20", not a space
  'hash#tag.bin',
  'what?.bin',
  'q?x=1&y=2.bin',
  'plus+sign.bin',
  'mix #?% +&=;,@$!\'()[].bin',
]

async function roundTripNames(ctx: JsContext, names: string[]): Promise<void> {
  await mapLimit(names, 4, async (name) => {
    const blob = ctx.container.getBlockBlobClient(name)
    const body = Buffer.from(`content of ${name}`)
    await blob.upload(body, body.length, { metadata: { Origin: 'conformance' } })
    const got = await readAll((await blob.download()).readableStreamBody)
    assert.ok(got.equals(body), `bytes of ${JSON.stringify(name)}`)
    const p = await blob.getProperties()
    assert.equal(p.contentLength, body.length, `Get Blob Properties of ${JSON.stringify(name)}`)
    assert.equal(lowerKeys(p.metadata).origin, 'conformance', `metadata of ${JSON.stringify(name)}`)
  })
  const listed: string[] = []
  for await (const b of ctx.container.listBlobsFlat({ prefix: ctx.prefix })) listed.push(b.name)
  assert.deepEqual(listed.sort(), [...names].sort(), 'listing returns every name exactly as written')
  await mapLimit(names, 4, async (name) => {
    await ctx.container.getBlockBlobClient(name).delete()
  })
  assert.equal(await ctx.container.getBlockBlobClient(names[0] as string).exists(), false, 'deleted by name')
}

function requireKey(ctx: JsContext): StorageSharedKeyCredential {
  if (!ctx.credential) throw new SkipCase('needs an account key in the connection string')
  return ctx.credential
}

export const jsAccountCases: JsCase[] = [
  {
    operation: 'container/ops',
    async run(ctx) {
      const c = ctx.service.getContainerClient(`${ctx.runId}-ops`)
      const created = await c.create({ metadata: { Team: 'training' } })
      assert.equal(created._response.status, 201, 'Create Container answers 201')
      await expectRestError('create again', c.create(), 409, 'ContainerAlreadyExists')
      assert.equal((await c.createIfNotExists()).succeeded, false, 'createIfNotExists on an existing container')
      assert.equal(await c.exists(), true, 'exists')
      const p = await c.getProperties()
      assert.ok(p.etag && p.lastModified, 'etag and Last-Modified')
      assert.deepEqual(lowerKeys(p.metadata), { team: 'training' }, 'metadata from create')
      await c.setMetadata({ Owner: 'ckptcache', Run: '7' })
      assert.deepEqual(lowerKeys((await c.getProperties()).metadata), { owner: 'ckptcache', run: '7' }, 'Set Container Metadata replaces')
      for await (const item of ctx.service.listContainers({ prefix: `${ctx.runId}-ops`, includeMetadata: true })) {
        assert.deepEqual(item.metadata, { Owner: 'ckptcache', Run: '7' }, 'listing metadata, key case preserved')
      }
      await c.delete()
    },
  },
  {
    operation: 'container/list-prefix',
    async run(ctx) {
      const names = [0, 1, 2].map((i) => `${ctx.runId}-l${i}`)
      await mapLimit(names, 3, (n) => ctx.service.getContainerClient(n).create())
      const pages: string[][] = []
      for await (const page of ctx.service.listContainers({ prefix: `${ctx.runId}-l` }).byPage({ maxPageSize: 2 })) {
        pages.push((page.containerItems ?? []).map((c) => c.name))
      }
      assert.deepEqual(pages, [names.slice(0, 2), names.slice(2)], 'pages of 2 containers under the prefix')
      const all: string[] = []
      for await (const c of ctx.service.listContainers({ prefix: ctx.runId })) all.push(c.name)
      assert.ok(all.includes(ctx.container.containerName), 'the run container is listed')
      await mapLimit(names, 3, (n) => ctx.service.getContainerClient(n).delete())
    },
  },
  {
    operation: 'account/info',
    async run(ctx) {
      const info = await ctx.service.getAccountInfo()
      assert.ok(info.skuName, 'x-ms-sku-name')
      assert.ok(info.accountKind, 'x-ms-account-kind')
      const cinfo = await ctx.container.getAccountInfo()
      assert.equal(cinfo.accountKind, info.accountKind, 'same answer at container level')
    },
  },
  {
    operation: 'auth/sas-read-only',
    async run(ctx) {
      requireKey(ctx)
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}shard.bin`)
      await blob.upload('weights', 7)
      const url = await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) })
      const ro = new BlockBlobClient(url)
      assert.equal((await readAll((await ro.download()).readableStreamBody)).toString(), 'weights', 'read with sp=r')
      assert.equal((await ro.getProperties()).contentLength, 7, 'HEAD with sp=r')
      await expectRestError('Put Blob with sp=r', ro.upload('nope', 4), 403, 'AuthorizationPermissionMismatch')
      await expectRestError('Delete Blob with sp=r', ro.delete(), 403, 'AuthorizationPermissionMismatch')
      assert.equal((await readAll((await blob.download()).readableStreamBody)).toString(), 'weights', 'blob unchanged')
    },
  },
  {
    operation: 'auth/wrong-key',
    async run(ctx) {
      requireKey(ctx)
      const blob = ctx.container.getBlockBlobClient(`${ctx.prefix}k.bin`)
      await blob.upload('x', 1)
      const wrong = new StorageSharedKeyCredential(ctx.account, Buffer.alloc(64, 7).toString('base64'))
      const bad = new BlobServiceClient(ctx.service.url, wrong).getContainerClient(ctx.container.containerName)
      await expectRestError('GET with a wrong key', bad.getBlockBlobClient(blob.name).download(), 403, 'AuthenticationFailed')
      await expectRestError('HEAD with a wrong key', bad.getProperties(), 403, 'AuthenticationFailed')
      await expectRestError('PUT with a wrong key', bad.getBlockBlobClient(blob.name).upload('y', 1), 403, 'AuthenticationFailed')
      // A SAS whose signature does not match its fields.
      const url = new URL(await blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) }))
      url.searchParams.set('sig', Buffer.alloc(32, 1).toString('base64'))
      await expectRestError('GET with a forged SAS signature', new BlockBlobClient(url.toString()).download(), 403, 'AuthenticationFailed')
    },
  },
  {
    operation: 'names/special',
    run: (ctx) => roundTripNames(ctx, SPECIAL_NAMES.map((n) => `${ctx.prefix}${n}`)),
  },
  {
    operation: 'names/1024-chars',
    async run(ctx) {
      let name = ctx.prefix
      while (name.length + 61 < 1024) name += `${'d'.repeat(60)}/`
      name += 'x'.repeat(1024 - name.length)
      assert.equal(name.length, 1024)
      await roundTripNames(ctx, [name])
    },
  },
  {
    operation: 'errors/not-found',
    async run(ctx) {
      const missing = ctx.container.getBlockBlobClient(`${ctx.prefix}missing.bin`)
      await expectRestError('GET missing blob', missing.download(), 404, 'BlobNotFound')
      await expectRestError('HEAD missing blob', missing.getProperties(), 404, 'BlobNotFound')
      await expectRestError('Set Metadata on a missing blob', missing.setMetadata({ a: 'b' }), 404, 'BlobNotFound')
      assert.equal(await missing.exists(), false, 'exists() is false')
      const noContainer = ctx.service.getContainerClient(`${ctx.runId}-absent`)
      await expectRestError('HEAD missing container', noContainer.getProperties(), 404, 'ContainerNotFound')
      await expectRestError('GET blob in a missing container', noContainer.getBlockBlobClient('x').download(), 404, 'ContainerNotFound')
      await expectRestError('PUT blob in a missing container', noContainer.getBlockBlobClient('x').upload('x', 1), 404, 'ContainerNotFound')
      await expectRestError('List Blobs of a missing container', noContainer.listBlobsFlat().next(), 404, 'ContainerNotFound')
    },
  },
]
