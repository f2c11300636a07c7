/**
 * A cluster of real gateway processes on loopback (test/helpers/gateway.ts), each with its own
 * data directory, node id (`node<i>`) and peer port, all listing every node's peer address and
 * signing with one random secret, probing fast (200 ms, down after 1 s) so that a test sees a
 * node loss in about a second. `startCluster` resolves once every node sees every node live.
 *
 * A node can be killed (any signal: SIGKILL, SIGSTOP/SIGCONT) and restarted with the same data
 * dir, node id and peer port; its client and admin ports are then new ones, so tests read
 * `cluster.nodes[i]` again after a restart.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StatusBody } from '../../src/cli/status.js'
import { PeerSigner } from '../../src/cluster/auth.js'
import type { WireMeta } from '../../src/cluster/types.js'
import { startGateway, type GatewayHandle } from './gateway.js'
import { adminStatus, scrapeMetrics, waitForStatus, type Scrape } from './tier.js'

export interface ClusterOptions {
  /** Number of gateways (2–8). */
  nodes: number
  /** `--replicas` (default: the gateway's default, 2). */
  replicas?: number
  /** `--ack` (default: the gateway's default, all). */
  ack?: 'all' | 'local'
  /** More `serve` flags for every node. */
  args?: string[]
  /** An upstream connection string: the nodes run in `mode` (default writeback) against it. */
  upstream?: string
  mode?: 'writeback' | 'writethrough'
}

export interface ClusterHandle {
  /** The gateways; an entry is replaced by `restart(i)`. */
  readonly nodes: GatewayHandle[]
  /** `node<i>` */
  readonly ids: string[]
  /** Each node's peer API port (fixed for the cluster's life). */
  readonly peerPorts: number[]
  /** The cluster secret every node signs with. */
  readonly secret: string
  /** Sends `signal` (default SIGKILL) to node `i`; waits for its exit unless the signal only stops it (SIGSTOP, SIGCONT). */
  kill (i: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts node `i` again (killed or stopped first) with its data dir, node id and peer port. */
  restart (i: number): Promise<GatewayHandle>
  /** Waits until node `i`'s `/status` shows `count` live nodes (itself included). */
  waitLive (i: number, count: number, timeoutMs?: number): Promise<StatusBody>
  /** Node `i`'s store object count (`/status`). */
  objectsOn (i: number): Promise<number>
  /** `ckptcache_peer_requests_total` of node `i` by op (all ops summed without one). */
  peerRequests (i: number, op?: string): Promise<number>
  /** One `/metrics` scrape of node `i`. */
  metrics (i: number): Promise<Scrape>
  /** Node `i`'s `/status`. */
  status (i: number): Promise<StatusBody>
  /**
   * The local copy node `i` holds of `container/name` (undefined when it holds none), asked on
   * its peer API with a signed `head` (nodes killed or stopped by this handle are not asked).
   */
  copyOn (i: number, container: string, name: string): Promise<WireMeta | undefined>
  /** The nodes (indices) holding a local copy of `container/name`, among those running. */
  holders (container: string, name: string): Promise<number[]>
  /** Stops every node still running and removes the data dirs. */
  stop (): Promise<void>
}

/** A port the kernel hands out for 127.0.0.1 now (bound, read, closed). */
export async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', resolve)
  })
  const port = (srv.address() as AddressInfo).port
  await new Promise<void>((resolve) => srv.close(() => { resolve() }))
  return port
}

/** Polls until `ok` holds (every 50 ms, at most `ms`); fails naming `what` with the last value. */
export async function until<T> (what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  let v = await get()
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    v = await get()
  }
  return v
}

/** How many nodes `s` shows live (itself included). */
export function liveCount (s: StatusBody): number {
  return s.cluster?.nodes.filter((n) => n.live).length ?? 0
}

export async function startCluster (opts: ClusterOptions): Promise<ClusterHandle> {
  // A peer port picked here may be taken by another process before its gateway binds it: try again with new ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(opts)
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE|already in use/.test(String((err as Error).message))) throw err
    }
  }
}

async function startClusterOnce (opts: ClusterOptions): Promise<ClusterHandle> {
  const n = opts.nodes
  if (!(n >= 1 && n <= 8)) throw new Error('a test cluster has 1 to 8 nodes')
  const root = await mkdtemp(join(tmpdir(), 'ckptcache-cluster-'))
  const ports: number[] = []
  // Distinct ports: the kernel may hand out one just closed again.
  while (ports.length < n) {
    const p = await freePort()
    if (!ports.includes(p)) ports.push(p)
  }
  const ids = ports.map((_, i) => `node${i}`)
  const dirs = ids.map((id) => join(root, id))
  for (const d of dirs) await mkdir(d)
  const secret = randomBytes(24).toString('base64url')
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',')
  const nodes: GatewayHandle[] = []
  /** Nodes stopped with SIGSTOP: a stop() sends them SIGCONT first. */
  const stopped = new Set<number>()
  const signer = new PeerSigner({ node: 'test-observer', secret })

  const argsOf = (i: number): string[] => [
    '--node-id', ids[i] as string,
    '--peer-host', '127.0.0.1',
    '--peer-port', String(ports[i]),
    '--peers', peers,
    '--cluster-secret', secret,
    '--probe-interval', '200ms',
    '--probe-timeout', '1s',
    ...(opts.replicas === undefined ? [] : ['--replicas', String(opts.replicas)]),
    ...(opts.ack === undefined ? [] : ['--ack', opts.ack]),
    ...(opts.upstream === undefined ? [] : ['--mode', opts.mode ?? 'writeback', '--upstream-connection-string', opts.upstream]),
    ...(opts.args ?? [])
  ]
  const node = (i: number): GatewayHandle => {
    const g = nodes[i]
    if (g === undefined) throw new Error(`no node ${i}`)
    return g
  }
  const running = (i: number): boolean => {
    const c = nodes[i]?.child
    return c !== undefined && c.exitCode === null && c.signalCode === null && !stopped.has(i)
  }
  const copyOn = async (i: number, container: string, name: string): Promise<WireMeta | undefined> => {
    const body = Buffer.from(JSON.stringify({ container, name }))
    const path = '/v1/rpc/head'
    const headers = { ...signer.sign('POST', path, createHash('sha256').update(body).digest('hex')), 'content-type': 'application/json', 'content-length': String(body.length) }
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: ports[i], method: 'POST', path, headers, agent: false, timeout: 10_000 }, (res) => {
        let t = ''
        res.setEncoding('utf8').on('data', (c: string) => { t += c }).on('end', () => {
          if (res.statusCode === 200) resolve(t)
          else reject(new Error(`head of ${container}/${name} on ${ids[i] as string}: ${String(res.statusCode)} ${t}`))
        })
      })
      req.on('timeout', () => { req.destroy(new Error(`head of ${container}/${name} on ${ids[i] as string}: no answer`)) })
      req.on('error', reject)
      req.end(body)
    })
    return (JSON.parse(text) as { meta?: WireMeta }).meta
  }
  const waitLive = async (i: number, count: number, timeoutMs = 15_000): Promise<StatusBody> =>
    await waitForStatus(node(i).adminUrl, (s) => liveCount(s) === count, `${ids[i] as string} to see ${count} live nodes`, timeoutMs)

  const stopAll = async (): Promise<void> => {
    for (const i of stopped) nodes[i]?.child.kill('SIGCONT')
    stopped.clear()
    await Promise.all(nodes.map(async (g) => { await g.stop() }))
    await rm(root, { recursive: true, force: true })
  }

  try {
    const started = await Promise.allSettled(dirs.map(async (dataDir, i) => await startGateway({ args: argsOf(i), dataDir })))
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value)
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    await Promise.all(nodes.map(async (_, i) => await waitLive(i, n)))
  } catch (err) {
    await stopAll()
    throw err
  }

  return {
    nodes,
    ids,
    peerPorts: ports,
    secret,
    async kill (i, signal = 'SIGKILL') {
      const g = node(i)
      if (signal === 'SIGSTOP') {
        g.child.kill('SIGSTOP')
        stopped.add(i)
        return
      }
      if (signal === 'SIGCONT') {
        g.child.kill('SIGCONT')
        stopped.delete(i)
        return
      }
      if (stopped.delete(i)) g.child.kill('SIGCONT')
      await g.kill(signal)
    },
    async restart (i) {
      const old = node(i)
      if (old.child.exitCode === null && old.child.signalCode === null) {
        if (stopped.delete(i)) old.child.kill('SIGCONT')
        await old.kill('SIGKILL')
      }
      const g = await startGateway({ args: argsOf(i), dataDir: dirs[i] as string })
      nodes[i] = g
      return g
    },
    waitLive,
    objectsOn: async (i) => (await adminStatus(node(i).adminUrl)).store.objects,
    async peerRequests (i, op) {
      const m = await scrapeMetrics(node(i).adminUrl)
      return m.get('ckptcache_peer_requests_total', op === undefined ? {} : { op })
    },
    metrics: async (i) => await scrapeMetrics(node(i).adminUrl),
    status: async (i) => await adminStatus(node(i).adminUrl),
    copyOn,
    async holders (container, name) {
      const idx = nodes.map((_, i) => i).filter(running)
      const copies = await Promise.all(idx.map(async (i) => await copyOn(i, container, name)))
      return idx.filter((_, k) => copies[k] !== undefined)
    },
    stop: stopAll
  }
}
