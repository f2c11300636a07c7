/**
 * Crash safety: kill -9 the gateway in the middle of writes, restart it on the
 * same data directory, and check that every acknowledged object is intact,
 * nothing partial is visible, and temp files are gone.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import { startGateway, type GatewayHandle } from '../helpers/gateway.js'

async function client (gw: GatewayHandle, container: string): Promise<ContainerClient> {
  // No retries: a request to a killed gateway must fail at once, not back off for a minute.
  const c = BlobServiceClient.fromConnectionString(gw.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(container)
  await c.createIfNotExists()
  return c
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Files under the store's object directories that are neither meta.json nor named by one. */
async function tmpFiles (dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'tmp'))
}

t.test('kill -9 during a large single-shot upload: acknowledged objects intact, no partial object', async (t) => {
  let gw = await startGateway()
  const dataDir = gw.dataDir
  t.teardown(async () => { await gw.stop() })
  let c = await client(gw, 'crash1')
  const acked = new Map<string, string>()
  for (let i = 0; i < 5; i++) {
    const body = randomBytes(256 * 1024 + i)
    await c.getBlockBlobClient(`ok/${i}`).uploadData(body)
    acked.set(`ok/${i}`, sha(body))
  }
  // A 256 MiB Put Blob whose body we stop sending halfway; the gateway is killed while it waits.
  const url = new URL(c.getBlockBlobClient('partial').url)
  const sas = await c.generateSasUrl({ permissions: (await import('@azure/storage-blob')).ContainerSASPermissions.parse('rw'), expiresOn: new Date(Date.now() + 3600_000) })
  const req = request({
    host: '127.0.0.1', port: gw.port, method: 'PUT', path: url.pathname + new URL(sas).search,
    headers: { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(256 * 1024 * 1024) }
  })
  req.on('error', () => {})
  const chunk = Buffer.alloc(1024 * 1024, 7)
  for (let i = 0; i < 64; i++) {
    if (!req.write(chunk)) await new Promise((resolve) => req.once('drain', resolve))
  }
  // Wait until the gateway has a temp file for it, then kill.
  const deadline = Date.now() + 10_000
  while ((await tmpFiles(dataDir)).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok((await tmpFiles(dataDir)).length > 0, 'upload in progress had a temp file')
  await gw.kill('SIGKILL')
  req.destroy()

  gw = await startGateway({ dataDir })
  c = await client(gw, 'crash1')
  for (const [name, digest] of acked) t.equal(sha(await c.getBlockBlobClient(name).downloadToBuffer()), digest, `${name} intact`)
  t.equal(await c.getBlockBlobClient('partial').exists(), false, 'the interrupted upload is not visible')
  t.same(await tmpFiles(dataDir), [], 'temp files removed at start')
})

t.test('kill -9 during Put Block List: the blob is the old version or the new one, whole', async (t) => {
  let gw = await startGateway()
  const dataDir = gw.dataDir
  t.teardown(async () => { await gw.stop() })
  let c = await client(gw, 'crash2')
  const oldBody = randomBytes(3 * 1024 * 1024)
  await c.getBlockBlobClient('target').uploadData(oldBody)
  const outcomes = { old: 0, new: 0 }
  for (let round = 0; round < 6; round++) {
    const b = c.getBlockBlobClient('target')
    const blocks: Buffer[] = []
    const ids: string[] = []
    for (let i = 0; i < 8; i++) {
      const data = randomBytes(512 * 1024)
      const id = Buffer.from(`r${round}-block-${String(i).padStart(4, '0')}`).toString('base64')
      await b.stageBlock(id, data, data.length)
      blocks.push(data)
      ids.push(id)
    }
    const newBody = Buffer.concat(blocks)
    const commit = b.commitBlockList(ids).then(() => 'acked', () => 'failed')
    // Kill at a different moment each round: before, during and after the commit.
    await new Promise((resolve) => setTimeout(resolve, round * 3))
    await gw.kill('SIGKILL')
    const result = await commit
    gw = await startGateway({ dataDir })
    c = await client(gw, 'crash2')
    const got = await c.getBlockBlobClient('target').downloadToBuffer()
    const isOld = got.equals(oldBody)
    const isNew = got.equals(newBody)
    t.ok(isOld || isNew, `round ${round}: content is one whole version`)
    if (result === 'acked') t.ok(isNew, `round ${round}: an acknowledged commit survived`)
    if (isNew) {
      outcomes.new++
      // Restore the old version for the next round.
      await c.getBlockBlobClient('target').uploadData(oldBody)
    } else {
      outcomes.old++
    }
    t.same(await tmpFiles(dataDir), [], `round ${round}: no temp files after restart`)
  }
  t.comment(`outcomes over 6 rounds: ${JSON.stringify(outcomes)}`)
})

t.test('kill -9 during concurrent small writes: every acknowledged write survives', async (t) => {
  let gw = await startGateway()
  const dataDir = gw.dataDir
  t.teardown(async () => { await gw.stop() })
  let c = await client(gw, 'crash3')
  const acked = new Map<string, string>()
  let stop = false
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop && i < 10_000; i++) {
      const body = randomBytes(4096 + ((w * 31 + i) % 512))
      const name = `w${w}/obj-${i}`
      try {
        await c.getBlockBlobClient(name).uploadData(body)
        acked.set(name, sha(body))
      } catch {
        return
      }
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await gw.kill('SIGKILL')
  stop = true
  await Promise.all(writers)
  t.ok(acked.size > 0, `${acked.size} writes acknowledged before the kill`)
  gw = await startGateway({ dataDir })
  c = await client(gw, 'crash3')
  let intact = 0
  for (const [name, digest] of acked) {
    if (sha(await c.getBlockBlobClient(name).downloadToBuffer()) === digest) intact++
  }
  t.equal(intact, acked.size, 'every acknowledged object is intact')
  for await (const b of c.listBlobsFlat()) {
    t.ok(b.properties.contentLength !== undefined && b.properties.contentLength >= 4096, `${b.name} is whole`)
    if (!acked.has(b.name)) t.comment(`${b.name} committed but not acknowledged before the kill (allowed)`)
  }
})
