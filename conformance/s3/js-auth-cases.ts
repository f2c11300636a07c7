/**
 * JS client (@aws-sdk/client-s3, @aws-sdk/s3-request-presigner): who gets in — presigned GET and
 * PUT URLs used with plain fetch, a tampered or expired presigned URL (403), a wrong secret
 * (SignatureDoesNotMatch), an unknown access key (InvalidAccessKeyId), an anonymous request
 * (AccessDenied); refused writes store nothing.
 */
import assert from 'node:assert/strict'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { expectS3Error, type JsCase, type JsContext } from './case.js'
import { crc32Base64, md5Etag, payload } from './data.js'

/** The `<Code>` of an S3 XML error body. */
function xmlCode(body: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1]
}

async function expectHttpError(what: string, res: Response, status: number, code: string): Promise<void> {
  const body = await res.text()
  assert.equal(`${res.status} ${xmlCode(body) ?? ''}`, `${status} ${code}`, `${what}: status and <Code> (${body.slice(0, 200)})`)
}

function objectUrl(ctx: JsContext, key: string): string {
  return `${ctx.endpoint.url}/${ctx.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

export const jsAuthCases: JsCase[] = [
  {
    operation: 'presign/get',
    async run(ctx) {
      const key = `${ctx.prefix}shard.bin`
      const data = payload(`${ctx.runId}/${key}`, 100_000)
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: data }))
      const url = await getSignedUrl(ctx.s3, new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), { expiresIn: 300 })
      const res = await fetch(url)
      assert.equal(res.status, 200, 'status')
      assert.equal(res.headers.get('etag'), md5Etag(data), 'ETag')
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data), 'bytes')
      const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } })
      assert.equal(ranged.status, 206, 'a Range header on a presigned GET')
      assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(10, 20)), 'ranged bytes')
    },
  },
  {
    operation: 'presign/put',
    async run(ctx) {
      const key = `${ctx.prefix}uploaded.bin`
      const data = payload(`${ctx.runId}/${key}`, 70_000)
      // With the SDK's default checksum setting the presigner signs an x-amz-checksum-crc32 into
      // the URL; without a body at signing time it would be the CRC32 of nothing. Giving the
      // body's CRC32 makes the URL valid for exactly this body, however the server treats it.
      const url = await getSignedUrl(ctx.s3, new PutObjectCommand({ Bucket: ctx.bucket, Key: key, ChecksumCRC32: crc32Base64(data) }), { expiresIn: 300 })
      const res = await fetch(url, { method: 'PUT', body: data })
      assert.equal(res.status, 200, `status (${(await res.text()).slice(0, 200)})`)
      assert.equal(res.headers.get('etag'), md5Etag(data), 'ETag')
      const got = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }))
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data), 'bytes read back')
    },
  },
  {
    operation: 'presign/tampered-expired',
    async run(ctx) {
      const key = `${ctx.prefix}a.bin`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'a' }))
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}b.bin`, Body: 'b' }))
      const url = await getSignedUrl(ctx.s3, new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), { expiresIn: 300 })
      await expectHttpError('URL signed for a.bin, used for b.bin', await fetch(url.replace('/a.bin?', '/b.bin?')), 403, 'SignatureDoesNotMatch')
      const expired = await getSignedUrl(ctx.s3, new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), {
        expiresIn: 60, signingDate: new Date(Date.now() - 3600_000),
      })
      await expectHttpError('URL expired an hour ago', await fetch(expired), 403, 'AccessDenied')
    },
  },
  {
    operation: 'auth/wrong-secret',
    async run(ctx) {
      const bad = ctx.client({ accessKeyId: ctx.endpoint.accessKeyId, secretAccessKey: `${ctx.endpoint.secretAccessKey}-wrong` })
      await expectS3Error('ListObjectsV2', bad.send(new ListObjectsV2Command({ Bucket: ctx.bucket })), 403, 'SignatureDoesNotMatch')
      await expectS3Error('PutObject', bad.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}x`, Body: 'x' })), 403, 'SignatureDoesNotMatch')
      await expectS3Error('HeadObject (no body, status only)', bad.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}x` })), 403)
      await expectS3Error('the refused put stored nothing', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}x` })), 404)
    },
  },
  {
    operation: 'auth/unknown-key',
    async run(ctx) {
      const bad = ctx.client({ accessKeyId: 'AKIACKPTCACHEUNKNOWN', secretAccessKey: ctx.endpoint.secretAccessKey })
      await expectS3Error('ListObjectsV2', bad.send(new ListObjectsV2Command({ Bucket: ctx.bucket })), 403, 'InvalidAccessKeyId')
      await expectS3Error('GetObject', bad.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}x` })), 403, 'InvalidAccessKeyId')
    },
  },
  {
    operation: 'auth/anonymous',
    async run(ctx) {
      const key = `${ctx.prefix}private.bin`
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: 'private' }))
      await expectHttpError('unsigned GET', await fetch(objectUrl(ctx, key)), 403, 'AccessDenied')
      await expectHttpError('unsigned PUT', await fetch(objectUrl(ctx, `${ctx.prefix}anon.bin`), { method: 'PUT', body: 'x' }), 403, 'AccessDenied')
      await expectS3Error('the refused put stored nothing', ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: `${ctx.prefix}anon.bin` })), 404)
    },
  },
]
