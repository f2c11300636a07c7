import { startGateway } from '../test/helpers/gateway.ts'
import { startAzurite } from '../test/helpers/azurite.ts'
import { BlobServiceClient, AccountSASPermissions } from '@azure/storage-blob'
for (const start of [startGateway, startAzurite]) {
  const gw = await start()
  const svc = BlobServiceClient.fromConnectionString(gw.connectionString)
  const c = svc.getContainerClient('probe'); await c.create()
  await c.getBlockBlobClient('ckpt/s/__0_0.distcp').upload('x', 1)
  const sas = new URL(svc.generateAccountSasUrl(new Date(Date.now()+3600e3), AccountSASPermissions.parse('rl'), 'sco')).search.slice(1)
  const res = await fetch(`${gw.blobEndpoint}/probe?restype=container&comp=list&include=metadata&${sas}`)
  console.log(start.name, res.status, (await res.text()).replace(/<Properties>.*<\/Properties>/s, '<Properties/>'))
  await gw.stop()
}
