/**
 * The client side of the S3 benchmark: what one measured run does with
 * `@aws-sdk/client-s3`, path style, the same calls against every server.
 *
 * The client keeps the SDK's defaults (its own keep-alive connection pool,
 * `requestChecksumCalculation` and `responseChecksumValidation` WHEN_SUPPORTED)
 * except retries (maxAttempts 1, so a failure shows as a failed run instead of
 * as a slow one). What those defaults put on the wire:
 *
 * - PutObject with a stream body (`RepeatStream`, ContentLength given): an
 *   aws-chunked body (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`, HTTP chunked
 *   transfer) whose CRC32 the client computes (`zlib.crc32`) and sends as a
 *   trailer; `Expect: 100-continue`, which makes the SDK's handler send that
 *   request on a fresh connection that it closes afterwards.
 * - PutObject with a Buffer body (4 KiB): `x-amz-checksum-crc32` header and the
 *   body's SHA-256 as `x-amz-content-sha256` (signed payload).
 * - GetObject: `x-amz-checksum-mode: ENABLED`; when the answer carries the
 *   stored CRC32 the client checks the body against it while it streams. The
 *   body is consumed and counted, never buffered.
 *
 * Checksum variants for PutObject (`ChecksumVariant`): the default CRC32
 * trailer; `ChecksumAlgorithm: 'CRC32C'` (the client computes CRC32C in pure
 * JavaScript); no checksum (`requestChecksumCalculation: 'WHEN_REQUIRED'`:
 * a plain body with Content-Length and `UNSIGNED-PAYLOAD`).
 *
 * Each run makes its own client and destroys it afterwards (its connection
 * pool with it), as the Blob side does with its agent.
 */

import type { Readable } from 'node:stream'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { pool, RepeatStream, SOURCE, type Transfer } from './blob-scenarios.js'
import type { S3Endpoint } from './servers/start.js'

export const BUCKET = 'bench'
/** An S3 Express directory bucket: the SDK opens CreateSession sessions for it by itself. */
export const DIRECTORY_BUCKET = 'bench--use1-az4--x-s3'

export type ChecksumVariant = 'crc32' | 'crc32c' | 'none'

export const CHECKSUM_VARIANTS: Record<ChecksumVariant, string> = {
  crc32: 'CRC32 trailer (SDK default)',
  crc32c: 'CRC32C trailer',
  none: 'no checksum (WHEN_REQUIRED)'
}

/**
 * A client for `endpoint`, SDK defaults except retries off; `none` turns request checksums off.
 * Path style is forced for general purpose buckets; directory buckets are addressed as the SDK
 * does by default on an IP endpoint (path style, sessions).
 */
export function s3Client (endpoint: S3Endpoint, variant: ChecksumVariant = 'crc32'): S3Client {
  const config: S3ClientConfig = {
    endpoint: endpoint.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey },
    maxAttempts: 1,
    ...(variant === 'none' ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const } : {})
  }
  return new S3Client(config)
}

/** Creates the benchmark bucket and, with `directory`, the directory bucket (existing ones are fine). */
export async function openBucket (endpoint: S3Endpoint, directory: boolean): Promise<void> {
  const client = s3Client(endpoint)
  try {
    for (const cmd of [
      new CreateBucketCommand({ Bucket: BUCKET }),
      ...!directory ? [] : [new CreateBucketCommand({
        Bucket: DIRECTORY_BUCKET,
        CreateBucketConfiguration: { Location: { Type: 'AvailabilityZone', Name: 'use1-az4' }, Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' } }
      })]
    ]) {
      try {
        await client.send(cmd)
      } catch (err) {
        const name = (err as Error).name
        if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err
      }
    }
  } finally {
    client.destroy()
  }
}

/** PutObject of `size` bytes (a stream) to every key, all in parallel; `variant` crc32c asks for CRC32C. */
export async function putObjects (client: S3Client, keys: string[], size: number, signal: AbortSignal, variant: ChecksumVariant = 'crc32', bucket = BUCKET): Promise<Transfer> {
  await Promise.all(keys.map(async (key) => {
    await client.send(new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: new RepeatStream(size),
      ContentLength: size,
      ...(variant === 'crc32c' ? { ChecksumAlgorithm: 'CRC32C' as const } : {})
    }), { abortSignal: signal })
  }))
  return { bytes: keys.length * size, ops: keys.length }
}

/** GetObject of one key, body consumed and counted (checked against `expected`). */
async function getOne (client: S3Client, key: string, expected: number, signal: AbortSignal, bucket = BUCKET): Promise<number> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
  const body = res.Body as Readable | undefined
  if (body === undefined) throw new Error(`GetObject ${key} has no body stream`)
  let n = 0
  for await (const chunk of body) n += (chunk as Buffer).length
  if (n !== expected) throw new Error(`GetObject ${key}: ${n} bytes, expected ${expected}`)
  return n
}

/** GetObject of every key, all in parallel, bodies streamed and counted. */
export async function getObjects (client: S3Client, keys: string[], size: number, signal: AbortSignal, bucket = BUCKET): Promise<Transfer> {
  const sizes = await Promise.all(keys.map(async (key) => await getOne(client, key, size, signal, bucket)))
  return { bytes: sizes.reduce((a, b) => a + b, 0), ops: keys.length }
}

/** Small PutObjects (Buffer body) with `concurrency` in flight. */
export async function putSmall (client: S3Client, keys: string[], size: number, concurrency: number, signal: AbortSignal): Promise<Transfer> {
  const body = SOURCE.subarray(0, size)
  await pool(keys, concurrency, async (key) => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }), { abortSignal: signal })
  })
  return { bytes: keys.length * size, ops: keys.length }
}

/** Small GetObjects (body consumed) with `concurrency` in flight. */
export async function getSmall (client: S3Client, keys: string[], size: number, concurrency: number, signal: AbortSignal): Promise<Transfer> {
  await pool(keys, concurrency, async (key) => { await getOne(client, key, size, signal) })
  return { bytes: keys.length * size, ops: keys.length }
}
