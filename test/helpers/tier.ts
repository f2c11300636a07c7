/**
 * What the cloud-tier tests of a real gateway process share:
 *
 * - `startTierGateway`: a gateway in writeback (or writethrough) mode whose upstream is a
 *   connection string (Azurite's, or an `UpstreamProxy` in front of it);
 * - `UpstreamProxy`: a recording HTTP proxy between the gateway and Azurite. It numbers every
 *   request's arrival and every response's end on one clock of events (so "this upload started
 *   after that one was committed" is a fact, not a timestamp comparison), can hold requests that
 *   match a predicate until released (a held upload keeps its object dirty for as long as a test
 *   needs), and drops held requests whose gateway went away (a killed gateway commits nothing);
 * - the admin API read the way an operator reads it: `/metrics` into a map, `/status`, and
 *   `POST /flush` followed to its last NDJSON line;
 * - `azuriteBlobs`: every blob of an Azurite container with its bytes, headers and metadata.
 */
import { spawn } from 'node:child_process'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { BlobServiceClient } from '@azure/storage-blob'
import type { CliIo } from '../../src/cli/admin-client.js'
import type { StatusBody } from '../../src/cli/status.js'
import type { FlushProgressLine } from '../../src/admin/progress.js'
import { operationOf } from '../../src/upstream/azure-client.js'
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY } from './azurite.js'
import { repoRoot, startGateway, type GatewayHandle } from './gateway.js'

export const KiB = 1024
export const MiB = 1024 * KiB

// ---- the gateway ------------------------------------------------------------------------------

export interface TierGatewayOptions {
  /** The upstream connection string (Azurite's, or a proxy's). */
  upstream: string
  mode?: 'writeback' | 'writethrough'
  /** More `serve` flags. */
  args?: string[]
  /** Reuse a data directory (a restart); otherwise a fresh one the handle removes on stop. */
  dataDir?: string
}

/** `ckptcache serve --mode writeback --upstream-connection-string …` as a child process. */
export async function startTierGateway (opts: TierGatewayOptions): Promise<GatewayHandle> {
  return await startGateway({
    args: ['--mode', opts.mode ?? 'writeback', '--upstream-connection-string', opts.upstream, ...(opts.args ?? [])],
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir })
  })
}

export function connectionStringFor (port: number): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`
}

// ---- the admin API ----------------------------------------------------------------------------

/** One scrape of `/metrics`. */
export interface Scrape {
  /** The sum of every series of `name` whose labels include `labels` (0 when there is none). */
  get (name: string, labels?: Record<string, string>): number
  readonly text: string
}

export async function scrapeMetrics (adminUrl: string): Promise<Scrape> {
  const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`)
  const text = await res.text()
  const series: Array<{ name: string, labels: Record<string, string>, value: number }> = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
    series.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return {
    text,
    get: (name, want = {}) => series
      .filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0)
  }
}

/** Upload requests the gateway sent upstream (Put Blob, Put Block List): one per object uploaded. */
export function commits (m: Scrape): number {
  return m.get('ckptcache_upstream_requests_total', { operation: 'PutBlob' }) + m.get('ckptcache_upstream_requests_total', { operation: 'PutBlockList' })
}

export async function adminStatus (adminUrl: string): Promise<StatusBody> {
  const res = await fetch(`${adminUrl}/status`, { signal: AbortSignal.timeout(10_000) })
  if (res.status !== 200) throw new Error(`GET /status: ${res.status}`)
  return await res.json() as StatusBody
}

/**
 * Polls `/status` (every 25 ms, at most `timeoutMs`) until `ok` holds; resolves with that status.
 * Fails with the last status seen.
 */
export async function waitForStatus (adminUrl: string, ok: (s: StatusBody) => boolean, what: string, timeoutMs = 20_000): Promise<StatusBody> {
  const deadline = Date.now() + timeoutMs
  let last: StatusBody | undefined
  while (Date.now() < deadline) {
    last = await adminStatus(adminUrl)
    if (ok(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last /status: ${JSON.stringify(last)}`)
}

/**
 * `POST /flush[?prefix=…]` followed to its end: every NDJSON line. Throws when the last line is
 * not `done` (an error line, a cut stream) or it takes longer than `timeoutMs`.
 */
export async function flushAll (adminUrl: string, prefix?: string, timeoutMs = 30_000): Promise<FlushProgressLine[]> {
  const query = prefix === undefined ? '' : `?prefix=${encodeURIComponent(prefix)}`
  const res = await fetch(`${adminUrl}/flush${query}`, { method: 'POST', signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST /flush${query}: ${res.status} ${text}`)
  const lines = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as FlushProgressLine)
  const last = lines[lines.length - 1]
  if (last?.done !== true) throw new Error(`POST /flush${query} did not finish: ${text}`)
  return lines
}

// ---- Azurite's view ---------------------------------------------------------------------------

export interface AzuriteBlob {
  data: Buffer
  contentType: string | undefined
  contentMd5: string | undefined
  metadata: Record<string, string>
}

/** Every blob of `container` in the account behind `connectionString` (empty when the container does not exist). */
export async function azuriteBlobs (connectionString: string, container: string): Promise<Map<string, AzuriteBlob>> {
  const c = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(container)
  const out = new Map<string, AzuriteBlob>()
  if (!await c.exists()) return out
  for await (const item of c.listBlobsFlat({ includeMetadata: true })) {
    const md5 = item.properties.contentMD5
    out.set(item.name, {
      data: await c.getBlobClient(item.name).downloadToBuffer(),
      contentType: item.properties.contentType,
      contentMd5: md5 === undefined ? undefined : Buffer.from(md5).toString('base64'),
      metadata: item.metadata ?? {}
    })
  }
  return out
}

// ---- the proxy --------------------------------------------------------------------------------

export interface ProxiedRequest {
  method: string
  /** The Azure Blob REST operation (PutBlob, PutBlock, PutBlockList, GetBlob, DeleteBlob, …). */
  op: string
  /** `container/blob` (or just the container) without the account. */
  target: string
  /** Event number of the request's arrival at the proxy. */
  arrived: number
  /** Event number of Azurite's answer (its status line; undefined while in flight, or when it never came). */
  answered?: number
  status?: number
  /** Held, then dropped because the gateway had gone away. */
  dropped?: boolean
  /** Held, and its body had arrived whole. */
  received?: boolean
  /** Held, then forwarded although its gateway had gone away (`release({ abandoned: 'forward' })`). */
  abandoned?: boolean
}

export type RequestFilter = (r: ProxiedRequest) => boolean

/** Is it a request that writes data upstream (Put Blob, Put Block, Put Block List)? */
export const isWrite: RequestFilter = (r) => r.op === 'PutBlob' || r.op === 'PutBlock' || r.op === 'PutBlockList'
/** Is it the request that commits an object upstream (Put Blob, Put Block List)? */
export const isCommit: RequestFilter = (r) => r.op === 'PutBlob' || r.op === 'PutBlockList'

export interface UpstreamProxy {
  port: number
  /** A connection string of Azurite's account through the proxy. */
  connectionString: string
  /** Every request seen, in arrival order. */
  readonly requests: readonly ProxiedRequest[]
  /** From now on requests that match wait in the proxy until `release()`. */
  hold (filter: RequestFilter): void
  /**
   * Stops holding; every held request goes on, or is dropped when its gateway is gone. With
   * `abandoned: 'forward'` a request whose body had arrived whole goes on even then, as a storage
   * service may carry out a request whose sender hung up before the answer.
   */
  release (opts?: { abandoned?: 'drop' | 'forward' }): void
  /** Resolves once the gateway end of every request held now has closed (e.g. after a kill), so that `release()` drops them all. */
  heldAbandoned (timeoutMs?: number): Promise<void>
  /** Requests waiting in the proxy now. */
  held (): ProxiedRequest[]
  /** The event number now: an event observed in the test after this call happened after every arrival and answer numbered so far. */
  now (): number
  /** Resolves once `count` requests matching `filter` have arrived (bounded by `timeoutMs`). */
  arrived (filter: RequestFilter, count: number, timeoutMs?: number): Promise<void>
  close (): Promise<void>
}

export async function startUpstreamProxy (azuritePort: number): Promise<UpstreamProxy> {
  const requests: ProxiedRequest[] = []
  const held: Array<{ rec: ProxiedRequest, req: IncomingMessage, body: Readable, res: ServerResponse }> = []
  const waiters = new Set<() => void>()
  let clock = 0
  let holding: RequestFilter | undefined
  const agent = new http.Agent({ keepAlive: true })
  const sockets = new Set<Socket>()

  const forward = (req: IncomingMessage, body: Readable, res: ServerResponse, rec: ProxiedRequest): void => {
    const up = http.request({ host: '127.0.0.1', port: azuritePort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      // Azurite answers once the operation is done: its status line is when it happened.
      rec.answered = ++clock
      rec.status = ur.statusCode
      res.writeHead(ur.statusCode ?? 502, ur.headers)
      ur.pipe(res)
      // An answer before the whole body (a 404 ContainerNotFound to a Put Block): like any HTTP
      // server, read the rest of the body and drop it, so that the connection stays usable.
      ur.on('end', () => {
        if (req.complete) return
        body.unpipe(up)
        up.destroy()
        body.resume()
      })
    })
    up.on('error', () => { if (!res.writableFinished) res.destroy() })
    res.on('close', () => { if (!res.writableFinished) up.destroy() })
    body.pipe(up)
  }

  /** A request whose gateway has gone: to Azurite all the same, its answer read and dropped. */
  const forwardAbandoned = (req: IncomingMessage, body: Readable, rec: ProxiedRequest): void => {
    rec.abandoned = true
    const up = http.request({ host: '127.0.0.1', port: azuritePort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      rec.answered = ++clock
      rec.status = ur.statusCode
      ur.resume()
    })
    up.on('error', () => {})
    body.pipe(up)
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy')
    const target = decodeURIComponent(url.pathname).split('/').slice(2).join('/')
    const rec: ProxiedRequest = { method: req.method ?? '', op: operationOf(req.method ?? '', url.href), target, arrived: ++clock }
    requests.push(rec)
    for (const w of [...waiters]) w()
    if (holding?.(rec) === true) {
      // The body is read into memory meanwhile, so that the proxy sees the gateway go away.
      const body = new PassThrough({ highWaterMark: 256 * MiB })
      req.once('end', () => { rec.received = true })
      req.pipe(body)
      held.push({ rec, req, body, res })
    } else {
      forward(req, req, res, rec)
    }
  })
  // Like Azurite's (see azurite.ts): keep idle connections longer than the SDK would reuse them.
  server.keepAliveTimeout = 120_000
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    port,
    connectionString: connectionStringFor(port),
    requests,
    hold (filter) { holding = filter },
    release (opts = {}) {
      holding = undefined
      for (const { rec, req, body, res } of held.splice(0)) {
        if ((req.socket.destroyed || res.destroyed) && opts.abandoned === 'forward' && rec.received === true) {
          forwardAbandoned(req, body, rec)
          continue
        }
        // The gateway that sent it is gone (killed): what it asked for must not happen after all.
        if (req.socket.destroyed || res.destroyed) {
          rec.dropped = true
          res.destroy()
          continue
        }
        forward(req, body, res, rec)
      }
    },
    held: () => held.map((h) => h.rec),
    async heldAbandoned (timeoutMs = 10_000) {
      const open = held.filter((h) => !h.req.socket.destroyed && !h.res.destroyed)
      const closed = Promise.all(open.map((h) => new Promise<void>((resolve) => {
        if (h.res.destroyed) resolve()
        else h.res.once('close', () => { resolve() })
      })))
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new Error(`held requests still connected after ${timeoutMs} ms: ${open.map((h) => `${h.rec.op} ${h.rec.target}`).join(', ')}`)) }, timeoutMs)
      })
      try {
        await Promise.race([closed, late])
      } finally {
        clearTimeout(timer)
      }
    },
    now: () => clock,
    async arrived (filter, count, timeoutMs = 20_000) {
      if (requests.filter(filter).length >= count) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} requests; seen: ${JSON.stringify(requests.map((r) => `${r.op} ${r.target}`))}`))
        }, timeoutMs)
        const check = (): void => {
          if (requests.filter(filter).length < count) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        waiters.add(check)
      })
    },
    async close () {
      for (const s of sockets) s.destroy()
      agent.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

// ---- the CLI ----------------------------------------------------------------------------------

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliRun {
  /** Resolves when the command exits. */
  readonly done: Promise<CliResult>
  /** Resolves once stdout matches `re` (rejects if the command exits first). */
  printed (re: RegExp): Promise<void>
}

/**
 * Runs `ckptcache <args>` from the sources with stdout and stderr on pipes (not a terminal), in
 * the test's environment minus anything that would configure it behind the test's back, plus `env`.
 */
export function startCli (args: string[], opts: { timeoutMs?: number, env?: NodeJS.ProcessEnv } = {}): CliRun {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('CKPTCACHE_')) delete env[k]
  Object.assign(env, opts.env)
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'main.ts'), ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => {
    clearTimeout(timer)
    resolve({ code, stdout, stderr })
  }))
  return {
    done,
    printed: (re) => new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!re.test(stdout)) return
        child.stdout.off('data', check)
        resolve()
      }
      child.stdout.on('data', check)
      check()
      void done.then((r) => { if (!re.test(r.stdout)) reject(new Error(`ckptcache ${args.join(' ')} exited ${String(r.code)} without printing ${String(re)}: ${r.stdout}${r.stderr}`)) })
    })
  }
}

export async function runCli (args: string[], opts: { timeoutMs?: number, env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return await startCli(args, opts).done
}

/** Output streams for a command run in process; `tty` makes stdout look like a terminal. */
export function captureIo (tty: { isTTY: true, columns: number } | Record<string, never> = {}): CliIo & { out: () => string, err: () => string } {
  let out = ''
  let err = ''
  const stdout = Object.assign(new Writable({ write (chunk: Buffer, _enc, cb) { out += chunk.toString(); cb() } }), tty)
  const stderr = new Writable({ write (chunk: Buffer, _enc, cb) { err += chunk.toString(); cb() } })
  return { stdout, stderr, out: () => out, err: () => err }
}

/** The NDJSON lines of a response body (an admin API progress stream) as they arrive. */
export async function * ndjsonLines<T> (res: Response): AsyncGenerator<T> {
  let pending = ''
  const decoder = new TextDecoder()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = pending.indexOf('\n')) !== -1) {
      yield JSON.parse(pending.slice(0, nl)) as T
      pending = pending.slice(nl + 1)
    }
  }
  if (pending !== '') throw new Error(`unterminated line ${pending}`)
}
