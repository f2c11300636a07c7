import type { NodeMetrics } from '../../admin/metrics.js'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ObjectService } from '../../core/object-service.js'
import type { SessionGrant, SessionIssuer } from './auth/sessions.js'
import type { SigV4Auth } from './auth/sigv4.js'
import { S3Error } from './errors.js'

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
}

export interface S3FrontendOptions {
  credentials: S3Credentials[]
  /** Requests in flight before the front end answers 503 SlowDown (default: unlimited). */
  maxRequests?: number
  /** Lifetime of CreateSession credentials (default: five minutes, as S3 Express). */
  sessionTtlMs?: number
  /** Where client requests and bytes are counted. */
  metrics?: NodeMetrics
}

/** Everything an operation handler needs about one request. */
export interface S3Context {
  req: FastifyRequest
  reply: FastifyReply
  raw: IncomingMessage
  bucket: string
  key: string
  query: URLSearchParams
  service: ObjectService
  auth: SigV4Auth
  /** The S3 Express session the request was signed with, if any (already checked against the bucket and mode). */
  session?: SessionGrant
  /** Issues CreateSession credentials. */
  sessions: SessionIssuer
  requestId: string
  /** Aborted when the client goes away. */
  signal: AbortSignal
}

export type Handler = (ctx: S3Context) => Promise<void>

export type ResourceLevel = 'service' | 'bucket' | 'object'

export interface Route {
  /** S3 operation name, for logs. */
  op: string
  handler: Handler
}

/** A header's single value (first one if repeated). */
export function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Reads a small request body (XML documents) with a hard cap. */
export async function readSmallBody (body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > limit) throw new S3Error(400, 'MaxMessageLengthExceeded', 'Your request was too big.')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

export function invalidArgument (message: string, name: string, value: string): S3Error {
  return new S3Error(400, 'InvalidArgument', message, { ArgumentName: name, ArgumentValue: value })
}

/** A non-negative integer query parameter with a default and an upper bound. */
export function intParam (query: URLSearchParams, name: string, dflt: number, max: number): number {
  const v = query.get(name)
  if (v === null || v === '') return dflt
  if (!/^\d+$/.test(v)) throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, v)
  return Math.min(Number(v), max)
}
