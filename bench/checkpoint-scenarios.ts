/**
 * The client side of the checkpoint benchmark: what a PyTorch DCP job does
 * with `@azure/storage-blob` when it saves and restores one checkpoint, the
 * same calls against the gateway, Azurite and the ceiling.
 *
 * - Save: every rank uploads its shard `ckpt/step-N/__<rank>_0.distcp` at once
 *   (one upload per rank, all in parallel), then rank 0 writes `.metadata`
 *   once every shard is acknowledged, as DCP's coordinator does. The upload
 *   call is the SDK's at its defaults: `uploadStream` (Put Block of 8 MiB, 5
 *   in flight, + Put Block List) or `uploadData` (one Put Blob up to 256 MiB);
 *   the ceiling, which has no blocks, takes one Put Blob (`upload`).
 * - Restore: `.metadata` first, then every shard at once (`download()`,
 *   streamed), each byte compared with what was written.
 *
 * Bodies repeat one random 4 MiB buffer (no client disk I/O). Every HTTP
 * request the client sends passes a counting policy in its pipeline, so the
 * direct-to-Azurite runs count their Blob requests and bytes the way the
 * gateway's /metrics counts its upstream ones (the same operation names and
 * data/metadata classes).
 */

import { Agent } from 'node:http'
import {
  BlobServiceClient, newPipeline, type ContainerClient, type RequestPolicy, type RequestPolicyFactory,
  type StoragePipelineOptions, type WebResource
} from '@azure/storage-blob'
import { operationClass, operationOf } from '../src/upstream/azure-client.js'
import { RepeatStream, repeatedBuffer, SOURCE, type Transfer } from './blob-scenarios.js'

/** The container of the checkpoints written through the gateway (and to the ceiling); upstream it keeps its name. */
export const GATEWAY_CONTAINER = 'ckpt'
/** The container of the checkpoints written straight to Azurite. */
export const DIRECT_CONTAINER = 'ckpt-direct'

/** How a client uploads a shard: the SDK's stream path, its buffer path, or one Put Blob (the ceiling). */
export type UploadCall = 'uploadStream' | 'uploadData' | 'upload'

/** One checkpoint: its directory, shard names and sizes. */
export interface Checkpoint {
  /** `ckpt/step-N/` */
  dir: string
  shards: string[]
  shardBytes: number
  metadata: string
  metadataBytes: number
}

export function checkpoint (step: string, shards: number, shardBytes: number, metadataBytes: number): Checkpoint {
  const dir = `ckpt/${step}/`
  return {
    dir,
    shards: Array.from({ length: shards }, (_, rank) => `${dir}__${rank}_0.distcp`),
    shardBytes,
    metadata: `${dir}.metadata`,
    metadataBytes
  }
}

export const checkpointBytes = (c: Checkpoint): number => c.shards.length * c.shardBytes + c.metadataBytes

// ---- request counting ---------------------------------------------------------------------------

/** Requests by operation and object bytes each way, as the gateway's upstream metrics count them. */
export interface Traffic {
  requests: Record<string, number>
  /** Requests whose operation moves object data (Put Blob, Put Block, Put Block List, Get Blob). */
  data: number
  metadata: number
  /** Object bytes sent (Put Blob, Put Block bodies) and received (Get Blob bodies). */
  bytesOut: number
  bytesIn: number
}

export const noTraffic = (): Traffic => ({ requests: {}, data: 0, metadata: 0, bytesOut: 0, bytesIn: 0 })

/** Counts every request a client sends (read with `take()`, which starts a new count). */
export class RequestTally {
  #t = noTraffic()

  /** The pipeline policy; responses' Content-Length of Get Blob count as bytes in. */
  readonly policy: RequestPolicyFactory = {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: async (request: WebResource) => {
        const operation = operationOf(request.method, request.url)
        const t = this.#t
        t.requests[operation] = (t.requests[operation] ?? 0) + 1
        if (operationClass(operation) === 'data') t.data++
        else t.metadata++
        if (operation === 'PutBlob' || operation === 'PutBlock') t.bytesOut += Number(request.headers.get('content-length') ?? 0)
        const response = await next.sendRequest(request)
        if (operation === 'GetBlob' && response.status < 300) t.bytesIn += Number(response.headers.get('content-length') ?? 0)
        return response
      }
    })
  }

  /** What was counted since the last take. */
  take (): Traffic {
    const t = this.#t
    this.#t = noTraffic()
    return t
  }
}

/** A client for `container`, retries off, its connections from `agent`, every request counted by `tally`. */
export function countedContainer (connectionString: string, container: string, agent: Agent, tally: RequestTally): ContainerClient {
  const parsed = BlobServiceClient.fromConnectionString(connectionString)
  // `agent` is a core-rest-pipeline option that StoragePipelineOptions does not declare; it is passed through.
  const options: StoragePipelineOptions & { agent: Agent } = {
    retryOptions: { maxTries: 1, tryTimeoutInMs: 15 * 60_000 },
    keepAliveOptions: { enable: true },
    agent
  }
  const pipeline = newPipeline(parsed.credential, options)
  pipeline.factories.push(tally.policy)
  return new BlobServiceClient(parsed.url, pipeline).getContainerClient(container)
}

// ---- save and restore ---------------------------------------------------------------------------

/** The `uploadData` source of one shard size, built once (every rank uploads the same bytes). */
const buffers = new Map<number, Buffer>()
const bufferOf = (size: number): Buffer => {
  let b = buffers.get(size)
  if (b === undefined) {
    b = repeatedBuffer(size)
    buffers.set(size, b)
  }
  return b
}

async function uploadOne (container: ContainerClient, name: string, size: number, call: UploadCall, signal: AbortSignal): Promise<void> {
  const blob = container.getBlockBlobClient(name)
  if (call === 'uploadStream') await blob.uploadStream(new RepeatStream(size), undefined, undefined, { abortSignal: signal })
  else if (call === 'uploadData') await blob.uploadData(bufferOf(size), { abortSignal: signal })
  else await blob.upload(() => new RepeatStream(size), size, { abortSignal: signal })
}

/** Every shard at once, then `.metadata`: resolves when the last one is acknowledged. */
export async function saveCheckpoint (container: ContainerClient, c: Checkpoint, call: UploadCall, signal: AbortSignal): Promise<Transfer> {
  await Promise.all(c.shards.map(async (name) => { await uploadOne(container, name, c.shardBytes, call, signal) }))
  await uploadOne(container, c.metadata, c.metadataBytes, call, signal)
  return { bytes: checkpointBytes(c), ops: c.shards.length + 1 }
}

/** Checks that `chunk`, found at `offset` of a body, is the SOURCE pattern written there. */
function verify (name: string, chunk: Buffer, offset: number): void {
  let done = 0
  while (done < chunk.length) {
    const at = (offset + done) % SOURCE.length
    const n = Math.min(chunk.length - done, SOURCE.length - at)
    if (chunk.compare(SOURCE, at, at + n, done, done + n) !== 0) throw new Error(`${name}: wrong bytes within [${offset + done}, ${offset + done + n})`)
    done += n
  }
}

/** Downloads one blob, checks every byte and the length. */
async function readOne (container: ContainerClient, name: string, expected: number, signal: AbortSignal): Promise<number> {
  const res = await container.getBlobClient(name).download(0, undefined, { abortSignal: signal, maxRetryRequests: 0 })
  const body = res.readableStreamBody
  if (body === undefined) throw new Error(`download of ${name} has no body stream`)
  let n = 0
  for await (const chunk of body) {
    verify(name, chunk as Buffer, n)
    n += (chunk as Buffer).length
  }
  if (n !== expected) throw new Error(`download of ${name}: ${n} bytes, expected ${expected}`)
  return n
}

/** `.metadata`, then every shard at once, each byte checked. */
export async function restoreCheckpoint (container: ContainerClient, c: Checkpoint, signal: AbortSignal): Promise<Transfer> {
  let bytes = await readOne(container, c.metadata, c.metadataBytes, signal)
  const sizes = await Promise.all(c.shards.map(async (name) => await readOne(container, name, c.shardBytes, signal)))
  bytes += sizes.reduce((a, b) => a + b, 0)
  return { bytes, ops: c.shards.length + 1 }
}
