/**
 * The `@azure/storage-blob` client behind the upstream adapter.
 *
 * - Credentials: a connection string (AccountKey or SAS, including path-style
 *   endpoints such as Azurite's `BlobEndpoint=http://127.0.0.1:PORT/devstoreaccount1`,
 *   which the SDK parses) or an account URL with `DefaultAzureCredential`
 *   (`@azure/identity`, imported only then). An account URL that carries a SAS
 *   query is used as it is, without a token credential.
 * - The SDK's own retries are off (`maxTries: 1`): `retry.ts` retries above
 *   the SDK, so every SDK call is exactly one HTTP request.
 * - One request policy sits in the SDK pipeline, so it sees every HTTP request
 *   really sent: it takes a token from the rate cap (waiting, not failing)
 *   and counts the request in `ckptcache_upstream_requests_total{operation,class}`.
 * - Its errors read (status, Azure error code) and turned into CacheErrors,
 *   the SDK error kept as `cause`.
 */
import {
  AnonymousCredential, BlobServiceClient, newPipeline,
  type RequestPolicy, type RequestPolicyFactory, type WebResource
} from '@azure/storage-blob'
import type { NodeMetrics, UpstreamOpClass } from '../admin/metrics.js'
import { CacheError, type ErrorCode } from '../errors.js'
import { describe, type TokenBucket } from './retry.js'

/** The Azure Blob REST operations the adapter sends. */
export type UpstreamOperation =
  | 'PutBlob' | 'PutBlock' | 'PutBlockList' | 'GetBlob'
  | 'GetBlobProperties' | 'DeleteBlob' | 'ListBlobs' | 'CreateContainer'

const DATA_OPERATIONS: ReadonlySet<string> = new Set(['PutBlob', 'PutBlock', 'PutBlockList', 'GetBlob'])

export function operationClass (operation: string): UpstreamOpClass {
  return DATA_OPERATIONS.has(operation) ? 'data' : 'metadata'
}

/** The REST operation of a request, from its method and its `comp` / `restype` query parameters. */
export function operationOf (method: string, url: string): UpstreamOperation | string {
  const q = new URL(url).searchParams
  const comp = q.get('comp')
  const container = q.get('restype') === 'container'
  switch (method.toUpperCase()) {
    case 'PUT':
      if (comp === 'block') return 'PutBlock'
      if (comp === 'blocklist') return 'PutBlockList'
      if (container && comp === null) return 'CreateContainer'
      return comp === null ? 'PutBlob' : `Put:${comp}`
    case 'GET':
      if (container && comp === 'list') return 'ListBlobs'
      return comp === null && !container ? 'GetBlob' : `Get:${comp ?? 'container'}`
    case 'HEAD':
      return comp === null && !container ? 'GetBlobProperties' : `Head:${comp ?? 'container'}`
    case 'DELETE':
      return comp === null && !container ? 'DeleteBlob' : `Delete:${comp ?? 'container'}`
    default:
      return method.toUpperCase()
  }
}

/** The pipeline policy that rate-caps and counts every HTTP request the SDK sends. */
export function countingPolicy (metrics: NodeMetrics, bucket: TokenBucket): RequestPolicyFactory {
  return {
    create (next: RequestPolicy): RequestPolicy {
      return {
        async sendRequest (request: WebResource) {
          await bucket.take(request.abortSignal)
          const operation = operationOf(request.method, request.url)
          metrics.upstreamRequests.inc({ operation, class: operationClass(operation) })
          return await next.sendRequest(request)
        }
      }
    }
  }
}

export interface AzureClientOptions {
  connectionString?: string
  accountUrl?: string
  policy: RequestPolicyFactory
}

/** Builds the service client (async: `DefaultAzureCredential` is imported on demand). */
export async function createBlobServiceClient (opts: AzureClientOptions): Promise<BlobServiceClient> {
  let url: string
  let credential: BlobServiceClient['credential']
  if (opts.connectionString !== undefined && opts.connectionString !== '') {
    let parsed: BlobServiceClient
    try {
      parsed = BlobServiceClient.fromConnectionString(opts.connectionString)
    } catch (err) {
      // The SDK's message may quote the string, which holds the key: say only what is wrong.
      throw new CacheError('CC_ERR_INVALID_INPUT', 'the upstream connection string is not an account-key or SAS connection string', { cause: new Error(err instanceof Error ? err.name : 'parse error') })
    }
    url = parsed.url
    credential = parsed.credential
  } else if (opts.accountUrl !== undefined && opts.accountUrl !== '') {
    url = opts.accountUrl
    if (new URL(url).search !== '') credential = new AnonymousCredential()
    else {
      const { DefaultAzureCredential } = await import('@azure/identity')
      credential = new DefaultAzureCredential()
    }
  } else {
    throw new CacheError('CC_ERR_INVALID_INPUT', 'the upstream needs a connection string or an account URL')
  }
  const pipeline = newPipeline(credential, { retryOptions: { maxTries: 1 }, userAgentOptions: { userAgentPrefix: 'ckptcache' } })
  pipeline.factories.push(opts.policy)
  return new BlobServiceClient(url, pipeline)
}

// ---- SDK errors ---------------------------------------------------------------------------------

interface ErrorShape {
  statusCode?: unknown
  code?: unknown
  message?: unknown
  details?: { errorCode?: unknown }
  response?: { headers?: { get?: (name: string) => string | undefined } }
}

export function statusOf (err: unknown): number | undefined {
  const status = (err as ErrorShape | null)?.statusCode
  return typeof status === 'number' ? status : undefined
}

/** Azure's error code: from the XML body, the SDK's `code`, or the `x-ms-error-code` header (HEAD has no body). */
export function azureCodeOf (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as ErrorShape
  const code = e.details?.errorCode ?? e.code ?? e.response?.headers?.get?.('x-ms-error-code')
  return typeof code === 'string' ? code : undefined
}

/** Put Blob refused the Content-MD5 (Azure: 400 Md5Mismatch; Azurite: 400 InvalidOperation naming the MD5). */
export function isMd5Refusal (err: unknown): boolean {
  if (statusOf(err) !== 400) return false
  const code = azureCodeOf(err)
  const message = (err as ErrorShape).message
  return code === 'Md5Mismatch' || (code === 'InvalidOperation' && typeof message === 'string' && /md5/i.test(message))
}

const BY_STATUS: Record<number, ErrorCode> = { 412: 'CC_ERR_CONDITION_NOT_MET', 416: 'CC_ERR_INVALID_RANGE' }

/** Any failure as a CacheError; SDK errors stay reachable as `cause`. */
export function toCacheError (err: unknown, what: string, signal: AbortSignal, notFound: ErrorCode = 'CC_ERR_INTERNAL'): CacheError {
  if (err instanceof CacheError) return err
  if (signal.aborted) {
    return new CacheError('CC_ERR_CLIENT_ABORTED', `${what} was cancelled`, { cause: err })
  }
  const status = statusOf(err)
  const azureCode = azureCodeOf(err)
  let code: ErrorCode = status === undefined ? 'CC_ERR_INTERNAL' : BY_STATUS[status] ?? 'CC_ERR_INTERNAL'
  if (status === 404) code = azureCode === 'ContainerNotFound' && notFound === 'CC_ERR_INTERNAL' ? 'CC_ERR_CONTAINER_NOT_FOUND' : notFound
  if (status === 400 && azureCode === 'Md5Mismatch') code = 'CC_ERR_MD5_MISMATCH'
  if (status === 409 && azureCode === 'ContainerBeingDeleted') code = 'CC_ERR_CONTAINER_BEING_DELETED'
  return new CacheError(code, `${what}: ${describe(err)}`, { cause: err })
}
