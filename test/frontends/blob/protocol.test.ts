/**
 * Azure Blob wire details a client sees: status codes, error codes, headers
 * and XML, through the real SDK and raw HTTP (for what the SDK hides).
 */
import t from 'tap'
import { request } from 'node:http'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { startGateway, type GatewayHandle } from '../../helpers/gateway.js'

let gw: GatewayHandle
let svc: BlobServiceClient

t.before(async () => {
  gw = await startGateway()
  svc = BlobServiceClient.fromConnectionString(gw.connectionString)
})
t.teardown(async () => { await gw.stop() })

interface RawResponse { status: number, headers: Record<string, string | string[] | undefined>, rawHeaders: string[], body: string }

/** A SharedKey-signed request made by the SDK's own credential policy is awkward for raw tests; raw tests use a SAS. */
async function sasFor (container: string): Promise<string> {
  const { generateAccountSASQueryParameters, AccountSASPermissions, AccountSASResourceTypes, AccountSASServices } = await import('@azure/storage-blob')
  void container
  return generateAccountSASQueryParameters({
    expiresOn: new Date(Date.now() + 3600_000),
    permissions: AccountSASPermissions.parse('rwdlac'),
    resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
    services: AccountSASServices.parse('b').toString()
  }, new StorageSharedKeyCredential(gw.account, gw.accountKey)).toString()
}

function raw (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

t.test('errors carry the Azure status, x-ms-error-code and XML body; HEAD errors only the header', async (t) => {
  const c = svc.getContainerClient('proto-errors')
  await c.create()
  const sas = await sasFor('proto-errors')
  const get = await raw('GET', `/${gw.account}/proto-errors/missing?${sas}`)
  t.equal(get.status, 404)
  t.equal(get.headers['x-ms-error-code'], 'BlobNotFound')
  t.match(get.body, /^<\?xml version="1\.0" encoding="utf-8"\?><Error><Code>BlobNotFound<\/Code><Message>The specified blob does not exist\.\nRequestId:[0-9a-f-]{36}\nTime:/)
  t.ok(get.headers['x-ms-request-id'])
  t.ok(get.headers['x-ms-version'])
  t.ok(get.headers.date)
  const head = await raw('HEAD', `/${gw.account}/proto-errors/missing?${sas}`)
  t.equal(head.status, 404)
  t.equal(head.headers['x-ms-error-code'], 'BlobNotFound')
  t.equal(head.body, '')
  const noContainer = await raw('GET', `/${gw.account}/nope-container/x?${sas}`)
  t.equal(noContainer.status, 404)
  t.equal(noContainer.headers['x-ms-error-code'], 'ContainerNotFound')
  const anon = await raw('GET', `/${gw.account}/proto-errors/missing`)
  t.equal(anon.status, 401)
  t.equal(anon.headers['x-ms-error-code'], 'NoAuthenticationInformation')
  const version = await raw('GET', `/${gw.account}?comp=list&${sas}`, { 'x-ms-version': '2099-01-01' })
  t.equal(version.status, 200, 'any x-ms-version is accepted')
  t.equal(version.headers['x-ms-version'], '2099-01-01')
})

t.test('ranges: clamped 206, 416 with Content-Range on an empty blob and past the end', async (t) => {
  const c = svc.getContainerClient('proto-ranges')
  await c.create()
  await c.getBlockBlobClient('small').uploadData(Buffer.from('0123456789'))
  await c.getBlockBlobClient('empty').uploadData(Buffer.alloc(0))
  const sas = await sasFor('proto-ranges')
  // Python's first GET of any blob asks for the first 32 MiB.
  const first = await raw('GET', `/${gw.account}/proto-ranges/small?${sas}`, { 'x-ms-range': 'bytes=0-33554431' })
  t.equal(first.status, 206)
  t.equal(first.headers['content-range'], 'bytes 0-9/10')
  t.equal(first.headers['content-length'], '10')
  t.equal(first.body, '0123456789')
  t.ok(first.headers.etag)
  t.ok(first.headers['x-ms-blob-content-md5'], 'whole-blob MD5 on a range read')
  t.notOk(first.headers['content-md5'], 'no range MD5 unless asked')
  const mid = await raw('GET', `/${gw.account}/proto-ranges/small?${sas}`, { range: 'bytes=3-5' })
  t.equal(mid.status, 206)
  t.equal(mid.body, '345')
  const empty = await raw('GET', `/${gw.account}/proto-ranges/empty?${sas}`, { 'x-ms-range': 'bytes=0-33554431' })
  t.equal(empty.status, 416)
  t.equal(empty.headers['x-ms-error-code'], 'InvalidRange')
  t.equal(empty.headers['content-range'], 'bytes */0')
  const past = await raw('GET', `/${gw.account}/proto-ranges/small?${sas}`, { 'x-ms-range': 'bytes=10-20' })
  t.equal(past.status, 416)
  t.equal(past.headers['content-range'], 'bytes */10')
  const md5 = await raw('GET', `/${gw.account}/proto-ranges/small?${sas}`, { 'x-ms-range': 'bytes=0-3', 'x-ms-range-get-content-md5': 'true' })
  t.equal(md5.status, 206)
  t.equal(md5.headers['content-md5'], (await import('node:crypto')).createHash('md5').update('0123').digest('base64'))
  const full = await raw('GET', `/${gw.account}/proto-ranges/empty?${sas}`)
  t.equal(full.status, 200)
  t.equal(full.headers['content-length'], '0')
})

t.test('conditional requests map to 412 ConditionNotMet, 304 and 409 BlobAlreadyExists', async (t) => {
  const c = svc.getContainerClient('proto-cond')
  await c.create()
  const b = c.getBlockBlobClient('x')
  const up = await b.uploadData(Buffer.from('v1'))
  await t.rejects(b.uploadData(Buffer.from('v2'), { conditions: { ifNoneMatch: '*' } }), { statusCode: 409, code: 'BlobAlreadyExists' })
  await t.rejects(b.uploadData(Buffer.from('v2'), { conditions: { ifMatch: '"0x0"' } }), { statusCode: 412, code: 'ConditionNotMet' })
  await t.rejects(b.download(0, undefined, { conditions: { ifMatch: '"0x0"' } }), { name: 'RestError', statusCode: 412 })
  await t.rejects(b.download(0, undefined, { conditions: { ifNoneMatch: up.etag } }), { name: 'RestError', statusCode: 304 })
  const later = new Date(Date.now() + 3600_000)
  await t.rejects(b.download(0, undefined, { conditions: { ifModifiedSince: later } }), { name: 'RestError', statusCode: 304 })
  const earlier = new Date(Date.now() - 3600_000)
  await t.rejects(b.setMetadata({ a: 'b' }, { conditions: { ifUnmodifiedSince: earlier } }), { statusCode: 412, code: 'ConditionNotMet' })
  const ok = await b.uploadData(Buffer.from('v2'), { conditions: { ifMatch: up.etag } })
  t.not(ok.etag, up.etag)
  t.equal((await b.downloadToBuffer()).toString(), 'v2')
  await t.rejects(c.getBlockBlobClient('absent').uploadData(Buffer.from('x'), { conditions: { ifMatch: up.etag } }), { name: 'RestError', statusCode: 412 })
  await t.rejects(b.delete({ conditions: { ifMatch: up.etag } }), { name: 'RestError', statusCode: 412 })
  t.ok(await b.exists())
})

t.test('metadata keeps the case the client sent, on the wire and in listings', async (t) => {
  const c = svc.getContainerClient('proto-meta')
  await c.create()
  await c.getBlockBlobClient('m').uploadData(Buffer.from('x'), { metadata: { CamelCase: 'One', lower: 'two' } })
  const sas = await sasFor('proto-meta')
  const head = await raw('HEAD', `/${gw.account}/proto-meta/m?${sas}`)
  t.ok(head.rawHeaders.includes('x-ms-meta-CamelCase'), 'header name case preserved')
  const list = await raw('GET', `/${gw.account}/proto-meta?restype=container&comp=list&include=metadata&${sas}`)
  t.match(list.body, '<Metadata><CamelCase>One</CamelCase><lower>two</lower></Metadata>')
  const bad = await raw('PUT', `/${gw.account}/proto-meta/bad?${sas}`, { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-1bad': 'v', 'content-length': '1' }, 'x')
  t.equal(bad.status, 400)
  t.equal(bad.headers['x-ms-error-code'], 'InvalidMetadata')
})

t.test('bad input gets Azure errors and leaves nothing behind', async (t) => {
  const c = svc.getContainerClient('proto-bad')
  await c.create()
  const sas = await sasFor('proto-bad')
  const base = `/${gw.account}/proto-bad`
  const badXml = await raw('PUT', `${base}/b?comp=blocklist&${sas}`, { 'content-length': '11' }, '<BlockList>')
  t.equal(badXml.status, 400)
  t.equal(badXml.headers['x-ms-error-code'], 'InvalidXmlDocument')
  const badId = await raw('PUT', `${base}/b?comp=block&blockid=not*base64&${sas}`, { 'content-length': '1' }, 'x')
  t.equal(badId.status, 400)
  t.equal(badId.headers['x-ms-error-code'], 'InvalidBlockId')
  const longId = Buffer.alloc(65, 1).toString('base64')
  const tooLong = await raw('PUT', `${base}/b?comp=block&blockid=${encodeURIComponent(longId)}&${sas}`, { 'content-length': '1' }, 'x')
  t.equal(tooLong.headers['x-ms-error-code'], 'InvalidBlockId')
  const missing = await raw('PUT', `${base}/b?comp=blocklist&${sas}`, {}, '<?xml version="1.0"?><BlockList><Latest>QUFBQQ==</Latest></BlockList>')
  t.equal(missing.status, 400)
  t.equal(missing.headers['x-ms-error-code'], 'InvalidBlockList')
  const noType = await raw('PUT', `${base}/b?${sas}`, { 'content-length': '1' }, 'x')
  t.equal(noType.status, 400)
  t.equal(noType.headers['x-ms-error-code'], 'MissingRequiredHeader')
  const md5 = await raw('PUT', `${base}/b?${sas}`, { 'x-ms-blob-type': 'BlockBlob', 'content-md5': Buffer.alloc(16).toString('base64'), 'content-length': '3' }, 'abc')
  t.equal(md5.status, 400)
  t.equal(md5.headers['x-ms-error-code'], 'Md5Mismatch')
  const crc = await raw('PUT', `${base}/b?${sas}`, { 'x-ms-blob-type': 'BlockBlob', 'x-ms-content-crc64': Buffer.alloc(8).toString('base64'), 'content-length': '3' }, 'abc')
  t.equal(crc.status, 400)
  t.equal(crc.headers['x-ms-error-code'], 'Crc64Mismatch')
  const longName = 'n'.repeat(1025)
  const tooLongName = await raw('PUT', `${base}/${longName}?${sas}`, { 'x-ms-blob-type': 'BlockBlob', 'content-length': '1' }, 'x')
  t.equal(tooLongName.status, 400)
  t.equal(tooLongName.headers['x-ms-error-code'], 'InvalidResourceName')
  const badContainer = await raw('PUT', `/${gw.account}/Bad_Name?restype=container&${sas}`)
  t.equal(badContainer.headers['x-ms-error-code'], 'InvalidResourceName')
  const badUri = await raw('GET', `${base}/%E0%A4%A?${sas}`)
  t.equal(badUri.status, 400)
  const names: string[] = []
  for await (const b of c.listBlobsFlat()) names.push(b.name)
  t.same(names, [], 'no blob was created by any bad request')
  const blocks = await c.getBlockBlobClient('b').getBlockList('all').catch((e: { statusCode: number }) => e.statusCode)
  t.equal(blocks, 404, 'no block was staged')
})

t.test('names are bytes, never paths', async (t) => {
  const c = svc.getContainerClient('proto-names')
  await c.create()
  // The SDK's URL handling normalizes dot segments, so those names go over raw HTTP below.
  const names = ['%2Fenc', 'sp ace/ünï©ødé/日本', 'x'.repeat(1024), 'q?a=b#frag', 'tab\tname']
  for (const name of names) {
    await c.getBlockBlobClient(name).uploadData(Buffer.from(name))
    t.equal((await c.getBlockBlobClient(name).downloadToBuffer()).toString(), name, `round trip ${name.slice(0, 40)}`)
  }
  const sas = await sasFor('proto-names')
  for (const path of ['../../escape', '..%2F..%2F..%2Fescape2', '%2E%2E/%2E%2E/escape3', 'a/../../b', 'dot/./seg']) {
    const put = await raw('PUT', `/${gw.account}/proto-names/${path}?${sas}`, { 'x-ms-blob-type': 'BlockBlob', 'content-length': '3' }, 'abc')
    t.equal(put.status, 201, `raw PUT ${path}`)
    const get = await raw('GET', `/${gw.account}/proto-names/${path}?${sas}`)
    t.equal(get.body, 'abc')
  }
  const listed: string[] = []
  for await (const b of c.listBlobsFlat()) listed.push(b.name)
  t.same(listed.sort(), [...names, '../../escape', '../../../escape2', '../../escape3', 'a/../../b', 'dot/./seg'].sort())
  const { readdir } = await import('node:fs/promises')
  const top = (await readdir(gw.dataDir)).sort()
  t.same(top, ['FORMAT', 'containers', 'objects', 'tmp'], 'nothing written outside the store layout')
})

t.test('a client that aborts an upload leaves no object, no block and no temp file', async (t) => {
  const c = svc.getContainerClient('proto-abort')
  await c.create()
  const sas = await sasFor('proto-abort')
  const { readdir } = await import('node:fs/promises')
  const { join } = await import('node:path')
  for (const path of [`/${gw.account}/proto-abort/put?${sas}`, `/${gw.account}/proto-abort/blk?comp=block&blockid=QUFBQQ%3D%3D&${sas}`]) {
    const req = request({ host: '127.0.0.1', port: gw.port, method: 'PUT', path, headers: { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(64 * 1024 * 1024) } })
    req.on('error', () => {})
    req.write(Buffer.alloc(8 * 1024 * 1024))
    // Wait until the gateway is writing the body to a temp file, then go away.
    const deadline = Date.now() + 10_000
    while ((await readdir(join(gw.dataDir, 'tmp'))).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    t.ok((await readdir(join(gw.dataDir, 'tmp'))).length > 0, 'the upload was being written when the client left')
    req.destroy()
    while ((await readdir(join(gw.dataDir, 'tmp'))).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    t.same(await readdir(join(gw.dataDir, 'tmp')), [], `temp file removed after abort (${path.split('?')[0] as string})`)
  }
  t.equal(await c.getBlockBlobClient('put').exists(), false)
  const blocks = await c.getBlockBlobClient('blk').getBlockList('all').then(() => 200, (e: { statusCode: number }) => e.statusCode)
  t.equal(blocks, 404)
})

t.test('a large Put Blob gets its Content-MD5 after the acknowledgement, same etag', async (t) => {
  const c = svc.getContainerClient('proto-md5')
  await c.create()
  const { createHash, randomBytes } = await import('node:crypto')
  const small = randomBytes(64 * 1024)
  const upSmall = await c.getBlockBlobClient('small').upload(small, small.length)
  t.equal(Buffer.from(upSmall.contentMD5 ?? []).toString('base64'), createHash('md5').update(small).digest('base64'), 'small body: MD5 in the Put Blob response')
  const data = randomBytes(24 * 1024 * 1024)
  const b = c.getBlockBlobClient('large')
  const up = await b.upload(data, data.length)
  t.equal(up.contentMD5, undefined, 'large body: no MD5 in the response (not computed yet)')
  const deadline = Date.now() + 30_000
  let props = await b.getProperties()
  while (props.contentMD5 === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    props = await b.getProperties()
  }
  t.equal(Buffer.from(props.contentMD5 ?? []).toString('base64'), createHash('md5').update(data).digest('base64'), 'Content-MD5 is the MD5 of the bytes')
  t.equal(props.etag, up.etag, 'the etag did not change')
  t.equal(props.lastModified?.getTime(), up.lastModified?.getTime(), 'nor the last-modified time')
})

t.test('a read that fails after the headers went out ends the connection, never a short 200', async (t) => {
  const c = svc.getContainerClient('proto-short')
  await c.create()
  const b = c.getBlockBlobClient('blocks')
  const ids = ['YWFh', 'YmJi', 'Y2Nj']
  for (const [i, id] of ids.entries()) await b.stageBlock(id, Buffer.alloc(2 * 1024 * 1024, i), 2 * 1024 * 1024)
  await b.commitBlockList(ids)
  // Remove the last block's file behind the gateway's back.
  const { readdir, rm } = await import('node:fs/promises')
  const { join } = await import('node:path')
  const { objectHash, StorePaths } = await import('../../../src/store/paths.js')
  const dir = new StorePaths(gw.dataDir).objectDir(objectHash('proto-short', 'blocks'))
  const last = (await readdir(dir)).filter((f) => f.startsWith('b-') && f.endsWith(Buffer.from('Y2Nj').toString('hex'))).sort().pop()
  t.ok(last, 'found the extent file of the last block')
  await rm(join(dir, last as string))
  const sas = await sasFor('proto-short')
  const outcome = await new Promise<{ status: number, received: number, declared: number, error: boolean }>((resolve) => {
    request({ host: '127.0.0.1', port: gw.port, method: 'GET', path: `/${gw.account}/proto-short/blocks?${sas}` }, (res) => {
      let received = 0
      let error = false
      res.on('data', (d: Buffer) => { received += d.length })
      res.on('error', () => { error = true })
      res.on('close', () => resolve({ status: res.statusCode ?? 0, received, declared: Number(res.headers['content-length']), error: error || !res.complete }))
    }).on('error', () => resolve({ status: 0, received: 0, declared: 0, error: true })).end()
  })
  t.equal(outcome.status, 200, 'the headers had gone out')
  t.equal(outcome.declared, 6 * 1024 * 1024)
  t.ok(outcome.received < outcome.declared, `body cut short (${outcome.received} bytes)`)
  t.ok(outcome.error, 'the client sees an incomplete response, not a finished one')
})
