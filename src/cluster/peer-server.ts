/**
 * The peer API server (protocol.ts) on plain node:http: every request is
 * verified with the cluster secret first (auth.ts), then dispatched to the
 * PeerHandler. Object bodies stream both ways with backpressure; a replica's
 * body reaches the handler through a check that errors instead of passing on
 * bytes that are not the signed ones: chunk by chunk (chunk-signing.ts), or
 * for a body signed whole, a SHA-256 that errors instead of ending. So
 * nothing unsigned is committed. A peer that goes away aborts the work
 * behind its request.
 */
import { createHash, type Hash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CacheError, isCacheError } from '../errors.js'
import { PeerVerifier, type VerifyResult } from './auth.js'
import { framedLength, STREAMING_PAYLOAD } from './chunk-signing.js'
import {
  decodeWireMeta, errorBody, formatContentRange, H_ETAG, H_META, encodeWireMeta, parsePeerPath,
  parseRangeHeader, routeMethod, RPC_BODY_MAX, statusForCode, type PeerRoute
} from './protocol.js'
import type { PeerHandler, WireMeta } from './types.js'
import type { Log } from '../log.js'

export type PeerServerLog = Pick<Log, 'warn' | 'error'>

export interface PeerServerOptions {
  handler: PeerHandler
  secret: string
  replayWindowMs: number
  log: PeerServerLog
  /** Requests still running this long after close() began are cut. */
  closeGraceMs?: number
  /** Bound of the verifier's nonce memory. */
  maxNonces?: number
}

export interface PeerServer {
  /** Listens; resolves with the port (useful with port 0). */
  listen (host: string, port: number): Promise<number>
  close (): Promise<void>
}

/** What a verified request's signature covers of its body. */
type Signed = Pick<Extract<VerifyResult, { ok: true }>, 'contentSha256' | 'signature'>

const DEFAULT_CLOSE_GRACE_MS = 2000
/** Buffer of a replica body between the socket and the handler (either side of the digest check). */
const BODY_HIGH_WATER_MARK = 1024 * 1024
/** Seconds a peer refused for lack of nonce memory is asked to wait. */
const NONCE_BUSY_RETRY_S = 1

export function createPeerServer (opts: PeerServerOptions): PeerServer {
  const { handler, log } = opts
  const verifier = new PeerVerifier({ secret: opts.secret, replayWindowMs: opts.replayWindowMs, maxNonces: opts.maxNonces })
  const server = createServer({
    maxHeaderSize: 64 * 1024,
    keepAlive: true,
    keepAliveTimeout: 65_000,
    requestTimeout: 0,
    headersTimeout: 60_000
  }, (req, res) => { void serve(req, res) })

  async function serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? ''
    const target = req.url ?? ''
    const path = target.split('?', 1)[0] as string
    try {
      const auth = verifier.verify(method, target, req.headers)
      if (!auth.ok) {
        if (auth.busy !== true) throw new CacheError('CC_ERR_PEER_AUTH', `Peer request refused: ${auth.reason}`)
        log.warn({ remote: req.socket.remoteAddress, method, path, reason: auth.reason }, 'peer request refused for now')
        throw new CacheError('CC_ERR_SERVER_BUSY', `Peer request refused for now: ${auth.reason}`, { detail: { retryAfter: NONCE_BUSY_RETRY_S } })
      }
      const route = parsePeerPath(target)
      if (route === undefined) throw routeError(404, `No peer API route ${path}`)
      if (route.kind === 'bad') throw new CacheError('CC_ERR_INVALID_INPUT', route.reason)
      const allowed = routeMethod(route)
      if (!allowed.split(',').includes(method)) {
        res.setHeader('allow', allowed)
        throw routeError(405, `${method} is not allowed on ${path}`)
      }
      await dispatch(route, req, res, auth)
    } catch (err) {
      answerError(err, req, res, method, path)
    }
  }

  async function dispatch (route: Exclude<PeerRoute, { kind: 'bad' }>, req: IncomingMessage, res: ServerResponse, signed: Signed): Promise<void> {
    if (route.kind === 'probe') {
      sendJson(res, 200, handler.probe())
    } else if (route.kind === 'rpc') {
      const body = await readBody(req, RPC_BODY_MAX)
      if (createHash('sha256').update(body).digest('hex') !== signed.contentSha256) {
        throw new CacheError('CC_ERR_PEER_AUTH', 'Peer request refused: the body does not match its signed digest')
      }
      let args: unknown
      try { args = JSON.parse(body.toString('utf8')) } catch { throw new CacheError('CC_ERR_INVALID_INPUT', `The argument of ${route.method} is not JSON`) }
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new CacheError('CC_ERR_INVALID_INPUT', `The argument of ${route.method} is not an object`)
      const fn = handler[route.method] as (a: unknown) => Promise<unknown>
      const result = await fn.call(handler, args)
      sendJson(res, 200, result ?? {})
    } else if (req.method === 'GET') {
      await readObject(route.container, route.name, req, res)
    } else {
      await writeObject(route.container, route.name, req, res, signed)
    }
  }

  async function readObject (container: string, name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rangeHeader = req.headers.range
    const etag = req.headers[H_ETAG]
    const { meta, range, body } = handler.read({
      container,
      name,
      ...(rangeHeader === undefined ? {} : { range: parseRangeHeader(rangeHeader) }),
      ...(typeof etag === 'string' ? { etag } : {})
    })
    // A peer that leaves mid-body destroys `res`, and pipeline then destroys the handler's stream.
    try {
      res.strictContentLength = true
      res.writeHead(range === undefined ? 200 : 206, {
        'content-type': 'application/octet-stream',
        'content-length': String(range === undefined ? meta.size : range.end - range.start + 1),
        ...(range === undefined ? {} : { 'content-range': formatContentRange(range, meta.size) }),
        [H_META]: encodeWireMeta(meta)
      })
    } catch (err) {
      body.destroy()
      throw err
    }
    try {
      await pipeline(body, res)
    } catch (err) {
      if (!isPrematureClose(err)) log.warn({ err, container, name }, 'peer read failed after its headers were sent')
      res.destroy()
    }
  }

  async function writeObject (container: string, name: string, req: IncomingMessage, res: ServerResponse, signed: Signed): Promise<void> {
    const meta = decodeWireMeta(header(req, H_META))
    if (meta.container !== container || meta.name !== name) throw new CacheError('CC_ERR_INVALID_INPUT', `${H_META} names ${meta.container}/${meta.name}, the path ${container}/${name}`)
    const chunked = signed.contentSha256 === STREAMING_PAYLOAD
    const length = chunked ? framedLength(meta.size) : meta.size
    const declared = header(req, 'content-length')
    if (declared === undefined || !/^\d{1,16}$/.test(declared) || Number(declared) !== length) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `A replica's content-length (${declared ?? 'none'}) must be ${length} (its size ${meta.size}${chunked ? ', framed' : ''})`)
    }
    const gone = new AbortController()
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort(new CacheError('CC_ERR_CLIENT_ABORTED', 'The peer closed the connection during a replica write'))
    }
    res.once('close', onClose)
    const body = chunked ? verifier.chunkVerifier(signed.signature, meta.size) : new SignedBody(signed.contentSha256, meta)
    // Not pipeline(): a body the handler leaves unread is dropped here without destroying the
    // request, so the answer (e.g. 507) still reaches the peer.
    const cut = (err: Error): void => { if (!body.destroyed) body.destroy(err) }
    const onReqClose = (): void => {
      if (!req.complete) cut(new CacheError('CC_ERR_CLIENT_ABORTED', 'The peer closed the connection during a replica write'))
    }
    req.on('error', cut)
    req.once('close', onReqClose)
    req.pipe(body)
    try {
      await handler.write(meta, body, gone.signal)
    } finally {
      res.off('close', onClose)
      req.off('error', cut)
      req.off('close', onReqClose)
      req.on('error', () => {})
      req.unpipe(body)
      if (!body.readableEnded && !body.destroyed) body.destroy()
    }
    res.writeHead(201, { 'content-length': '0' })
    res.end()
  }

  function answerError (err: unknown, req: IncomingMessage, res: ServerResponse, method: string, path: string): void {
    if (res.headersSent) {
      log.warn({ err, method, path }, 'peer request failed after its headers were sent; closing the connection')
      res.destroy()
      return
    }
    const e = isCacheError(err) ? err : new CacheError('CC_ERR_INTERNAL', undefined, { cause: err })
    const status = routeStatus.get(e) ?? statusForCode(e.code)
    if (e.code === 'CC_ERR_PEER_AUTH') log.warn({ remote: req.socket.remoteAddress, method, path, reason: e.message }, 'peer request refused')
    else if (status === 500 && !res.destroyed) log.error({ err, method, path }, 'peer request failed')
    if (res.destroyed || req.socket.destroyed) return
    const headers: Record<string, string> = {}
    if (e.code === 'CC_ERR_SERVER_BUSY' && e.detail.retryAfter !== undefined) headers['retry-after'] = String(e.detail.retryAfter)
    // A body nobody read would have to be drained for the connection to serve again: close it instead.
    if (!req.complete) headers.connection = 'close'
    sendJson(res, status, errorBody(e), headers)
  }

  return {
    async listen (host: string, port: number): Promise<number> {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => { server.off('error', reject); resolve() })
      })
      const addr = server.address()
      if (addr === null || typeof addr === 'string') throw new CacheError('CC_ERR_INTERNAL', 'The peer server has no TCP address')
      return addr.port
    },
    async close (): Promise<void> {
      if (!server.listening) return
      const sweep = setInterval(() => server.closeIdleConnections(), 100)
      const cut = setTimeout(() => server.closeAllConnections(), opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS)
      try {
        await new Promise<void>((resolve, reject) => {
          server.close(err => { err === undefined ? resolve() : reject(err) })
          server.closeIdleConnections()
        })
      } finally {
        clearInterval(sweep)
        clearTimeout(cut)
      }
    }
  }
}

/**
 * A replica body on its way to the handler: passes the bytes on while hashing
 * them and, at the end, errors (CC_ERR_PEER_AUTH) instead of ending when they
 * are not the signed ones or not `meta.size` of them.
 */
class SignedBody extends Transform {
  readonly #hash: Hash = createHash('sha256')
  readonly #signed: string
  readonly #size: number
  #seen = 0

  constructor (signedSha256: string, meta: WireMeta) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK })
    this.#signed = signedSha256
    this.#size = meta.size
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#size) {
      cb(new CacheError('CC_ERR_PEER_AUTH', `The replica body is longer than its size ${this.#size}`))
      return
    }
    this.#hash.update(chunk)
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    if (this.#seen !== this.#size) {
      cb(new CacheError('CC_ERR_PEER_AUTH', `The replica body has ${this.#seen} bytes, its size is ${this.#size}`))
    } else if (this.#hash.digest('hex') !== this.#signed) {
      cb(new CacheError('CC_ERR_PEER_AUTH', 'The replica body does not match its signed digest'))
    } else {
      cb()
    }
  }
}

async function readBody (req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > max) throw new CacheError('CC_ERR_BODY_TOO_LARGE', `A peer RPC body is at most ${max} bytes`)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > max) throw new CacheError('CC_ERR_BODY_TOO_LARGE', `A peer RPC body is at most ${max} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** Statuses of route errors (no such route, wrong method): CC_ERR_INVALID_INPUT, but not a 400. */
const routeStatus = new WeakMap<CacheError, number>()

function routeError (status: number, message: string): CacheError {
  const err = new CacheError('CC_ERR_INVALID_INPUT', message)
  routeStatus.set(err, status)
  return err
}

function sendJson (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value))
  res.writeHead(status, { 'content-type': 'application/json', ...headers, 'content-length': String(body.length) })
  res.end(body)
}

function header (req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function isPrematureClose (err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
}
