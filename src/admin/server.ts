/**
 * The admin API of a node, on its own port (`--admin-port`, same `--host` as
 * the client ports):
 *
 *   GET  /metrics   Prometheus text format 0.0.4: the node's registry plus store gauges
 *   GET  /healthz   200 `ok` while the process serves
 *   GET  /readyz    200 once the node is ready for clients, else 503
 *   GET  /status    JSON { mode, store, writeback, cluster? } (`cluster` on a clustered node)
 *   POST /flush?prefix=CONTAINER[/PREFIX]
 *                   waits until everything dirty under the prefix (all when
 *                   absent) is clean upstream, streaming NDJSON progress lines
 *                   (`FlushProgressLine`) and a last line with `done: true`
 *   POST /drain     marks the node draining and hands what only it holds to
 *                   its peers, streaming NDJSON `DrainProgressLine`s the same
 *                   way; 409 on a node without a cluster
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
import type { ClusterStatus, DrainHandle, DrainProgress } from '../cluster/types.js'
import { isCacheError } from '../errors.js'
import { closeServer } from '../frontends/shared/http-app.js'
import type { StoreStats } from '../store/local-store.js'
import type { FlushHandle, Writeback } from '../upstream/types.js'
import type { Metrics } from './metrics.js'
import { RateEstimator, withRate, type FlushProgressLine } from './progress.js'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
export const NDJSON_CONTENT_TYPE = 'application/x-ndjson; charset=utf-8'
export const CACHE_ONLY_FLUSH_ERROR = 'cache-only mode has no upstream to flush to'
export const NO_CLUSTER_DRAIN_ERROR = 'this node is not part of a cluster (no --peers, --peers-file or --peers-dns): there are no peers to drain to'

/** One NDJSON line of `POST /drain`: the progress, the rate at which bytes reach peers and an ETA. */
export interface DrainProgressLine extends DrainProgress {
  /** Bytes per second handed to peers over the last few seconds; 0 before anything moved. */
  rateBytesPerS: number
  /** Seconds until done at that rate: 0 when done, null while there is no rate to go by. */
  etaS: number | null
  /** Set on a last line when the drain failed or the gateway stopped before it finished. */
  error?: string
}

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
  /** Milliseconds between flush and drain progress lines; 500 unless a test wants them faster. */
  flushIntervalMs?: number
  /** Starts (or returns the drain already under way of) a clustered node; absent on a single node. */
  drain?: () => DrainHandle
  /** The cluster as this node sees it; absent on a single node. */
  cluster?: () => ClusterStatus
}

export interface AdminServer {
  /** Resolves with the port listened on (the real one when `port` is 0). */
  listen (host: string, port: number): Promise<number>
  /** Ends open flush and drain streams with a last line saying so, then stops once requests in flight finish. */
  close (): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void

export function createAdminServer (deps: AdminDeps): AdminServer {
  registerStoreGauges(deps.metrics, deps.storeStats)
  const flushInterval = deps.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS
  /** Open progress streams (flush, drain), each with the function that ends it early. */
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
        const cluster = deps.cluster?.()
        sendJson(res, 200, { mode: writeback?.mode ?? 'cache-only', store: deps.storeStats(), writeback, ...(cluster === undefined ? {} : { cluster }) })
      }
    }],
    ['/flush', { method: 'POST', handle: (_req, res, url) => { startFlush(res, url) } }],
    ['/drain', { method: 'POST', handle: (_req, res, url) => { startDrain(res, url) } }]
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

  function startDrain (res: ServerResponse, url: URL): void {
    if (deps.drain === undefined) {
      sendJson(res, 409, { error: NO_CLUSTER_DRAIN_ERROR })
      return
    }
    const param = [...url.searchParams.keys()][0]
    if (param !== undefined) {
      sendJson(res, 400, { error: `unknown parameter ${JSON.stringify(param)} (POST /drain takes none)` })
      return
    }
    let handle: DrainHandle
    try {
      handle = deps.drain()
    } catch (err) {
      // E.g. no other node is live to take the copies.
      if (isCacheError(err, 'CC_ERR_PEER_UNAVAILABLE')) {
        sendJson(res, 503, { error: err.message })
        return
      }
      throw err
    }
    streamProgress(res, handle, {
      what: 'drain',
      movedBytes: (p) => p.handedBytes,
      line: (p, rate) => drainLine(p, rate),
      logFields: {}
    })
  }

  function streamFlush (res: ServerResponse, handle: FlushHandle, target: { container?: string, prefix?: string }): void {
    streamProgress(res, handle, {
      what: 'flush',
      movedBytes: (p) => p.cleanBytes,
      line: (p, rate): FlushProgressLine => withRate(p, rate),
      logFields: target
    })
  }

  /**
   * Streams a long operation's progress as NDJSON: a line at once, one per interval while the
   * client keeps up (a slow reader gets fewer lines, not a growing buffer), and a last line with
   * `done: true`, or `done: false` and `error` when it failed or the server is closing.
   */
  function streamProgress<P extends { done: boolean, startedMs: number }, L extends { error?: string }> (
    res: ServerResponse,
    handle: { progress: () => P, readonly done: Promise<void> },
    how: { what: string, movedBytes: (p: P) => number, line: (p: P, rateBytesPerS: number) => L, logFields: object }
  ): void {
    res.writeHead(200, { 'content-type': NDJSON_CONTENT_TYPE, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    const first = handle.progress()
    const rate = new RateEstimator(first.startedMs)
    const line = (last?: { done: boolean, error?: string }): string => {
      let p = handle.progress()
      if (last !== undefined) p = { ...p, done: last.done }
      const out = how.line(p, rate.sample(Date.now(), how.movedBytes(p)))
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
      deps.log.debug({ ...how.logFields }, `${how.what} progress stream closed by the client`)
    })
    handle.done.then(() => { finish({ done: true }) }, (err: unknown) => {
      deps.log.warn({ err, ...how.logFields }, `${how.what} failed`)
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

/** A drain progress line with rate and ETA (over the bytes still to hand over). */
export function drainLine (p: DrainProgress, rateBytesPerS: number): DrainProgressLine {
  const remaining = Math.max(0, p.bytes - p.handedBytes)
  let etaS: number | null = null
  if (p.done || remaining === 0) etaS = 0
  else if (rateBytesPerS > 0) etaS = Math.ceil(remaining / rateBytesPerS)
  return { ...p, rateBytesPerS: Math.round(rateBytesPerS), etaS }
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
