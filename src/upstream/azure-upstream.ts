/**
 * `Upstream` on Azure Blob Storage through `@azure/storage-blob`.
 *
 * Uploads: a source of at most `singlePutMax` bytes (default one block) goes
 * up in one Put Blob, streamed from the cache: one request instead of one per
 * block plus a commit, which is what a per-node request budget on Azure wants;
 * a larger one in Put Block requests of `blockSize` bytes
 * (bigger when the object would need more than Azure's 50,000 blocks), at
 * most `blockConcurrency` in flight, each streamed from its own range of the
 * source, then one Put Block List with the content headers, the metadata and
 * the Content-MD5. Block ids derive from the version (see block-ids.ts).
 *
 * Content-MD5: the one the object carries, else computed on MD5 worker
 * threads from a sequential read of the source: before a Put Blob (whose
 * header needs it), alongside the Put Block requests (which read their
 * ranges out of order) for a large one. Memory stays bounded (no block is
 * held in memory) at the price of reading a large source twice, which on
 * local NVMe costs far less than the upload. One case needs care: Azure
 * checks a Put Blob's Content-MD5 against its body but not a Put Block
 * List's, so an object committed through a block list may carry a
 * Content-MD5 that is not its content's. When Put Blob refuses such a value,
 * the object is uploaded as one block and a block list, as its writer did.
 *
 * Metadata names are mapped to identifiers Azure accepts (azure-mapping.ts).
 *
 * Every request goes through `retry.ts` (the SDK's own retries are off),
 * the rate cap and the request counter (azure-client.ts). Errors leave as
 * CacheErrors with the SDK error as their `cause`. `close()` stops work in
 * flight: waits, retries, requests and download streams end with
 * CC_ERR_CLIENT_ABORTED.
 */
import { setMaxListeners } from 'node:events'
import { addAbortSignal, Readable, Transform } from 'node:stream'
import type { BlobServiceClient, BlockBlobClient } from '@azure/storage-blob'
import type { NodeMetrics } from '../admin/metrics.js'
import { md5OfStream } from '../core/checksum/md5.js'
import { CacheError } from '../errors.js'
import {
  azureCodeOf, countingPolicy, createBlobServiceClient, isMd5Refusal, statusOf, toCacheError, type UpstreamOperation
} from './azure-client.js'
import { blobHeaders, propsOf, quote, toAzureMetadata, unquote } from './azure-mapping.js'
import { MAX_BLOCKS, blockIdsFor } from './block-ids.js'
import { DEFAULT_RETRY_OPTIONS, TokenBucket, describe, withRetry, type RetryOptions } from './retry.js'
import type {
  Upstream, UploadRequest, UploadResult, UploadSource, UpstreamListItem, UpstreamListPage,
  UpstreamListQuery, UpstreamProps, UpstreamRef
} from './types.js'

export interface AzureUpstreamOptions {
  /** AccountKey or SAS connection string (path-style endpoints such as Azurite's included). */
  connectionString?: string
  /** `https://<account>.blob.core.windows.net`, authenticated with DefaultAzureCredential (or a SAS in its query). */
  accountUrl?: string
  /** Sources up to this size go up in one Put Blob; larger ones in blocks of this size. */
  blockSize: number
  /** Sources up to this size go up in one Put Blob (Azure allows 5000 MiB); default `blockSize`. */
  singlePutMax?: number
  /** Put Block requests in flight per upload. */
  blockConcurrency: number
  /** Upstream HTTP requests per second at most (0: no cap). */
  maxRps: number
  metrics: NodeMetrics
  retry?: Partial<RetryOptions>
  log?: { warn (obj: object, msg: string): void }
}

export function createAzureUpstream (opts: AzureUpstreamOptions): Upstream {
  return new AzureUpstream(opts)
}

/** Requests one upload made, retries and a container creation included. */
interface Tally { requests: number }

class AzureUpstream implements Upstream {
  readonly #opts: AzureUpstreamOptions
  readonly #retry: RetryOptions
  readonly #bucket: TokenBucket
  readonly #closing = new AbortController()
  readonly #containers = new Map<string, Promise<void>>()
  #service: Promise<BlobServiceClient> | undefined

  constructor (opts: AzureUpstreamOptions) {
    if (!(opts.blockSize >= 1)) throw new RangeError('blockSize must be at least 1 byte')
    this.#opts = opts
    this.#retry = { ...DEFAULT_RETRY_OPTIONS, ...opts.retry }
    this.#bucket = new TokenBucket(opts.maxRps)
    // Every operation in flight listens to it; there is no leak to warn about.
    setMaxListeners(0, this.#closing.signal)
  }

  async ensureContainer (container: string): Promise<void> {
    const link = this.#link()
    try {
      await this.#ensure(container, link.signal)
    } catch (err) {
      throw toCacheError(err, `Create Container ${container}`, link.signal)
    } finally {
      link.dispose()
    }
  }

  async upload (req: UploadRequest): Promise<UploadResult> {
    const link = this.#link(req.signal)
    const tally: Tally = { requests: 0 }
    try {
      const blob = (await this.#client()).getContainerClient(req.ref.container).getBlockBlobClient(req.ref.blob)
      const given = req.content.contentMd5
      if (req.source.size > (this.#opts.singlePutMax ?? this.#opts.blockSize)) return { ...await this.#putBlocks(blob, req, given, link.signal, tally), requests: tally.requests }
      const md5 = given ?? await hashSource(req.source, link.signal)
      try {
        return { ...await this.#putBlob(blob, req, md5, link.signal, tally), requests: tally.requests }
      } catch (err) {
        if (given === undefined || !isMd5Refusal(err)) throw err
        return { ...await this.#putBlocks(blob, req, given, link.signal, tally), requests: tally.requests }
      }
    } catch (err) {
      throw toCacheError(err, `upload of ${req.ref.container}/${req.ref.blob}`, link.signal)
    } finally {
      link.dispose()
    }
  }

  async head (ref: UpstreamRef, opts: { signal?: AbortSignal } = {}): Promise<UpstreamProps | undefined> {
    const link = this.#link(opts.signal)
    try {
      const blob = (await this.#client()).getContainerClient(ref.container).getBlobClient(ref.blob)
      return propsOf(await this.#call('GetBlobProperties', link.signal, undefined, async (s) => await blob.getProperties({ abortSignal: s })))
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw toCacheError(err, `Get Blob Properties of ${ref.container}/${ref.blob}`, link.signal)
    } finally {
      link.dispose()
    }
  }

  async download (ref: UpstreamRef, opts: { range?: { start: number, end: number }, ifMatch?: string, signal?: AbortSignal } = {}): Promise<Readable> {
    const link = this.#link(opts.signal)
    let body: Readable
    try {
      const blob = (await this.#client()).getContainerClient(ref.container).getBlobClient(ref.blob)
      const offset = opts.range?.start ?? 0
      const count = opts.range === undefined ? undefined : opts.range.end - opts.range.start + 1
      const res = await this.#call('GetBlob', link.signal, undefined, async (s) => await blob.download(offset, count, {
        abortSignal: s,
        maxRetryRequests: 0,
        ...(opts.ifMatch === undefined ? {} : { conditions: { ifMatch: quote(opts.ifMatch) } })
      }))
      if (res.readableStreamBody === undefined) throw new CacheError('CC_ERR_INTERNAL', 'Get Blob answered without a body')
      body = res.readableStreamBody as Readable
    } catch (err) {
      link.dispose()
      throw toCacheError(err, `Get Blob ${ref.container}/${ref.blob}`, link.signal, 'CC_ERR_OBJECT_NOT_FOUND')
    }
    const metrics = this.#opts.metrics
    const out = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        metrics.upstreamBytes.inc({ direction: 'in' }, chunk.length)
        cb(null, chunk)
      }
    })
    // Mid-body, a lost connection is an upstream failure (the SDK calls it an AbortError).
    body.on('error', (err) => out.destroy(err instanceof CacheError || link.signal.aborted
      ? toCacheError(err, `Get Blob ${ref.container}/${ref.blob}`, link.signal)
      : new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', `Get Blob ${ref.container}/${ref.blob}: the response body failed: ${describe(err)}`, { cause: err })))
    out.on('close', () => {
      link.dispose()
      body.destroy()
    })
    body.pipe(out)
    return out
  }

  async delete (ref: UpstreamRef, opts: { ifMatch?: string } = {}): Promise<boolean> {
    const link = this.#link()
    try {
      const blob = (await this.#client()).getContainerClient(ref.container).getBlobClient(ref.blob)
      await this.#call('DeleteBlob', link.signal, undefined, async (s) => await blob.delete({
        abortSignal: s,
        ...(opts.ifMatch === undefined ? {} : { conditions: { ifMatch: quote(opts.ifMatch) } })
      }))
      return true
    } catch (err) {
      const status = statusOf(err)
      if (status === 404 || status === 412) return false
      throw toCacheError(err, `Delete Blob ${ref.container}/${ref.blob}`, link.signal)
    } finally {
      link.dispose()
    }
  }

  async list (container: string, query: UpstreamListQuery): Promise<UpstreamListPage> {
    const link = this.#link()
    try {
      const client = (await this.#client()).getContainerClient(container)
      const paging = { continuationToken: query.marker === '' ? undefined : query.marker, maxPageSize: query.maxResults }
      const page = await this.#call('ListBlobs', link.signal, undefined, async (s) => {
        const options = { prefix: query.prefix === '' ? undefined : query.prefix, includeMetadata: true, abortSignal: s }
        const pages = query.delimiter === undefined || query.delimiter === ''
          ? client.listBlobsFlat(options).byPage(paging)
          : client.listBlobsByHierarchy(query.delimiter, options).byPage(paging)
        return (await pages.next()).value
      })
      const items: UpstreamListItem[] = []
      for (const b of page?.segment.blobItems ?? []) items.push({ kind: 'blob', name: b.name, props: propsOf({ ...b.properties, metadata: b.metadata }) })
      const prefixes = page !== undefined && 'blobPrefixes' in page.segment ? page.segment.blobPrefixes ?? [] : []
      for (const p of prefixes) items.push({ kind: 'prefix', name: p.name })
      if (prefixes.length > 0) items.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
      const next = page?.continuationToken
      return next === undefined || next === '' ? { items } : { items, next }
    } catch (err) {
      if (statusOf(err) === 404 && azureCodeOf(err) === 'ContainerNotFound') return { items: [] }
      throw toCacheError(err, `List Blobs in ${container}`, link.signal)
    } finally {
      link.dispose()
    }
  }

  async close (): Promise<void> {
    this.#closing.abort(new CacheError('CC_ERR_CLIENT_ABORTED', 'the upstream is closing'))
  }

  // ---------------------------------------------------------------------------------------------

  async #client (): Promise<BlobServiceClient> {
    this.#service ??= createBlobServiceClient({
      connectionString: this.#opts.connectionString,
      accountUrl: this.#opts.accountUrl,
      policy: countingPolicy(this.#opts.metrics, this.#bucket)
    })
    return await this.#service
  }

  /** A signal that aborts with `signal` or when the upstream closes. */
  #link (signal?: AbortSignal): Linked {
    if (this.#closing.signal.aborted) throw new CacheError('CC_ERR_CLIENT_ABORTED', 'the upstream is closed')
    return linkSignals(this.#closing.signal, signal)
  }

  /** One REST operation with retries; `fn` makes exactly one HTTP request per call. */
  async #call<T> (operation: UpstreamOperation, signal: AbortSignal, tally: Tally | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return await withRetry(async () => {
      if (tally !== undefined) tally.requests++
      return await fn(signal)
    }, {
      ...this.#retry,
      operation,
      signal,
      onRetry: (err, retry, delayMs) => {
        this.#opts.metrics.upstreamRetries.inc({ operation })
        this.#opts.log?.warn({ operation, retry, delayMs, err: describe(err) }, 'upstream request failed; retrying')
      }
    })
  }

  /**
   * Create Container once per process; a failure is not remembered. The creation is shared by
   * every caller waiting for it, so it runs under the upstream's own signal: a caller that
   * aborts stops waiting, the creation goes on for the others.
   */
  async #ensure (container: string, signal: AbortSignal, tally?: Tally): Promise<void> {
    const client = (await this.#client()).getContainerClient(container)
    let pending = this.#containers.get(container)
    if (pending === undefined) {
      const created = this.#call('CreateContainer', this.#closing.signal, tally, async (s) => { await client.createIfNotExists({ abortSignal: s }) })
      pending = created
      this.#containers.set(container, created)
      created.catch(() => { if (this.#containers.get(container) === created) this.#containers.delete(container) })
    }
    await untilAborted(pending, signal)
  }

  /** Runs `fn`; on 404 ContainerNotFound creates the container and runs it once more. */
  async #inContainer<T> (container: string, signal: AbortSignal, tally: Tally, fn: () => Promise<T>): Promise<T> {
    const before = this.#containers.get(container)
    try {
      return await fn()
    } catch (err) {
      if (statusOf(err) !== 404 || azureCodeOf(err) !== 'ContainerNotFound') throw err
      // Remembered as created and nothing created since, yet gone (deleted behind our back):
      // forget it. A creation started since (by a parallel block) is awaited instead.
      if (this.#containers.get(container) === before) this.#containers.delete(container)
      await this.#ensure(container, signal, tally)
      return await fn()
    }
  }

  async #putBlob (blob: BlockBlobClient, req: UploadRequest, md5: string, signal: AbortSignal, tally: Tally): Promise<{ etag: string, md5: string }> {
    const size = req.source.size
    const res = await this.#inContainer(req.ref.container, signal, tally, async () =>
      await this.#call('PutBlob', signal, tally, async (s) =>
        await sendFromSource(s, () => req.source.open(), async (body, bodySignal) => await blob.upload(body, size, {
          abortSignal: bodySignal,
          blobHTTPHeaders: blobHeaders(req.content, md5),
          metadata: toAzureMetadata(req.metadata)
        }))))
    this.#opts.metrics.upstreamBytes.inc({ direction: 'out' }, size)
    return { etag: unquote(res.etag), md5 }
  }

  async #putBlocks (blob: BlockBlobClient, req: UploadRequest, given: string | undefined, signal: AbortSignal, tally: Tally): Promise<{ etag: string, md5: string }> {
    const size = req.source.size
    const blockSize = Math.max(this.#opts.blockSize, Math.ceil(size / MAX_BLOCKS))
    const count = Math.ceil(size / blockSize) // 0 for an empty object: an empty block list
    const ids = blockIdsFor(req.version, count)
    // Aborted at the first failure, so that the other blocks and the hashing stop.
    const work = linkSignals(signal)
    let failure: unknown
    const fail = (err: unknown): void => {
      failure ??= err
      work.abort()
    }
    const hashing = given === undefined ? hashSource(req.source, work.signal) : Promise.resolve(given)
    hashing.catch(fail)
    let next = 0
    const stage = async (): Promise<void> => {
      while (failure === undefined && next < count) {
        const i = next++
        const start = i * blockSize
        const length = Math.min(blockSize, size - start)
        try {
          await this.#inContainer(req.ref.container, work.signal, tally, async () =>
            await this.#call('PutBlock', work.signal, tally, async (s) =>
              await sendFromSource(s, () => req.source.open({ start, end: start + length - 1 }), async (body, bodySignal) =>
                await blob.stageBlock(ids[i]!, body, length, { abortSignal: bodySignal }))))
          this.#opts.metrics.upstreamBytes.inc({ direction: 'out' }, length)
        } catch (err) {
          fail(err)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.min(Math.max(1, this.#opts.blockConcurrency), count) }, stage))
      const md5 = await hashing.catch((err: unknown) => { fail(err); return '' })
      if (failure !== undefined) throw failure
      const res = await this.#call('PutBlockList', signal, tally, async (s) => await blob.commitBlockList(ids, {
        abortSignal: s,
        blobHTTPHeaders: blobHeaders(req.content, md5),
        metadata: toAzureMetadata(req.metadata)
      }))
      return { etag: unquote(res.etag), md5 }
    } finally {
      work.dispose()
    }
  }
}

// -----------------------------------------------------------------------------------------------

interface Linked {
  readonly signal: AbortSignal
  abort (): void
  dispose (): void
}

/** A controller that aborts when any of `signals` does; `dispose()` unhooks it from them. */
function linkSignals (...signals: Array<AbortSignal | undefined>): Linked {
  const controller = new AbortController()
  const hooked: Array<[AbortSignal, () => void]> = []
  for (const s of signals) {
    if (s === undefined) continue
    if (s.aborted) {
      controller.abort(s.reason)
      break
    }
    const onAbort = (): void => controller.abort(s.reason)
    s.addEventListener('abort', onAbort, { once: true })
    hooked.push([s, onAbort])
  }
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    dispose: () => { for (const [s, onAbort] of hooked) s.removeEventListener('abort', onAbort) }
  }
}

/** `promise`, or CC_ERR_CLIENT_ABORTED as soon as `signal` aborts. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new CacheError('CC_ERR_CLIENT_ABORTED', 'cancelled', { cause: signal.reason })
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(new CacheError('CC_ERR_CLIENT_ABORTED', 'cancelled', { cause: signal.reason }))
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * One request whose body streams from the cache. A read error of the cache aborts the request
 * and is thrown as what it is (not an upstream failure: never retried); every stream opened is
 * destroyed when the request settles (the SDK pipes the body but never closes it on failure).
 */
async function sendFromSource<T> (signal: AbortSignal, open: () => Readable, send: (body: () => Readable, signal: AbortSignal) => Promise<T>): Promise<T> {
  const attempt = linkSignals(signal)
  const opened: Readable[] = []
  let readError: unknown
  try {
    return await send(() => {
      const stream = open()
      opened.push(stream)
      stream.on('error', (err) => {
        readError ??= err
        attempt.abort()
      })
      return stream
    }, attempt.signal)
  } catch (err) {
    if (readError !== undefined && !signal.aborted) throw sourceError(readError)
    throw err
  } finally {
    attempt.dispose()
    for (const stream of opened) stream.destroy()
  }
}

/** The base64 MD5 of the whole source, read in order and hashed on worker threads. */
async function hashSource (source: UploadSource, signal: AbortSignal): Promise<string> {
  const stream = addAbortSignal(signal, source.open())
  try {
    return (await md5OfStream(stream)).toString('base64')
  } catch (err) {
    if (signal.aborted) throw new CacheError('CC_ERR_CLIENT_ABORTED', 'upload cancelled', { cause: signal.reason })
    throw sourceError(err)
  } finally {
    stream.destroy()
  }
}

function sourceError (err: unknown): CacheError {
  return err instanceof CacheError ? err : new CacheError('CC_ERR_INTERNAL', 'reading the cached object for the upload failed', { cause: err })
}
