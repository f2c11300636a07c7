/**
 * `--max-requests`: past the limit both front ends answer at once with the protocol's retryable
 * 503 (Blob ServerBusy, S3 SlowDown) and Retry-After, before reading the body; once requests in
 * flight finish, the slots are free again.
 */
import { PassThrough } from 'node:stream'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { startGateway } from '../../helpers/gateway.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

t.test('requests past --max-requests get a retryable 503 with Retry-After', async (t) => {
  const gw = await startGateway({ args: ['--max-requests', '2'] })
  t.teardown(() => gw.stop())
  const s3 = new S3Client({ endpoint: gw.s3Endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey } })
  const blob = BlobServiceClient.fromConnectionString(gw.connectionString)
  t.teardown(() => s3.destroy())
  await blob.getContainerClient('busy').create()

  // Two uploads whose bodies stall hold both slots of each port.
  const stalled: PassThrough[] = []
  const holders: Array<Promise<unknown>> = []
  for (let i = 0; i < 2; i++) {
    const s3Body = new PassThrough()
    const blobBody = new PassThrough()
    stalled.push(s3Body, blobBody)
    s3Body.write(Buffer.alloc(1024))
    blobBody.write(Buffer.alloc(1024))
    holders.push(s3.send(new PutObjectCommand({ Bucket: 'busy', Key: `held-${i}`, Body: s3Body, ContentLength: 4096 })).catch((err: Error) => err))
    holders.push(blob.getContainerClient('busy').getBlockBlobClient(`held-${i}`).upload(() => blobBody, 4096).catch((err: Error) => err))
  }
  // Wait until the gateway has all four in flight: a probe is refused for overload.
  const probe = async (url: string): Promise<Response> => {
    for (let i = 0; i < 200; i++) {
      const r = await fetch(url)
      if (r.status === 503) return r
      await r.arrayBuffer()
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    throw new Error(`${url}: never refused`)
  }
  const s3Busy = await probe(`${gw.s3Endpoint}/busy/x`)
  t.equal(s3Busy.headers.get('retry-after'), '1')
  t.match(await s3Busy.text(), /<Code>SlowDown<\/Code>/)
  const blobBusy = await probe(`${gw.blobEndpoint}/busy/x`)
  t.equal(blobBusy.headers.get('retry-after'), '1')
  t.equal(blobBusy.headers.get('x-ms-error-code'), 'ServerBusy')
  t.match(await blobBusy.text(), /<Code>ServerBusy<\/Code>/)
  await t.rejects(s3.send(new PutObjectCommand({ Bucket: 'busy', Key: 'third', Body: 'x' })), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } })

  // The held uploads finish; the slots are free again.
  for (const body of stalled) body.end(Buffer.alloc(3072))
  const results = await Promise.all(holders)
  t.notOk(results.some((r) => r instanceof Error), 'the held uploads completed')
  await s3.send(new PutObjectCommand({ Bucket: 'busy', Key: 'third', Body: 'x' }))
  t.equal((await blob.getContainerClient('busy').getBlobClient('third').downloadToBuffer()).toString(), 'x')
})
