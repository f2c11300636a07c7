import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { NodeMetrics } from '../../admin/metrics.js'
import { CacheError, isCacheError } from '../../errors.js'

/**
 * HTTP plumbing both protocol front ends share: a fastify instance that never
 * parses bodies (handlers stream `request.raw`), draining behind early errors,
 * listening, and a bounded graceful close.
 */

/**
 * An error answered before the body was read drains up to this much of it,
 * so the client (still sending) reads the error instead of a reset; above it
 * the connection is closed.
 */
const DRAIN_LIMIT = 256 * 1024 * 1024
const DRAIN_TIMEOUT_MS = 5000
/** In-flight requests get this long to finish on shutdown. */
const SHUTDOWN_GRACE_MS = 30_000

export function createRawBodyApp (logger: FastifyBaseLogger, genReqId: () => string): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => createServer({
      maxHeaderSize: 64 * 1024,
      requestTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 65_000
    }, handler)
  })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => { done(null) })
  return app
}

/** Seconds a client refused for overload is asked to wait (`Retry-After`). */
const BUSY_RETRY_AFTER_S = 1

/**
 * Bounds the requests in flight on one front end. A request past `max` is refused before its
 * body is read with CC_ERR_SERVER_BUSY (503 ServerBusy / SlowDown with Retry-After, which the
 * Azure and AWS SDKs retry with backoff) instead of queueing without limit. Register after
 * the hooks that set a front end's per-response headers.
 */
export function limitRequestsInFlight (app: FastifyInstance, max: number): void {
  let inFlight = 0
  app.addHook('onRequest', async (_request, reply) => {
    if (inFlight >= max) {
      throw new CacheError('CC_ERR_SERVER_BUSY', `More than ${max} requests are in flight; retry after ${BUSY_RETRY_AFTER_S} s.`, { detail: { retryAfter: BUSY_RETRY_AFTER_S } })
    }
    inFlight++
    reply.raw.once('close', () => { inFlight-- })
  })
}

/**
 * The first step of every error response. Once a body has started, an error
 * destroys the connection (a truncated body with a success status is the one
 * thing a client cannot detect) and this returns false. Otherwise it logs
 * errors that are really ours (5xx not from the catalogue's own codes), settles
 * an unread request body, and sets the status.
 */
export function beginErrorReply (err: unknown, status: number, request: FastifyRequest, reply: FastifyReply): boolean {
  if (reply.raw.headersSent) {
    request.log.warn({ err }, 'error after response headers were sent; closing the connection')
    reply.raw.destroy()
    return false
  }
  if (status >= 500 && !(isCacheError(err) && err.code !== 'CC_ERR_INTERNAL')) request.log.error({ err }, 'internal error')
  settleUnreadBody(request, reply)
  reply.code(status)
  return true
}

/**
 * Before an error response: a body the handler did not read is drained (up to
 * DRAIN_LIMIT, and only for DRAIN_TIMEOUT_MS after the answer) or the
 * connection is marked to close.
 */
export function settleUnreadBody (request: FastifyRequest, reply: FastifyReply): void {
  const req = request.raw
  if (req.complete || req.destroyed) return
  req.unpipe()
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > DRAIN_LIMIT) {
    reply.header('connection', 'close')
    return
  }
  // A client that stops sending once it has its answer must not hold the connection open.
  req.resume()
  reply.raw.once('finish', () => {
    if (req.complete) return
    const timer = setTimeout(() => req.socket.destroy(), DRAIN_TIMEOUT_MS).unref()
    req.once('end', () => clearTimeout(timer))
  })
}

export async function listenPort (app: FastifyInstance, host: string, port: number, what: string): Promise<number> {
  await app.listen({ host, port })
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') throw new CacheError('CC_ERR_INTERNAL', `${what} has no TCP address`)
  return addr.port
}

/**
 * Stops accepting and waits for requests in flight. Connections that turn idle
 * after close() began (a keep-alive socket whose request just finished) would
 * otherwise linger until the keep-alive timeout, so they are closed as they
 * idle; requests still running after the grace period are cut.
 */
export async function closeGracefully (app: FastifyInstance): Promise<void> {
  await closeServer(app.server, async () => { await app.close() })
}

/**
 * `closeGracefully` for any node:http server: runs `close` (which stops accepting and resolves
 * once every connection has ended) while closing connections as they idle (`sweep` closes more,
 * e.g. sockets that never sent a request) and cutting the rest after `graceMs`.
 */
export async function closeServer (server: Server, close: () => Promise<void>, opts: { graceMs?: number, sweep?: () => void } = {}): Promise<void> {
  const sweep = (): void => {
    server.closeIdleConnections()
    opts.sweep?.()
  }
  const interval = setInterval(sweep, 100)
  const deadline = setTimeout(() => server.closeAllConnections(), opts.graceMs ?? SHUTDOWN_GRACE_MS)
  sweep()
  try {
    await close()
  } finally {
    clearInterval(interval)
    clearTimeout(deadline)
  }
}

/** The protocol operation a request resolved to, for the request counters. */
const operations = new WeakMap<FastifyRequest, string>()

export function setOperation (request: FastifyRequest, op: string): void {
  operations.set(request, op)
}

/**
 * Counts every answered request by front end and operation (`Rejected` when it failed before
 * routing: authentication, overload, bad URI), and the body bytes each way as declared by
 * Content-Length (bodies here are always sized; a request cut short counts what it declared).
 */
export function countClientTraffic (app: FastifyInstance, frontend: 'blob' | 's3', metrics: NodeMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.clientRequests.inc({ frontend, operation: operations.get(request) ?? 'Rejected' })
    const bytesIn = Number(request.headers['content-length'] ?? 0)
    if (bytesIn > 0) metrics.clientBytes.inc({ frontend, direction: 'in' }, bytesIn)
    const bytesOut = request.method === 'HEAD' ? 0 : Number(reply.getHeader('content-length') ?? 0)
    if (bytesOut > 0) metrics.clientBytes.inc({ frontend, direction: 'out' }, bytesOut)
  })
}
