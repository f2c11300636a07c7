/**
 * The Azure Blob upstream adapter against Azurite. Between the two sits a
 * small loopback proxy that counts the REST operations it forwards (what
 * Azurite really saw, to compare with the adapter's metrics) and can answer
 * the next few requests of an operation with an error itself (throttling,
 * refusals), to prove the retries and their counting.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import {
  AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, BlobServiceClient, StorageSharedKeyCredential,
  generateAccountSASQueryParameters
} from '@azure/storage-blob'
import { createNodeMetrics, type NodeMetrics } from '../../src/admin/metrics.js'
import { isCacheError } from '../../src/errors.js'
import { toAzureMetadata } from '../../src/upstream/azure-mapping.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import { blockIdFor, blockIdsFor } from '../../src/upstream/block-ids.js'
import type { Upstream, UploadSource, UpstreamListItem } from '../../src/upstream/types.js'
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY, startAzurite } from '../helpers/azurite.js'

const MiB = 1024 * 1024
const fast = { attempts: 4, baseMs: 1, capMs: 5 }

// ---- the counting proxy -------------------------------------------------------------------------

function operationOf (method: string, url: string): string {
  const q = new URL(url, 'http://x').searchParams
  const comp = q.get('comp')
  const container = q.get('restype') === 'container'
  if (method === 'PUT') return comp === 'block' ? 'PutBlock' : comp === 'blocklist' ? 'PutBlockList' : container ? 'CreateContainer' : 'PutBlob'
  if (method === 'GET') return container && comp === 'list' ? 'ListBlobs' : 'GetBlob'
  if (method === 'HEAD') return 'GetBlobProperties'
  if (method === 'DELETE') return 'DeleteBlob'
  return method
}

interface Fault { status: number, code: string, times: number }

interface CountingProxy {
  port: number
  connectionString: string
  seen: Map<string, number>
  /** Most requests of an operation in flight at once. */
  peak: Map<string, number>
  /** Answer the next `times` requests of `operation` with this status and Azure error code. */
  fail (operation: string, times: number, status: number, code: string): void
  /** Cut the connection of the next response of `operation` after this many body bytes. */
  cut (operation: string, afterBytes: number): void
  onRequest?: (operation: string) => void
  reset (): void
  close (): Promise<void>
}

async function startProxy (target: number): Promise<CountingProxy> {
  const agent = new http.Agent({ keepAlive: true })
  const faults = new Map<string, Fault>()
  const inFlight = new Map<string, number>()
  const cuts = new Map<string, number>()
  const proxy: CountingProxy = {
    port: 0,
    connectionString: '',
    seen: new Map(),
    peak: new Map(),
    fail: (operation, times, status, code) => { faults.set(operation, { status, code, times }) },
    cut: (operation, afterBytes) => { cuts.set(operation, afterBytes) },
    reset: () => { proxy.seen.clear(); proxy.peak.clear(); faults.clear(); cuts.clear() },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      agent.destroy()
    }
  }
  const server = http.createServer((req, res) => {
    const op = operationOf(req.method!, req.url!)
    proxy.seen.set(op, (proxy.seen.get(op) ?? 0) + 1)
    proxy.onRequest?.(op)
    const fault = faults.get(op)
    if (fault !== undefined && fault.times > 0) {
      fault.times--
      // Read the body first: answering mid-upload would make the client see a reset, not the status.
      req.resume()
      req.on('end', () => {
        const body = req.method === 'HEAD' ? '' : `<?xml version="1.0" encoding="utf-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`
        res.writeHead(fault.status, { 'x-ms-error-code': fault.code, 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
      return
    }
    inFlight.set(op, (inFlight.get(op) ?? 0) + 1)
    proxy.peak.set(op, Math.max(proxy.peak.get(op) ?? 0, inFlight.get(op)!))
    const cut = cuts.get(op)
    cuts.delete(op)
    const upstream = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode!, up.headers)
      if (cut !== undefined) {
        let sent = 0
        up.on('data', (chunk: Buffer) => {
          if (sent >= cut) return
          const part = chunk.subarray(0, cut - sent)
          sent += part.length
          res.write(part, () => { if (sent >= cut) res.socket?.destroy() })
        })
        return
      }
      up.pipe(res)
      up.on('end', () => inFlight.set(op, inFlight.get(op)! - 1))
    })
    upstream.on('error', (err) => res.destroy(err))
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.port = (server.address() as AddressInfo).port
  proxy.connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${proxy.port}/${AZURITE_ACCOUNT};`
  return proxy
}

// ---- fixtures -----------------------------------------------------------------------------------

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const proxy = await startProxy(azurite.port)
t.teardown(() => proxy.close())
const dir = await mkdtemp(join(tmpdir(), 'ckptcache-upstream-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const sdk = BlobServiceClient.fromConnectionString(azurite.connectionString, { retryOptions: { maxTries: 1 } })

let files = 0
/** The bytes as a file-backed upload source (ranges read from the file, as the store does). */
async function fileSource (data: Buffer): Promise<UploadSource & { opened: number }> {
  const path = join(dir, `src-${files++}`)
  await writeFile(path, data)
  const source = {
    size: data.length,
    opened: 0,
    open: (range?: { start: number, end: number }) => {
      source.opened++
      return createReadStream(path, range === undefined ? {} : { start: range.start, end: range.end })
    }
  }
  return source
}

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('base64')

function newUpstream (metrics: NodeMetrics, extra: Partial<Parameters<typeof createAzureUpstream>[0]> = {}): Upstream {
  const up = createAzureUpstream({ connectionString: proxy.connectionString, blockSize: 8 * MiB, blockConcurrency: 2, maxRps: 0, metrics, retry: fast, ...extra })
  t.teardown(() => up.close())
  return up
}

/** Requests the adapter counted, per operation. */
function counted (metrics: NodeMetrics): Record<string, number> {
  const out: Record<string, number> = {}
  for (const op of ['PutBlob', 'PutBlock', 'PutBlockList', 'GetBlob', 'GetBlobProperties', 'DeleteBlob', 'ListBlobs', 'CreateContainer']) {
    const n = metrics.upstreamRequests.sum({ operation: op })
    if (n > 0) out[op] = n
  }
  return out
}

const seen = (): Record<string, number> => Object.fromEntries([...proxy.seen.entries()].sort())

// ---- tests --------------------------------------------------------------------------------------

t.beforeEach(() => proxy.reset())

t.test('ensureContainer: one Create Container per process, an existing container is fine', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('ensure-me')
  await up.ensureContainer('ensure-me')
  t.same(counted(metrics), { CreateContainer: 1 })
  t.same(seen(), { CreateContainer: 1 }, 'Azurite saw the same')
  t.ok(await sdk.getContainerClient('ensure-me').exists())
  await newUpstream(createNodeMetrics()).ensureContainer('ensure-me')
  t.pass('a second process finds it existing')
})

t.test('small upload: one Put Blob, streamed, with computed Content-MD5, headers and metadata', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('small')
  const data = randomBytes(MiB)
  const source = await fileSource(data)
  const content = { contentType: 'application/x-pytorch', contentEncoding: 'identity', contentLanguage: 'en', contentDisposition: 'attachment; filename="w.pt"', cacheControl: 'no-cache' }
  const res = await up.upload({ ref: { container: 'small', blob: 'ckpt/step-1/w.pt' }, source, content, metadata: { step: '1', 'model-name': 'llama', '2x': 'y' }, version: 'v-small' })
  t.equal(res.md5, md5(data), 'result md5 is the content MD5')
  t.equal(res.requests, 1)
  t.same(seen(), { CreateContainer: 1, PutBlob: 1 }, 'Azurite saw one Put Blob')
  t.same(counted(metrics), seen(), 'the metrics say the same')
  t.equal(metrics.upstreamRequests.get({ operation: 'PutBlob', class: 'data' }), 1, 'Put Blob is a data request')
  t.equal(metrics.upstreamBytes.get({ direction: 'out' }), MiB)
  const blob = sdk.getContainerClient('small').getBlobClient('ckpt/step-1/w.pt')
  const props = await blob.getProperties()
  t.equal(Buffer.from(props.contentMD5!).toString('base64'), md5(data), 'Content-MD5 stored and correct')
  t.equal(props.etag, `"${res.etag}"`)
  t.equal(props.contentType, content.contentType)
  t.equal(props.contentEncoding, content.contentEncoding)
  t.equal(props.contentLanguage, content.contentLanguage)
  t.equal(props.contentDisposition, content.contentDisposition)
  t.equal(props.cacheControl, content.cacheControl)
  t.same(props.metadata, { step: '1', model_name: 'llama', _2x: 'y' }, 'metadata names mapped to identifiers')
  t.ok((await blob.downloadToBuffer()).equals(data), 'bytes equal')
})

t.test('large upload: Put Block ×3 + Put Block List for 20 MiB in 8 MiB blocks, bounded parallelism', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('large')
  const data = randomBytes(20 * MiB)
  const source = await fileSource(data)
  const res = await up.upload({ ref: { container: 'large', blob: 'model.safetensors' }, source, content: { contentType: 'application/octet-stream' }, metadata: { shard: '0' }, version: 'v-large' })
  t.same(seen(), { CreateContainer: 1, PutBlock: 3, PutBlockList: 1 }, 'Azurite saw 3 Put Block and 1 Put Block List')
  t.same(counted(metrics), seen(), 'the metrics say the same')
  t.equal(res.requests, 4)
  t.ok(proxy.peak.get('PutBlock')! <= 2, `at most blockConcurrency blocks in flight (peak ${proxy.peak.get('PutBlock')})`)
  t.equal(metrics.upstreamBytes.get({ direction: 'out' }), 20 * MiB)
  t.equal(res.md5, md5(data), 'MD5 computed in order although blocks went out of order')
  t.equal(source.opened, 4, 'one ordered read for the MD5 and one range read per block')
  const blob = sdk.getContainerClient('large').getBlockBlobClient('model.safetensors')
  const props = await blob.getProperties()
  t.equal(Buffer.from(props.contentMD5!).toString('base64'), md5(data), 'Content-MD5 committed')
  t.same(props.metadata, { shard: '0' })
  t.equal(props.etag, `"${res.etag}"`)
  t.ok((await blob.downloadToBuffer()).equals(data), 'bytes equal')
  const list = await blob.getBlockList('committed')
  t.same(list.committedBlocks?.map((b) => b.name), blockIdsFor('v-large', 3), 'block ids derive from the version')
  t.same(list.committedBlocks?.map((b) => b.size), [8 * MiB, 8 * MiB, 4 * MiB])
})

t.test('re-upload of the same version stages the same block ids and commits the same bytes', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics, { blockSize: 4 * MiB, blockConcurrency: 3 })
  const data = randomBytes(10 * MiB)
  const source = await fileSource(data)
  const req = { ref: { container: 'again', blob: 'opt/state.bin' }, source, content: {}, metadata: {}, version: 'v-again' }
  const first = await up.upload(req)
  const blob = sdk.getContainerClient('again').getBlockBlobClient('opt/state.bin')
  const firstIds = (await blob.getBlockList('committed')).committedBlocks?.map((b) => b.name)
  // A crash after some blocks were staged: the restarted upload stages the same ids again.
  await blob.stageBlock(blockIdFor('v-again', 0), data.subarray(0, 4 * MiB), 4 * MiB)
  const second = await up.upload(req)
  const after = await blob.getBlockList('all')
  t.same(after.committedBlocks?.map((b) => b.name), firstIds, 'same block ids')
  t.same(after.uncommittedBlocks, [], 'nothing left uncommitted')
  t.equal(second.md5, first.md5)
  t.ok((await blob.downloadToBuffer()).equals(data), 'bytes equal after the second commit')
  t.equal(blockIdFor('v-again', 7), blockIdFor('v-again', 7), 'ids are a pure function')
  t.not(blockIdFor('v-again', 0), blockIdFor('v-other', 0), 'and differ between versions')
  t.equal(new Set(blockIdsFor('v', 1200).map((id) => id.length)).size, 1, 'all of one length')
})

t.test('a given Content-MD5 is used as it is, and a wrong one on a small object commits as a block list', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('given')
  const large = randomBytes(9 * MiB)
  const largeSource = await fileSource(large)
  const res = await up.upload({ ref: { container: 'given', blob: 'large' }, source: largeSource, content: { contentMd5: md5(large) }, metadata: {}, version: 'g1' })
  t.equal(res.md5, md5(large))
  t.equal(largeSource.opened, 2, 'no read to hash: two block ranges only')
  // Azure does not check a Put Block List's Content-MD5, so a client may have committed any value.
  const small = randomBytes(1000)
  const bogus = md5(Buffer.from('not the content'))
  proxy.reset()
  const res2 = await up.upload({ ref: { container: 'given', blob: 'small' }, source: await fileSource(small), content: { contentMd5: bogus }, metadata: {}, version: 'g2' })
  t.equal(res2.md5, bogus)
  t.same(seen(), { PutBlob: 1, PutBlock: 1, PutBlockList: 1 }, 'Put Blob refused, then one block and a list')
  const props = await sdk.getContainerClient('given').getBlobClient('small').getProperties()
  t.equal(Buffer.from(props.contentMD5!).toString('base64'), bogus, 'the property is carried as its writer set it')
  t.ok((await sdk.getContainerClient('given').getBlobClient('small').downloadToBuffer()).equals(small))

  // Empty objects: a Put Blob of nothing, or (with a refused Content-MD5) an empty block list.
  const empty = await up.upload({ ref: { container: 'given', blob: 'empty' }, source: await fileSource(Buffer.alloc(0)), content: {}, metadata: {}, version: 'g3' })
  t.equal(empty.md5, '1B2M2Y8AsgTpgAmY7PhCfg==', 'MD5 of nothing')
  proxy.reset()
  const emptyBogus = await up.upload({ ref: { container: 'given', blob: 'empty-bogus' }, source: await fileSource(Buffer.alloc(0)), content: { contentMd5: bogus }, metadata: {}, version: 'g4' })
  t.equal(emptyBogus.md5, bogus)
  t.same(seen(), { PutBlob: 1, PutBlockList: 1 }, 'no empty block: an empty list')
  for (const name of ['empty', 'empty-bogus']) {
    const p = await sdk.getContainerClient('given').getBlobClient(name).getProperties()
    t.equal(p.contentLength, 0, `${name} is empty`)
  }
})

t.test('upload into a missing container creates it and retries once', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  const data = randomBytes(4096)
  const res = await up.upload({ ref: { container: 'created-on-demand', blob: 'x' }, source: await fileSource(data), content: {}, metadata: {}, version: 'c1' })
  t.same(seen(), { PutBlob: 2, CreateContainer: 1 })
  t.same(counted(metrics), { PutBlob: 2, CreateContainer: 1 })
  t.equal(res.requests, 3)
  t.ok((await sdk.getContainerClient('created-on-demand').getBlobClient('x').downloadToBuffer()).equals(data))
  // Blocks of a large upload hit the missing container in parallel: one creation serves them all.
  proxy.reset()
  const big = randomBytes(3 * MiB)
  await up.upload({ ref: { container: 'created-for-blocks', blob: 'y' }, source: await fileSource(big), content: {}, metadata: {}, version: 'c2' })
  t.equal(proxy.seen.get('CreateContainer'), 1, 'one Create Container')
  t.ok((await sdk.getContainerClient('created-for-blocks').getBlobClient('y').downloadToBuffer()).equals(big))
})

t.test('head, download (whole, range, ifMatch) and bytes counted as they stream', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  const data = randomBytes(3 * MiB + 17)
  const { etag } = await up.upload({ ref: { container: 'reads', blob: 'a/b.bin' }, source: await fileSource(data), content: { contentType: 'text/plain' }, metadata: { k: 'v' }, version: 'r1' })
  const props = await up.head({ container: 'reads', blob: 'a/b.bin' })
  t.match(props, { size: data.length, etag, content: { contentType: 'text/plain', contentMd5: md5(data) }, metadata: { k: 'v' } })
  t.ok(props!.lastModifiedMs > 0)
  t.equal(await up.head({ container: 'reads', blob: 'missing' }), undefined, 'missing blob: undefined')
  t.equal(await up.head({ container: 'no-such-container', blob: 'x' }), undefined, 'missing container: undefined')

  const before = metrics.upstreamBytes.get({ direction: 'in' })
  t.ok((await buffer(await up.download({ container: 'reads', blob: 'a/b.bin' }))).equals(data), 'whole blob')
  t.equal(metrics.upstreamBytes.get({ direction: 'in' }) - before, data.length, 'bytes in counted')
  const part = await buffer(await up.download({ container: 'reads', blob: 'a/b.bin' }, { range: { start: 100, end: 1123 }, ifMatch: etag }))
  t.ok(part.equals(data.subarray(100, 1124)), 'range with a matching If-Match')
  t.equal(metrics.upstreamBytes.get({ direction: 'in' }) - before, data.length + 1024)
  await t.rejects(up.download({ container: 'reads', blob: 'a/b.bin' }, { ifMatch: '0x8D000000000000' }), { name: 'CacheError', code: 'CC_ERR_CONDITION_NOT_MET' })
  await t.rejects(up.download({ container: 'reads', blob: 'missing' }), { name: 'CacheError', code: 'CC_ERR_OBJECT_NOT_FOUND' })
  await t.rejects(up.download({ container: 'no-such-container', blob: 'x' }), { name: 'CacheError', code: 'CC_ERR_OBJECT_NOT_FOUND' })
  t.equal(metrics.upstreamRequests.get({ operation: 'GetBlob', class: 'data' }), 5)
  t.equal(metrics.upstreamRequests.get({ operation: 'GetBlobProperties', class: 'metadata' }), 3)

  // A connection lost mid-body: the stream fails with a CacheError, not an SDK error.
  proxy.cut('GetBlob', 64 * 1024)
  const cutStream = await up.download({ container: 'reads', blob: 'a/b.bin' })
  const cutErr = await buffer(cutStream).catch((e: unknown) => e)
  t.ok(isCacheError(cutErr, 'CC_ERR_UPSTREAM_UNAVAILABLE'), `the body fails with a CacheError (${String(cutErr)})`)
  t.equal(cutStream.destroyed, true)

  // A reader that stops early closes the upstream response.
  const stream = await up.download({ container: 'reads', blob: 'a/b.bin' })
  for await (const chunk of stream) { t.ok(chunk.length > 0); break }
  t.ok(stream.destroyed, 'stream closed')
})

t.test('delete with and without ifMatch', async (t) => {
  const up = newUpstream(createNodeMetrics())
  const ref = { container: 'deletes', blob: 'd' }
  const { etag } = await up.upload({ ref, source: await fileSource(randomBytes(10)), content: {}, metadata: {}, version: 'd1' })
  t.equal(await up.delete(ref, { ifMatch: '0x8D000000000000' }), false, 'stale ifMatch: nothing deleted')
  t.ok(await up.head(ref), 'still there')
  t.equal(await up.delete(ref, { ifMatch: etag }), true)
  t.equal(await up.head(ref), undefined, 'gone')
  t.equal(await up.delete(ref), false, 'nothing to delete')
  t.equal(await up.delete({ container: 'no-such-container', blob: 'd' }), false)
})

t.test('list: flat and hierarchical, paged, with properties and metadata; a missing container is empty', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  const names = ['l/a', 'l/b', 'l/c/1', 'l/c/2', 'l/d', 'other']
  for (const name of names) {
    await up.upload({ ref: { container: 'lists', blob: name }, source: await fileSource(Buffer.from(name)), content: { contentType: 'text/x-name', cacheControl: 'max-age=1' }, metadata: { name_of: name }, version: name })
  }
  async function all (delimiter?: string): Promise<{ items: UpstreamListItem[], pages: number, sizes: number[] }> {
    const items: UpstreamListItem[] = []
    const sizes: number[] = []
    let marker: string | undefined
    let pages = 0
    do {
      const page = await up.list('lists', { prefix: 'l/', delimiter, marker, maxResults: 2 })
      items.push(...page.items)
      sizes.push(page.items.length)
      marker = page.next
      pages++
    } while (marker !== undefined && pages < 20)
    return { items, pages, sizes }
  }
  const flat = await all()
  t.same(flat.items.map((i) => i.name), ['l/a', 'l/b', 'l/c/1', 'l/c/2', 'l/d'])
  t.same(flat.sizes, [2, 2, 1], 'pages of at most 2')
  const first = flat.items[0]!
  t.equal(first.kind, 'blob')
  if (first.kind === 'blob') {
    const head = await up.head({ container: 'lists', blob: 'l/a' })
    t.same(first.props.content, { contentType: 'text/x-name', cacheControl: 'max-age=1', contentMd5: md5(Buffer.from('l/a')) })
    t.same(first.props.metadata, { name_of: 'l/a' })
    t.equal(first.props.size, 3)
    t.equal(first.props.etag, head!.etag)
  }
  const tree = await all('/')
  t.same(tree.items.map((i) => `${i.kind}:${i.name}`), ['blob:l/a', 'blob:l/b', 'prefix:l/c/', 'blob:l/d'])
  t.ok(tree.pages >= 2 && tree.sizes.every((n) => n <= 2), `paged (${tree.sizes.join(', ')})`)
  t.same(await up.list('no-such-container', { prefix: '' }), { items: [] })
  t.equal(metrics.upstreamRequests.get({ operation: 'ListBlobs', class: 'metadata' }), flat.pages + tree.pages + 1)
})

t.test('retries: 503 ServerBusy twice, then success; retries and requests counted as sent', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('retries')
  proxy.fail('PutBlob', 2, 503, 'ServerBusy')
  const data = randomBytes(256 * 1024)
  const res = await up.upload({ ref: { container: 'retries', blob: 'r' }, source: await fileSource(data), content: {}, metadata: {}, version: 'r1' })
  t.same(seen(), { CreateContainer: 1, PutBlob: 3 }, 'Azurite (behind the proxy) was asked three times')
  t.same(counted(metrics), seen(), 'the metrics say the same')
  t.equal(metrics.upstreamRetries.get({ operation: 'PutBlob' }), 2)
  t.equal(res.requests, 3)
  t.equal(metrics.upstreamBytes.get({ direction: 'out' }), data.length, 'bytes of the successful put only')
  t.ok((await sdk.getContainerClient('retries').getBlobClient('r').downloadToBuffer()).equals(data))

  proxy.reset()
  proxy.fail('PutBlock', 1, 500, 'InternalError')
  proxy.fail('GetBlobProperties', 1, 429, 'TooManyRequests')
  await up.upload({ ref: { container: 'retries', blob: 'big' }, source: await fileSource(randomBytes(9 * MiB)), content: {}, metadata: {}, version: 'r2' })
  t.ok(await up.head({ container: 'retries', blob: 'big' }))
  t.same(seen(), { PutBlock: 3, PutBlockList: 1, GetBlobProperties: 2 })
  t.equal(metrics.upstreamRetries.get({ operation: 'PutBlock' }), 1)
  t.equal(metrics.upstreamRetries.get({ operation: 'GetBlobProperties' }), 1)

  proxy.reset()
  proxy.fail('GetBlobProperties', 1, 403, 'AuthorizationFailure')
  const err = await up.head({ container: 'retries', blob: 'big' }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_INTERNAL'), 'a 403 is not retried')
  t.match((err as Error).message, /403/)
  t.equal((err as Error).cause instanceof Error, true, 'the SDK error is kept as cause')
  t.same(seen(), { GetBlobProperties: 1 })
})

t.test('an unreachable upstream: CC_ERR_UPSTREAM_UNAVAILABLE after the attempts, each counted', async (t) => {
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const metrics = createNodeMetrics()
  const warnings: object[] = []
  const up = createAzureUpstream({
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`,
    blockSize: MiB,
    blockConcurrency: 1,
    maxRps: 0,
    metrics,
    retry: { attempts: 3, baseMs: 1, capMs: 2 },
    log: { warn: (obj) => warnings.push(obj) }
  })
  t.teardown(() => up.close())
  const err = await up.upload({ ref: { container: 'gone', blob: 'x' }, source: await fileSource(randomBytes(100)), content: {}, metadata: {}, version: 'u1' }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_UPSTREAM_UNAVAILABLE'), `unavailable (${String(err)})`)
  t.match((err as Error).message, /ECONNREFUSED/)
  t.equal(metrics.upstreamRequests.get({ operation: 'PutBlob', class: 'data' }), 3)
  t.equal(metrics.upstreamRetries.get({ operation: 'PutBlob' }), 2)
  t.equal(warnings.length, 2, 'each retry logged')
  t.notMatch(JSON.stringify(warnings), AZURITE_ACCOUNT_KEY.slice(0, 20), 'no key in the log')
  await t.rejects(up.list('gone', { prefix: '' }), { code: 'CC_ERR_UPSTREAM_UNAVAILABLE' })
})

t.test('aborts: a signal stops an upload in its backoff; close() stops everything', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics, { retry: { attempts: 50, baseMs: 30_000, capMs: 30_000 } })
  await up.ensureContainer('aborts')
  proxy.reset()
  proxy.fail('PutBlob', 50, 503, 'ServerBusy')
  const ac = new AbortController()
  proxy.onRequest = () => { setTimeout(() => ac.abort(), 20) }
  t.teardown(() => { proxy.onRequest = undefined })
  const started = Date.now()
  const err = await up.upload({ ref: { container: 'aborts', blob: 'x' }, source: await fileSource(randomBytes(100)), content: { contentMd5: md5(randomBytes(1)) }, metadata: {}, version: 'a1', signal: ac.signal }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_CLIENT_ABORTED'), `cancelled (${String(err)})`)
  t.ok(Date.now() - started < 10_000, 'did not wait out the backoff')
  proxy.onRequest = undefined

  // A download whose reader leaves mid-body.
  proxy.reset()
  const big = randomBytes(4 * MiB)
  await up.upload({ ref: { container: 'aborts', blob: 'big' }, source: await fileSource(big), content: {}, metadata: {}, version: 'a2' })
  const reader = new AbortController()
  const stream = await up.download({ container: 'aborts', blob: 'big' }, { signal: reader.signal })
  const readErr = await (async () => {
    for await (const chunk of stream) { t.ok(chunk.length > 0); reader.abort() }
  })().catch((e: unknown) => e)
  t.ok(isCacheError(readErr, 'CC_ERR_CLIENT_ABORTED'), `the body ends with CC_ERR_CLIENT_ABORTED (${String(readErr)})`)

  const closing = newUpstream(createNodeMetrics(), { retry: { attempts: 50, baseMs: 30_000, capMs: 30_000 } })
  proxy.reset()
  proxy.fail('GetBlobProperties', 50, 503, 'ServerBusy')
  const pending = closing.head({ container: 'aborts', blob: 'x' })
  proxy.onRequest = () => { void closing.close() }
  await t.rejects(pending, { code: 'CC_ERR_CLIENT_ABORTED' })
  await t.rejects(closing.head({ container: 'aborts', blob: 'x' }), { code: 'CC_ERR_CLIENT_ABORTED' }, 'closed for new work')
})

t.test('a read error of the cached source fails the upload at once, not as an upstream failure', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics)
  await up.ensureContainer('bad-source')
  const size = 64 * 1024
  const broken: UploadSource = {
    size,
    open: () => new Readable({
      read () {
        this.push(Buffer.alloc(1024))
        this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }))
      }
    })
  }
  const err = await up.upload({ ref: { container: 'bad-source', blob: 'x' }, source: broken, content: { contentMd5: md5(Buffer.alloc(size)) }, metadata: {}, version: 'b1' }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_INTERNAL'), `internal (${String(err)})`)
  t.match((err as Error).message, /reading the cached object/)
  t.equal(metrics.upstreamRetries.sum(), 0, 'not retried')
  const err2 = await up.upload({ ref: { container: 'bad-source', blob: 'y' }, source: broken, content: {}, metadata: {}, version: 'b2' }).catch((e: unknown) => e)
  t.ok(isCacheError(err2, 'CC_ERR_INTERNAL'), 'also while hashing')
  t.equal(await up.head({ container: 'bad-source', blob: 'x' }), undefined, 'nothing committed')
})

t.test('the rate cap paces the requests sent', async (t) => {
  const metrics = createNodeMetrics()
  const up = newUpstream(metrics, { maxRps: 20 })
  const started = performance.now()
  // 20 tokens of burst, then 20 per second: 30 requests take at least ~0.5 s.
  await Promise.all(Array.from({ length: 30 }, async (_, i) => await up.head({ container: 'rate', blob: `b${i}` })))
  const elapsed = performance.now() - started
  t.ok(elapsed >= 450, `30 requests at 20/s with a burst of 20 took ${elapsed.toFixed(0)} ms`)
  t.equal(metrics.upstreamRequests.get({ operation: 'GetBlobProperties', class: 'metadata' }), 30)
})

t.test('credentials: a SAS connection string, an account URL with a SAS; a bad connection string names no secret', async (t) => {
  const sas = generateAccountSASQueryParameters({
    expiresOn: new Date(Date.now() + 3_600_000),
    permissions: AccountSASPermissions.parse('rwdlac'),
    resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
    services: AccountSASServices.parse('b').toString()
  }, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY)).toString()
  const endpoint = `http://127.0.0.1:${proxy.port}/${AZURITE_ACCOUNT}`
  for (const [what, creds] of [
    ['SAS connection string', { connectionString: `BlobEndpoint=${endpoint};SharedAccessSignature=${sas}` }],
    ['account URL with a SAS', { accountUrl: `${endpoint}?${sas}` }]
  ] as const) {
    const metrics = createNodeMetrics()
    const up = newUpstream(metrics, Object.assign({ connectionString: undefined }, creds))
    const data = randomBytes(1000)
    const blob = `via-${what.replace(/\W+/g, '-')}`
    const res = await up.upload({ ref: { container: 'sas', blob }, source: await fileSource(data), content: {}, metadata: {}, version: blob })
    t.equal(res.md5, md5(data), `${what}: uploaded`)
    t.ok((await sdk.getContainerClient('sas').getBlobClient(blob).downloadToBuffer()).equals(data), `${what}: bytes equal`)
    t.equal((await up.head({ container: 'sas', blob }))?.size, 1000)
  }
  const bad = createAzureUpstream({ connectionString: `AccountName=x;AccountKey=${AZURITE_ACCOUNT_KEY}`, blockSize: MiB, blockConcurrency: 1, maxRps: 0, metrics: createNodeMetrics() })
  const err = await bad.head({ container: 'c', blob: 'b' }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_INVALID_INPUT'), `refused (${String(err)})`)
  t.notMatch(JSON.stringify({ message: (err as Error).message, cause: String((err as Error).cause) }), AZURITE_ACCOUNT_KEY.slice(0, 12), 'the key is not in the error')
  await bad.close()
})

t.test('metadata names: mapped to identifiers, deterministically', async (t) => {
  t.same(toAzureMetadata({ 'model-step': '1', 'a.b': '2', '9lives': '3', ok_name: '4' }), { model_step: '1', a_b: '2', _9lives: '3', ok_name: '4' })
  t.same(toAzureMetadata({ 'a-b': 'mapped', a_b: 'valid' }), { a_b: 'valid' }, 'a valid name wins over a mapped one')
  t.same(toAzureMetadata({ 'x.y': 'dot', 'x-y': 'dash' }), { x_y: 'dash' }, 'else the first in code-unit order')
})
