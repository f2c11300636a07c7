/**
 * The cluster scenario (`npm run bench -- --only cluster`): a checkpoint saved
 * through one gateway of a three-node cache-only cluster (replicas 2) and
 * restored through the others, then through a survivor right after the writer
 * is killed; against the same client restoring straight from Azurite and from
 * the ceiling, in one run on one machine (loopback: every process shares its
 * cores).
 *
 * Per run, in an order that rotates every run:
 * - cluster: three fresh gateways A, B, C (their own data dirs), a warm-up
 *   checkpoint through them (untimed), then: save through A; restore through B;
 *   restore through C; kill -9 of A, and at once a restore through C. Peer
 *   requests and bytes are each node's /metrics deltas over the phase. The
 *   nodes are stopped and their data dirs removed at the end of the run.
 * - Azurite direct: the same save, then the same restore (the reference the
 *   restores are compared with; its save is shown too).
 * - ceiling: a plain node:http file server, the same save and restore.
 */

import { Agent } from 'node:http'
import { rm } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { ContainerClient } from '@azure/storage-blob'
import { adminSignal, clusterFlags, converged, peerDeltas, scrapeAll, startCluster, type ClusterNode, type ClusterSettings, type PeerDelta } from './cluster-nodes.js'
import {
  checkpoint, checkpointBytes, countedContainer, DIRECT_CONTAINER, GATEWAY_CONTAINER, RequestTally, restoreCheckpoint, saveCheckpoint,
  type Checkpoint, type UploadCall
} from './checkpoint-scenarios.js'
import { bulkTimeout, progress, quiet, rotate, tail, timed, type Timed } from './measure.js'
import { MiB } from './report.js'
import { checkpointShape, type CheckpointShape, type ScenarioContext } from './scenario.js'
import { startAzuriteServer, startCeilingServer, type BenchServer } from './servers/start.js'

export type Target = 'cluster' | 'azurite' | 'ceiling'
export const TARGETS: readonly Target[] = ['cluster', 'azurite', 'ceiling']
/** Cluster: save (through A), restore-b, restore-c, restore-killed (through C, A killed). Azurite and ceiling: save, restore. */
export type Phase = 'save' | 'restore' | 'restore-b' | 'restore-c' | 'restore-killed'
export const CLUSTER_PHASES: readonly Phase[] = ['save', 'restore-b', 'restore-c', 'restore-killed']

/** The node ids; A writes, B and C read, A is the one killed. */
export const NODE_IDS = ['A', 'B', 'C'] as const

export interface ClusterOptions extends ClusterSettings, CheckpointShape {
  targets: Target[]
  quick: boolean
}

/** Reads --shards, --shard-mib (and the shared --runs, --servers, where `gateway` names the cluster); throws a message naming the flag on bad input. */
export function clusterOptions (option: (name: string) => string | undefined, quick: boolean, runs: number | undefined, servers: readonly string[] | undefined): ClusterOptions {
  const targets = TARGETS.filter((t) => servers === undefined || servers.includes(t === 'cluster' ? 'gateway' : t))
  if (!targets.includes('cluster')) throw new Error('--servers: the cluster scenario measures gateway (the cluster), azurite and ceiling; gateway is required')
  return {
    ids: NODE_IDS,
    replicas: 2,
    ack: 'all',
    ...checkpointShape(option, quick, runs),
    targets,
    quick
  }
}

export interface PhaseSample {
  seconds: number
  bytes: number
  /** Client operations: objects saved or read (one Put Blob or one Get Blob each here). */
  ops: number
  /** MiB/s; absent when the phase failed. */
  value?: number
  error?: string
  /** The node the client talked to (cluster phases). */
  through?: string
  /** CPU seconds during the phase: each server process (node ids, azurite, ceiling) and `client` (this process). */
  cpuS: Record<string, number>
  peakRss: Record<string, number>
  /** Cluster phases: each node's /metrics deltas over the phase (a killed node has none). */
  peers?: Record<string, PeerDelta>
  /** restore-killed: seconds from the kill until every survivor saw the killed node down. */
  downAfterS?: number
  loadAvg1: number
}

export type ClusterResults = Partial<Record<Phase, Partial<Record<Target, PhaseSample[]>>>>

const size = (b: number): string => b >= MiB ? `${b / MiB} MiB` : `${b / 1024} KiB`
/** The SDK call every save uses: one Put Blob per object up to 256 MiB (the ceiling has no blocks, so larger shards go as one streamed Put Blob). */
const uploadCall = (o: ClusterOptions, t: Target): UploadCall => t === 'ceiling' && o.shardBytes > 256 * MiB ? 'upload' : 'uploadData'
const warmBytes = (o: ClusterOptions): number => Math.min(o.shardBytes, 8 * MiB)

export function describeCluster (o: ClusterOptions): string[] {
  return [
    `cluster: ${o.ids.length} gateway processes on loopback (${o.ids.join(', ')}): ckptcache serve ${clusterFlags(o).join(' ')} --node-id <id> --peers <all three peer ports> --peer-port <port> --cluster-secret <secret> ` +
      '(probe interval 1 s, probe timeout 5 s, no peer read cache: the defaults); fresh data dirs every run',
    `machine: ${cpus().length} CPU cores shared by the ${o.ids.length} gateways, the client (this process), Azurite and the ceiling (idle while the cluster runs); ` +
      'every byte between nodes crosses loopback TCP, so the cluster\'s numbers are bounded by CPU here, not by a network',
    `checkpoint: ${o.shards} shards × ${size(o.shardBytes)} + a ${size(o.metadataBytes)} .metadata = ${((o.shards * o.shardBytes + o.metadataBytes) / MiB).toFixed(1)} MiB; ` +
      `save = ${o.shards} uploadData() at once (one Put Blob each), then .metadata; restore = .metadata, then ${o.shards} download() at once, streamed, every byte and length checked`,
    'phases (cluster): save through A until the last ack (ack all: A and one more node durable); restore through B; restore through C; kill -9 of A, then at once a restore through C ' +
      '(its view may still list A live: reads fall through to the next holder)',
    `targets: ${o.targets.join(', ')}; Azurite direct and the ceiling: the same save, then the same restore (the reference of every restore row); Azurite persists to disk`,
    'peer traffic: per node, deltas of ckptcache_peer_requests_total{op}, ckptcache_peer_requests_served_total{op} (probes left out), ckptcache_peer_bytes_total{direction} and ' +
      'ckptcache_served_bytes_total{source} over the phase; a client operation = one object saved or read',
    `runs: ${o.runs} (each a new step and a new cluster), after one warm-up checkpoint of ${o.shards} × ${size(warmBytes(o))} per target (the cluster: one per run, saved through A and read through B and C); ` +
      'target order rotates every run; every process quiet (≤ 10 ms CPU per 100 ms, twice; at most 30 s) before each phase'
  ]
}

/** Bytes the scenario may hold on disk at once: every step in Azurite and on the ceiling, one cluster's copies, slack. */
export const clusterDiskBytes = (o: ClusterOptions): number => {
  const one = o.shards * o.shardBytes + o.metadataBytes
  return one * (2 * (o.runs + 1) + o.replicas + 1) + 256 * MiB
}

/** A client on a fresh keep-alive agent, closed after its phase. */
interface Client {
  container: ContainerClient
  close: () => void
}

function connect (connectionString: string, container: string): Client {
  const agent = new Agent({ keepAlive: true })
  return { container: countedContainer(connectionString, container, agent, new RequestTally()), close: () => { agent.destroy() } }
}

/**
 * Starts Azurite and the ceiling under `ctx.tempRoot`, runs the warm-up and
 * `o.runs` runs (a new cluster each), and returns every sample. `onStarted`
 * sees the long-lived servers and the first cluster (for the setup header)
 * before the first measured run.
 */
export async function runCluster (o: ClusterOptions, ctx: ScenarioContext, onStarted: (servers: BenchServer[]) => void): Promise<ClusterResults> {
  const { tempRoot, started, abort } = ctx
  const results: ClusterResults = {}
  const record = (phase: Phase, target: Target, s: PhaseSample): void => { (((results[phase] ??= {})[target]) ??= []).push(s) }
  const forget = (s: BenchServer): void => { const i = started.indexOf(s); if (i !== -1) started.splice(i, 1) }

  const azurite = o.targets.includes('azurite') ? await startAzuriteServer(join(tempRoot, 'azurite')) : undefined
  if (azurite !== undefined) started.push(azurite)
  const ceiling = o.targets.includes('ceiling') ? await startCeilingServer(join(tempRoot, 'ceiling')) : undefined
  if (ceiling !== undefined) started.push(ceiling)
  for (const [server, container] of [[azurite, DIRECT_CONTAINER], [ceiling, GATEWAY_CONTAINER]] as const) {
    if (server === undefined) continue
    const c = connect(server.connectionString as string, container)
    try { await c.container.createIfNotExists({ abortSignal: adminSignal(abort) }) } finally { c.close() }
  }
  let announced = false
  const announce = (nodes: ClusterNode[]): void => {
    if (announced) return
    announced = true
    onStarted([...nodes, ...[azurite, ceiling].filter((s): s is BenchServer => s !== undefined)])
  }

  const sample = (t: Timed<unknown>, c: Checkpoint, extra: Partial<PhaseSample> = {}): PhaseSample => {
    const bytes = checkpointBytes(c)
    return {
      seconds: t.seconds,
      bytes,
      ops: c.shards.length + 1,
      ...(t.error === undefined ? { value: bytes / MiB / t.seconds } : { error: t.error }),
      cpuS: t.cpuS,
      peakRss: t.peakRss,
      loadAvg1: loadavg()[0] as number,
      ...extra
    }
  }
  const failure = (error: string): PhaseSample => ({ seconds: 0, bytes: 0, ops: 0, error, cpuS: {}, peakRss: {}, loadAvg1: loadavg()[0] as number })
  const done = (phase: Phase, target: Target, s: PhaseSample, measured: boolean): void => {
    if (!measured) {
      if (s.error !== undefined) progress(`  warm-up ${phase} ${target} FAILED: ${s.error}\n`)
      return
    }
    record(phase, target, s)
    const crossed = s.peers === undefined ? '' : `, peers ${(Object.values(s.peers).reduce((n, d) => n + d.bytesSent, 0) / MiB).toFixed(0)} MiB sent`
    progress(s.error === undefined
      ? `  ${phase.padEnd(15)} ${target.padEnd(8)} ${(s.value as number).toFixed(1).padStart(8)} MiB/s (${s.seconds.toFixed(2)} s${s.through === undefined ? '' : `, through ${s.through}`}${crossed}${s.downAfterS === undefined ? '' : `, survivors saw ${NODE_IDS[0]} down ${s.downAfterS.toFixed(1)} s after the kill`})\n`
      : `  ${phase.padEnd(15)} ${target.padEnd(8)} FAILED: ${s.error}\n`)
  }

  /** One save or restore through `node`, with every running node's CPU, RSS and /metrics deltas. */
  async function clusterPhase (nodes: ClusterNode[], node: ClusterNode, c: Checkpoint, work: 'save' | 'restore', beforeWork?: () => Promise<void>): Promise<{ s: PhaseSample, t: Timed<unknown> }> {
    if (abort.aborted) throw new Error('aborted')
    await quiet(nodes.filter((n) => !n.gone).map((n) => n.pid))
    const m0 = await scrapeAll(nodes, abort)
    await beforeWork?.()
    const pids = Object.fromEntries(nodes.filter((n) => !n.gone).map((n) => [n.id, n.pid]))
    const client = connect(node.connectionString as string, GATEWAY_CONTAINER)
    let t: Timed<unknown>
    try {
      t = await timed(pids, bulkTimeout(checkpointBytes(c)), abort, async (signal) => work === 'save'
        ? await saveCheckpoint(client.container, c, 'uploadData', signal)
        : await restoreCheckpoint(client.container, c, signal))
    } finally {
      client.close()
    }
    const m1 = await scrapeAll(nodes, abort)
    return { s: sample(t, c, { through: node.id, peers: peerDeltas(m0, m1) }), t }
  }

  /** A new cluster: warm-up, save through A, restore through B and C, kill A, restore through C; then every node stopped. */
  async function viaCluster (c: Checkpoint, run: number): Promise<void> {
    const dir = join(tempRoot, `cluster-${run}`)
    const nodes = await startCluster(dir, o, started, abort)
    try {
      announce(nodes)
      const [a, b, cc] = nodes as [ClusterNode, ClusterNode, ClusterNode]
      const setup = connect(a.connectionString as string, GATEWAY_CONTAINER)
      try { await setup.container.createIfNotExists({ abortSignal: adminSignal(abort) }) } finally { setup.close() }

      const warm = checkpoint(`warm-up-${run}`, o.shards, warmBytes(o), o.metadataBytes)
      for (const [node, work] of [[a, 'save'], [b, 'restore'], [cc, 'restore']] as const) {
        const { s } = await clusterPhase(nodes, node, warm, work)
        done(work === 'save' ? 'save' : node === b ? 'restore-b' : 'restore-c', 'cluster', s, false)
        if (s.error !== undefined) throw new Error(`warm-up ${work} through ${node.id}: ${s.error}`)
      }

      const save = await clusterPhase(nodes, a, c, 'save')
      done('save', 'cluster', save.s, true)
      if (save.s.error !== undefined) return
      for (const [node, phase] of [[b, 'restore-b'], [cc, 'restore-c']] as const) {
        const { s } = await clusterPhase(nodes, node, c, 'restore')
        done(phase, 'cluster', s, true)
      }
      let killedAt = 0
      const killed = await clusterPhase(nodes, cc, c, 'restore', async () => {
        killedAt = performance.now()
        await a.kill()
        forget(a)
      })
      // How long the survivors' views take to drop the killed node (probe timeout), measured after the phase.
      try {
        await converged([b, cc], [b.id, cc.id], abort)
        killed.s.downAfterS = (performance.now() - killedAt) / 1000
      } catch (err) {
        progress(`  ${(err as Error).message}\n`)
      }
      done('restore-killed', 'cluster', killed.s, true)
    } finally {
      await Promise.all(nodes.map(async (n) => { await n.stop(); forget(n) }))
      await rm(dir, { recursive: true, force: true, maxRetries: 5 })
    }
  }

  /** The same save and restore straight to Azurite or to the ceiling. */
  async function direct (target: 'azurite' | 'ceiling', c: Checkpoint, measured: boolean): Promise<void> {
    const server = (target === 'azurite' ? azurite : ceiling) as BenchServer
    const container = target === 'azurite' ? DIRECT_CONTAINER : GATEWAY_CONTAINER
    const pids = { [target]: server.pid }
    for (const work of ['save', 'restore'] as const) {
      if (abort.aborted) throw new Error('aborted')
      await quiet([server.pid])
      const client = connect(server.connectionString as string, container)
      let t: Timed<unknown>
      try {
        t = await timed(pids, bulkTimeout(checkpointBytes(c)), abort, async (signal) => work === 'save'
          ? await saveCheckpoint(client.container, c, uploadCall(o, target), signal)
          : await restoreCheckpoint(client.container, c, signal))
      } finally {
        client.close()
      }
      const s = sample(t, c)
      done(work, target, s, measured)
      if (s.error !== undefined) return
    }
  }

  /** One target's phases; an error outside a timed phase (a node that would not start, an admin API that failed) fails the run, not the benchmark. */
  const runTarget = async (t: Target, c: Checkpoint, run: number, measured: boolean): Promise<void> => {
    try {
      if (t === 'cluster') await viaCluster(c, run)
      else await direct(t, c, measured)
    } catch (err) {
      done('save', t, failure(`run failed: ${tail(String((err as Error).message ?? err))}`), true)
    }
  }

  progress(`warm-up: one ${o.shards} × ${size(warmBytes(o))} checkpoint per direct target (the cluster warms up in every run)\n`)
  const warm = checkpoint('warm-up', o.shards, warmBytes(o), o.metadataBytes)
  for (const t of o.targets) if (t !== 'cluster') await runTarget(t, warm, 0, false)

  for (let r = 0; r < o.runs; r++) {
    const c = checkpoint(`step-${r + 1}`, o.shards, o.shardBytes, o.metadataBytes)
    if (Date.now() > ctx.deadline || abort.aborted) {
      progress(`run ${r + 1}: skipped (${abort.aborted ? 'aborted' : 'past --max-minutes'})\n`)
      for (const t of o.targets) record('save', t, failure(abort.aborted ? 'aborted' : 'skipped: past --max-minutes'))
      continue
    }
    progress(`run ${r + 1}/${o.runs}: ${c.dir}\n`)
    for (const t of rotate(o.targets, r)) await runTarget(t, c, r + 1, true)
  }
  announce([]) // no cluster ever started: the header still shows the setup
  return results
}
