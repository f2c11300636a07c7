import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isCacheError } from '../../errors.js'
import type { ObjectService } from '../../core/object-service.js'
import { SessionIssuer, type SessionGrant } from './auth/sessions.js'
import { S3AuthError, verifySigV4, type SecretLookup } from './auth/sigv4.js'
import { AwsChunkedError } from './aws-chunked.js'
import type { Route, S3Context, S3FrontendOptions } from './context.js'
import { isDirectoryBucket } from './directory-buckets.js'
import { S3_ERRORS, S3Error, SPECIFIC_MESSAGES } from './errors.js'
import { resolveRoute, type Target } from './routes.js'
import { XML_DECL, el } from './xml.js'
import { beginErrorReply, closeGracefully, countClientTraffic, createRawBodyApp, limitRequestsInFlight, listenPort, setOperation } from '../shared/http-app.js'

const SERVER_HEADER = 'ckptcache-s3'

interface Shape { status: number, code: string, message: string, headers: Record<string, string>, detail: Record<string, string> }

function errorShape (err: unknown): Shape {
  // Body-stream failures reach the core as "client aborted" with the real reason as the cause.
  if (isCacheError(err, 'CC_ERR_CLIENT_ABORTED') && err.cause !== undefined) {
    const cause = err.cause
    if (cause instanceof S3Error || cause instanceof S3AuthError || cause instanceof AwsChunkedError || isCacheError(cause)) return errorShape(cause)
  }
  if (err instanceof S3Error) return { status: err.status, code: err.s3Code, message: err.message, headers: err.headers, detail: err.detail }
  if (err instanceof S3AuthError || err instanceof AwsChunkedError) return { status: err.status, code: err.s3Code, message: err.message, headers: {}, detail: err.detail }
  if (isCacheError(err)) {
    const shape = S3_ERRORS[err.code]
    const headers: Record<string, string> = {}
    const detail: Record<string, string> = {}
    if (err.code === 'CC_ERR_INVALID_RANGE' && err.detail.size !== undefined) {
      headers['content-range'] = `bytes */${err.detail.size}`
      detail.ActualObjectSize = String(err.detail.size)
      if (err.detail.range !== undefined) detail.RangeRequested = String(err.detail.range)
    }
    if (err.code === 'CC_ERR_SERVER_BUSY') headers['retry-after'] = String(err.detail.retryAfter ?? 1)
    if (err.code === 'CC_ERR_OBJECT_EXISTS' || err.code === 'CC_ERR_CONDITION_NOT_MET') detail.Condition = err.code === 'CC_ERR_OBJECT_EXISTS' ? 'If-None-Match' : 'If-Match'
    const message = SPECIFIC_MESSAGES.has(err.code) && err.message !== '' ? err.message : shape.message
    return { status: shape.status, code: shape.code, message, headers, detail }
  }
  const code = (err as { code?: string }).code
  if (code === 'FST_ERR_BAD_URL') return { status: 400, code: 'InvalidURI', message: 'Couldn\'t parse the specified URI.', headers: {}, detail: {} }
  return { status: 500, code: 'InternalError', message: S3_ERRORS.CC_ERR_INTERNAL.message, headers: {}, detail: {} }
}

function sendError (err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const e = errorShape(err)
  if (!beginErrorReply(err, e.status, request, reply)) return
  const req = request.raw
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v)
  if (request.method === 'HEAD' || e.status === 304) {
    reply.removeHeader('content-type')
    reply.send()
    return
  }
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  // S3 names the missing key or bucket (boto3 exposes them as Error['Key'] / Error['BucketName']).
  if (e.code === 'NoSuchKey' || e.code === 'NoSuchBucket') {
    try {
      const target = parseTarget(req.url ?? '/')
      if (e.code === 'NoSuchKey' && target.key !== '') e.detail = { Key: target.key, ...e.detail }
      if (e.code === 'NoSuchBucket' && target.bucket !== '') e.detail = { BucketName: target.bucket, ...e.detail }
    } catch {}
  }
  let body = `${XML_DECL}<Error>${el('Code', e.code)}${el('Message', e.message)}`
  for (const [k, v] of Object.entries(e.detail)) if (/^[A-Za-z][A-Za-z0-9-]*$/.test(k)) body += el(k, v)
  body += `${el('Resource', safeDecode(path))}${el('RequestId', request.id)}</Error>`
  reply.header('content-type', 'application/xml').send(body)
}

function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

/**
 * Path-style target: `/<bucket>/<key>`. The key is everything after the bucket's slash,
 * percent-decoded, `//` kept (a key may start with `/`); the JS SDK's `/<bucket>//?sub` forms
 * address the bucket. For a directory bucket the JS SDK puts `//` between bucket and key
 * (`/<bucket>//<key>`, and `/<bucket>//` for the bucket itself), so there one more leading
 * slash belongs to the separator.
 */
function parseTarget (url: string): Target {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
  const rest = path.startsWith('/') ? path.slice(1) : path
  const slash = rest.indexOf('/')
  const rawBucket = slash === -1 ? rest : rest.slice(0, slash)
  let rawKey = slash === -1 ? '' : rest.slice(slash + 1)
  let bucket: string
  let key: string
  try {
    bucket = decodeURIComponent(rawBucket)
    if (rawKey.startsWith('/') && isDirectoryBucket(bucket)) rawKey = rawKey.slice(1)
    key = decodeURIComponent(rawKey)
  } catch {
    throw new S3Error(400, 'InvalidURI', 'Couldn\'t parse the specified URI.')
  }
  return { bucket, key, query }
}

/** A session reaches its own bucket only, and a ReadOnly one only reads. */
function authorizeSession (session: SessionGrant, bucket: string, route: Route, method: string): void {
  if (route.op === 'CreateSession') return // refused by the handler, with its own message
  if (bucket !== session.bucket) throw new S3Error(403, 'AccessDenied', 'The session token does not grant access to this bucket.')
  if (session.mode === 'ReadOnly' && method !== 'GET' && method !== 'HEAD') {
    throw new S3Error(403, 'AccessDenied', 'The session is ReadOnly: this operation needs a ReadWrite session.')
  }
}

export interface S3Frontend {
  app: FastifyInstance
  listen (host: string, port: number): Promise<number>
  close (): Promise<void>
}

/** Builds the S3 REST front end over the object core. */
export function createS3Frontend (service: ObjectService, options: S3FrontendOptions, logger: FastifyBaseLogger): S3Frontend {
  const app = createRawBodyApp(logger, () => randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase())

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-amz-request-id', request.id)
    reply.header('x-amz-id-2', randomBytes(24).toString('base64'))
    reply.header('server', SERVER_HEADER)
  })
  if (options.metrics !== undefined) countClientTraffic(app, 's3', options.metrics)
  if (options.maxRequests !== undefined) limitRequestsInFlight(app, options.maxRequests)
  app.setErrorHandler((err, request, reply) => { sendError(err, request, reply) })
  app.setNotFoundHandler((request, reply) => { sendError(new S3Error(400, 'InvalidURI', 'Couldn\'t parse the specified URI.'), request, reply) })

  const keys = new Map(options.credentials.map((c) => [c.accessKeyId, c.secretAccessKey]))
  const sessions = new SessionIssuer((id) => keys.get(id), options.sessionTtlMs)

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const raw = request.raw
    const url = raw.url ?? '/'
    let session: SessionGrant | undefined
    // A long-term key, or S3 Express session credentials presented with their token.
    const lookup: SecretLookup = (accessKeyId, { sessionToken }) => {
      if (sessionToken !== undefined) {
        const verified = sessions.verify(accessKeyId, sessionToken)
        session = verified.grant
        return { secretAccessKey: verified.secretAccessKey }
      }
      const secret = keys.get(accessKeyId)
      return secret === undefined ? undefined : { secretAccessKey: secret }
    }
    const auth = verifySigV4({ method: request.method, url, headers: raw.headers, rawHeaders: raw.rawHeaders, now: new Date() }, lookup)
    if (auth === undefined) throw new S3Error(403, 'AccessDenied', 'Access Denied')
    const target = parseTarget(url)
    const route = resolveRoute(request.method, target, raw.headers, auth.service)
    setOperation(request, route.op)
    if (session !== undefined) authorizeSession(session, target.bucket, route, request.method)
    request.log.debug({ op: route.op, bucket: target.bucket, service: auth.service, session: session !== undefined }, 's3 request')
    const ac = new AbortController()
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort() })
    const ctx: S3Context = {
      req: request,
      reply,
      raw,
      bucket: target.bucket,
      key: target.key,
      query: target.query,
      service,
      auth,
      ...(session === undefined ? {} : { session }),
      sessions,
      requestId: request.id,
      signal: ac.signal
    }
    await route.handler(ctx)
    return reply
  }
  app.route({ method: ['GET', 'HEAD', 'PUT', 'DELETE', 'POST'], url: '/*', handler })

  return {
    app,
    listen: async (host: string, port: number) => listenPort(app, host, port, 's3 front end'),
    close: async () => closeGracefully(app)
  }
}
