import t from 'tap'
import type { Test } from 'tap'
import { createHmac } from 'node:crypto'
import {
  AccountSASPermissions,
  BlobSASPermissions,
  BlobServiceClient,
  ContainerSASPermissions,
  SASProtocol,
  generateAccountSASQueryParameters,
  newPipeline,
} from '@azure/storage-blob'
import type { BlobSASSignatureValues, RequestPolicy, WebResource } from '@azure/storage-blob'
import { authenticate, authorizeSas } from '../../../src/frontends/blob/auth/index.js'
import { compareHeaderNamesAzure } from '../../../src/frontends/blob/auth/shared-key.js'
import { ACCOUNT, KEY_BASE64, WRONG_KEY_BASE64, startAuthServer } from './fixtures/auth-server.js'
import type { AuthServer } from './fixtures/auth-server.js'
import {
  HOUR, KEY, OPTIONS, WRONG_KEY, blobSas, failure, keyService, lastGrant, lastOutcome, python, raw, sasBlob, sasContainer, sasService, seed, thrownCode,
} from './fixtures/auth-clients.js'

/** Blob names that stress the canonicalized path: encoding, unicode, reserved and sub-delims. */
const NAMES = [
  'plain.bin',
  'dir/sub dir/a b.txt',
  'ünïcödé/日本語 €.bin',
  'literal%2Fslash%25.bin',
  "a+b=c&d;e,f@g$h!i*j'k(l)m~n.txt",
  '  two  spaces ',
  '#hash?q[1]{2}^`|\\.bin',
]

async function server (t: Test, clockOffsetMs?: number): Promise<AuthServer> {
  const srv = await startAuthServer({ clockOffsetMs })
  t.teardown(srv.close)
  return srv
}

t.test('the header order matches the one the Blob service documents', async t => {
  // The service's order from Azure/azure-sdk-for-python#33951 (the string-to-sign Azure expected).
  const service = ['x-ms-blob-type', 'x-ms-client-request-id', 'x-ms-date', 'x-ms-meta-test', 'x-ms-meta-test-',
    'x-ms-meta-test--', 'x-ms-meta-test_-', 'x-ms-meta-test-_', 'x-ms-meta-test__', 'x-ms-meta-test_a', 'x-ms-meta-test_a-',
    'x-ms-meta-test-_a', 'x-ms-meta-test_a_', 'x-ms-meta-test_a-_', 'x-ms-meta-test_z', 'x-ms-meta-test-a', 'x-ms-version']
  t.same([...service].reverse().sort(compareHeaderNamesAzure), service)
  t.same([...service].sort().sort(compareHeaderNamesAzure), service)
})

t.test('SharedKey: the JS SDK round-trips awkward blob names', async t => {
  const srv = await server(t)
  const container = keyService(srv).getContainerClient('names')
  await container.create()
  for (const name of NAMES) {
    const blob = container.getBlockBlobClient(name)
    await blob.upload(`data of ${name}`, Buffer.byteLength(`data of ${name}`))
    t.equal((await blob.downloadToBuffer()).toString(), `data of ${name}`, name)
  }
  const listed: string[] = []
  for await (const item of container.listBlobsFlat()) listed.push(item.name)
  t.same(listed.sort(), [...NAMES].sort())
  t.ok(srv.requests.length > NAMES.length * 2)
  t.same(srv.requests.filter(r => r.outcome?.kind !== 'sharedkey'), [], 'every request verified as SharedKey')
})

t.test('SharedKey: query values, Content-Type and Content-MD5 are signed', async t => {
  const srv = await server(t)
  await seed(srv, 'blocks', {})
  const blob = keyService(srv).getContainerClient('blocks').getBlockBlobClient('b')
  const blockId = Buffer.from([0xfb, 0xff, 0xfe]).toString('base64') // '+//+': '+', '/' in a query value
  await blob.stageBlock(blockId, 'abc', 3, { transactionalContentMD5: Buffer.alloc(16, 1) })
  t.match(srv.requests.at(-1)?.url, /blockid=%2B%2F%2F%2B/)
  t.equal(srv.requests.at(-1)?.headers['content-md5'], Buffer.alloc(16, 1).toString('base64'))
  await blob.commitBlockList([blockId])
  t.match(srv.requests.at(-1)?.headers['content-type'], /xml/)
  t.equal(lastOutcome(srv)?.kind, 'sharedkey')
})

t.test('SharedKey: metadata with an empty value and names the orderings disagree on', async t => {
  const srv = await server(t)
  await seed(srv, 'meta', { m: 'x' })
  const blob = keyService(srv).getContainerClient('meta').getBlobClient('m')
  const metadata = { empty: '', test_a: '1', 'test-a': '2', test0: '3', test_z: '4', 'test-_a': '5' }
  await blob.setMetadata(metadata)
  t.equal(srv.requests.at(-1)?.headers['x-ms-meta-empty'], '', 'empty header went on the wire')
  t.equal(lastOutcome(srv)?.kind, 'sharedkey')
  const { empty, ...nonEmpty } = metadata
  t.equal(empty, '')
  t.same((await blob.getProperties()).metadata, nonEmpty, 'the SDK drops empty values it reads back')
})

t.test('SharedKey: conditional and ranged requests', async t => {
  const srv = await server(t)
  await seed(srv, 'cond', { c: '0123456789' })
  const blob = keyService(srv).getContainerClient('cond').getBlobClient('c')
  const { etag } = await blob.getProperties()
  const conditions = { ifMatch: etag, ifNoneMatch: '"other"', ifModifiedSince: new Date(0), ifUnmodifiedSince: new Date(Date.now() + HOUR) }
  t.equal((await blob.downloadToBuffer(0, undefined, { conditions })).toString(), '0123456789')
  for (const h of ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) t.ok(srv.requests.at(-1)?.headers[h], h)
  t.same(await failure(blob.download(0, undefined, { conditions: { ifMatch: '"stale"' } })), { status: 412, code: 'ConditionNotMet' },
    'authenticated, then the condition fails')
  t.equal((await blob.downloadToBuffer(3, 4)).toString(), '3456')
  t.equal(srv.requests.at(-1)?.headers['x-ms-range'], 'bytes=3-6')
  // The standard Range header has its own slot in the string-to-sign.
  const pipeline = newPipeline(KEY, OPTIONS)
  pipeline.factories.unshift({
    create: (next: RequestPolicy) => ({
      sendRequest: async (req: WebResource) => { req.headers.set('range', 'bytes=1-2'); return await next.sendRequest(req) },
    }),
  })
  const res = await new BlobServiceClient(srv.endpoint, pipeline).getContainerClient('cond').getBlobClient('c').download()
  t.equal(srv.requests.at(-1)?.headers.range, 'bytes=1-2')
  t.equal(res._response.status, 206)
  t.equal(lastOutcome(srv)?.kind, 'sharedkey')
})

t.test('SharedKey: a wrong key is refused on every operation and changes nothing', async t => {
  const srv = await server(t)
  await seed(srv, 'wk', { a: 'original' })
  const bad = keyService(srv, WRONG_KEY).getContainerClient('wk')
  const denied = { status: 403, code: 'AuthenticationFailed' }
  t.same(await failure(bad.getBlockBlobClient('a').upload('evil', 4)), denied)
  t.same(await failure(bad.getBlockBlobClient('b').upload('evil', 4)), denied)
  t.same(await failure(bad.getBlobClient('a').download()), denied)
  t.same(await failure(bad.getBlobClient('a').getProperties()), denied)
  t.same(await failure(bad.getBlobClient('a').setMetadata({ x: 'y' })), denied)
  t.same(await failure(bad.listBlobsFlat().next()), denied)
  t.same(await failure(keyService(srv, WRONG_KEY).listContainers().next()), denied)
  t.equal(srv.requests.at(-1)?.error?.message.includes(WRONG_KEY_BASE64), false)
  const good = keyService(srv).getContainerClient('wk')
  t.equal((await good.getBlobClient('a').downloadToBuffer()).toString(), 'original')
  t.same(await failure(good.getBlobClient('b').getProperties()), { status: 404, code: 'BlobNotFound' })
})

t.test('SharedKey: x-ms-date must be within 15 minutes of the server clock', async t => {
  const late = await server(t, 16 * 60_000)
  t.same(await failure(keyService(late).getContainerClient('d').create()), { status: 403, code: 'AuthenticationFailed' })
  t.match(late.requests.at(-1)?.error?.detail, /too old/)
  const skewed = await server(t, 14 * 60_000)
  await keyService(skewed).getContainerClient('d').create()
  t.equal(lastOutcome(skewed)?.kind, 'sharedkey')
})

t.test('SharedKey: malformed or foreign Authorization headers, and no credentials at all', async t => {
  const srv = await server(t)
  const date = new Date().toUTCString()
  const path = `/${ACCOUNT}/c/b`
  const sign = (key: string, stringToSign: string): string => createHmac('sha256', Buffer.from(key, 'base64')).update(stringToSign).digest('base64')
  const lite = `GET\n\n\n\nx-ms-date:${date}\nx-ms-version:2021-12-02\n/${ACCOUNT}${path}`
  t.same(await raw(srv, path, { 'x-ms-date': date, 'x-ms-version': '2021-12-02', authorization: `SharedKeyLite ${ACCOUNT}:${sign(KEY_BASE64, lite)}` }),
    { status: 404, code: 'BlobNotFound' }, 'SharedKeyLite with the right key gets past authentication')
  t.equal(lastOutcome(srv)?.kind, 'sharedkey')
  // Repeated parameters: lowercase names, values decoded, sorted and comma-joined (no SDK sends these).
  const query = '?restype=container&comp=list&Tag=b%20two&tag=a+one'
  const full = `GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:2021-12-02\n/${ACCOUNT}/${ACCOUNT}/c` +
    '\ncomp:list\nrestype:container\ntag:a one,b two'
  t.same(await raw(srv, `/${ACCOUNT}/c${query}`, { 'x-ms-date': date, 'x-ms-version': '2021-12-02', authorization: `SharedKey ${ACCOUNT}:${sign(KEY_BASE64, full)}` }),
    { status: 200, code: undefined })
  t.equal(lastOutcome(srv)?.kind, 'sharedkey')
  for (const authorization of [
    `SharedKeyLite ${ACCOUNT}:${sign(WRONG_KEY_BASE64, lite)}`,
    `SharedKey ${ACCOUNT}:${sign(KEY_BASE64, lite)}`,
    `SharedKeyLite otheraccount:${sign(KEY_BASE64, lite)}`,
    `SharedKey ${ACCOUNT}`,
    'Bearer eyJ0eXAiOiJKV1QifQ',
    '',
  ]) {
    t.same(await raw(srv, path, { 'x-ms-date': date, 'x-ms-version': '2021-12-02', authorization }), { status: 403, code: 'AuthenticationFailed' }, authorization)
  }
  // Signed with this account's key, but addressed to another account in the path.
  const elsewhere = new BlobServiceClient(srv.endpoint.replace(ACCOUNT, 'otheraccount'), KEY, OPTIONS)
  t.same(await failure(elsewhere.getContainerClient('c').create()), { status: 403, code: 'AuthenticationFailed' })
  t.same(await raw(srv, `/otheraccount/c/b?sv=2021-12-02&sr=c&sp=r&se=2999-01-01&sig=x`, {}), { status: 403, code: 'AuthenticationFailed' })
  t.same(await raw(srv, path, {}), { status: 401, code: 'NoAuthenticationInformation' })
  t.same(lastOutcome(srv), { kind: 'anonymous' })
})

t.test('service SAS: a read-only blob SAS reads, and nothing else', async t => {
  const srv = await server(t)
  const name = "dir/ü €'(1)+%2F.bin"
  await seed(srv, 'svc', { [name]: 'secret bytes', other: 'x' })
  const sas = blobSas({ containerName: 'svc', blobName: name, permissions: BlobSASPermissions.parse('r') })
  const blob = sasBlob(srv, 'svc', name, sas)
  t.equal((await blob.downloadToBuffer()).toString(), 'secret bytes')
  const grant = lastGrant(srv)
  t.match(grant, { kind: 'service', resource: 'b', container: 'svc', blob: name })
  t.same([...grant.permissions], ['r'])
  t.same(await failure(blob.getBlockBlobClient().upload('overwrite', 9)), { status: 403, code: 'AuthorizationPermissionMismatch' })
  t.same(await failure(blob.setMetadata({ a: 'b' })), { status: 403, code: 'AuthorizationPermissionMismatch' })
  t.same(await failure(blob.delete()), { status: 403, code: 'AuthorizationPermissionMismatch' })
  t.same(await failure(sasBlob(srv, 'svc', 'other', sas).download()), { status: 403, code: 'AuthenticationFailed' })
  t.same(await failure(sasContainer(srv, 'svc', sas).listBlobsFlat().next()), { status: 403, code: 'AuthenticationFailed' })
  t.equal((await keyService(srv).getContainerClient('svc').getBlobClient(name).downloadToBuffer()).toString(), 'secret bytes')
  // A direct check of the grant: the operation's target must be the signed blob.
  t.equal(thrownCode(() => authorizeSas(grant, { permission: 'r', resourceType: 'object', container: 'svc', blob: 'other' })), 'AuthorizationFailure')
  t.equal(thrownCode(() => authorizeSas(grant, { permission: 'r', resourceType: 'container', container: 'svc' })), 'AuthorizationResourceTypeMismatch')
  t.equal(thrownCode(() => authorizeSas(grant, { permission: 'r', resourceType: 'object', container: 'svc', blob: name })), 'none')
})

t.test('service SAS: every signed version the SDKs emit', async t => {
  const srv = await server(t)
  await seed(srv, 'ver', { 'a b': 'v' })
  for (const version of ['2015-04-05', '2018-11-09', '2019-12-12', '2020-12-06', '2021-12-02', undefined]) {
    const sas = blobSas({ containerName: 'ver', blobName: 'a b', permissions: BlobSASPermissions.parse('r'), version })
    t.equal((await sasBlob(srv, 'ver', 'a b', sas).downloadToBuffer()).toString(), 'v', version ?? 'default')
    t.equal(lastGrant(srv).version, version ?? '2026-04-06')
    const tampered = sas.replace('sp=r', 'sp=rw')
    t.not(tampered, sas)
    t.same(await failure(sasBlob(srv, 'ver', 'a b', tampered).download()), { status: 403, code: 'AuthenticationFailed' })
  }
})

t.test('service SAS: container scope, snapshots and response-header overrides', async t => {
  const srv = await server(t)
  await seed(srv, 'cs', { 'ü 1': 'one', 'two/2': 'two' })
  await seed(srv, 'elsewhere', { 'ü 1': 'no' })
  const sas = blobSas({ containerName: 'cs', permissions: ContainerSASPermissions.parse('rl') })
  const listed: string[] = []
  for await (const item of sasContainer(srv, 'cs', sas).listBlobsFlat()) listed.push(item.name)
  t.same(listed.sort(), ['two/2', 'ü 1'])
  t.match(lastGrant(srv), { kind: 'service', resource: 'c', container: 'cs', blob: undefined })
  t.equal((await sasBlob(srv, 'cs', 'ü 1', sas).downloadToBuffer()).toString(), 'one')
  t.same(await failure(sasBlob(srv, 'cs', 'new', sas).getBlockBlobClient().upload('x', 1)), { status: 403, code: 'AuthorizationPermissionMismatch' })
  t.same(await failure(sasBlob(srv, 'elsewhere', 'ü 1', sas).download()), { status: 403, code: 'AuthenticationFailed' })

  const snapshot = '2024-01-02T03:04:05.0000000Z'
  const snapSas = blobSas({ containerName: 'cs', blobName: 'ü 1', snapshotTime: snapshot, permissions: BlobSASPermissions.parse('r') })
  t.match(snapSas, /sr=bs/)
  t.equal((await sasBlob(srv, 'cs', 'ü 1', snapSas).withSnapshot(snapshot).downloadToBuffer()).toString(), 'one')
  t.match(lastGrant(srv), { resource: 'bs', snapshot })
  t.same(await failure(sasBlob(srv, 'cs', 'ü 1', snapSas).download()), { status: 403, code: 'AuthenticationFailed' }, 'not the base blob')

  const overrides = { cacheControl: 'no-store', contentDisposition: 'attachment; filename="one 1.txt"', contentLanguage: 'de', contentType: 'text/x-test' }
  const withHeaders = blobSas({ containerName: 'cs', blobName: 'ü 1', permissions: BlobSASPermissions.parse('r'), ...overrides })
  const res = await sasBlob(srv, 'cs', 'ü 1', withHeaders).download()
  t.match(res, overrides)
  t.same(lastGrant(srv).responseHeaders, { 'cache-control': 'no-store', 'content-disposition': overrides.contentDisposition, 'content-language': 'de', 'content-type': 'text/x-test' })
  // Overrides reach the caller decoded (node could not send this one next to a Content-Length).
  const unicode = blobSas({ containerName: 'cs', blobName: 'ü 1', permissions: BlobSASPermissions.parse('r'), contentDisposition: 'inline; filename="ü €"' })
  const outcome = authenticate({ method: 'GET', url: `/${ACCOUNT}/cs/%C3%BC%201?${unicode}`, headers: {}, remoteAddress: '127.0.0.1', secure: false }, srv.account, new Date())
  t.match(outcome, { kind: 'sas', grant: { responseHeaders: { 'content-disposition': 'inline; filename="ü €"' } } })
  const injected = blobSas({ containerName: 'cs', blobName: 'ü 1', permissions: BlobSASPermissions.parse('r'), contentType: 'text/plain\r\nx-evil: 1' })
  t.same(await failure(sasBlob(srv, 'cs', 'ü 1', injected).download()), { status: 403, code: 'AuthenticationFailed' }, 'no header injection')
})

t.test('SAS: time window, source IP, protocol, stored policies and a wrong key', async t => {
  const srv = await server(t)
  await seed(srv, 'cond', { b: 'ok' })
  const read = { containerName: 'cond', blobName: 'b', permissions: BlobSASPermissions.parse('r') }
  const attempt = async (values: Partial<BlobSASSignatureValues>, credential = KEY): Promise<unknown> =>
    await failure(sasBlob(srv, 'cond', 'b', blobSas({ ...read, ...values }, credential)).download())
  t.same(await attempt({ expiresOn: new Date(Date.now() - 60_000) }), { status: 403, code: 'AuthenticationFailed' }, 'expired')
  t.match(srv.requests.at(-1)?.error?.detail, /time frame/)
  t.same(await attempt({ startsOn: new Date(Date.now() + 10 * 60_000) }), { status: 403, code: 'AuthenticationFailed' }, 'not yet valid')
  t.same(await attempt({ startsOn: new Date(Date.now() - 60_000) }), { code: 'resolved' })
  t.same(await attempt({ ipRange: { start: '10.0.0.1' } }), { status: 403, code: 'AuthorizationSourceIPMismatch' })
  t.same(await attempt({ ipRange: { start: '127.0.0.2', end: '127.0.0.255' } }), { status: 403, code: 'AuthorizationSourceIPMismatch' })
  t.same(await attempt({ ipRange: { start: '127.0.0.0', end: '127.0.0.255' } }), { code: 'resolved' })
  t.same(await attempt({ ipRange: { start: '127.0.0.1' } }), { code: 'resolved' })
  t.same(await attempt({ protocol: SASProtocol.Https }), { status: 403, code: 'AuthorizationProtocolMismatch' })
  t.same(await attempt({ protocol: SASProtocol.HttpsAndHttp }), { code: 'resolved' })
  t.same(await attempt({ identifier: 'policy-1', permissions: undefined }), { status: 403, code: 'AuthenticationFailed' }, 'si')
  t.match(srv.requests.at(-1)?.error?.detail, /Stored access policies/)
  const wrong = blobSas(read, WRONG_KEY)
  t.same(await failure(sasBlob(srv, 'cond', 'b', wrong).download()), { status: 403, code: 'AuthenticationFailed' }, 'wrong key')
  const sig = decodeURIComponent(/sig=([^&]+)/.exec(wrong)?.[1] ?? 'missing')
  const { error } = srv.requests.at(-1) ?? {}
  t.ok(error)
  t.notMatch(`${error?.message} ${error?.detail}`, sig, 'the signature is not echoed')

  // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
  const pinned = blobSas({ ...read, ipRange: { start: '127.0.0.1' } })
  const from = (remoteAddress: string): string => thrownCode(() => authenticate({ method: 'GET', url: `/${ACCOUNT}/cond/b?${pinned}`, headers: {}, remoteAddress, secure: false }, srv.account, new Date()))
  t.equal(from('::ffff:127.0.0.1'), 'none')
  t.equal(from('::1'), 'AuthorizationSourceIPMismatch')
  t.equal(from('127.0.0.2'), 'AuthorizationSourceIPMismatch')

  // The same https-only SAS is accepted when the request did arrive over https.
  const httpsOnly = blobSas({ ...read, protocol: SASProtocol.Https })
  const outcome = authenticate({ method: 'GET', url: `/${ACCOUNT}/cond/b?${httpsOnly}`, headers: {}, remoteAddress: '::ffff:127.0.0.1', secure: true }, srv.account, new Date())
  t.match(outcome, { kind: 'sas', grant: { kind: 'service', resource: 'b' } })
  t.equal(thrownCode(() => authenticate({ method: 'GET', url: `/${ACCOUNT}/cond/b?${httpsOnly}`, headers: {}, remoteAddress: '127.0.0.1', secure: false },
    srv.account, new Date())), 'AuthorizationProtocolMismatch')
})

t.test('account SAS: services, resource types and permissions', async t => {
  const srv = await server(t)
  await seed(srv, 'acct', { o: 'object' })
  const accountSas = (values: { permissions?: string, services?: string, resourceTypes?: string, version?: string, expiresOn?: Date }, credential = KEY): string =>
    generateAccountSASQueryParameters({
      expiresOn: values.expiresOn ?? new Date(Date.now() + HOUR),
      permissions: AccountSASPermissions.parse(values.permissions ?? 'rl'),
      services: values.services ?? 'b',
      resourceTypes: values.resourceTypes ?? 'sco',
      version: values.version,
    }, credential).toString()
  for (const version of ['2019-12-12', undefined]) {
    const sas = accountSas({ version })
    t.same((await sasService(srv, sas).listContainers().next()).value?.name, 'acct')
    t.match(lastGrant(srv), { kind: 'account', version: version ?? '2026-04-06' })
    t.same((await sasContainer(srv, 'acct', sas).listBlobsFlat().next()).value?.name, 'o')
    t.equal((await sasBlob(srv, 'acct', 'o', sas).downloadToBuffer()).toString(), 'object')
    t.same(await failure(sasBlob(srv, 'acct', 'o', sas).getBlockBlobClient().upload('x', 1)), { status: 403, code: 'AuthorizationPermissionMismatch' })
    t.same(await failure(sasContainer(srv, 'acct', sas).delete()), { status: 403, code: 'AuthorizationPermissionMismatch' })
  }
  const objectsOnly = accountSas({ resourceTypes: 'o' })
  t.same(await failure(sasContainer(srv, 'acct', objectsOnly).listBlobsFlat().next()), { status: 403, code: 'AuthorizationResourceTypeMismatch' })
  t.same(await failure(sasService(srv, objectsOnly).listContainers().next()), { status: 403, code: 'AuthorizationResourceTypeMismatch' })
  t.equal((await sasBlob(srv, 'acct', 'o', objectsOnly).downloadToBuffer()).toString(), 'object')
  t.same(await failure(sasBlob(srv, 'acct', 'o', accountSas({ services: 'qt' })).download()), { status: 403, code: 'AuthorizationServiceMismatch' })
  t.equal((await sasBlob(srv, 'acct', 'o', accountSas({ services: 'bq' })).downloadToBuffer()).toString(), 'object')
  const writer = accountSas({ permissions: 'rwc' })
  await sasBlob(srv, 'acct', 'new blob', writer).getBlockBlobClient().upload('written', 7)
  t.equal((await sasBlob(srv, 'acct', 'new blob', writer).downloadToBuffer()).toString(), 'written')
  t.same(await failure(sasBlob(srv, 'acct', 'o', accountSas({ expiresOn: new Date(Date.now() - 1000) })).download()), { status: 403, code: 'AuthenticationFailed' })
  t.same(await failure(sasBlob(srv, 'acct', 'o', accountSas({}, WRONG_KEY)).download()), { status: 403, code: 'AuthenticationFailed' })
  t.same(await failure(sasBlob(srv, 'acct', 'o', accountSas({}).replace('srt=sco', 'srt=sc')).download()), { status: 403, code: 'AuthenticationFailed' })
})

t.test('Python SDK: SharedKey with awkward names, empty metadata, ranges and conditions', async t => {
  const srv = await server(t)
  const names = NAMES.filter(n => !n.includes('\\'))
  // Python 12.15 sorts 'test-a' before 'test_z'; the service (and the JS SDK) after it.
  const metadata = { empty: '', test_a: '1', test0: '3', test_z: '4', 'test-a': '5', mixed: '6' }
  const results = await python(srv, [
    { op: 'create_container', container: 'py' },
    ...names.map(blob => ({ op: 'upload', container: 'py', blob, data: `py ${blob}`, metadata })),
    ...names.map(blob => ({ op: 'download', container: 'py', blob })),
    { op: 'download', container: 'py', blob: names[1], offset: 3, length: 4 },
    { op: 'properties', container: 'py', blob: names[2] },
    { op: 'set_metadata', container: 'py', blob: names[2], metadata: { only: '' } },
    { op: 'list_blobs', container: 'py' },
    { op: 'download', container: 'py', blob: 'plain.bin', etag: '"stale"' },
    { op: 'download', container: 'py', blob: 'plain.bin', cred: 'wrongkey' },
    { op: 'upload', container: 'py', blob: 'plain.bin', data: 'evil', cred: 'wrongkey' },
    { op: 'list_containers', cred: 'wrongkey' },
  ])
  const n = names.length
  t.same(results.slice(0, 1 + n).map(r => r.ok), Array(1 + n).fill(true), JSON.stringify(results.slice(0, 1 + n)))
  t.same(results.slice(1 + n, 1 + 2 * n).map(r => r.data), names.map(b => `py ${b}`))
  t.equal(results[1 + 2 * n]?.data, `py ${names[1]}`.slice(3, 7))
  t.same(results[2 + 2 * n]?.metadata, metadata)
  t.equal(results[3 + 2 * n]?.ok, true)
  t.same((results[4 + 2 * n]?.names as string[]).sort(), [...names].sort())
  t.match(results[5 + 2 * n], { ok: false, status: 412, code: 'ConditionNotMet' })
  for (const r of results.slice(6 + 2 * n)) t.match(r, { ok: false, status: 403, code: 'AuthenticationFailed' })
  t.ok(srv.requests.some(r => r.headers['x-ms-meta-empty'] === ''), 'Python sent the empty metadata header')
  t.same(srv.requests.filter(r => r.error === undefined && r.outcome?.kind !== 'sharedkey'), [])
})

t.test('Python SDK: generate_blob_sas and generate_account_sas', async t => {
  const srv = await server(t)
  await seed(srv, 'pysas', { 'ü b': 'python sas', other: 'x' })
  const blob = { container: 'pysas', blob: 'ü b' }
  const results = await python(srv, [
    { op: 'download', ...blob, cred: { blob_sas: 'r', content_disposition: 'inline; filename="u b"' } },
    { op: 'upload', ...blob, data: 'no', cred: { blob_sas: 'r' } },
    { op: 'download', ...blob, cred: { blob_sas: 'r', wrong_key: true } },
    { op: 'download', ...blob, cred: { blob_sas: 'r', expiry_minutes: -1 } },
    { op: 'download', ...blob, cred: { blob_sas: 'r', start_minutes: 10 } },
    { op: 'download', ...blob, cred: { blob_sas: 'r', ip: '192.168.1.1' } },
    { op: 'upload', container: 'pysas', blob: 'written', data: 'by sas', cred: { blob_sas: 'cw' } },
    { op: 'list_containers', cred: { account_sas: 'rl' } },
    { op: 'list_blobs', container: 'pysas', cred: { account_sas: 'rl' } },
    { op: 'download', ...blob, cred: { account_sas: 'rl' } },
    { op: 'upload', ...blob, data: 'no', cred: { account_sas: 'rl' } },
    { op: 'list_blobs', container: 'pysas', cred: { account_sas: 'rl', srt: 'o' } },
    { op: 'download', ...blob, cred: { account_sas: 'rl', wrong_key: true } },
    { op: 'download', ...blob, cred: { account_sas: 'rl', ip: '127.0.0.1' } },
  ])
  t.match(results[0], { ok: true, data: 'python sas', content_disposition: 'inline; filename="u b"' })
  t.match(results[1], { ok: false, status: 403, code: 'AuthorizationPermissionMismatch' })
  t.match(results[2], { ok: false, status: 403, code: 'AuthenticationFailed' })
  t.match(results[3], { ok: false, status: 403, code: 'AuthenticationFailed' })
  t.match(results[4], { ok: false, status: 403, code: 'AuthenticationFailed' })
  t.match(results[5], { ok: false, status: 403, code: 'AuthorizationSourceIPMismatch' })
  t.match(results[6], { ok: true })
  t.match(results[7], { ok: true, names: ['pysas'] })
  t.same((results[8]?.names as string[]).sort(), ['other', 'written', 'ü b'])
  t.match(results[9], { ok: true, data: 'python sas' })
  t.match(results[10], { ok: false, status: 403, code: 'AuthorizationPermissionMismatch' })
  t.match(results[11], { ok: false, status: 403, code: 'AuthorizationResourceTypeMismatch' })
  t.match(results[12], { ok: false, status: 403, code: 'AuthenticationFailed' })
  t.match(results[13], { ok: true, data: 'python sas' })
  const versions = new Set(srv.requests.flatMap(r => r.outcome?.kind === 'sas' ? [r.outcome.grant.version] : []))
  t.same([...versions], ['2021-12-02'], 'Debian\'s azure-storage-blob 12.15 signs sv=2021-12-02')
  t.equal((await keyService(srv).getContainerClient('pysas').getBlobClient('ü b').downloadToBuffer()).toString(), 'python sas')
})
