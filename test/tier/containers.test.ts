/**
 * Container deletes with a cloud tier: Delete Container removes the container's blobs from Azure
 * too (cached and upstream-only ones), so the container is not adopted again on its next use; S3
 * DeleteBucket refuses a bucket whose objects only Azure holds.
 */
import t from 'tap'
import { RestError } from '@azure/storage-blob'
import { DeleteBucketCommand, S3ServiceException } from '@aws-sdk/client-s3'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'
import { azuriteService, blobService, flushUntilDone, s3Client, tierGateway, upstreamNames } from '../helpers/tier-read.js'

process.removeAllListeners('warning') // client-s3's "Node ≥ 22 after 2027" notice

let azurite: AzuriteHandle

t.before(async () => { azurite = await startAzurite() })
t.teardown(async () => { await azurite?.stop() })

t.test('Delete Container deletes its blobs upstream; the container stays gone', async (t) => {
  const upstream = azuriteService(azurite).getContainerClient('gone')
  await upstream.create()
  await upstream.getBlockBlobClient('only-upstream/a').uploadData(Buffer.from('upstream only'))
  const gw = await tierGateway(azurite)
  t.teardown(async () => { await gw.stop() })
  const c = blobService(gw).getContainerClient('gone')
  for (const n of ['ckpt/__0_0.distcp', 'ckpt/__1_0.distcp', 'ckpt/.metadata']) await c.getBlockBlobClient(n).uploadData(Buffer.from(n))
  await flushUntilDone(gw, 'gone')
  await c.getBlockBlobClient('ckpt/dirty-or-not').uploadData(Buffer.from('late'))
  await flushUntilDone(gw, 'gone')
  t.same(await upstreamNames(upstream), ['ckpt/.metadata', 'ckpt/__0_0.distcp', 'ckpt/__1_0.distcp', 'ckpt/dirty-or-not', 'only-upstream/a'], 'all in Azure before')

  await c.delete()
  t.same(await upstreamNames(upstream), [], 'every blob deleted upstream, the one never cached too')
  try {
    await c.getProperties()
    t.fail('the container came back')
  } catch (err) {
    if (!(err instanceof RestError)) throw err
    t.equal(err.statusCode, 404, 'Get Container Properties: 404, not adopted again')
    t.equal(err.code ?? err.response?.headers.get('x-ms-error-code'), 'ContainerNotFound')
  }
})

t.test('S3 DeleteBucket refuses a bucket whose objects only Azure holds', async (t) => {
  const upstream = azuriteService(azurite).getContainerClient('keep')
  await upstream.create()
  await upstream.getBlockBlobClient('x').uploadData(Buffer.from('x'))
  const gw = await tierGateway(azurite)
  t.teardown(async () => { await gw.stop() })
  try {
    await s3Client(gw).send(new DeleteBucketCommand({ Bucket: 'keep' }))
    t.fail('deleted a bucket that is not empty')
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err
    t.equal(err.$metadata.httpStatusCode, 409)
    t.equal(err.name, 'BucketNotEmpty')
  }
  t.same(await upstreamNames(upstream), ['x'], 'nothing deleted upstream')
})
