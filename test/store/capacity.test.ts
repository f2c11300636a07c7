/**
 * Capacity limit and eviction, through the Blob SDK against a real gateway:
 * `reject` refuses a write that does not fit with 507 InsufficientStorage and
 * evicts nothing; `lru` evicts least recently used objects; staged blocks
 * count and are collected after their maximum age.
 */
import t from 'tap'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import { startGateway } from '../helpers/gateway.js'

const MiB = 1024 * 1024

async function container (connectionString: string, name: string): Promise<ContainerClient> {
  const c = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(name)
  await c.create()
  return c
}

t.test('reject: a write that does not fit gets 507 InsufficientStorage and nothing is evicted', async (t) => {
  const gw = await startGateway({ args: ['--capacity', '10MiB', '--eviction', 'reject'] })
  t.teardown(async () => { await gw.stop() })
  const c = await container(gw.connectionString, 'cap-reject')
  await c.getBlockBlobClient('a').uploadData(Buffer.alloc(6 * MiB, 1))
  await t.rejects(c.getBlockBlobClient('b').uploadData(Buffer.alloc(6 * MiB, 2)), { name: 'RestError', statusCode: 507, code: 'InsufficientStorage' })
  t.ok(await c.getBlockBlobClient('a').exists(), 'the existing object was kept')
  t.equal(await c.getBlockBlobClient('b').exists(), false, 'the refused object does not exist')
  // Overwriting in place still needs room for the new copy until the commit.
  await c.getBlockBlobClient('a').delete()
  await c.getBlockBlobClient('b').uploadData(Buffer.alloc(6 * MiB, 2))
  t.ok(await c.getBlockBlobClient('b').exists(), 'space freed by a delete is reusable')
})

t.test('staged blocks count toward capacity', async (t) => {
  const gw = await startGateway({ args: ['--capacity', '10MiB'] })
  t.teardown(async () => { await gw.stop() })
  const c = await container(gw.connectionString, 'cap-staged')
  const b = c.getBlockBlobClient('blocks')
  for (let i = 0; i < 4; i++) await b.stageBlock(Buffer.from(`block-${i}`).toString('base64'), Buffer.alloc(2 * MiB, i), 2 * MiB)
  await t.rejects(c.getBlockBlobClient('other').uploadData(Buffer.alloc(3 * MiB)), { name: 'RestError', statusCode: 507 })
  await b.commitBlockList([Buffer.from('block-0').toString('base64')])
  // The commit dropped the three unused blocks: 6 MiB free again.
  await c.getBlockBlobClient('other').uploadData(Buffer.alloc(3 * MiB))
  t.equal((await b.getProperties()).contentLength, 2 * MiB)
})

t.test('lru: least recently used objects are evicted to make room', async (t) => {
  const gw = await startGateway({ args: ['--capacity', '10MiB', '--eviction', 'lru'] })
  t.teardown(async () => { await gw.stop() })
  const c = await container(gw.connectionString, 'cap-lru')
  await c.getBlockBlobClient('a').uploadData(Buffer.alloc(4 * MiB, 1))
  await c.getBlockBlobClient('b').uploadData(Buffer.alloc(4 * MiB, 2))
  // Reading `a` makes `b` the least recently used.
  await c.getBlockBlobClient('a').downloadToBuffer()
  await c.getBlockBlobClient('c').uploadData(Buffer.alloc(4 * MiB, 3))
  t.ok(await c.getBlockBlobClient('a').exists(), 'recently read object kept')
  t.equal(await c.getBlockBlobClient('b').exists(), false, 'least recently used object evicted')
  t.ok((await c.getBlockBlobClient('c').downloadToBuffer()).equals(Buffer.alloc(4 * MiB, 3)))
  await t.rejects(c.getBlockBlobClient('huge').uploadData(Buffer.alloc(11 * MiB)), { name: 'RestError', statusCode: 507 },
    'an object larger than the whole cache is refused even under lru')
})

t.test('uncommitted blocks are collected after the configured age', async (t) => {
  const gw = await startGateway({ args: ['--staged-block-max-age', '1s'] })
  t.teardown(async () => { await gw.stop() })
  const c = await container(gw.connectionString, 'cap-gc')
  const b = c.getBlockBlobClient('stale')
  await b.stageBlock(Buffer.from('old').toString('base64'), Buffer.from('data'), 4)
  t.equal((await b.getBlockList('uncommitted')).uncommittedBlocks?.length, 1)
  // The collector runs every second; poll with a deadline rather than sleep a fixed time.
  const deadline = Date.now() + 15_000
  let status: number | undefined
  while (Date.now() < deadline) {
    status = await b.getBlockList('all').then(() => 200, (e: { statusCode?: number }) => e.statusCode)
    if (status === 404) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(status, 404, 'the stale block and its blob entry are gone')
})
