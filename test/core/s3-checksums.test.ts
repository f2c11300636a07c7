import t from 'tap'
import type { Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import { crc32 as nodeRsCrc32 } from '@node-rs/crc32'
import { Crc32, Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import {
  S3_CHECKSUM_ALGORITHMS, createS3Hasher, decodeChecksumValue, parseChecksumHeaders, s3Checksum, type S3ChecksumAlgorithm,
} from '../../src/core/checksum/s3-checksums.js'
import { isCacheError } from '../../src/errors.js'

const CHECK = Buffer.from('123456789')

t.test('known vectors: "123456789" and the empty string, in S3 header form', async t => {
  // The values of the swift s3api compatibility tests run against AWS (TestObjectChecksum*.EXPECTED).
  const expected: Record<S3ChecksumAlgorithm, string> = {
    crc32: 'y/Q5Jg==', // 0xCBF43926
    crc32c: '4waSgw==', // 0xE3069283
    crc64nvme: 'rosUhgp5mIg=', // 0xAE8B14860A799888
    sha1: '98O8HYCOBHMq32eZZczDTKeuNEE=',
    sha256: 'FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=',
    sha512: createHash('sha512').update(CHECK).digest('base64'),
    md5: 'JfnnlDI7RTiF9RgfG2JNCw==', // 25f9e794323b453885f5181f1b624d0b
  }
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) t.equal(s3Checksum(algorithm, CHECK), expected[algorithm], algorithm)
  t.equal(createS3Hasher('crc32').digest().toString('hex'), '00000000')
  t.equal(s3Checksum('crc64nvme', Buffer.alloc(0)), 'AAAAAAAAAAA=')
  t.equal(s3Checksum('crc32c', Buffer.alloc(66560, 'a')), 'sOO8/Q==', 'the trailer of the S3 chunked-upload example')
  t.equal(createS3Hasher('crc64nvme').digest().length, 8)
})

t.test('CRC32 comes from zlib.crc32 on this Node, and agrees with @node-rs/crc32', async t => {
  t.equal(typeof (zlib as { crc32?: unknown }).crc32, 'function', `zlib.crc32 exists on ${process.version}`)
  const data = randomBytes(100_003)
  t.equal(createS3Hasher('crc32').digest().readUInt32BE(0), 0)
  const h = createS3Hasher('crc32')
  h.update(data)
  t.equal(h.digest().readUInt32BE(0), nodeRsCrc32(data))
})

t.test('incremental equals one-shot, at any split, and equals the AWS SDK\'s own implementations', async t => {
  const sdk: Partial<Record<S3ChecksumAlgorithm, () => { update (d: Uint8Array): void, digest (): Promise<Uint8Array> }>> = {
    crc32: () => new Crc32(), crc32c: () => new Crc32c(), crc64nvme: () => new Crc64Nvme(),
  }
  for (const length of [0, 1, 7, 8, 9, 15, 16, 17, 4095, 65_537, 1_000_003]) {
    const data = randomBytes(length)
    for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
      const whole = s3Checksum(algorithm, data)
      const h = createS3Hasher(algorithm)
      for (let pos = 0; pos < data.length;) {
        const n = 1 + Math.floor(Math.random() * 9000)
        h.update(data.subarray(pos, pos + n))
        pos += n
      }
      if (h.digest().toString('base64') !== whole) t.fail(`${algorithm} split differs at length ${length}`)
      const ref = sdk[algorithm]?.()
      if (ref !== undefined) {
        ref.update(data)
        t.equal(whole, Buffer.from(await ref.digest()).toString('base64'), `${algorithm} = @aws-sdk/checksums at length ${length}`)
      }
    }
  }
})

t.test('client-s3 and boto3 send exactly these values', async t => {
  const seen: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => { seen.push(req.headers); req.resume(); req.on('end', () => res.writeHead(200, { etag: '"e"' }).end()) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' } })
  t.teardown(() => client.destroy())
  const body = randomBytes(200_001)
  for (const ChecksumAlgorithm of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body, ChecksumAlgorithm }))
    const headers = seen.at(-1)!
    const algorithm = ChecksumAlgorithm.toLowerCase() as S3ChecksumAlgorithm
    t.equal(headers[`x-amz-checksum-${algorithm}`], s3Checksum(algorithm, body), `client-s3 ${ChecksumAlgorithm}`)
    t.match(parseChecksumHeaders(headers), { algorithm, sdkAlgorithm: algorithm, header: { algorithm } })
  }
  const hasBoto = await promisify(execFile)('python3', ['-c', 'import boto3']).then(() => true, () => false)
  if (!hasBoto) return
  const script = `
import boto3, sys
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='AKID', aws_secret_access_key='secret', region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}))
for algorithm in ['CRC32', 'SHA1', 'SHA256']:
    s3.put_object(Bucket='b', Key='k', Body=bytes(range(256)) * 1000, ChecksumAlgorithm=algorithm)
`
  await promisify(execFile)('python3', ['-c', script, endpoint])
  const botoBody = Buffer.concat(Array.from({ length: 1000 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i))))
  for (const [i, algorithm] of (['crc32', 'sha1', 'sha256'] as const).entries()) {
    t.equal(seen.at(-3 + i)![`x-amz-checksum-${algorithm}`], s3Checksum(algorithm, botoBody), `boto3 ${algorithm}`)
  }
})

function invalid (t: Test, headers: IncomingHttpHeaders, message: string | RegExp): void {
  try {
    parseChecksumHeaders(headers)
    t.fail(`accepted ${JSON.stringify(headers)}`)
  } catch (err) {
    t.ok(isCacheError(err, 'CC_ERR_INVALID_INPUT'), 'CC_ERR_INVALID_INPUT')
    if (typeof message === 'string') t.equal((err as Error).message, message, JSON.stringify(headers))
    else t.match((err as Error).message, message, JSON.stringify(headers))
  }
}

t.test('parseChecksumHeaders: what a request carries, and S3\'s refusals', async t => {
  t.same(parseChecksumHeaders({}), {})
  t.same(parseChecksumHeaders({ 'x-amz-checksum-crc32': 'y/Q5Jg==' }), { header: { algorithm: 'crc32', value: 'y/Q5Jg==', bytes: Buffer.from('cbf43926', 'hex') }, algorithm: 'crc32' })
  t.match(parseChecksumHeaders({ 'x-amz-trailer': 'x-amz-checksum-crc64nvme', 'x-amz-sdk-checksum-algorithm': 'CRC64NVME' }), { trailer: { algorithm: 'crc64nvme', name: 'x-amz-checksum-crc64nvme' }, sdkAlgorithm: 'crc64nvme', algorithm: 'crc64nvme' })
  t.same(parseChecksumHeaders({ 'x-amz-checksum-algorithm': 'CRC32C', 'x-amz-checksum-type': 'FULL_OBJECT', 'x-amz-checksum-mode': 'ENABLED' }), { uploadAlgorithm: 'crc32c', type: 'FULL_OBJECT', mode: 'ENABLED' })
  // Presigned URLs carry them in the query (the JS presigner hoists x-amz-* headers).
  t.match(parseChecksumHeaders({}, [{ name: 'x-amz-checksum-crc32', value: 'AAAAAA==' }, { name: 'x-amz-sdk-checksum-algorithm', value: 'CRC32' }, { name: 'X-Amz-Expires', value: '60' }]), { header: { algorithm: 'crc32', value: 'AAAAAA==' }, sdkAlgorithm: 'crc32' })
  // The swift s3api tests' invalid CRC32 values (all "Value for x-amz-checksum-crc32 header is invalid." on AWS).
  for (const value of ['y/Q5Jh==', 'short===', 'shrt', 'toolong=', '^^^^^^==', 'y^/^Q5^J^g==', '']) {
    invalid(t, { 'x-amz-checksum-crc32': value }, 'Value for x-amz-checksum-crc32 header is invalid.')
  }
  invalid(t, { 'x-amz-checksum-sha256': 'y/Q5Jg==' }, 'Value for x-amz-checksum-sha256 header is invalid.')
  invalid(t, { 'x-amz-checksum-crc32': 'y/Q5Jg==', 'x-amz-checksum-sha1': '98O8HYCOBHMq32eZZczDTKeuNEE=' }, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.')
  invalid(t, { 'x-amz-checksum-crc32': 'y/Q5Jg==', 'x-amz-sdk-checksum-algorithm': 'SHA1' }, 'Value for x-amz-sdk-checksum-algorithm header is invalid.')
  invalid(t, { 'x-amz-sdk-checksum-algorithm': 'CRC32' }, 'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.')
  invalid(t, { 'x-amz-sdk-checksum-algorithm': 'ADLER32', 'x-amz-checksum-crc32': 'y/Q5Jg==' }, 'Value for x-amz-sdk-checksum-algorithm header is invalid.')
  invalid(t, { 'x-amz-checksum-crc32': 'y/Q5Jg==', 'x-amz-trailer': 'x-amz-checksum-crc32' }, 'Expecting a single x-amz-checksum- header')
  invalid(t, { 'x-amz-checksum-xxhash64': 'AAAAAAAAAAA=' }, /xxhash64 algorithm is not supported/)
  invalid(t, { 'x-amz-trailer': 'x-amz-checksum-xxhash3' }, /not supported/)
  invalid(t, { 'x-amz-checksum-type': 'PARTIAL' }, /x-amz-checksum-type/)
  t.same(decodeChecksumValue('crc64nvme', 'rosUhgp5mIg='), Buffer.from('ae8b14860a799888', 'hex'))
  t.equal(decodeChecksumValue('crc64nvme', 'rosUhgp5mIh='), undefined)
})
