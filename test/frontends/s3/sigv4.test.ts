import t from 'tap'
import type { Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { SignatureV4 } from '@smithy/signature-v4'
import { S3AuthError, verifySigV4, type SecretLookup, type SigV4Auth, type SigV4Input } from '../../../src/frontends/s3/auth/sigv4.js'
import { parseQuery, percentDecode, splitTarget } from '../../../src/frontends/s3/auth/canonical.js'
import { AwsChunkedError, awsChunkedMode, createAwsChunkedDecoder } from '../../../src/frontends/s3/aws-chunked.js'
import { createS3Hasher, parseChecksumHeaders, s3Checksum } from '../../../src/core/checksum/s3-checksums.js'
import { NodeSha256 } from '../../helpers/sigv4.js'

// ---- AWS's published examples ("Authenticating Requests: Using the Authorization Header / Query Parameters")
const AKID = 'AKIAIOSFODNN7EXAMPLE'
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
const DOC_NOW = new Date('2013-05-24T00:00:00Z')
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
const CRED = `Credential=${AKID}/20130524/us-east-1/s3/aws4_request`
const docLookup: SecretLookup = (id) => id === AKID ? { secretAccessKey: SECRET } : undefined
const host = 'examplebucket.s3.amazonaws.com'

function docGet (sep = ','): SigV4Input {
  return { method: 'GET', url: '/test.txt', now: DOC_NOW, headers: { host, range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY, 'x-amz-date': '20130524T000000Z', authorization: `AWS4-HMAC-SHA256 ${CRED}${sep}SignedHeaders=host;range;x-amz-content-sha256;x-amz-date${sep}Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41` } }
}
const docPut = (): SigV4Input => ({ method: 'PUT', url: '/test$file.text', now: DOC_NOW, headers: { host, date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY', 'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072', 'x-amz-date': '20130524T000000Z', authorization: `AWS4-HMAC-SHA256 ${CRED},SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd` } })
const docBucket = (url: string, sig: string): SigV4Input => ({ method: 'GET', url, now: DOC_NOW, headers: { host, 'x-amz-content-sha256': EMPTY, 'x-amz-date': '20130524T000000Z', authorization: `AWS4-HMAC-SHA256 ${CRED},SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=${sig}` } })
const PRESIGNED = '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404'
const docPresigned = (now = DOC_NOW, url = PRESIGNED): SigV4Input => ({ method: 'GET', url, now, headers: { host } })

function fails (t: Test, fn: () => unknown, code: string, status: number, message?: RegExp): S3AuthError | undefined {
  try {
    fn()
    t.fail(`expected ${code}`)
  } catch (err) {
    if (!(err instanceof S3AuthError)) throw err
    t.equal(err.s3Code, code)
    t.equal(err.status, status)
    if (message !== undefined) t.match(err.message, message)
    return err
  }
}

t.test('AWS examples: GET object, PUT object, GET ?lifecycle, list, presigned GET', async t => {
  const get = verifySigV4(docGet(), docLookup)!
  t.match(get, { accessKeyId: AKID, service: 's3', region: 'us-east-1', date: '20130524', amzDate: '20130524T000000Z', scope: '20130524/us-east-1/s3/aws4_request', presigned: false, payload: { kind: 'sha256', hex: EMPTY } })
  t.equal(get.signature, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41')
  t.ok(verifySigV4(docGet(', '), docLookup), 'spaces after the commas (the SDKs) or not (s3cmd)')
  // The PUT is sent as `/test$file.text` and signed as `/test%24file.text`: S3 re-encodes the path.
  t.equal(verifySigV4(docPut(), docLookup)!.payload.kind, 'sha256')
  t.ok(verifySigV4(docBucket('/?lifecycle', 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543'), docLookup))
  t.ok(verifySigV4(docBucket('/?max-keys=2&prefix=J', '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'), docLookup))
  t.ok(verifySigV4(docBucket('/?prefix=J&max-keys=2', '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'), docLookup), 'parameter order does not matter')
  t.match(verifySigV4(docPresigned(), docLookup), { presigned: true, payload: { kind: 'unsigned' }, signature: 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404' })
  t.equal(verifySigV4({ method: 'GET', url: '/b/k?x=1', now: DOC_NOW, headers: { host } }, docLookup), undefined, 'anonymous')
})

t.test('AWS examples, altered: each failure has S3 code and status', async t => {
  const wrong: SecretLookup = (id) => id === AKID ? { secretAccessKey: 'not the secret' } : undefined
  const bad = fails(t, () => verifySigV4(docGet(), wrong), 'SignatureDoesNotMatch', 403)
  t.match(bad?.detail, { AWSAccessKeyId: AKID, StringToSign: /^AWS4-HMAC-SHA256\n20130524T000000Z\n20130524\/us-east-1\/s3\/aws4_request\n[0-9a-f]{64}$/ })
  t.notMatch(JSON.stringify(bad?.detail), /f0e8bdb8|not the secret/, 'no signature or secret in the error')
  fails(t, () => verifySigV4(docGet(), () => undefined), 'InvalidAccessKeyId', 403)
  for (const change of [
    (r: SigV4Input) => { r.url = '/test.txT' },
    (r: SigV4Input) => { r.url = '/test.txt?x' },
    (r: SigV4Input) => { r.method = 'DELETE' },
    (r: SigV4Input) => { r.headers.range = 'bytes=0-10' },
    (r: SigV4Input) => { r.headers.host = 'otherbucket.s3.amazonaws.com' },
  ]) {
    const req = docGet()
    change(req)
    fails(t, () => verifySigV4(req, docLookup), 'SignatureDoesNotMatch', 403)
  }
  // Clock: 15 minutes either way is fine, one second more is not.
  t.ok(verifySigV4({ ...docGet(), now: new Date(DOC_NOW.getTime() + 15 * 60_000) }, docLookup))
  t.ok(verifySigV4({ ...docGet(), now: new Date(DOC_NOW.getTime() - 15 * 60_000) }, docLookup))
  const skew = fails(t, () => verifySigV4({ ...docGet(), now: new Date(DOC_NOW.getTime() + 15 * 60_000 + 1000) }, docLookup), 'RequestTimeTooSkewed', 403)
  t.match(skew?.detail, { RequestTime: '20130524T000000Z', ServerTime: '2013-05-24T00:15:01Z', MaxAllowedSkewMilliseconds: '900000' })
  fails(t, () => verifySigV4({ ...docGet(), now: new Date(DOC_NOW.getTime() - 16 * 60_000) }, docLookup), 'RequestTimeTooSkewed', 403)
  // Presigned: valid for X-Amz-Expires seconds, at most a week.
  t.ok(verifySigV4(docPresigned(new Date(DOC_NOW.getTime() + 86400_000)), docLookup))
  const expired = fails(t, () => verifySigV4(docPresigned(new Date(DOC_NOW.getTime() + 86401_000)), docLookup), 'AccessDenied', 403, /^Request has expired$/)
  t.match(expired?.detail, { 'X-Amz-Expires': '86400', Expires: '2013-05-25T00:00:00Z' })
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED.replace('Expires=86400', 'Expires=604801')), docLookup), 'AuthorizationQueryParametersError', 400, /less than a week/)
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED.replace('Expires=86400', 'Expires=soon')), docLookup), 'AuthorizationQueryParametersError', 400, /number/)
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED.replace(/&X-Amz-Date=[^&]*/, '')), docLookup), 'AuthorizationQueryParametersError', 400, /requires the X-Amz-Algorithm/)
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED.replace('%2Fs3%2F', '%2Fs4%2F')), docLookup), 'AuthorizationQueryParametersError', 400, /incorrect service "s4"/)
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED.replace('ture=aeee', 'ture=beee')), docLookup), 'SignatureDoesNotMatch', 403)
  fails(t, () => verifySigV4(docPresigned(DOC_NOW, PRESIGNED + '&extra=1'), docLookup), 'SignatureDoesNotMatch', 403)
  fails(t, () => verifySigV4({ ...docPresigned(), headers: { host, authorization: docGet().headers.authorization } }, docLookup), 'InvalidArgument', 400, /Only one auth mechanism/)
  // Header form
  const withHeader = (name: string, value: string | undefined): SigV4Input => { const r = docGet(); if (value === undefined) delete r.headers[name]; else r.headers[name] = value; return r }
  fails(t, () => verifySigV4(withHeader('x-amz-content-sha256', undefined), docLookup), 'InvalidRequest', 400, /x-amz-content-sha256/)
  fails(t, () => verifySigV4(withHeader('x-amz-content-sha256', 'nonsense'), docLookup), 'InvalidArgument', 400)
  fails(t, () => verifySigV4(withHeader('x-amz-date', undefined), docLookup), 'AccessDenied', 403, /valid Date or x-amz-date/)
  fails(t, () => verifySigV4(withHeader('x-amz-date', '20130525T000000Z'), docLookup), 'AuthorizationHeaderMalformed', 400, /Invalid credential date/)
  const unsigned = fails(t, () => verifySigV4(withHeader('x-amz-meta-late', 'added after signing'), docLookup), 'AccessDenied', 403, /not signed/)
  t.same(unsigned?.detail, { HeadersNotSigned: 'x-amz-meta-late' })
  t.ok(verifySigV4(withHeader('user-agent', 'curl'), docLookup), 'other unsigned headers are fine')
  fails(t, () => verifySigV4(withHeader('authorization', docGet().headers.authorization!.replace('/s3/', '/ec2/')), docLookup), 'AuthorizationHeaderMalformed', 400, /incorrect service "ec2"/)
  fails(t, () => verifySigV4(withHeader('authorization', docGet().headers.authorization!.replace(/,Signature=\w+/, '')), docLookup), 'AuthorizationHeaderMalformed', 400)
  fails(t, () => verifySigV4(withHeader('authorization', docGet().headers.authorization!.replace('SignedHeaders=host;', 'SignedHeaders=')), docLookup), 'AuthorizationHeaderMalformed', 400, /host/)
  fails(t, () => verifySigV4(withHeader('authorization', 'AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl'), docLookup), 'InvalidRequest', 400, /Please use AWS4-HMAC-SHA256/)
  fails(t, () => verifySigV4(withHeader('authorization', 'Bearer token'), docLookup), 'InvalidArgument', 400, /Unsupported Authorization Type/)
  fails(t, () => verifySigV4({ ...docPresigned(DOC_NOW, '/k?AWSAccessKeyId=AK&Expires=1&Signature=x') }, docLookup), 'InvalidRequest', 400)
  // The lookup may refuse a session token itself.
  fails(t, () => verifySigV4(docGet(), () => { throw new S3AuthError('ExpiredToken') }), 'ExpiredToken', 400)
})

// ---- AWS's own signer (@smithy/signature-v4, what client-s3 uses) for cases no example covers
const NOW = new Date()
interface Wire { method: string, path: string, query?: Record<string, string>, rawQuery?: string, headers?: Record<string, string> }
async function smithy (wire: Wire, opts: { service?: string, secret?: string, token?: string, presign?: number, payload?: string } = {}): Promise<SigV4Input> {
  const signer = new SignatureV4({ service: opts.service ?? 's3', region: 'eu-west-1', uriEscapePath: false, sha256: NodeSha256, credentials: { accessKeyId: 'AKID', secretAccessKey: opts.secret ?? 'secret', ...(opts.token !== undefined && opts.service !== 's3express' ? { sessionToken: opts.token } : {}) } })
  // Like S3RequestPresigner, a presign without a payload hash signs (and hoists) UNSIGNED-PAYLOAD.
  const payload = opts.payload ?? (opts.presign !== undefined ? 'UNSIGNED-PAYLOAD' : undefined)
  const headers: Record<string, string> = { host: 'localhost:9000', ...(payload === undefined ? {} : { 'x-amz-content-sha256': payload }), ...wire.headers }
  if (opts.service === 's3express' && opts.token !== undefined) headers['x-amz-s3session-token'] = opts.token
  const request = { method: wire.method, protocol: 'http:', hostname: 'localhost', port: 9000, path: wire.path, query: wire.query ?? {}, headers }
  const signed = opts.presign !== undefined
    ? await signer.presign(request, { expiresIn: opts.presign, signingDate: NOW })
    : await signer.sign(request, { signingDate: NOW })
  const query = wire.rawQuery ?? Object.entries(signed.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')
  return { method: wire.method, url: wire.path + (query === '' ? '' : `?${query}`), headers: signed.headers, now: NOW }
}
const lookup: SecretLookup = (id, ctx) => id === 'AKID' && (ctx.sessionToken === undefined || ctx.sessionToken === 'tok') ? { secretAccessKey: 'secret' } : undefined

t.test('path and query encodings: S3 re-encodes, and the bytes as sent also verify', async t => {
  const payload = 'UNSIGNED-PAYLOAD'
  // What the SDKs send: canonical form on the wire.
  t.ok(verifySigV4(await smithy({ method: 'GET', path: '/b/a%20b%2Bc%21%27%28%29%2A~/%E2%82%AC//x/../y/./z' }, { payload }), lookup))
  // A client that signs the S3 form but sends `$`, `!`, `=` raw (the AWS PUT example does).
  const s3Form = await smithy({ method: 'GET', path: '/b/a%24b%21c%3Dd' }, { payload })
  t.ok(verifySigV4({ ...s3Form, url: '/b/a$b!c=d' }, lookup))
  // A client that signs exactly the bytes it sends, even in a non-canonical spelling.
  t.ok(verifySigV4(await smithy({ method: 'GET', path: '/b/lower%2fhex%7e' }, { payload }), lookup))
  // …but a different key is a different request.
  fails(t, () => verifySigV4({ ...s3Form, url: '/b/a$b!c=e' }, lookup), 'SignatureDoesNotMatch', 403)
  // Query: the SDK sends `%20`; a `+` sent for a space verifies whichever way it was signed.
  t.ok(verifySigV4(await smithy({ method: 'GET', path: '/b', query: { prefix: 'a b+c', 'list-type': '2', 'encoding-type': 'url', delimiter: '/' } }, { payload }), lookup))
  const spaced = await smithy({ method: 'GET', path: '/b', query: { prefix: 'a b' } }, { payload })
  t.ok(verifySigV4({ ...spaced, url: '/b?prefix=a+b' }, lookup))
  const plus = await smithy({ method: 'GET', path: '/b', query: { prefix: 'a+b' } }, { payload })
  t.ok(verifySigV4({ ...plus, url: '/b?prefix=a+b' }, lookup))
  // Subresources without a value sign as `key=`.
  t.ok(verifySigV4(await smithy({ method: 'GET', path: '/b', query: { uploads: '' }, rawQuery: 'uploads' }, { payload }), lookup))
})

t.test('headers: repeated values, whitespace, and tokens', async t => {
  const badToken = await smithy({ method: 'GET', path: '/b/k' }, { payload: EMPTY, token: 'other' })
  const req = await smithy({ method: 'PUT', path: '/b/k', headers: { 'x-amz-meta-a': '  two   spaces\there  ', 'x-amz-meta-list': 'x,y' } }, { payload: EMPTY })
  t.ok(verifySigV4(req, lookup))
  // The same header sent twice is canonicalized from rawHeaders as `x,y`.
  const rawHeaders = Object.entries(req.headers).flatMap(([k, v]) => k === 'x-amz-meta-list' ? [k, 'x', k, 'y'] : [k, String(v)])
  t.ok(verifySigV4({ ...req, rawHeaders }, lookup))
  // STS session token (header, signed) and S3 Express session token.
  t.match(verifySigV4(await smithy({ method: 'GET', path: '/b/k' }, { payload: EMPTY, token: 'tok' }), lookup), { sessionToken: 'tok', service: 's3' })
  fails(t, () => verifySigV4(badToken, lookup), 'InvalidAccessKeyId', 403)
  const express = await smithy({ method: 'GET', path: '/b--use1-az4--x-s3/k' }, { service: 's3express', payload: EMPTY, token: 'tok' })
  t.ok(express.headers['x-amz-s3session-token'])
  t.match(verifySigV4(express, lookup), { service: 's3express', sessionToken: 'tok' })
  const tokens: Array<string | undefined> = []
  verifySigV4(express, (id, ctx) => { tokens.push(ctx.sessionToken, ctx.service); return lookup(id, ctx) })
  t.same(tokens, ['tok', 's3express'])
  // Presigned with a session token, and presigned with a signed payload hash.
  t.match(verifySigV4(await smithy({ method: 'GET', path: '/b/k' }, { presign: 60, token: 'tok' }), lookup), { presigned: true, sessionToken: 'tok', payload: { kind: 'unsigned' } })
  const presignedPut = await smithy({ method: 'PUT', path: '/b/k' }, { presign: 60, payload: EMPTY })
  t.match(verifySigV4(presignedPut, lookup), { payload: { kind: 'sha256' } })
  for (const [value, kind] of [['STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'streaming-unsigned-trailer'], ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'streaming-signed'], ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'streaming-signed-trailer'], ['UNSIGNED-PAYLOAD', 'unsigned']] as const) {
    t.equal(verifySigV4(await smithy({ method: 'PUT', path: '/b/k' }, { payload: value }), lookup)!.payload.kind, kind)
  }
})

// ---- A tiny S3 over node:http that authenticates every request with verifySigV4
interface Logged { method: string, url: string, payload: string, status: number, code?: string, chunked: boolean, checksum?: string }
interface TestS3 { endpoint: string, log: Logged[], objects: Map<string, Buffer> }
class HttpError extends Error {
  constructor (readonly status: number, readonly s3Code: string) { super(s3Code) }
}
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const errorXml = (code: string, message: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${esc(message)}</Message></Error>`

async function startS3 (t: Test): Promise<TestS3> {
  const log: Logged[] = []
  const objects = new Map<string, Buffer>()
  const keys: SecretLookup = (id) => id === 'AKID' ? { secretAccessKey: 'secret' } : undefined
  const server = createServer((req, res) => {
    const entry: Logged = { method: req.method!, url: req.url!, payload: String(req.headers['x-amz-content-sha256']), status: 0, chunked: false }
    log.push(entry)
    handle(req, res, entry).catch((err: unknown) => {
      const e = err instanceof S3AuthError || err instanceof AwsChunkedError || err instanceof HttpError ? err : undefined
      entry.status = e?.status ?? 500
      entry.code = e?.s3Code ?? 'InternalError'
      if (!res.headersSent) res.writeHead(entry.status, { 'content-type': 'application/xml' }).end(errorXml(entry.code, e?.message ?? String(err)))
      else res.destroy()
    })
  })
  async function handle (req: IncomingMessage, res: ServerResponse, entry: Logged): Promise<void> {
    const auth = verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, now: new Date() }, keys)
    if (auth === undefined) throw new S3AuthError('AccessDenied')
    const { rawPath, rawQuery } = splitTarget(req.url!)
    const slash = rawPath.indexOf('/', 1)
    const bucket = percentDecode(slash === -1 ? rawPath.slice(1) : rawPath.slice(1, slash))
    const key = slash === -1 ? '' : percentDecode(rawPath.slice(slash + 1))
    const query = new Map(parseQuery(rawQuery, true).map(({ name, value }) => [name, value]))
    if (req.method === 'PUT' && key !== '') {
      const body = await readBody(req, auth, entry)
      objects.set(`${bucket}/${key}`, body)
      entry.status = 200
      res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` }).end()
    } else if ((req.method === 'GET' || req.method === 'HEAD') && key !== '') {
      const body = objects.get(`${bucket}/${key}`)
      if (body === undefined) throw new HttpError(404, 'NoSuchKey')
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
      const [start, end] = range === null ? [0, body.length - 1] : [Number(range[1]), range[2] === '' ? body.length - 1 : Math.min(Number(range[2]), body.length - 1)]
      const headers: Record<string, string> = { 'content-length': String(end - start + 1), etag: `"${createHash('md5').update(body).digest('hex')}"`, 'last-modified': new Date().toUTCString() }
      if (range !== null) headers['content-range'] = `bytes ${start}-${end}/${body.length}`
      // The SDK validates a full GET against this: a cross-check of our CRC64NVME value format.
      else if (req.headers['x-amz-checksum-mode'] === 'ENABLED') headers['x-amz-checksum-crc64nvme'] = s3Checksum('crc64nvme', body)
      entry.status = range === null ? 200 : 206
      res.writeHead(entry.status, headers).end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1))
    } else if (req.method === 'GET' && query.get('list-type') === '2') {
      const prefix = query.get('prefix') ?? ''
      const delimiter = query.get('delimiter') ?? ''
      const enc = (s: string): string => query.get('encoding-type') === 'url' ? encodeURIComponent(s) : esc(s)
      const contents: string[] = []
      const prefixes = new Set<string>()
      for (const [name, body] of objects) {
        if (!name.startsWith(`${bucket}/${prefix}`)) continue
        const k = name.slice(bucket.length + 1)
        const cut = delimiter === '' ? -1 : k.indexOf(delimiter, prefix.length)
        if (cut !== -1) prefixes.add(k.slice(0, cut + delimiter.length))
        else contents.push(`<Contents><Key>${enc(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>${body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`)
      }
      entry.status = 200
      res.writeHead(200, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${esc(bucket)}</Name><Prefix>${enc(prefix)}</Prefix><Delimiter>${enc(delimiter)}</Delimiter><MaxKeys>1000</MaxKeys>${query.has('encoding-type') ? '<EncodingType>url</EncodingType>' : ''}<KeyCount>${contents.length + prefixes.size}</KeyCount><IsTruncated>false</IsTruncated>${contents.join('')}${[...prefixes].map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`).join('')}</ListBucketResult>`)
    } else {
      entry.status = 501
      res.writeHead(501).end()
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, log, objects }
}

/** The payload of a PUT: aws-chunked decoded, x-amz-content-sha256 and x-amz-checksum-* verified. */
async function readBody (req: IncomingMessage, auth: SigV4Auth, entry: Logged): Promise<Buffer> {
  const checksum = parseChecksumHeaders(req.headers)
  const hasher = checksum.algorithm === undefined ? undefined : createS3Hasher(checksum.algorithm)
  const sha = auth.payload.kind === 'sha256' ? createHash('sha256') : undefined
  const mode = awsChunkedMode(auth.payload)
  const decoder = mode === undefined ? undefined : createAwsChunkedDecoder({ mode, auth, decodedLength: req.headers['x-amz-decoded-content-length'] === undefined ? undefined : Number(req.headers['x-amz-decoded-content-length']), trailerNames: checksum.trailer === undefined ? [] : [checksum.trailer.name] })
  entry.chunked = decoder !== undefined
  const parts: Buffer[] = []
  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => { for await (const c of source) { parts.push(c); hasher?.update(c); sha?.update(c) } }
  if (decoder === undefined) await pipeline(req, sink)
  else await pipeline(req, decoder, sink)
  if (sha !== undefined && auth.payload.kind === 'sha256' && sha.digest('hex') !== auth.payload.hex) throw new HttpError(400, 'XAmzContentSHA256Mismatch')
  if (checksum.algorithm !== undefined) {
    const sent = checksum.header?.value ?? decoder?.trailers[checksum.trailer!.name]
    entry.checksum = `${checksum.header === undefined ? 'trailer' : 'header'}:${checksum.algorithm}`
    if (sent !== hasher!.digest().toString('base64')) throw new HttpError(400, 'BadDigest')
  }
  return Buffer.concat(parts)
}

const KEYS = ['plain.bin', 'a b.txt', 'ünïcödé/ключ €.bin', 'a+b=c&d;e,f@g$h.txt', 'dir//double//slash', 'dir/../dot/./segments', "q'(p)*s!~t", '%41 literal percent', 'trailing/']

t.test('@aws-sdk/client-s3 against verifySigV4: puts, gets, lists, presigned URLs', async t => {
  const s3 = await startS3(t)
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } })
  t.teardown(() => client.destroy())
  for (const [i, Key] of KEYS.entries()) {
    const body = Buffer.from(`object ${i}: ${Key}`)
    await client.send(new PutObjectCommand({ Bucket: 'bkt', Key, Body: body }))
    t.same(s3.objects.get(`bkt/${Key}`), body, `PutObject ${Key}`)
    const got = await client.send(new GetObjectCommand({ Bucket: 'bkt', Key }))
    t.same(Buffer.from(await got.Body!.transformToByteArray()), body, `GetObject ${Key}`)
  }
  t.ok(s3.log.every((e) => e.status === 200), 'every request verified')
  t.ok(s3.log.filter((e) => e.method === 'PUT').every((e) => /^[0-9a-f]{64}$/.test(e.payload) && e.checksum === 'header:crc32'), 'Buffer bodies: signed SHA-256 payload and x-amz-checksum-crc32')

  // A stream body: STREAMING-UNSIGNED-PAYLOAD-TRAILER, aws-chunked, CRC32 trailer.
  const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'x')
  const { Readable } = await import('node:stream')
  await client.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'stream/big.bin', Body: Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]), ContentLength: big.length }))
  t.same(s3.objects.get('bkt/stream/big.bin'), big)
  t.match(s3.log.at(-1), { payload: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', chunked: true, checksum: 'trailer:crc32', status: 200 })

  const range = await client.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'stream/big.bin', Range: 'bytes=5-14' }))
  t.equal(await range.Body!.transformToString(), 'xxxxxxxxxx')
  t.equal(range.ContentRange, `bytes 5-14/${big.length}`)

  const listed = await client.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: 'dir/', Delimiter: '/', EncodingType: 'url' }))
  t.same(listed.CommonPrefixes?.map((p) => decodeURIComponent(p.Prefix!)).sort(), ['dir/../', 'dir//'])
  const all = await client.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: 'ü' }))
  t.same(all.Contents?.map((c) => c.Key), ['ünïcödé/ключ €.bin'])

  for (const Key of ['a b.txt', 'a+b=c&d;e,f@g$h.txt', 'dir//double//slash']) {
    const getUrl = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'bkt', Key }), { expiresIn: 300 })
    const response = await fetch(getUrl)
    t.equal(response.status, 200, `presigned GET ${Key}`)
    t.equal(await response.text(), s3.objects.get(`bkt/${Key}`)!.toString())
    const body = `presigned put of ${Key}`
    const putUrl = await getSignedUrl(client, new PutObjectCommand({ Bucket: 'bkt', Key, Body: body }), { expiresIn: 300 })
    t.match(putUrl, /x-amz-checksum-crc32=/i, 'the presigner hoists the checksum into the query')
    t.equal((await fetch(putUrl, { method: 'PUT', body })).status, 200, `presigned PUT ${Key}`)
    t.equal(s3.objects.get(`bkt/${Key}`)!.toString(), body)
  }

  const wrong = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'AKID', secretAccessKey: 'wrong' } })
  const unknown = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'secret' } })
  t.teardown(() => { wrong.destroy(); unknown.destroy() })
  await t.rejects(wrong.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'plain.bin' })), { name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } })
  await t.rejects(wrong.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'x', Body: 'x' })), { name: 'SignatureDoesNotMatch' })
  await t.rejects(unknown.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'plain.bin' })), { name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } })
})

t.test('S3 Express: client-s3 CreateSession, then requests signed for s3express with x-amz-s3session-token', async t => {
  const seen: Array<Pick<SigV4Auth, 'accessKeyId' | 'service' | 'sessionToken'> & { url: string }> = []
  const objects = new Map<string, Buffer>()
  const keys: SecretLookup = (id, ctx) => {
    if (id === 'AKID' && ctx.sessionToken === undefined) return { secretAccessKey: 'secret' }
    if (id === 'SESSIONKEY' && ctx.sessionToken === 'TOKEN1' && ctx.service === 's3express') return { secretAccessKey: 'sessionsecret' }
    return undefined
  }
  const server = createServer((req, res) => {
    (async () => {
      const auth = verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, now: new Date() }, keys)!
      seen.push({ url: req.url!, accessKeyId: auth.accessKeyId, service: auth.service, sessionToken: auth.sessionToken })
      const key = `${req.headers.host}${splitTarget(req.url!).rawPath}`
      if (req.url!.startsWith('/?session')) {
        res.writeHead(200, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?>\n<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Credentials><SessionToken>TOKEN1</SessionToken><SecretAccessKey>sessionsecret</SecretAccessKey><AccessKeyId>SESSIONKEY</AccessKeyId><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></CreateSessionResult>')
      } else if (req.method === 'PUT') {
        objects.set(key, await readBody(req, auth, { method: '', url: '', payload: '', status: 0, chunked: false }))
        res.writeHead(200, { etag: '"e"' }).end()
      } else {
        res.writeHead(200).end(objects.get(key))
      }
    })().catch((err: S3AuthError) => res.writeHead(err.status ?? 500, { 'content-type': 'application/xml' }).end(errorXml(err.s3Code ?? 'InternalError', err.message)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { Agent } = await import('node:http')
  const { NodeHttpHandler } = await import('@smithy/node-http-handler')
  // Directory buckets are virtual-hosted only: resolve `<bucket>.s3.test` to this server.
  const agent = new Agent({ lookup: ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => options.all === true ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as never })
  const client = new S3Client({ region: 'us-east-1', endpoint: `http://s3.test:${(server.address() as { port: number }).port}`, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' }, requestHandler: new NodeHttpHandler({ httpAgent: agent }) })
  t.teardown(() => { client.destroy(); agent.destroy() })
  const Bucket = 'ckpt--use1-az4--x-s3'
  await client.send(new PutObjectCommand({ Bucket, Key: 'step-100/shard 0.pt', Body: 'weights' }))
  const got = await client.send(new GetObjectCommand({ Bucket, Key: 'step-100/shard 0.pt' }))
  t.equal(await got.Body!.transformToString(), 'weights')
  t.match(seen, [
    { url: '/?session=', accessKeyId: 'AKID', service: 's3express', sessionToken: undefined },
    { url: /^\/step-100\/shard%200\.pt\?x-id=PutObject$/, accessKeyId: 'SESSIONKEY', service: 's3express', sessionToken: 'TOKEN1' },
    { url: /x-id=GetObject/, accessKeyId: 'SESSIONKEY', service: 's3express', sessionToken: 'TOKEN1' },
  ])
})

const execFileAsync = promisify(execFile)
const BOTO = `
import boto3, io, json, sys, urllib.request
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='AKID', aws_secret_access_key=sys.argv[2], region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
out = {}
keys = json.loads(sys.argv[3])
for i, k in enumerate(keys):
    s3.put_object(Bucket='bkt', Key=k, Body=('boto %d %s' % (i, k)).encode())
    out[k] = s3.get_object(Bucket='bkt', Key=k)['Body'].read().decode()
s3.put_object(Bucket='bkt', Key='boto/filelike', Body=io.BytesIO(b'y' * 100000))
out['range'] = s3.get_object(Bucket='bkt', Key='boto/filelike', Range='bytes=0-3')['Body'].read().decode()
listed = s3.list_objects_v2(Bucket='bkt', Prefix='dir/', Delimiter='/')
out['list'] = sorted([c['Prefix'] for c in listed.get('CommonPrefixes', [])])
v4 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='AKID', aws_secret_access_key=sys.argv[2], region_name='us-east-1', config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}))
url = v4.generate_presigned_url('get_object', Params={'Bucket': 'bkt', 'Key': keys[1]}, ExpiresIn=60)
out['presigned'] = urllib.request.urlopen(url).read().decode()
# With the default config boto3 presigns with SigV2 (AWSAccessKeyId/Signature/Expires).
try:
    urllib.request.urlopen(s3.generate_presigned_url('get_object', Params={'Bucket': 'bkt', 'Key': keys[1]}, ExpiresIn=60))
    out['presigned_v2'] = 'accepted'
except urllib.error.HTTPError as e:
    out['presigned_v2'] = '%d %s' % (e.code, e.read().decode())
print(json.dumps(out))
`
async function boto (endpoint: string, secret: string): Promise<Record<string, unknown>> {
  const { stdout } = await execFileAsync('python3', ['-c', BOTO, endpoint, secret, JSON.stringify(KEYS)])
  return JSON.parse(stdout) as Record<string, unknown>
}

const hasBoto = await execFileAsync('python3', ['-c', 'import boto3']).then(() => true, () => false)

t.test('boto3 (path-style, default config) against verifySigV4', { skip: hasBoto ? false : 'python3 with boto3 is not installed' }, async t => {
  const s3 = await startS3(t)
  const out = await boto(s3.endpoint, 'secret')
  for (const [i, k] of KEYS.entries()) t.equal(out[k], `boto ${i} ${k}`, k)
  t.equal(out.range, 'yyyy')
  t.same(out.list, ['dir/../', 'dir//'])
  t.equal(out.presigned, `boto 1 ${KEYS[1]}`)
  t.match(out.presigned_v2, /^400 [^]*<Code>InvalidRequest<\/Code>[^]*Please use AWS4-HMAC-SHA256/, 'SigV2 query auth is refused as S3 does')
  t.ok(s3.log.slice(0, -1).every((e) => e.status === 200 || e.status === 206), 'every boto3 request verified')
  t.ok(s3.log.some((e) => /^[0-9a-f]{64}$/.test(e.payload) && e.checksum === 'header:crc32'), 'over http boto3 signs the payload and sends x-amz-checksum-crc32')
  await t.rejects(boto(s3.endpoint, 'wrong'), /SignatureDoesNotMatch/)
})
