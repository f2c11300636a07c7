/**
 * The upstream goes away: Azurite (the real process) is stopped while a writeback gateway and a
 * writethrough gateway use it, then a new Azurite comes back on the same port.
 *
 * - writeback: writes are still acknowledged (and served) until the dirty limit; past it both
 *   front ends answer a retryable 503 with Retry-After (Blob ServerBusy, S3 SlowDown); a client
 *   at the SDK's default retry settings gets through once the upstream is back and the queue
 *   drains; `POST /flush` finishes and every acknowledged object is in Azurite, bytes equal;
 * - writethrough: a Put Blob fails with 503 ServerBusy once the adapter's retries are used up,
 *   the next one at once while the upstream is known to be down; once it is back, a Put Blob is
 *   acknowledged with the blob in Azurite.
 *
 * The gateway has no setting for the adapter's retries (8 attempts, 200 ms doubling up to 30 s):
 * the first writethrough failure takes about 13 s (at most about 25 s), so it runs while the
 * writeback half of the outage is going on.
 */
import { randomBytes } from 'node:crypto'
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { BlobServiceClient, RestError } from '@azure/storage-blob'
import t from 'tap'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'
import { MiB, adminStatus, azuriteBlobs, flushAll, scrapeMetrics, startTierGateway, waitForStatus } from '../helpers/tier.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

let azurite: AzuriteHandle = await startAzurite()
t.teardown(() => azurite.stop())
const upstream = azurite.connectionString // the same port before and after the outage
const [wb, wt] = await Promise.all([
  startTierGateway({ upstream, args: ['--dirty-limit', '4MiB'] }),
  startTierGateway({ upstream, mode: 'writethrough' })
])
t.teardown(() => wb.stop())
t.teardown(() => wt.stop())
const noRetry = { retryOptions: { maxTries: 1 } }
const wbBlob = BlobServiceClient.fromConnectionString(wb.connectionString, noRetry).getContainerClient('outage')
const wtBlob = BlobServiceClient.fromConnectionString(wt.connectionString, noRetry).getContainerClient('wthru')
const s3 = new S3Client({
  endpoint: wb.s3Endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: wb.s3AccessKey, secretAccessKey: wb.s3SecretKey },
  maxAttempts: 1
})
t.teardown(() => s3.destroy())

t.test('Azurite stopped and back on the same port: acknowledged writes, 503 + Retry-After at the dirty limit, writethrough failures, nothing lost', async (t) => {
  await wbBlob.create()
  await wtBlob.create()
  await wbBlob.getBlockBlobClient('before').uploadData(Buffer.from('uploaded before the outage'))
  await flushAll(wb.adminUrl)
  await wtBlob.getBlockBlobClient('before').uploadData(Buffer.from('written through before the outage'))
  t.equal((await azuriteBlobs(azurite.connectionString, 'wthru')).get('before')?.data.toString(), 'written through before the outage')

  const port = azurite.port
  await azurite.stop()

  // Writethrough: nothing can be acknowledged; the answer comes once the adapter gives up.
  const wtDown = wtBlob.getBlockBlobClient('during').uploadData(randomBytes(64 * 1024)).then(() => undefined, (err: unknown) => err)

  // Writeback: acknowledged up to the dirty limit (4 MiB), from the cache alone.
  const written = new Map<string, Buffer>()
  for (let i = 0; i < 4; i++) {
    const data = randomBytes(MiB)
    await wbBlob.getBlockBlobClient(`during/${i}`).uploadData(data)
    written.set(`during/${i}`, data)
  }
  t.ok((await wbBlob.getBlobClient('during/2').downloadToBuffer()).equals(written.get('during/2')!), 'served from the cache while Azurite is down')
  t.match((await adminStatus(wb.adminUrl)).writeback, { dirtyObjects: 4, dirtyBytes: 4 * MiB, dirtyLimit: 4 * MiB })

  const blobRefused = await wbBlob.getBlockBlobClient('refused').uploadData(randomBytes(MiB)).then(() => undefined, (err: unknown) => err)
  t.ok(blobRefused instanceof RestError, 'Blob: refused past the dirty limit')
  if (blobRefused instanceof RestError) {
    t.equal(blobRefused.statusCode, 503)
    t.equal(blobRefused.code, 'ServerBusy')
    const retryAfter = Number(blobRefused.response?.headers.get('retry-after'))
    t.ok(retryAfter >= 1 && retryAfter <= 5, `Blob: Retry-After ${retryAfter} s`)
  }
  const s3Refused = await s3.send(new PutObjectCommand({ Bucket: 'outage', Key: 'refused', Body: randomBytes(MiB) })).then(() => undefined, (err: unknown) => err)
  t.ok(s3Refused instanceof S3ServiceException, 'S3: refused past the dirty limit')
  if (s3Refused instanceof S3ServiceException) {
    t.equal(s3Refused.name, 'SlowDown')
    t.equal(s3Refused.$metadata.httpStatusCode, 503)
    const retryAfter = Number(s3Refused.$response?.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 5, `S3: Retry-After ${retryAfter} s`)
  }
  t.match((await adminStatus(wb.adminUrl)).writeback, { dirtyObjects: 4, dirtyBytes: 4 * MiB }, 'the refused writes added nothing')

  const wtErr = await wtDown
  t.ok(wtErr instanceof RestError, 'writethrough: the Put Blob failed')
  if (wtErr instanceof RestError) t.match({ status: wtErr.statusCode, code: wtErr.code }, { status: 503, code: 'ServerBusy' }, 'writethrough: 503 ServerBusy')
  const started = Date.now()
  const wtAgain = await wtBlob.getBlockBlobClient('during-2').uploadData(Buffer.from('x')).then(() => undefined, (err: unknown) => err)
  t.match(wtAgain, { statusCode: 503, code: 'ServerBusy' }, 'writethrough: the next write fails too')
  t.ok(Date.now() - started < 5000, 'at once, while the upstream is known to be down')
  // The writeback's first upload fails once the adapter's retries are used up, like the writethrough's.
  const down = await waitForStatus(wb.adminUrl, (s) => (s.writeback?.failedAttempts ?? 0) >= 1, 'a failed upload attempt', 30_000)
  t.match(down.writeback?.lastError, /unavailable|ECONNREFUSED|ECONNRESET|socket/i)
  t.equal(down.writeback?.dirtyObjects, 4, 'writeback: nothing dropped')

  // A client at the SDK's default retry settings (4 tries: at once, then 4 s and 12 s apart), refused first,
  // gets through once Azurite is back and the queue drains.
  const defaultRetries = BlobServiceClient.fromConnectionString(wb.connectionString).getContainerClient('outage')
  const before = (await scrapeMetrics(wb.adminUrl)).get('ckptcache_client_requests_total', { frontend: 'blob', operation: 'PutBlob' })
  const late = randomBytes(MiB)
  const latePut = defaultRetries.getBlockBlobClient('late').uploadData(late)
  const answered = async (): Promise<number> => (await scrapeMetrics(wb.adminUrl)).get('ckptcache_client_requests_total', { frontend: 'blob', operation: 'PutBlob' })
  for (const deadline = Date.now() + 10_000; await answered() === before && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 25))
  t.ok(await answered() > before, 'its first try was answered')
  t.match((await adminStatus(wb.adminUrl)).writeback, { dirtyObjects: 4 }, '… and not admitted')

  azurite = await startAzurite({ port }) // a new (empty) Azurite where the old one was
  t.equal(azurite.port, port)
  // Both queues find the upstream back on their own (the writethrough's holds the failed write).
  const wtFlushed = flushAll(wt.adminUrl, undefined, 40_000)
  await latePut
  t.pass('the default-retry Put Blob succeeded after the refusal')
  written.set('late', late)
  const lines = await flushAll(wb.adminUrl, undefined, 40_000)
  t.equal(lines[lines.length - 1]?.done, true)
  const got = await azuriteBlobs(azurite.connectionString, 'outage')
  for (const [name, data] of written) t.ok(got.get(name)?.data.equals(data), `${name}: in Azurite, bytes equal`)
  t.notOk(got.has('refused'), 'the refused writes are nowhere')
  t.match((await adminStatus(wb.adminUrl)).writeback, { dirtyObjects: 0, dirtyBytes: 0 })

  // Writethrough works again once its queue has seen the upstream back.
  await wtFlushed
  await waitForStatus(wt.adminUrl, (s) => s.writeback?.lastError === undefined, 'the writethrough queue clean')
  const data = randomBytes(100 * 1024)
  await wtBlob.getBlockBlobClient('after').uploadData(data)
  t.ok((await azuriteBlobs(azurite.connectionString, 'wthru')).get('after')?.data.equals(data), 'writethrough: in Azurite right after the acknowledgement')
})
