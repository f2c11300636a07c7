/**
 * The client side of the Blob benchmark: what one measured run does with
 * `@azure/storage-blob`, the same calls against every server.
 *
 * - PUT: `blockBlobClient.upload(() => stream, size)`: ONE Put Blob, the body a
 *   stream that repeats one in-memory random 4 MiB buffer (no client disk I/O).
 * - GET: `blobClient.download()`, the body stream consumed and counted, never buffered.
 * - SDK default for large objects: `uploadData(buffer)` (Put Block × N + Put Block List).
 * - Small objects: `upload(buffer, size)` and `download()` from N workers pulling
 *   from one queue of names.
 *
 * Retries are off (maxTries 1, no download resume), so a failure shows as a
 * failed run instead of as a slow one. Each run gets its own keep-alive agent
 * (destroyed after it): the SDK otherwise shares one process-wide agent, and a
 * socket a server closed while idle (Azurite after 5 s) fails the next run
 * with EPIPE.
 */

import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { Readable } from 'node:stream'
import { BlobServiceClient, type ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

const SOURCE_BYTES = 4 * MiB
/** One random 4 MiB buffer that every upload body repeats. */
export const SOURCE = randomBytes(SOURCE_BYTES)

/** A body of `size` bytes made of SOURCE repeated, pushed in pieces of at most 4 MiB. */
export class RepeatStream extends Readable {
  #left: number

  constructor (size: number) {
    super({ highWaterMark: SOURCE_BYTES })
    this.#left = size
  }

  override _read (): void {
    if (this.#left === 0) {
      this.push(null)
      return
    }
    const n = Math.min(this.#left, SOURCE_BYTES)
    this.#left -= n
    this.push(n === SOURCE_BYTES ? SOURCE : SOURCE.subarray(0, n))
  }
}

/** A `count`-byte buffer filled with SOURCE repeated (for `uploadData`). Allocated once, fully touched. */
export function repeatedBuffer (count: number): Buffer {
  const buf = Buffer.allocUnsafe(count)
  for (let off = 0; off < count; off += SOURCE_BYTES) SOURCE.copy(buf, off, 0, Math.min(SOURCE_BYTES, count - off))
  return buf
}

export const CONTAINER = 'bench'

/** A client for the benchmark container, retries off, its connections from `agent`. */
export function containerClient (connectionString: string, agent: Agent): ContainerClient {
  // `agent` is a core-rest-pipeline option that StoragePipelineOptions does not declare; it is passed through.
  const options: StoragePipelineOptions & { agent: Agent } = {
    retryOptions: { maxTries: 1, tryTimeoutInMs: 15 * 60_000 },
    keepAliveOptions: { enable: true },
    agent
  }
  return BlobServiceClient.fromConnectionString(connectionString, options).getContainerClient(CONTAINER)
}

/** Creates the benchmark container (if missing) and returns a client for it on a fresh agent. */
export async function openContainer (connectionString: string, agent = new Agent({ keepAlive: true })): Promise<ContainerClient> {
  const container = containerClient(connectionString, agent)
  await container.createIfNotExists()
  return container
}

export interface Transfer {
  bytes: number
  ops: number
}

/** Put Blob of `size` bytes to every name, all in parallel. */
export async function putObjects (container: ContainerClient, names: string[], size: number, signal: AbortSignal): Promise<Transfer> {
  await Promise.all(names.map(async (name) => {
    await container.getBlockBlobClient(name).upload(() => new RepeatStream(size), size, { abortSignal: signal })
  }))
  return { bytes: names.length * size, ops: names.length }
}

/** Downloads one blob and consumes its body; returns the byte count (checked against `expected`). */
async function getOne (container: ContainerClient, name: string, expected: number, signal: AbortSignal): Promise<number> {
  const res = await container.getBlobClient(name).download(0, undefined, { abortSignal: signal, maxRetryRequests: 0 })
  const body = res.readableStreamBody
  if (body === undefined) throw new Error(`download of ${name} has no body stream`)
  let n = 0
  for await (const chunk of body) n += (chunk as Buffer).length
  if (n !== expected) throw new Error(`download of ${name}: ${n} bytes, expected ${expected}`)
  return n
}

/** Get Blob of every name, all in parallel, bodies streamed and counted. */
export async function getObjects (container: ContainerClient, names: string[], size: number, signal: AbortSignal): Promise<Transfer> {
  const sizes = await Promise.all(names.map(async (name) => await getOne(container, name, size, signal)))
  return { bytes: sizes.reduce((a, b) => a + b, 0), ops: names.length }
}

/** The SDK's default path for a large buffer: `uploadData` (Put Block × N, concurrency 5, + Put Block List). */
export async function uploadDataObject (container: ContainerClient, name: string, data: Buffer, signal: AbortSignal): Promise<Transfer> {
  await container.getBlockBlobClient(name).uploadData(data, { abortSignal: signal })
  return { bytes: data.length, ops: 1 }
}

/** Runs `op` on every name with at most `concurrency` in flight. */
export async function pool (names: string[], concurrency: number, op: (name: string) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++] as string
      await op(name)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker))
}

/** Small Put Blobs (`upload(buffer)`) with `concurrency` in flight. */
export async function putSmall (container: ContainerClient, names: string[], size: number, concurrency: number, signal: AbortSignal): Promise<Transfer> {
  const body = SOURCE.subarray(0, size)
  await pool(names, concurrency, async (name) => {
    await container.getBlockBlobClient(name).upload(body, size, { abortSignal: signal })
  })
  return { bytes: names.length * size, ops: names.length }
}

/** Small Get Blobs (`download()`, body consumed) with `concurrency` in flight. */
export async function getSmall (container: ContainerClient, names: string[], size: number, concurrency: number, signal: AbortSignal): Promise<Transfer> {
  await pool(names, concurrency, async (name) => { await getOne(container, name, size, signal) })
  return { bytes: names.length * size, ops: names.length }
}
