import { startGateway } from '../test/helpers/gateway.ts'
import { startAzurite } from '../test/helpers/azurite.ts'
import { BlobServiceClient } from '@azure/storage-blob'
for (const start of [startGateway, startAzurite]) {
  const gw = await start()
  const svc = BlobServiceClient.fromConnectionString(gw.connectionString)
  const c = svc.getContainerClient('probe'); await c.create()
  await c.getBlockBlobClient('ckpt/s/.metadata').upload('x', 1, { metadata: { DcpVersion: '1' } })
  await c.getBlockBlobClient('ckpt/s/__0_0.distcp').upload('x', 1)
  for await (const page of c.listBlobsByHierarchy('/', { prefix: 'ckpt/s/', includeMetadata: true }).byPage()) {
    for (const b of page.segment.blobItems) console.log(start.name, b.name, JSON.stringify(b.metadata))
  }
  const res = await fetch(`${gw.blobEndpoint}/probe?restype=container&comp=list&include=metadata`).catch(e => e)
  const missing = c.getBlockBlobClient('nothing')
  try { await missing.getBlockList('all'); console.log('blocklist on missing: ok') } catch (e: any) { console.log('blocklist on missing:', e.statusCode, e.details?.errorCode) }
  await gw.stop()
}
