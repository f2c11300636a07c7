import { startAzurite } from '../test/helpers/azurite.ts'
import { BlobServiceClient, StorageSharedKeyCredential, BlobSASPermissions, BlockBlobClient } from '@azure/storage-blob'
import { createHash } from 'node:crypto'
const az = await startAzurite()
const svc = BlobServiceClient.fromConnectionString(az.connectionString)
const c = svc.getContainerClient('probe'); await c.create()
const b = c.getBlockBlobClient('a'); await b.upload('0123456789', 10)
const show = async (what: string, p: Promise<unknown>) => { try { const r: any = await p; console.log(what, 'OK', r?._response?.status, r?.contentRange ?? '', r?.contentLength ?? '') ; r?.readableStreamBody?.resume() } catch (e: any) { console.log(what, e.statusCode, e.details?.errorCode, e.message.split('\n')[0]) } }
await show('range at size', b.download(10, 5))
await show('range past size', b.download(50))
const e = c.getBlockBlobClient('e'); await e.upload('', 0)
await show('empty range', e.download(0, 1))
await show('empty norange', e.download())
const bad = new BlobServiceClient(az.blobEndpoint, new StorageSharedKeyCredential(az.account, Buffer.alloc(64, 7).toString('base64'))).getContainerClient('probe')
await show('bad key put', bad.getBlockBlobClient('a').upload('y', 1))
const url = new URL(await b.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3600_000) }))
url.searchParams.set('sig', Buffer.alloc(32, 1).toString('base64'))
await show('forged sas', new BlockBlobClient(url.toString()).download())
const id = Buffer.from('block-0').toString('base64')
await show('bad md5 block', b.stageBlock(id, Buffer.from('abc'), 3, { transactionalContentMD5: createHash('md5').update('x').digest() }))
console.log((await b.getBlockList('uncommitted')).uncommittedBlocks)
await az.stop()
