/**
 * What the read-through, layout and listing tests of a real gateway process share, on top of
 * `tier.ts`: a writeback gateway on an Azurite, the upstream bytes it read, a flush repeated until
 * done, SDK clients of the gateway and of Azurite, and streaming digests of object bodies (so a
 * test never holds many copies of a large object in memory).
 */
import { Readable } from 'node:stream'
import { crc32 } from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob'
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import type { AzuriteHandle } from './azurite.js'
import type { GatewayHandle } from './gateway.js'
import { KiB, MiB, flushAll, scrapeMetrics, startTierGateway } from './tier.js'

export { KiB, MiB }

/** A writeback gateway whose upstream is `azurite` (or a proxy of it, by connection string). */
export async function tierGateway (azurite: AzuriteHandle, opts: { args?: string[], upstream?: string, dataDir?: string } = {}): Promise<GatewayHandle> {
  return await startTierGateway({
    upstream: opts.upstream ?? azurite.connectionString,
    ...(opts.args === undefined ? {} : { args: opts.args }),
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir })
  })
}

/** `ckptcache_upstream_bytes_total{direction="in"}`: object bytes downloaded from the upstream so far. */
export async function upstreamBytesIn (gw: GatewayHandle): Promise<number> {
  return (await scrapeMetrics(gw.adminUrl)).get('ckptcache_upstream_bytes_total', { direction: 'in' })
}

/**
 * `POST /flush` (of `CONTAINER[/PREFIX]`, or everything) until a flush ends done: everything
 * dirty is then clean upstream, deletes included. At most `attempts` flushes.
 */
export async function flushUntilDone (gw: GatewayHandle, prefix?: string, attempts = 5): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await flushAll(gw.adminUrl, prefix)
      return
    } catch (err) {
      if (i >= attempts) throw err
    }
  }
}

// ---- clients --------------------------------------------------------------------------------------

/** @azure/storage-blob against the gateway's Blob port (no retries: a failure shows). */
export function blobService (gw: GatewayHandle): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(gw.connectionString, { retryOptions: { maxTries: 1 } })
}

/** @aws-sdk/client-s3 against the gateway's S3 port, path-style unless overridden. */
export function s3Client (gw: GatewayHandle, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: gw.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey },
    maxAttempts: 1,
    ...overrides
  })
}

/** @azure/storage-blob straight to Azurite (another writer, and the test's view of the upstream). */
export function azuriteService (azurite: AzuriteHandle): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString, { retryOptions: { maxTries: 1 } })
}

/** Every blob name of an upstream container, flat, in order ([] when the container does not exist). */
export async function upstreamNames (container: ContainerClient, prefix?: string): Promise<string[]> {
  if (!(await container.exists())) return []
  const names: string[] = []
  for await (const b of container.listBlobsFlat(prefix === undefined ? {} : { prefix })) names.push(b.name)
  return names
}

// ---- bodies ---------------------------------------------------------------------------------------

export interface Digest {
  size: number
  /** CRC-32 of the bytes (zlib's, fast enough for GiBs on the test's side). */
  crc: number
}

/** Size and CRC-32 of a stream's bytes, read as they come. */
export async function digestStream (body: AsyncIterable<Buffer | Uint8Array> | NodeJS.ReadableStream | undefined): Promise<Digest> {
  if (body === undefined) throw new Error('no body')
  let size = 0
  let crc = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    crc = crc32(chunk, crc)
  }
  return { size, crc }
}

export function digestOf (buf: Buffer): Digest {
  return { size: buf.length, crc: crc32(buf) }
}

/** Reads a whole (small) stream. */
export async function readAll (body: AsyncIterable<Buffer | Uint8Array> | NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (body === undefined) throw new Error('no body')
  const chunks: Buffer[] = []
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks)
}

/**
 * A large object's bytes, generated again on demand: 1 MiB of random bytes with the chunk's index
 * stamped into it, so no two MiBs are equal. `digest` is what a reader must see.
 */
export class BigBody {
  readonly size: number
  readonly #base = randomBytes(MiB)
  #digest: Digest | undefined

  constructor (size: number) {
    this.size = size
  }

  #chunk (i: number): Buffer {
    const n = Math.min(MiB, this.size - i * MiB)
    const c = Buffer.from(this.#base.subarray(0, n))
    for (let off = 0; off + 4 <= n; off += 64 * KiB) c.writeUInt32BE(i, off)
    return c
  }

  /** The bytes from `start` to `end` inclusive. */
  slice (start: number, end: number): Buffer {
    const parts: Buffer[] = []
    for (let i = Math.floor(start / MiB); i * MiB <= end; i++) {
      const c = this.#chunk(i)
      parts.push(c.subarray(Math.max(0, start - i * MiB), Math.min(c.length, end - i * MiB + 1)))
    }
    return Buffer.concat(parts)
  }

  stream (): Readable {
    return Readable.from(this.#chunks(), { objectMode: false })
  }

  * #chunks (): Generator<Buffer> {
    for (let i = 0; i * MiB < this.size; i++) yield this.#chunk(i)
  }

  get digest (): Digest {
    if (this.#digest === undefined) {
      let crc = 0
      for (const c of this.#chunks()) crc = crc32(c, crc)
      this.#digest = { size: this.size, crc }
    }
    return this.#digest
  }
}
