import { startAzurite } from '../test/helpers/azurite.ts'
import { BlobServiceClient } from '@azure/storage-blob'
const az = await startAzurite()
const c = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('probe'); await c.create()
const b = c.getBlockBlobClient('a'); await b.upload('0123456789', 10)
try { await b.download(50, 10) } catch (e: any) { console.log(e.statusCode, e.details?.errorCode, e.response?.headers.get('content-range')) }
await az.stop()
