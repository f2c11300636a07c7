/**
 * The admin API of a node, on its own port (`--admin-port`, same `--host` as
 * the client ports):
 *
 *   GET  /metrics   Prometheus text format 0.0.4: the node's registry plus store gauges
 *   GET  /healthz   200 `ok` while the process serves
 *   GET  /readyz    200 once the node is ready for clients, else 503
 *   GET  /status    JSON { mode, store, writeback }
 *   POST /flush?prefix=CONTAINER[/PREFIX]
 *                   waits until everything dirty under the prefix (all when
 *                   absent) is clean upstream, streaming NDJSON progress lines
 *                   (`FlushProgressLine`) and a last line with `done: true`
 *
 * There is no authentication: anyone who can connect may read the metrics
 * and start a flush. The port binds loopback by default and must never be
 * exposed beyond the node. Where Prometheus scrapes it on the pod IP (a
 * Kubernetes DaemonSet with a non-loopback --host), restrict who can reach it
 * with a NetworkPolicy; that is a deployment concern, not something this
 * server enforces.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { isCacheError } from '../errors.js'
import { closeServer } from '../frontends/shared/http-app.js'
import type { StoreStats } from '../store/local-store.js'
import type { FlushHandle, Writeback } from '../upstream/types.js'
import type { Metrics } from './metrics.js'
import { RateEstimator, withRate, type FlushProgressLine } from './progress.js'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
export const NDJSON_CONTENT_TYPE = 'application/x-ndjson; charset=utf-8'
export const CACHE_ONLY_FLUSH_ERROR = 'cache-only mode has no upstream to flush to'

const DEFAULT_FLUSH_INTERVAL_MS = 500
/** Requests still open this long after close() began are cut. */
const SHUTDOWN_GRACE_MS = 5000
const MAX_PREFIX_LENGTH = 1024
/** A local container: an Azure container or an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens). */
const CONTAINER_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export interface AdminDeps {
  metrics: Metrics
  /** Absent in cache-only mode. */
  writeback?: Writeback
  storeStats: () => StoreStats
  ready: () => boolean
  log: FastifyBaseLogger
  /** Milliseconds between flush progress lines; 500 unless a test wants them faster. */
  flushIntervalMs?: number
}

export interface AdminServer {
  /** Resolves with the port listened on (the real one when `port` is 0). */
  listen (host: string, port: number): Promise<number>
  /** Ends open flush streams with a last line saying so, then stops once requests in flight finish. */
  close (): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void

export function createAdminServer (deps: AdminDeps): AdminServer {
  registerStoreGauges(deps.metrics, deps.storeStats)
  const flushInterval = deps.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS
  /** Open flush streams, each with the function that ends it early. */
  const streams = new Map<ServerResponse, (error: string) => void>()

  const routes = new Map<string, { method: string, handle: Handler }>([
    ['/metrics', { method: 'GET', handle: (_req, res) => { send(res, 200, PROMETHEUS_CONTENT_TYPE, deps.metrics.render()) } }],
    ['/healthz', { method: 'GET', handle: (_req, res) => { send(res, 200, 'text/plain; charset=utf-8', 'ok\n') } }],
    ['/readyz', {
      method: 'GET',
      handle: (_req, res) => {
        if (deps.ready()) send(res, 200, 'text/plain; charset=utf-8', 'ready\n')
        else send(res, 503, 'text/plain; charset=utf-8', 'not ready\n')
      }
    }],
    ['/status', {
      method: 'GET',
      handle: (_req, res) => {
        const writeback = deps.writeback?.status() ?? null
        sendJson(res, 200, { mode: writeback?.mode ?? 'cache-only', store: deps.storeStats(), writeback })
      }
    }],
    ['/flush', { method: 'POST', handle: (_req, res, url) => { startFlush(res, url) } }]
  ])

  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    // No endpoint reads a body; drain whatever comes so the connection stays usable.
    req.resume()
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://admin')
    } catch {
      sendJson(res, 400, { error: 'invalid request target' })
      return
    }
    const route = routes.get(url.pathname)
    if (route === undefined) {
      sendJson(res, 404, { error: `no such endpoint ${url.pathname} (endpoints: ${[...routes.keys()].join(', ')})` })
      return
    }
    if (req.method !== route.method) {
      res.setHeader('allow', route.method)
      sendJson(res, 405, { error: `${url.pathname} takes ${route.method}, not ${req.method ?? '?'}` })
      return
    }
    try {
      route.handle(req, res, url)
    } catch (err) {
      deps.log.error({ err, path: url.pathname }, 'admin request failed')
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' })
      else res.destroy()
    }
  })

  // Connections that never sent a request (an HTTP client may open one ahead of need) are not
  // idle to closeIdleConnections(); close() ends them itself.
  const unused = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    unused.add(socket)
    socket.once('close', () => { unused.delete(socket) })
  })
  server.on('request', (req: IncomingMessage) => { unused.delete(req.socket) })

  function startFlush (res: ServerResponse, url: URL): void {
    if (deps.writeback === undefined) {
      sendJson(res, 409, { error: CACHE_ONLY_FLUSH_ERROR })
      return
    }
    let target: { container?: string, prefix?: string }
    try {
      target = parseFlushTarget(url.searchParams)
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message })
      return
    }
    let handle: FlushHandle
    try {
      handle = deps.writeback.flush(target.container, target.prefix)
    } catch (err) {
      if (isCacheError(err, 'CC_ERR_INVALID_NAME') || isCacheError(err, 'CC_ERR_INVALID_INPUT') || isCacheError(err, 'CC_ERR_CONTAINER_NOT_FOUND')) {
        sendJson(res, 400, { error: err.message })
        return
      }
      throw err
    }
    streamFlush(res, handle, target)
  }

  function streamFlush (res: ServerResponse, handle: FlushHandle, target: { container?: string, prefix?: string }): void {
    res.writeHead(200, { 'content-type': NDJSON_CONTENT_TYPE, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    const first = handle.progress()
    const rate = new RateEstimator(first.startedMs)
    const line = (last?: { done: boolean, error?: string }): string => {
      let p = handle.progress()
      if (last !== undefined) p = { ...p, done: last.done }
      const out: FlushProgressLine = withRate(p, rate.sample(Date.now(), p.cleanBytes))
      if (last?.error !== undefined) out.error = last.error
      return JSON.stringify(out) + '\n'
    }
    let finished = false
    const stop = (): void => {
      finished = true
      clearInterval(timer)
      streams.delete(res)
    }
    /** The one line with `done: true` (or an error) and the end of the response. */
    const finish = (last: { done: boolean, error?: string }): void => {
      if (finished) return
      stop()
      res.end(line(last))
    }
    const tick = (): void => {
      if (finished) return
      if (handle.progress().done) finish({ done: true })
      // A client that reads slowly gets fewer lines rather than a growing buffer.
      else if (!res.writableNeedDrain) res.write(line())
    }
    const timer = setInterval(tick, flushInterval)
    streams.set(res, (error) => { finish({ done: false, error }) })
    res.on('close', () => {
      if (finished) return
      stop()
      deps.log.debug({ ...target }, 'flush progress stream closed by the client')
    })
    handle.done.then(() => { finish({ done: true }) }, (err: unknown) => {
      deps.log.warn({ err, ...target }, 'flush failed')
      finish({ done: false, error: err instanceof Error ? err.message : String(err) })
    })
    tick()
  }

  return {
    listen: (host, port) => new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve((server.address() as AddressInfo).port)
      })
    }),
    close: async () => {
      for (const end of [...streams.values()]) end('the gateway is shutting down')
      if (!server.listening) return
      await closeServer(server, async () => { await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) }, {
        graceMs: SHUTDOWN_GRACE_MS,
        sweep: () => { for (const socket of unused) socket.destroy() }
      })
    }
  }
}

/** `ckptcache_store_*` gauges, read from the store when scraped. */
function registerStoreGauges (metrics: Metrics, stats: () => StoreStats): void {
  metrics.gauge('ckptcache_store_capacity_bytes', 'Capacity of the local store in bytes.', () => stats().capacity)
  metrics.gauge('ckptcache_store_used_bytes', 'Bytes the local store holds or has reserved (objects, staged blocks, writes in progress).', () => stats().used)
  metrics.gauge('ckptcache_store_objects', 'Objects in the local store.', () => stats().objects)
}

/**
 * `prefix=CONTAINER[/PREFIX]` → the container and the name prefix in it; no `prefix` (or an
 * empty one) is everything. Throws an Error with a message for the client on bad input.
 */
export function parseFlushTarget (params: URLSearchParams): { container?: string, prefix?: string } {
  for (const key of params.keys()) {
    if (key !== 'prefix') throw new Error(`unknown parameter ${JSON.stringify(key)} (POST /flush takes only prefix=CONTAINER[/PREFIX])`)
  }
  const values = params.getAll('prefix')
  if (values.length > 1) throw new Error('prefix given more than once')
  const text = values[0] ?? ''
  if (text === '') return {}
  if (text.length > MAX_PREFIX_LENGTH) throw new Error(`prefix is longer than ${MAX_PREFIX_LENGTH} characters`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new Error('prefix contains a control character')
  const slash = text.indexOf('/')
  const container = slash === -1 ? text : text.slice(0, slash)
  const prefix = slash === -1 ? '' : text.slice(slash + 1)
  if (!CONTAINER_NAME.test(container)) {
    throw new Error(`invalid container ${JSON.stringify(container)} in prefix: expected CONTAINER[/PREFIX] with a container name of 3-63 lowercase letters, digits, dots and hyphens`)
  }
  return prefix === '' ? { container } : { container, prefix }
}

function send (res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body) + '\n')
}
