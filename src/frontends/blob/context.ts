import type { NodeMetrics } from '../../admin/metrics.js'
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ObjectService } from '../../core/object-service.js'
import type { AuthOutcome, SasPermission } from './auth/index.js'
import { BlobError } from './errors.js'

export interface BlobFrontendOptions {
  account: string
  accountKey: Buffer
  /** Requests in flight before the front end answers 503 ServerBusy (default: unlimited). */
  maxRequests?: number
  /** Uncommitted-block and listing limits etc. could go here; kept small on purpose. */
  maxListResults?: number
  /** Where client requests and bytes are counted. */
  metrics?: NodeMetrics
}

/** Everything an operation handler needs about one request. */
export interface BlobContext {
  req: FastifyRequest
  reply: FastifyReply
  raw: IncomingMessage
  account: string
  container: string
  blob: string
  query: URLSearchParams
  service: ObjectService
  options: BlobFrontendOptions
  auth: AuthOutcome
  /** `http://host[:port]/<account>` as the client addressed us. */
  endpoint: string
  requestId: string
  /** Aborted when the client goes away. */
  signal: AbortSignal
}

export type Handler = (ctx: BlobContext) => Promise<void>

export type ResourceLevel = 'service' | 'container' | 'blob'

export interface Route {
  /** Azure operation name, for logs and metrics. */
  op: string
  handler: Handler
  /** SAS permission the operation needs. */
  permission: SasPermission
  /** Writes Azure also allows with `c` (create) when the blob does not exist yet. */
  createAllowed?: boolean
}

/** Reads a small request body (block lists) with a hard cap. */
export async function readSmallBody (raw: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new BlobError(413, 'RequestBodyTooLarge', 'The request body is too large and exceeds the maximum permissible limit.')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}
