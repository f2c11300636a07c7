/**
 * The gateways of the cluster benchmark: three `ckptcache serve` processes on
 * loopback (cache-only, `--peers` naming all three, one cluster secret, fixed
 * node ids), started together and waited for until every node sees all three
 * live; what the benchmark reads of them (the peer counters and served bytes
 * on /metrics, the view on /status); a kill -9 and a bounded stop.
 */

import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { startGateway, type GatewayHandle } from '../test/helpers/gateway.js'
import { boundedStop, scrape, START_TIMEOUT_MS, type Scrape, type WritebackGateway } from './checkpoint-gateway.js'
import { commandLine } from './rss.js'
import type { BenchServer } from './servers/start.js'

/** How long the nodes may take, once all answer, until each sees every other one live. */
const CONVERGE_TIMEOUT_MS = 30_000
const POLL_MS = 100
/** Longest an admin request (/status, /metrics) may take. */
export const ADMIN_TIMEOUT_MS = 10_000

/** `signal` (when given) and ADMIN_TIMEOUT_MS. */
export const adminSignal = (signal?: AbortSignal): AbortSignal =>
  signal === undefined ? AbortSignal.timeout(ADMIN_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(ADMIN_TIMEOUT_MS)])

/** Shared by the benchmark's nodes only; never a real deployment's. */
export const BENCH_CLUSTER_SECRET = 'ckptcache-bench-cluster-secret'

export interface ClusterSettings {
  /** Node ids, one gateway each, in the order the benchmark names them (A, B, C). */
  ids: readonly string[]
  replicas: number
  ack: 'all' | 'local'
}

/** Extra `serve` flags of every node: what the cluster scenario runs with besides the peers. */
export const clusterFlags = (s: ClusterSettings): string[] =>
  ['--mode', 'cache-only', '--replicas', String(s.replicas), '--ack', s.ack]

export interface ClusterNode extends WritebackGateway {
  /** The node id (`--node-id`). */
  id: string
  peerPort: number
  /** True once the node was killed or stopped. */
  readonly gone: boolean
  /** kill -9, then waits for the process to exit. Leaves the data dir. */
  kill (): Promise<void>
}

/** `count` distinct loopback ports the kernel had free a moment ago (held open together, then released). */
async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const s = createServer()
      servers.push(s)
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
    }
    return servers.map((s) => (s.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map(async (s) => { await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }
}

function wrap (gw: GatewayHandle, id: string, peerPort: number, dir: string): ClusterNode {
  const pid = gw.child.pid as number
  const stop = boundedStop(gw)
  let gone = false
  return {
    name: 'gateway',
    id,
    peerPort,
    pid,
    command: commandLine(pid).replace(BENCH_CLUSTER_SECRET, '<secret>'),
    connectionString: gw.connectionString,
    admin: gw.adminUrl,
    dir,
    get gone () { return gone },
    async kill () {
      gone = true
      await gw.kill('SIGKILL')
    },
    stop () {
      gone = true
      return stop()
    }
  }
}

/**
 * Starts one gateway per id under `root/<id>`, every one with `--peers` naming
 * all of them, pushing each to `started` as soon as it runs (so the caller
 * stops what is left whatever fails); resolves once every node's /status shows
 * every node live. Bounded: START_TIMEOUT_MS per process, then
 * CONVERGE_TIMEOUT_MS for the views.
 */
export async function startCluster (root: string, s: ClusterSettings, started: BenchServer[], signal: AbortSignal): Promise<ClusterNode[]> {
  const ports = await freePorts(s.ids.length)
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',')
  const results = await Promise.allSettled(s.ids.map(async (id, i) => {
    const dir = `${root}/${id}`
    await mkdir(dir, { recursive: true })
    const gw = await startGateway({
      dataDir: dir,
      startTimeoutMs: START_TIMEOUT_MS,
      args: [...clusterFlags(s), '--node-id', id, '--peers', peers, '--peer-port', String(ports[i]), '--cluster-secret', BENCH_CLUSTER_SECRET]
    })
    const node = wrap(gw, id, ports[i] as number, dir)
    started.push(node)
    return node
  }))
  const nodes = results.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
    throw failed.reason
  }
  await converged(nodes, nodes.map((n) => n.id), signal)
  return nodes
}

interface StatusBody {
  cluster?: { nodes: Array<{ id: string, live: boolean }> }
}

/** The ids `node` sees live (itself included). */
export async function liveView (node: ClusterNode, signal?: AbortSignal): Promise<string[]> {
  const res = await fetch(`${node.admin}/status`, { signal: adminSignal(signal) })
  if (!res.ok) throw new Error(`GET /status of ${node.id}: ${res.status}`)
  const body = await res.json() as StatusBody
  return (body.cluster?.nodes ?? []).filter((n) => n.live).map((n) => n.id).sort()
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Waits until each of `nodes` sees exactly `live` live; throws after `timeoutMs` naming the views. */
export async function converged (nodes: readonly ClusterNode[], live: readonly string[], signal: AbortSignal, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
  const want = [...live].sort().join(',')
  const t0 = performance.now()
  let views: string[] = []
  while (!signal.aborted) {
    views = await Promise.all(nodes.map(async (n) => (await liveView(n, signal)).join(',')))
    if (views.every((v) => v === want)) return (performance.now() - t0) / 1000
    if (performance.now() - t0 > timeoutMs) break
    await sleep(POLL_MS)
  }
  throw new Error(`the nodes' views did not become {${want}} within ${timeoutMs / 1000} s: ${nodes.map((n, i) => `${n.id} sees {${views[i] ?? '?'}}`).join('; ')}`)
}

// ---- /metrics ---------------------------------------------------------------------------------

/** What one node did for the cluster between two scrapes. */
export interface PeerDelta {
  /** `ckptcache_peer_requests_total{op}`: peer requests this node made. */
  requests: Record<string, number>
  /** `ckptcache_peer_requests_served_total{op}`: peer requests this node served (probes left out). */
  served: Record<string, number>
  /** `ckptcache_peer_bytes_total{direction}`: object bytes sent to and received from peers. */
  bytesSent: number
  bytesReceived: number
  /** `ckptcache_served_bytes_total{source}`: bytes this node served its clients, by where they came from. */
  servedBytes: Record<string, number>
}

export { scrape, type Scrape }

const label = (sample: string, name: string): string | undefined => new RegExp(`${name}="([^"]*)"`).exec(sample)?.[1]

export function peerDelta (before: Scrape, after: Scrape): PeerDelta {
  const d: PeerDelta = { requests: {}, served: {}, bytesSent: 0, bytesReceived: 0, servedBytes: {} }
  for (const [k, v] of after) {
    const n = v - (before.get(k) ?? 0)
    if (n === 0) continue
    if (k.startsWith('ckptcache_peer_requests_total{')) {
      const op = label(k, 'op') ?? '?'
      d.requests[op] = (d.requests[op] ?? 0) + n
    } else if (k.startsWith('ckptcache_peer_requests_served_total{')) {
      const op = label(k, 'op') ?? '?'
      if (op !== 'probe') d.served[op] = (d.served[op] ?? 0) + n
    } else if (k.startsWith('ckptcache_peer_bytes_total{')) {
      if (label(k, 'direction') === 'sent') d.bytesSent += n
      else d.bytesReceived += n
    } else if (k.startsWith('ckptcache_served_bytes_total{')) {
      const source = label(k, 'source') ?? '?'
      d.servedBytes[source] = (d.servedBytes[source] ?? 0) + n
    }
  }
  return d
}

/** Scrapes every node still running, by id. */
export async function scrapeAll (nodes: readonly ClusterNode[], signal?: AbortSignal): Promise<Map<string, Scrape>> {
  const live = nodes.filter((n) => !n.gone)
  const scrapes = await Promise.all(live.map(async (n) => await scrape(n, adminSignal(signal))))
  return new Map(live.map((n, i) => [n.id, scrapes[i] as Scrape]))
}

/** Per node scraped both times: its PeerDelta. */
export function peerDeltas (before: Map<string, Scrape>, after: Map<string, Scrape>): Record<string, PeerDelta> {
  const out: Record<string, PeerDelta> = {}
  for (const [id, a] of after) {
    const b = before.get(id)
    if (b !== undefined) out[id] = peerDelta(b, a)
  }
  return out
}
