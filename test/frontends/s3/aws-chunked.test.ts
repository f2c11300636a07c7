import t from 'tap'
import type { Test } from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { AwsChunkedError, createAwsChunkedDecoder, type AwsChunkedOptions } from '../../../src/frontends/s3/aws-chunked.js'
import { S3AuthError, verifySigV4, type SigV4Auth } from '../../../src/frontends/s3/auth/sigv4.js'
import { deriveSigningKey } from '../../../src/frontends/s3/auth/canonical.js'
import { createS3Hasher, s3Checksum } from '../../../src/core/checksum/s3-checksums.js'

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex')

/** Decodes `body` fed in `slices` (a size, or a function giving each next size); payload and trailers. */
async function decode (body: Buffer, options: AwsChunkedOptions, slices: number | (() => number) = body.length): Promise<{ payload: Buffer, trailers: Record<string, string> }> {
  const decoder = createAwsChunkedDecoder(options)
  const out: Buffer[] = []
  decoder.on('data', (c: Buffer) => out.push(Buffer.from(c)))
  const next = typeof slices === 'number' ? () => slices : slices
  async function * feed (): AsyncGenerator<Buffer> {
    for (let pos = 0; pos < body.length;) {
      const n = Math.max(1, next())
      yield body.subarray(pos, pos + n)
      pos += n
    }
  }
  await pipeline(Readable.from(feed()), decoder)
  return { payload: Buffer.concat(out), trailers: { ...decoder.trailers } }
}

async function rejectsWith (t: Test, promise: Promise<unknown>, s3Code: string, status = 400): Promise<AwsChunkedError | S3AuthError | undefined> {
  try {
    await promise
    t.fail(`expected ${s3Code}`)
  } catch (err) {
    if (!(err instanceof AwsChunkedError) && !(err instanceof S3AuthError)) throw err
    t.equal(err.s3Code, s3Code, err.message)
    t.equal(err.status, status)
    return err
  }
}

// ---- "Transferring Payload in Multiple Chunks" and "Signature calculations for trailing headers": the examples
const A = (n: number): Buffer => Buffer.alloc(n, 'a')
function docRequest (trailer: boolean, contentLength: number): { auth: SigV4Auth } {
  const signed = trailer
    ? 'content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer'
    : 'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class'
  const seed = trailer ? '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e' : '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
  const headers: Record<string, string> = {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': String(contentLength),
    authorization: `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signed},Signature=${seed}`,
  }
  if (trailer) headers['x-amz-trailer'] = 'x-amz-checksum-crc32c'
  const auth = verifySigV4({ method: 'PUT', url: '/examplebucket/chunkObject.txt', headers, now: new Date('2013-05-24T00:00:00Z') }, () => ({ secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }))!
  return { auth }
}
const DOC_SIGS = ['ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648', '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497', 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9']
const DOC_TRAILER_SIGS = ['b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2', '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7', '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992']
function docBody (sigs: string[], trailer = ''): Buffer {
  return Buffer.concat([Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`), A(65536), Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`), A(1024), Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n${trailer}\r\n`)])
}
const DOC_TRAILERS = 'x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n'

/** The signed encoding, written from the docs; checked below against their example byte for byte. */
function encodeSigned (auth: SigV4Auth, chunks: Buffer[], trailers?: Array<[string, string]>): Buffer {
  let previous = auth.signature
  const parts: Buffer[] = []
  for (const data of [...chunks, Buffer.alloc(0)]) {
    const sts = ['AWS4-HMAC-SHA256-PAYLOAD', auth.amzDate, auth.scope, previous, sha256(''), sha256(data)].join('\n')
    previous = createHmac('sha256', auth.signingKey).update(sts).digest('hex')
    parts.push(Buffer.from(`${data.length.toString(16)};chunk-signature=${previous}\r\n`))
    if (data.length > 0) parts.push(data, Buffer.from('\r\n'))
  }
  if (trailers !== undefined) {
    const canonical = trailers.map(([n, v]) => `${n}:${v}\n`).join('')
    const sig = createHmac('sha256', auth.signingKey).update(['AWS4-HMAC-SHA256-TRAILER', auth.amzDate, auth.scope, previous, sha256(canonical)].join('\n')).digest('hex')
    parts.push(Buffer.from(trailers.map(([n, v]) => `${n}:${v}\r\n`).join('') + `x-amz-trailer-signature:${sig}\r\n`))
  }
  parts.push(Buffer.from('\r\n'))
  return Buffer.concat(parts)
}

t.test('AWS example: 66560 bytes, seed and chunk signatures, whole / byte by byte / odd slices', async t => {
  const body = docBody(DOC_SIGS)
  t.equal(body.length, 66824, 'the documented Content-Length')
  const { auth } = docRequest(false, body.length)
  t.equal(auth.signature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9', 'the seed signature verifies')
  t.same(encodeSigned(auth, [A(65536), A(1024)]), body, 'the test encoder reproduces the example')
  for (const slices of [body.length, 1, 7, 8191, 65537, () => 1 + Math.floor(Math.random() * 3000)]) {
    const { payload, trailers } = await decode(body, { mode: 'signed', auth, decodedLength: 66560 }, slices)
    t.ok(payload.equals(A(66560)), `slices of ${typeof slices === 'number' ? slices : 'random size'}`)
    t.same(trailers, {})
  }
  const tampered = Buffer.from(body)
  tampered[100] = 0x62
  await rejectsWith(t, decode(tampered, { mode: 'signed', auth }), 'SignatureDoesNotMatch', 403)
  await rejectsWith(t, decode(docBody([DOC_SIGS[0]!, DOC_SIGS[0]!, DOC_SIGS[2]!]), { mode: 'signed', auth }), 'SignatureDoesNotMatch', 403)
  await rejectsWith(t, decode(body, { mode: 'signed', auth: { ...auth, signature: DOC_SIGS[0]! } }), 'SignatureDoesNotMatch', 403)
})

t.test('AWS example with a trailer: crc32c trailer and its signature', async t => {
  const body = docBody(DOC_TRAILER_SIGS, DOC_TRAILERS)
  const { auth } = docRequest(true, body.length)
  t.equal(auth.payload.kind, 'streaming-signed-trailer')
  t.same(encodeSigned(auth, [A(65536), A(1024)], [['x-amz-checksum-crc32c', 'sOO8/Q==']]), body, 'the test encoder reproduces the example')
  t.equal(s3Checksum('crc32c', A(66560)), 'sOO8/Q==', 'the trailer value is our CRC32C of the payload')
  for (const slices of [body.length, 1, 13, () => 1 + Math.floor(Math.random() * 5000)]) {
    const { payload, trailers } = await decode(body, { mode: 'signed-trailer', auth, decodedLength: 66560, trailerNames: ['x-amz-checksum-crc32c'] }, slices)
    t.ok(payload.equals(A(66560)))
    t.same(trailers, { 'x-amz-checksum-crc32c': 'sOO8/Q==' })
  }
  await rejectsWith(t, decode(docBody(DOC_TRAILER_SIGS, DOC_TRAILERS.replace('sOO8', 'tOO8')), { mode: 'signed-trailer', auth }), 'SignatureDoesNotMatch', 403)
  await rejectsWith(t, decode(docBody(DOC_TRAILER_SIGS, 'x-amz-checksum-crc32c:sOO8/Q==\r\n'), { mode: 'signed-trailer', auth }), 'MalformedTrailerError')
})

const key = deriveSigningKey('secret', '20260101', 'us-east-1', 's3')
const AUTH: SigV4Auth = { accessKeyId: 'AKID', service: 's3', region: 'us-east-1', date: '20260101', amzDate: '20260101T000000Z', scope: '20260101/us-east-1/s3/aws4_request', signingKey: key, signature: 'a'.repeat(64), payload: { kind: 'streaming-signed' }, presigned: false }
const unsignedBody = (chunks: Buffer[], trailer = ''): Buffer => Buffer.concat([...chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]), Buffer.from(`0\r\n${trailer}\r\n`)])

t.test('random payloads, chunkings and slicings round-trip in every mode', async t => {
  for (let round = 0; round < 40; round++) {
    const payload = randomBytes(Math.floor(Math.random() * (round % 2 === 0 ? 20_000 : 200_000)))
    const chunks: Buffer[] = []
    for (let pos = 0; pos < payload.length;) {
      const n = 1 + Math.floor(Math.random() * 70_000)
      chunks.push(payload.subarray(pos, pos + n))
      pos += n
    }
    const crc = s3Checksum('crc32', payload)
    const slice = (): number => 1 + Math.floor(Math.random() * (round % 2 === 0 ? 17 : 9000))
    const bodies: Array<[AwsChunkedOptions, Buffer]> = [
      [{ mode: 'signed', auth: AUTH }, encodeSigned(AUTH, chunks)],
      [{ mode: 'signed-trailer', auth: AUTH, trailerNames: ['x-amz-checksum-crc32'] }, encodeSigned(AUTH, chunks, [['x-amz-checksum-crc32', crc]])],
      [{ mode: 'unsigned-trailer', trailerNames: ['x-amz-checksum-crc32'] }, unsignedBody(chunks, `x-amz-checksum-crc32:${crc}\r\n`)],
    ]
    for (const [options, body] of bodies) {
      const out = await decode(body, { ...options, decodedLength: payload.length }, slice)
      if (!out.payload.equals(payload)) t.fail(`round ${round} ${options.mode}: payload differs`)
      if (options.mode !== 'signed') t.equal(out.trailers['x-amz-checksum-crc32'], crc)
    }
  }
  t.pass('40 rounds × 3 modes')
})

/** A signed two-chunk body with its chunks (each a 90-byte frame) in the wrong order. */
function swapped (): Buffer {
  const body = encodeSigned(AUTH, [Buffer.from('aaaa'), Buffer.from('bbbb')])
  return Buffer.concat([body.subarray(90, 180), body.subarray(0, 90), body.subarray(180)])
}

t.test('malformed framing fails with S3 codes', async t => {
  const ok = unsignedBody([Buffer.from('hello')], 'x-amz-checksum-crc32:NhCmhg==\r\n')
  const u: AwsChunkedOptions = { mode: 'unsigned-trailer' }
  t.same((await decode(ok, { ...u, decodedLength: 5, trailerNames: ['x-amz-checksum-crc32'] }, 1)).payload.toString(), 'hello')
  t.equal(s3Checksum('crc32', Buffer.from('hello')), 'NhCmhg==')
  const cases: Array<[string, Buffer | string, AwsChunkedOptions, string]> = [
    ['size not hex', 'zz\r\nhello\r\n0\r\n\r\n', u, 'IncompleteBody'],
    ['no size', '\r\nhello\r\n0\r\n\r\n', u, 'IncompleteBody'],
    ['bare LF', '5\nhello\r\n0\r\n\r\n', u, 'IncompleteBody'],
    ['no CRLF after data', '5\r\nhelloX\r\n0\r\n\r\n', u, 'IncompleteBody'],
    ['chunk longer than declared', '3\r\nhello\r\n0\r\n\r\n', u, 'IncompleteBody'],
    ['truncated in data', '5\r\nhel', u, 'IncompleteBody'],
    ['no final chunk', '5\r\nhello\r\n', u, 'IncompleteBody'],
    ['no closing line with a trailer due', '5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n', { ...u, trailerNames: ['x-amz-checksum-crc32'] }, 'IncompleteBody'],
    ['data after the end', '5\r\nhello\r\n0\r\n\r\n5\r\nhello\r\n', u, 'IncompleteBody'],
    ['decoded length short', ok, { ...u, decodedLength: 6 }, 'IncompleteBody'],
    ['decoded length long', ok, { ...u, decodedLength: 4 }, 'IncompleteBody'],
    ['header line too long', `5;${'x'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, u, 'IncompleteBody'],
    ['trailer without colon', '5\r\nhello\r\n0\r\nnonsense\r\n\r\n', u, 'MalformedTrailerError'],
    ['declared trailer missing', '5\r\nhello\r\n0\r\n\r\n', { ...u, trailerNames: ['x-amz-checksum-crc32'] }, 'MalformedTrailerError'],
    ['undeclared trailer', ok, { ...u, trailerNames: ['x-amz-checksum-sha256'] }, 'MalformedTrailerError'],
    ['repeated trailer', '5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n', u, 'MalformedTrailerError'],
    ['huge trailers', `5\r\nhello\r\n0\r\n${'x-amz-meta-a:b\r\n'.repeat(2000)}\r\n`, u, 'MalformedTrailerError'],
    ['trailer in signed mode', encodeSigned(AUTH, [Buffer.from('hello')], [['x-amz-checksum-crc32', 'NhCmhg==']]), { mode: 'signed', auth: AUTH }, 'MalformedTrailerError'],
    ['no chunk-signature in signed mode', ok, { mode: 'signed', auth: AUTH }, 'IncompleteBody'],
    ['chunks swapped', swapped(), { mode: 'signed', auth: AUTH }, 'SignatureDoesNotMatch'],
    ['chunk over maxChunk', ok, { ...u, maxChunk: 4 }, 'InvalidChunkSizeError'],
  ]
  for (const [name, body, options, code] of cases) {
    const err = await rejectsWith(t, decode(Buffer.from(body), options, 3), code, code === 'SignatureDoesNotMatch' ? 403 : 400)
    t.ok(err, name)
  }
  // S3's minimum of 8192 bytes per chunk but the last, as S3 reports it: `hello` in chunks of 3.
  const small = await rejectsWith(t, decode(unsignedBody([Buffer.from('hel'), Buffer.from('lo')]), { ...u, minChunk: 8192 }), 'InvalidChunkSizeError')
  t.same(small?.detail, { Chunk: '2', BadChunkSize: '3' })
  t.equal((await decode(unsignedBody([Buffer.alloc(8192), Buffer.from('lo')]), { ...u, minChunk: 8192 })).payload.length, 8194, 'a short last chunk is fine')
  // The JS SDK ends a stream with no checksum after `0\r\n`.
  t.equal((await decode(Buffer.from('5\r\nhello\r\n0\r\n'), u)).payload.toString(), 'hello')
  t.equal((await decode(Buffer.from('0\r\n\r\n'), { ...u, decodedLength: 0 })).payload.length, 0, 'an empty body')
})

t.test('1 GiB through the decoder: memory does not grow with the body', async t => {
  const chunk = randomBytes(1024 * 1024)
  const header = Buffer.from(`${chunk.length.toString(16)}\r\n`)
  const crlf = Buffer.from('\r\n')
  const total = 1024
  const crc = createS3Hasher('crc32')
  for (let i = 0; i < total; i++) crc.update(chunk)
  const expected = crc.digest().toString('base64')
  async function * body (): AsyncGenerator<Buffer> {
    for (let i = 0; i < total; i++) { yield header; yield chunk; yield crlf }
    yield Buffer.from(`0\r\nx-amz-checksum-crc32:${expected}\r\n\r\n`)
  }
  const decoder = createAwsChunkedDecoder({ mode: 'unsigned-trailer', decodedLength: total * chunk.length, trailerNames: ['x-amz-checksum-crc32'] })
  const before = process.memoryUsage().rss
  let peak = before
  const hasher = createS3Hasher('crc32')
  let bytes = 0
  await pipeline(Readable.from(body()), decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const piece of source) {
      hasher.update(piece)
      bytes += piece.length
      if ((bytes & 0x3ffffff) < piece.length) peak = Math.max(peak, process.memoryUsage().rss)
    }
  })
  t.equal(bytes, total * chunk.length)
  t.equal(hasher.digest().toString('base64'), expected)
  t.equal(decoder.trailers['x-amz-checksum-crc32'], expected)
  t.ok(peak - before < 64 * 1024 * 1024, `RSS grew by ${((peak - before) / 1048576).toFixed(1)} MiB`)
})

// ---- Bodies the real clients send, captured by a server that authenticates them first
interface Captured { headers: IncomingMessage['headers'], body: Buffer, auth: SigV4Auth }
async function captureServer (t: Test, tls?: { key: Buffer, cert: Buffer }): Promise<{ endpoint: string, captured: Captured[] }> {
  const captured: Captured[] = []
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const auth = verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, now: new Date() }, (id) => id === 'AKID' ? { secretAccessKey: 'secret' } : undefined)!
      captured.push({ headers: req.headers, body: Buffer.concat(parts), auth })
      res.writeHead(200, { etag: '"e"' }).end()
    })
  }
  const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { endpoint: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as { port: number }).port}`, captured }
}

async function checkCaptured (t: Test, c: Captured, payload: Buffer): Promise<void> {
  t.equal(c.headers['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
  t.match(c.headers['content-encoding'], /aws-chunked/)
  const trailer = String(c.headers['x-amz-trailer'])
  const options: AwsChunkedOptions = { mode: 'unsigned-trailer', auth: c.auth, decodedLength: Number(c.headers['x-amz-decoded-content-length']), trailerNames: [trailer] }
  for (const slices of [c.body.length, 997, () => 1 + Math.floor(Math.random() * 10_000)]) {
    const out = await decode(c.body, options, slices)
    t.ok(out.payload.equals(payload), `payload of ${payload.length} bytes decodes`)
    t.equal(out.trailers[trailer], s3Checksum(trailer.replace('x-amz-checksum-', '') as 'crc32', payload), `${trailer} trailer is the payload's checksum`)
  }
}

t.test('@aws-sdk/client-s3 stream bodies decode (STREAMING-UNSIGNED-PAYLOAD-TRAILER)', async t => {
  const { endpoint, captured } = await captureServer(t)
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } })
  t.teardown(() => client.destroy())
  const payload = randomBytes(2 * 1024 * 1024 + 333)
  const pieces = [payload.subarray(0, 10), payload.subarray(10, 70_000), payload.subarray(70_000)]
  await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k1', Body: Readable.from(pieces), ContentLength: payload.length }))
  await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k2', Body: Readable.from(pieces), ContentLength: payload.length, ChecksumAlgorithm: 'CRC32C' }))
  t.equal(captured.length, 2)
  await checkCaptured(t, captured[0]!, payload)
  await checkCaptured(t, captured[1]!, payload)
  t.equal(captured[1]!.headers['x-amz-trailer'], 'x-amz-checksum-crc32c')
})

const hasBoto = await promisify(execFile)('python3', ['-c', 'import boto3']).then(() => true, () => false)
const hasOpenssl = spawnSync('openssl', ['version']).status === 0
const noBoto = !hasBoto ? 'python3 with boto3 is not installed' : !hasOpenssl ? 'openssl is not installed' : false
t.test('boto3 over TLS: aws-chunked bodies with a CRC32 trailer decode', { skip: noBoto }, async t => {
  const dir = t.testdir()
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const { endpoint, captured } = await captureServer(t, { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) })
  const script = `
import boto3, io, sys, urllib3
urllib3.disable_warnings()
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='AKID', aws_secret_access_key='secret', region_name='us-east-1', verify=False, config=Config(s3={'addressing_style': 'path'}))
s3.put_object(Bucket='b', Key='bytes', Body=bytes(range(256)) * 4000)
s3.put_object(Bucket='b', Key='file', Body=io.BytesIO(b'z' * 3000000))
`
  await promisify(execFile)('python3', ['-c', script, endpoint])
  t.equal(captured.length, 2)
  await checkCaptured(t, captured[0]!, Buffer.concat(Array.from({ length: 4000 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i)))))
  await checkCaptured(t, captured[1]!, Buffer.alloc(3_000_000, 'z'))
})
