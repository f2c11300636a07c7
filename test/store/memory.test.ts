/**
 * Streams only: a 1 GiB Put Blob and a 1 GiB Get Blob keep the gateway's
 * peak RSS (VmHWM) under 200 MiB. Memory must not grow with object size.
 */
import t from 'tap'
import { request } from 'node:http'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { BlobServiceClient, ContainerSASPermissions } from '@azure/storage-blob'
import { startGateway } from '../helpers/gateway.js'

const GiB = 1024 * 1024 * 1024

async function peakRss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return Number(m?.[1]) * 1024
}

t.test('1 GiB PUT and GET keep server RSS under 200 MiB', async (t) => {
  const gw = await startGateway()
  t.teardown(async () => { await gw.stop() })
  const c = BlobServiceClient.fromConnectionString(gw.connectionString).getContainerClient('mem')
  await c.create()
  const sas = new URL(await c.generateSasUrl({ permissions: ContainerSASPermissions.parse('rw'), expiresOn: new Date(Date.now() + 3600_000) })).search
  const path = `/${gw.account}/mem/big${sas}`
  const chunk = Buffer.alloc(4 * 1024 * 1024)
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(i * 2654435761 >>> 0, i)
  const sent = createHash('sha256')
  const put = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, method: 'PUT', path, headers: { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(GiB) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    void (async () => {
      for (let off = 0; off < GiB; off += chunk.length) {
        sent.update(chunk)
        if (!req.write(chunk)) await new Promise((resolve) => req.once('drain', resolve))
      }
      req.end()
    })()
  })
  t.equal(put, 201)
  const got = createHash('sha256')
  let bytes = 0
  const get = await new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port: gw.port, method: 'GET', path }, (res) => {
      res.on('data', (d: Buffer) => { bytes += d.length; got.update(d) })
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    }).on('error', reject).end()
  })
  t.equal(get, 200)
  t.equal(bytes, GiB)
  t.equal(got.digest('hex'), sent.digest('hex'), 'bytes read back equal bytes written')
  const rss = await peakRss(gw.child.pid as number)
  t.comment(`gateway peak RSS: ${(rss / 1024 / 1024).toFixed(1)} MiB`)
  t.ok(rss < 200 * 1024 * 1024, `peak RSS ${(rss / 1024 / 1024).toFixed(1)} MiB < 200 MiB`)
})
