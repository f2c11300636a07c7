/**
 * The client side of the peer API (protocol.ts) over undici pools, every
 * request signed with the cluster secret (auth.ts).
 *
 * Each peer origin gets two keep-alive pools: one for probes and RPCs, one
 * for object bodies. Replica writes of several GiB hold their connections for
 * seconds; probes queued behind them would time out and mark a busy peer down.
 *
 * Error answers become the CacheError the peer raised (same code, message and
 * detail); connection failures and timeouts are CC_ERR_PEER_UNAVAILABLE naming
 * the peer; a caller's abort is CC_ERR_CLIENT_ABORTED.
 */
import { createHash } from 'node:crypto'
import { pipeline, type Readable } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import { CacheError, isCacheError } from '../errors.js'
import { PeerSigner } from './auth.js'
import { framedLength } from './chunk-signing.js'
import {
  decodeWireMeta, encodeWireMeta, ERROR_BODY_MAX, errorFromAnswer, formatRange, H_ETAG, H_META,
  objectPath, parseContentRange, PROBE_PATH, RPC_BODY_MAX, rpcPath
} from './protocol.js'
import type { NodeInfo, PeerClient, ProbeInfo, RpcArgs, RpcMethod, RpcResult } from './types.js'

export interface PeerClientOptions {
  /** This node's id, sent (signed) with every request. */
  self: string
  secret: string
  /** Connections per peer and pool (control, data). Default 8. */
  connections?: number
  /** Headers timeout, and the default deadline of a probe or an RPC. Default 10 s. */
  timeoutMs?: number
  /** How long a replica write may wait for its answer once its body is sent (the peer fsyncs). Default 60 s. */
  commitTimeoutMs?: number
}

const DEFAULT_CONNECTIONS = 8
const DEFAULT_TIMEOUT_MS = 10_000
const DEFAULT_COMMIT_TIMEOUT_MS = 60_000
/** An object body that sends nothing for this long is cut. */
const BODY_IDLE_TIMEOUT_MS = 60_000
/** Peer origins with pools at most; the least recently used one is closed past it. */
const MAX_ORIGINS = 1024
const CLOSE_GRACE_MS = 2000

interface Pools { control: Pool, data: Pool }

export function createPeerClient (opts: PeerClientOptions): PeerClient {
  const signer = new PeerSigner({ node: opts.self, secret: opts.secret })
  const connections = opts.connections ?? DEFAULT_CONNECTIONS
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const commitTimeoutMs = opts.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS
  /** By origin, least recently used first. */
  const pools = new Map<string, Pools>()
  let closed = false

  function poolsFor (url: string): Pools {
    if (closed) throw new CacheError('CC_ERR_PEER_UNAVAILABLE', `The peer client is closed (peer ${url})`)
    let origin: string
    try {
      origin = new URL(url).origin
    } catch (err) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `Bad peer url ${JSON.stringify(url)}`, { cause: err })
    }
    let p = pools.get(origin)
    if (p !== undefined) {
      pools.delete(origin)
      pools.set(origin, p)
      return p
    }
    const common = { connections, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, connect: { timeout: timeoutMs } }
    p = {
      control: new Pool(origin, common),
      data: new Pool(origin, { ...common, bodyTimeout: BODY_IDLE_TIMEOUT_MS })
    }
    pools.set(origin, p)
    if (pools.size > MAX_ORIGINS) {
      const [oldest, old] = pools.entries().next().value as [string, Pools]
      pools.delete(oldest)
      void closePools(old)
    }
    return p
  }

  /** A probe or RPC: signed, bounded by a deadline, answered with JSON. */
  async function call (url: string, method: 'GET' | 'POST', path: string, body: Buffer | undefined, what: string, o: { signal?: AbortSignal, timeoutMs?: number }): Promise<unknown> {
    const { control } = poolsFor(url)
    const ms = o.timeoutMs ?? timeoutMs
    const deadline = AbortSignal.timeout(ms)
    const signal = o.signal === undefined ? deadline : AbortSignal.any([o.signal, deadline])
    const sha = createHash('sha256').update(body ?? '').digest('hex')
    const headers: Record<string, string> = { ...signer.sign(method, path, sha) }
    if (body !== undefined) headers['content-type'] = 'application/json'
    try {
      const res = await control.request({ method, path, headers, body, signal, headersTimeout: ms })
      if (res.statusCode !== 200) throw errorFromAnswer(res.statusCode, (await readLimited(res.body, ERROR_BODY_MAX)).toString('utf8'))
      const text = (await readLimited(res.body, RPC_BODY_MAX)).toString('utf8')
      try {
        return JSON.parse(text)
      } catch (err) {
        throw new CacheError('CC_ERR_INTERNAL', `Peer ${url} answered ${what} with something that is not JSON`, { cause: err })
      }
    } catch (err) {
      throw failure(err, url, what, o.signal, deadline.aborted ? ms : undefined)
    }
  }

  async function closePools (p: Pools): Promise<void> {
    await Promise.all([p.control, p.data].map(async pool => {
      const grace = setTimeout(() => { pool.destroy().catch(() => {}) }, CLOSE_GRACE_MS)
      try {
        await pool.close()
      } catch {
        // destroyed by the grace timer
      } finally {
        clearTimeout(grace)
      }
    }))
  }

  return {
    async probe (url, o = {}): Promise<ProbeInfo> {
      const v = await call(url, 'GET', PROBE_PATH, undefined, 'a probe', o) as Partial<ProbeInfo> | null
      if (typeof v?.id !== 'string' || typeof v.bootId !== 'string' || typeof v.draining !== 'boolean') {
        throw new CacheError('CC_ERR_PEER_UNAVAILABLE', `${url} answered a probe with something that is not a probe`)
      }
      return { id: v.id, bootId: v.bootId, draining: v.draining }
    },

    async rpc<M extends RpcMethod> (node: NodeInfo, method: M, args: RpcArgs<M>, o: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<RpcResult<M>> {
      return await call(node.url, 'POST', rpcPath(method), Buffer.from(JSON.stringify(args)), `rpc ${method}`, o) as RpcResult<M>
    },

    async write (node, meta, source, o = {}): Promise<void> {
      const what = `replica write of ${meta.container}/${meta.name}`
      const { data } = poolsFor(node.url)
      const path = objectPath(meta.container, meta.name)
      if (o.signal?.aborted === true) throw failure(o.signal.reason, node.url, what, o.signal)
      // One pass over the source: its chunks are signed as they go (chunk-signing.ts).
      const { headers: auth, body } = signer.signStreaming('PUT', path, meta.size)
      const src = source.open()
      let sourceError: unknown
      src.once('error', (err) => { sourceError ??= err })
      body.once('error', (err) => { if (isCacheError(err)) sourceError ??= err })
      pipeline(src, body, () => {})
      const headers: Record<string, string> = {
        ...auth,
        'content-type': 'application/octet-stream',
        'content-length': String(framedLength(meta.size)),
        [H_META]: encodeWireMeta(meta)
      }
      try {
        const res = await data.request({ method: 'PUT', path, headers, body, signal: o.signal, headersTimeout: commitTimeoutMs })
        if (res.statusCode !== 201) throw errorFromAnswer(res.statusCode, (await readLimited(res.body, ERROR_BODY_MAX)).toString('utf8'))
        await res.body.dump()
      } catch (err) {
        if (sourceError !== undefined && !(o.signal?.aborted ?? false)) throw sourceError
        throw failure(err, node.url, what, o.signal)
      } finally {
        if (!body.destroyed) body.destroy()
      }
    },

    async read (node, a) {
      const what = `read of ${a.container}/${a.name}`
      const { data } = poolsFor(node.url)
      const path = objectPath(a.container, a.name)
      const headers: Record<string, string> = { ...signer.sign('GET', path) }
      if (a.range !== undefined) headers.range = formatRange(a.range)
      if (a.etag !== undefined) headers[H_ETAG] = a.etag
      let res: Dispatcher.ResponseData
      try {
        res = await data.request({ method: 'GET', path, headers, signal: a.signal })
        if (res.statusCode !== 200 && res.statusCode !== 206) {
          const err = errorFromAnswer(res.statusCode, (await readLimited(res.body, ERROR_BODY_MAX)).toString('utf8'))
          if (res.statusCode === 404 && err.code !== 'CC_ERR_OBJECT_NOT_FOUND') throw new CacheError('CC_ERR_OBJECT_NOT_FOUND', err.message, { detail: err.detail })
          throw err
        }
      } catch (err) {
        throw failure(err, node.url, what, a.signal)
      }
      try {
        const meta = decodeWireMeta(headerOf(res.headers[H_META]))
        if (res.statusCode === 200) return { meta, body: res.body }
        const range = parseContentRange(headerOf(res.headers['content-range']))
        if (range === undefined) throw new CacheError('CC_ERR_INTERNAL', `Peer ${node.url} answered a ranged ${what} without a content-range`)
        return { meta, range, body: res.body }
      } catch (err) {
        res.body.destroy()
        throw isCacheError(err, 'CC_ERR_INVALID_INPUT') ? new CacheError('CC_ERR_INTERNAL', `Peer ${node.url} answered a ${what}: ${err.message}`) : err
      }
    },

    async close (): Promise<void> {
      closed = true
      const all = [...pools.values()]
      pools.clear()
      await Promise.all(all.map(closePools))
    }
  }
}

/** The CacheError for a failed call: the peer's own, a cancellation, or the peer unreachable. */
function failure (err: unknown, url: string, what: string, signal: AbortSignal | undefined, timedOutMs?: number): CacheError {
  if (signal?.aborted === true) return new CacheError('CC_ERR_CLIENT_ABORTED', `The ${what} to peer ${url} was cancelled`, { cause: signal.reason })
  if (isCacheError(err)) return err
  if (timedOutMs !== undefined) return new CacheError('CC_ERR_PEER_UNAVAILABLE', `Peer ${url} did not answer the ${what} within ${timedOutMs} ms`, { cause: err })
  const code = (err as { code?: string } | null)?.code
  const text = err instanceof Error ? err.message : String(err)
  return new CacheError('CC_ERR_PEER_UNAVAILABLE', `Peer ${url} is unavailable for the ${what}: ${code === undefined ? '' : `${code} `}${text}`, { cause: err })
}

async function readLimited (body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > max) {
      body.destroy()
      throw new CacheError('CC_ERR_BODY_TOO_LARGE', `A peer answer is at most ${max} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function headerOf (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
