/**
 * One namespace: an object written through S3 is read through Blob and the other way round,
 * with the same bytes, ETag, content type and user metadata; conditions work across protocols.
 */
import { createHash } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { startGateway } from '../../helpers/gateway.js'

process.removeAllListeners('warning')

t.test('S3 ↔ Blob', async (t) => {
  const gw = await startGateway()
  t.teardown(() => gw.stop())
  const s3 = new S3Client({ endpoint: gw.s3Endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey }, maxAttempts: 1 })
  t.teardown(() => s3.destroy())
  const blob = BlobServiceClient.fromConnectionString(gw.connectionString).getContainerClient('shared')
  await blob.create()

  // S3 → Blob
  const body = Buffer.from('written through S3\n'.repeat(100))
  const put = await s3.send(new PutObjectCommand({ Bucket: 'shared', Key: 'step_1/__0_0.distcp', Body: body, ContentType: 'application/x-dcp', Metadata: { step: '1', rank: '0' } }))
  t.equal(put.ETag, `"${createHash('md5').update(body).digest('hex')}"`)
  const b = blob.getBlobClient('step_1/__0_0.distcp')
  const props = await b.getProperties()
  t.equal(props.etag, put.ETag, 'Blob sees the same ETag')
  t.equal(props.contentType, 'application/x-dcp')
  t.same(props.metadata, { step: '1', rank: '0' })
  t.equal(props.contentLength, body.length)
  t.equal(Buffer.from(props.contentMD5!).toString('hex'), createHash('md5').update(body).digest('hex'), 'Content-MD5 stored for Blob readers')
  t.ok((await b.downloadToBuffer()).equals(body), 'bytes equal through Blob')
  await b.getProperties({ conditions: { ifMatch: put.ETag! } })
  const status = await b.getProperties({ conditions: { ifMatch: '"0x1"' } }).then(() => 200, (e: { statusCode?: number }) => e.statusCode)
  t.equal(status, 412, 'a Blob condition against the S3 ETag')

  // Blob → S3
  const blobBody = Buffer.from('written through Blob')
  const up = await blob.getBlockBlobClient('step_1/.metadata').upload(blobBody, blobBody.length, { blobHTTPHeaders: { blobContentType: 'text/plain' }, metadata: { Writer: 'azure' } })
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'shared', Key: 'step_1/.metadata' }))
  t.equal(head.ETag, up.etag, 'S3 sees the same ETag')
  t.equal(head.ContentType, 'text/plain')
  t.same(head.Metadata, { writer: 'azure' }, 'x-ms-meta-* → x-amz-meta-* (S3 names are lowercase)')
  const got = await s3.send(new GetObjectCommand({ Bucket: 'shared', Key: 'step_1/.metadata', IfMatch: up.etag }))
  t.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(blobBody))
  try {
    await s3.send(new PutObjectCommand({ Bucket: 'shared', Key: 'step_1/.metadata', Body: 'x', IfNoneMatch: '*' }))
    t.fail('If-None-Match * on a Blob-written object')
  } catch (err) {
    t.equal((err as S3ServiceException).name, 'PreconditionFailed')
  }
  const list = await s3.send(new ListObjectsV2Command({ Bucket: 'shared' }))
  t.same(list.Contents?.map((c) => [c.Key, c.ETag, c.Size]), [['step_1/.metadata', up.etag, blobBody.length], ['step_1/__0_0.distcp', put.ETag, body.length]])
  const names: string[] = []
  for await (const item of blob.listBlobsFlat()) names.push(`${item.name} ${item.properties.etag}`)
  const bare = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '')
  t.same(names, [`step_1/.metadata ${bare(up.etag)}`, `step_1/__0_0.distcp ${bare(put.ETag)}`], 'List Blobs shows the same tags (unquoted, as Azure lists them)')
})
