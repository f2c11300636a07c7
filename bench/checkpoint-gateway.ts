/**
 * The gateway of the checkpoint benchmark: `ckptcache serve --mode writeback`
 * in front of an Azurite upstream, and what the benchmark asks of its admin
 * API: a /metrics scrape parsed into the upstream counters, a flush that
 * waits until a prefix is clean upstream, /status.
 */

import { mkdir } from 'node:fs/promises'
import { startGateway, type GatewayHandle } from '../test/helpers/gateway.js'
import { noTraffic, type Traffic } from './checkpoint-scenarios.js'
import { commandLine } from './rss.js'
import type { BenchServer } from './servers/start.js'

/** How long a gateway may take to start. */
export const START_TIMEOUT_MS = 60_000
/** How long a stopping gateway may take to exit before it is killed. */
const STOP_GRACE_MS = 10_000

export interface WritebackGateway extends BenchServer {
  /** `http://127.0.0.1:<admin port>` */
  admin: string
}

/** Starts a writeback gateway on `dir` whose upstream is `upstreamConnectionString`, every port chosen by the kernel. */
export async function startWritebackGateway (dir: string, upstreamConnectionString: string): Promise<WritebackGateway> {
  await mkdir(dir, { recursive: true })
  const gw = await startGateway({
    dataDir: dir,
    startTimeoutMs: START_TIMEOUT_MS,
    args: ['--mode', 'writeback', '--upstream-connection-string', upstreamConnectionString, '--admin-port', '0']
  })
  // The ready line is a JSON log line whose `ports` field comes before its message.
  const m = /"ports":\{[^}]*"admin":(\d+)/.exec(gw.output()) ?? / admin=http:\/\/[^\s/]+:(\d+)/.exec(gw.output())
  if (m === null) {
    await gw.kill('SIGKILL')
    throw new Error(`the gateway's ready line names no admin port: ${gw.output().slice(-2000)}`)
  }
  const pid = gw.child.pid as number
  return {
    name: 'gateway',
    pid,
    command: commandLine(pid).replace(upstreamConnectionString, '<Azurite connection string>'),
    connectionString: gw.connectionString,
    admin: `http://127.0.0.1:${Number(m[1])}`,
    dir,
    stop: boundedStop(gw)
  }
}

/** A stop of `gw` that gives it STOP_GRACE_MS to exit, then kills it (-9); every call after the first returns the first's promise. */
export function boundedStop (gw: GatewayHandle): () => Promise<void> {
  let stopping: Promise<void> | undefined
  return () => {
    stopping ??= (async () => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, STOP_GRACE_MS) })
      const done = await Promise.race([gw.stop().then(() => true, () => false), late])
      clearTimeout(timer)
      if (!done) await gw.kill('SIGKILL')
    })()
    return stopping
  }
}

// ---- /metrics -------------------------------------------------------------------------------------

/** Sample name with its labels as printed (`name{a="x",b="y"}`) → value. */
export type Scrape = Map<string, number>

export async function scrape (gw: WritebackGateway, signal?: AbortSignal): Promise<Scrape> {
  const res = await fetch(`${gw.admin}/metrics`, signal === undefined ? {} : { signal })
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`)
  const out: Scrape = new Map()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

const labelsOf = (sample: string): Record<string, string> => {
  const open = sample.indexOf('{')
  const labels: Record<string, string> = {}
  if (open === -1) return labels
  for (const m of sample.slice(open + 1, -1).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] as string] = m[2] as string
  return labels
}

/** Samples of metric `name` as (labels, value). */
function series (s: Scrape, name: string): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = []
  for (const [k, v] of s) if (k === name || k.startsWith(`${name}{`)) out.push([labelsOf(k), v])
  return out
}

/** Upstream requests (by operation, data/metadata) and bytes between two scrapes. */
export function upstreamDelta (before: Scrape, after: Scrape): Traffic {
  const t = noTraffic()
  const was = (k: string): number => before.get(k) ?? 0
  for (const [k, v] of after) {
    const d = v - was(k)
    if (d === 0) continue
    if (k.startsWith('ckptcache_upstream_requests_total{')) {
      const { operation = '?', class: cls } = labelsOf(k)
      t.requests[operation] = (t.requests[operation] ?? 0) + d
      if (cls === 'data') t.data += d
      else t.metadata += d
    } else if (k.startsWith('ckptcache_upstream_bytes_total{')) {
      const { direction } = labelsOf(k)
      if (direction === 'out') t.bytesOut += d
      else if (direction === 'in') t.bytesIn += d
    }
  }
  return t
}

/** Per `source` (local, peer, upstream): object bytes served to clients between two scrapes. */
export function servedDelta (before: Scrape, after: Scrape): Record<string, number> {
  const out: Record<string, number> = {}
  const was = new Map(series(before, 'ckptcache_served_bytes_total').map(([l, v]) => [l.source ?? '', v]))
  for (const [l, v] of series(after, 'ckptcache_served_bytes_total')) out[l.source ?? ''] = v - (was.get(l.source ?? '') ?? 0)
  return out
}

/** Upstream retries between two scrapes (throttling or errors the gateway absorbed). */
export function retriesDelta (before: Scrape, after: Scrape): number {
  const sum = (s: Scrape): number => series(s, 'ckptcache_upstream_retries_total').reduce((n, [, v]) => n + v, 0)
  return sum(after) - sum(before)
}

// ---- /flush and /status -------------------------------------------------------------------------

export interface FlushResult {
  objects: number
  bytes: number
  /** Progress lines received (one every 500 ms while the flush runs, and the last). */
  lines: number
}

/**
 * `POST /flush?prefix=<container>/<prefix>`: reads the NDJSON progress until the line with
 * `done: true`; a last line with an `error` (or none at all) fails.
 */
export async function flush (gw: WritebackGateway, container: string, prefix: string, signal: AbortSignal): Promise<FlushResult> {
  const res = await fetch(`${gw.admin}/flush?prefix=${encodeURIComponent(`${container}/${prefix}`)}`, { method: 'POST', signal })
  if (!res.ok || res.body === null) throw new Error(`POST /flush: ${res.status} ${await res.text()}`)
  const decoder = new TextDecoder()
  let buf = ''
  let lines = 0
  let last: { done?: boolean, error?: string, objects?: number, bytes?: number } | undefined
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk as Uint8Array, { stream: true })
    let nl: number
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl).trim()
      buf = buf.slice(nl + 1)
      if (line === '') continue
      lines++
      last = JSON.parse(line) as typeof last
    }
  }
  if (last?.done !== true) throw new Error(`flush did not finish: ${last?.error ?? 'the progress stream ended without a last line'}`)
  return { objects: last.objects ?? 0, bytes: last.bytes ?? 0, lines }
}

export interface GatewayStatus {
  mode: string
  writeback: { dirtyObjects: number, dirtyBytes: number, failedAttempts?: number, lastError?: string } | null
}

export async function status (gw: WritebackGateway): Promise<GatewayStatus> {
  const res = await fetch(`${gw.admin}/status`)
  if (!res.ok) throw new Error(`GET /status: ${res.status}`)
  return await res.json() as GatewayStatus
}
