/**
 * The checkpoint scenario (`npm run bench -- --only checkpoint`): what the
 * gateway is for, measured against writing the same checkpoint straight to
 * Azure Blob (Azurite here) and against the ceiling, in one run.
 *
 * Per run, in an order that rotates every run:
 * - gateway (`--mode writeback`, upstream Azurite): save (every shard at once,
 *   then `.metadata`) until the last acknowledgement; then `POST /flush` of
 *   the step's prefix until it is clean upstream; a restore from the warm
 *   cache; then the gateway is stopped, its data dir deleted, a fresh one
 *   started on the same Azurite, and the restore repeated (read-through).
 *   Upstream requests and bytes come from the gateway's /metrics deltas.
 * - Azurite direct: the same client saves the same checkpoint to Azurite and
 *   restores it; a counting policy in the client's pipeline counts requests.
 * - ceiling: a plain node:http file server, one Put Blob per shard, then the
 *   restore: the most this machine does for the same bytes.
 *
 * Between phases every server must go quiet, so one phase's leftovers do not
 * slow the next; the gateway's flush starts the moment the save is
 * acknowledged, since the upload behind it is what "time to clean" measures.
 */

import { Agent } from 'node:http'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import type { ContainerClient } from '@azure/storage-blob'
import { flush, scrape, servedDelta, startWritebackGateway, status, retriesDelta, upstreamDelta, type WritebackGateway } from './checkpoint-gateway.js'
import {
  checkpoint, checkpointBytes, countedContainer, DIRECT_CONTAINER, GATEWAY_CONTAINER, RequestTally, restoreCheckpoint, saveCheckpoint,
  type Checkpoint, type Traffic, type UploadCall
} from './checkpoint-scenarios.js'
import { bulkTimeout, progress, quiet, rotate, timed, type Timed } from './measure.js'
import { MiB } from './report.js'
import { checkpointShape, type CheckpointShape, type ScenarioContext } from './scenario.js'
import { startAzuriteServer, startCeilingServer, type BenchServer } from './servers/start.js'

export type Target = 'gateway' | 'azurite' | 'ceiling'
export const TARGETS: readonly Target[] = ['gateway', 'azurite', 'ceiling']
/** save: until the last ack; flush: ack → clean (gateway); clean: save start → clean upstream; restore: warm cache (gateway) or the server; restore-cold: after a cache wipe. */
export type Phase = 'save' | 'flush' | 'clean' | 'restore' | 'restore-cold'

export interface CheckpointOptions extends CheckpointShape {
  upload: Exclude<UploadCall, 'upload'>
  targets: Target[]
  quick: boolean
}

/** Reads --shards, --shard-mib, --upload (and the shared --runs, --servers); throws a message naming the flag on bad input. */
export function checkpointOptions (option: (name: string) => string | undefined, quick: boolean, runs: number | undefined, servers: readonly string[] | undefined): CheckpointOptions {
  const upload = option('upload') ?? 'uploadData'
  if (upload !== 'uploadStream' && upload !== 'uploadData') throw new Error('--upload takes uploadStream or uploadData')
  const targets = TARGETS.filter((t) => servers === undefined || servers.includes(t))
  if (targets.length === 0) throw new Error(`--servers: the checkpoint scenario measures ${TARGETS.join(', ')}`)
  return {
    ...checkpointShape(option, quick, runs),
    upload,
    targets,
    quick
  }
}

export interface PhaseSample {
  seconds: number
  bytes: number
  /** MiB/s; absent when the phase failed. */
  value?: number
  error?: string
  /** CPU seconds during the phase: each server process, and this process (the client). */
  cpuS: Partial<Record<Target | 'client', number>>
  /** Peak RSS (VmHWM) of each server process during the phase, bytes (since its start where the peak cannot be reset). */
  peakRss?: Partial<Record<Target, number>>
  /** Requests and bytes that reached Azure Blob (Azurite): the gateway's /metrics deltas, or the direct client's own count. */
  upstream?: Traffic
  /** Requests the client sent to the server it talks to. */
  client?: Traffic
  /** Gateway: bytes served from its cache (`local`) and from Azure Blob (`upstream`). */
  served?: Record<string, number>
  /** Gateway: upstream retries during the phase. */
  retries?: number
  loadAvg1: number
}

export type CheckpointResults = Partial<Record<Phase, Partial<Record<Target, PhaseSample[]>>>>

/** A long error (a server's output when it failed to start) by its first line and its end, where the cause is. */
const tail = (text: string): string => text.length <= 600 ? text : `${text.slice(0, text.indexOf('\n') === -1 ? 200 : Math.min(200, text.indexOf('\n')))} … ${text.slice(-600)}`
/** A timed phase's error, shortened. */
const brief = (message: string): string => message.slice(0, 300)

/** A client on a fresh keep-alive agent (destroyed after the target's phases of one run), its requests counted. */
interface Client {
  container: ContainerClient
  tally: RequestTally
  close: () => void
}

function connect (connectionString: string, container: string): Client {
  const agent = new Agent({ keepAlive: true })
  const tally = new RequestTally()
  return { container: countedContainer(connectionString, container, agent, tally), tally, close: () => { agent.destroy() } }
}

/** The ceiling has no blocks: it takes the client's call where that is one Put Blob, else one Put Blob per shard (`upload`). */
const ceilingCall = (o: CheckpointOptions): UploadCall => o.upload === 'uploadData' && o.shardBytes <= 256 * MiB ? 'uploadData' : 'upload'

export function describeCheckpoint (o: CheckpointOptions): string[] {
  const size = (b: number): string => b >= MiB ? `${b / MiB} MiB` : `${b / 1024} KiB`
  const upload = o.upload === 'uploadStream'
    ? 'uploadStream(stream) at its defaults (Put Block of 8 MiB, 5 buffers in flight per upload, + Put Block List; ~8 client CPU-s/GiB here, its buffers go out in 16 KiB pieces)'
    : 'uploadData(buffer) at its defaults (one Put Blob up to 256 MiB, else Put Block of max(4 MiB, size/50000), 5 in flight, + Put Block List)'
  return [
    `checkpoint: ${o.shards} shards × ${size(o.shardBytes)} (ckpt/step-N/__<rank>_0.distcp) + a ${size(o.metadataBytes)} .metadata = ${((o.shards * o.shardBytes + o.metadataBytes) / MiB).toFixed(1)} MiB; ` +
      `save = ${o.shards} uploads at once (one per rank), then .metadata; restore = .metadata, then ${o.shards} downloads at once, every byte checked`,
    `client: ${upload}; download() streamed; the ceiling has no blocks: ${ceilingCall(o) === 'upload' ? 'it takes one Put Blob per shard (upload(() => stream, size)) instead' : 'the same calls (one Put Blob each)'}`,
    `targets: ${o.targets.join(', ')}; gateway = ckptcache serve --mode writeback --upstream-connection-string <Azurite> --admin-port 0 (upload block size 8 MiB, 8 objects × 4 blocks in flight: the defaults); ` +
      'Azurite persists to disk; the gateway\'s upstream and the direct client share it (containers ckpt and ckpt-direct)',
    'phases: save until the last ack; time to clean = save start until POST /flush of the step\'s prefix says done (the flush starts at the ack); ' +
      'warm restore from the gateway\'s cache; cold restore after stopping the gateway, deleting its data dir and starting a fresh one on the same Azurite (read-through)',
    'upstream requests and bytes: the gateway\'s /metrics deltas (ckptcache_upstream_requests_total, ckptcache_upstream_bytes_total); direct: a counting policy in the client\'s pipeline, the same operation names and data/metadata classes',
    `runs: ${o.runs} (each a new step), after one warm-up checkpoint of ${o.shards} × ${size(Math.min(o.shardBytes, 8 * MiB))} per target; target order rotates every run; every server quiet (≤ 10 ms CPU per 100 ms, twice; at most 30 s) before each phase`
  ]
}

/** Bytes the scenario may leave on disk: every step in Azurite twice (gateway, direct) and on the ceiling, plus two checkpoints in a gateway's cache. */
export const checkpointDiskBytes = (o: CheckpointOptions): number => {
  const one = o.shards * o.shardBytes + o.metadataBytes
  return one * (3 * (o.runs + 1) + 2) + 256 * MiB
}

/**
 * Starts Azurite, the gateway and the ceiling under `ctx.tempRoot`, runs the
 * warm-up and `o.runs` runs, and returns every sample. `onStarted` sees the
 * first servers (for the setup header) before the runs begin.
 */
export async function runCheckpoint (o: CheckpointOptions, ctx: ScenarioContext, onStarted: (servers: BenchServer[]) => void): Promise<CheckpointResults> {
  const { tempRoot, started, abort } = ctx
  const results: CheckpointResults = {}
  const record = (phase: Phase, target: Target, s: PhaseSample): void => { (((results[phase] ??= {})[target]) ??= []).push(s) }
  const forget = (s: BenchServer): void => { const i = started.indexOf(s); if (i !== -1) started.splice(i, 1) }

  const needAzurite = o.targets.includes('gateway') || o.targets.includes('azurite')
  const azurite = needAzurite ? await startAzuriteServer(join(tempRoot, 'azurite')) : undefined
  if (azurite !== undefined) started.push(azurite)
  const ceiling = o.targets.includes('ceiling') ? await startCeilingServer(join(tempRoot, 'ceiling')) : undefined
  if (ceiling !== undefined) started.push(ceiling)
  let generation = 0
  const startGw = async (): Promise<WritebackGateway> => {
    const gw = await startWritebackGateway(join(tempRoot, `gateway-${generation++}`), azurite?.connectionString as string)
    started.push(gw)
    return gw
  }
  let gw = o.targets.includes('gateway') ? await startGw() : undefined
  onStarted(started.slice())
  if (azurite !== undefined) {
    const c = connect(azurite.connectionString as string, DIRECT_CONTAINER)
    await c.container.createIfNotExists()
    c.close()
  }
  for (const server of [gw, ceiling]) {
    if (server === undefined) continue
    const c = connect(server.connectionString as string, GATEWAY_CONTAINER)
    await c.container.createIfNotExists()
    c.close()
  }

  /** The server pids whose CPU a target's phases charge. */
  const pidsOf = (t: Target): Record<string, number> => {
    if (t === 'gateway') return { gateway: (gw as WritebackGateway).pid, azurite: (azurite as BenchServer).pid }
    if (t === 'azurite') return { azurite: (azurite as BenchServer).pid }
    return { ceiling: (ceiling as BenchServer).pid }
  }
  const settle = async (t: Target): Promise<void> => { await quiet(Object.values(pidsOf(t))) }
  const sample = <T>(t: Timed<T>, bytes: number, extra: Partial<PhaseSample> = {}): PhaseSample => ({
    seconds: t.seconds,
    bytes,
    ...(t.error === undefined ? { value: bytes / MiB / t.seconds } : { error: t.error }),
    cpuS: t.cpuS,
    peakRss: t.peakRss,
    loadAvg1: loadavg()[0] as number,
    ...extra
  })
  /** Records a measured phase and shows it; a warm-up phase only shows when it failed. */
  const done = (phase: Phase, target: Target, s: PhaseSample, measured: boolean): void => {
    if (measured) {
      record(phase, target, s)
      report(phase, target, s)
    } else if (s.error !== undefined) {
      progress(`  warm-up ${phase} ${target} FAILED: ${s.error}\n`)
    }
  }
  const report = (phase: Phase, target: Target, s: PhaseSample): void => {
    progress(s.error === undefined
      ? `  ${phase.padEnd(12)} ${target.padEnd(8)} ${(s.value as number).toFixed(1).padStart(8)} MiB/s (${s.seconds.toFixed(2)} s${s.upstream === undefined ? '' : `, upstream ${s.upstream.data + s.upstream.metadata} requests, ${(s.upstream.bytesOut / MiB).toFixed(0)} MiB out, ${(s.upstream.bytesIn / MiB).toFixed(0)} MiB in`})\n`
      : `  ${phase.padEnd(12)} ${target.padEnd(8)} FAILED: ${s.error}\n`)
  }

  /** One save + flush + warm restore (+ cold restore) through the gateway. */
  async function viaGateway (c: Checkpoint, measured: boolean): Promise<void> {
    const bytes = checkpointBytes(c)
    const timeout = bulkTimeout(bytes)
    const client = connect((gw as WritebackGateway).connectionString as string, GATEWAY_CONTAINER)
    try {
      await settle('gateway')
      const m0 = await scrape(gw as WritebackGateway)
      const save = await timed(pidsOf('gateway'), timeout, abort, async (signal) => await saveCheckpoint(client.container, c, o.upload, signal), brief)
      const saved = sample(save, bytes, { client: client.tally.take() })
      done('save', 'gateway', saved, measured)
      if (save.error !== undefined) return
      const fl = await timed(pidsOf('gateway'), 2 * timeout, abort, async (signal) => await flush(gw as WritebackGateway, GATEWAY_CONTAINER, c.dir, signal), brief)
      const m1 = await scrape(gw as WritebackGateway)
      const st = await status(gw as WritebackGateway)
      const left = st.writeback?.dirtyBytes ?? 0
      const flushError = fl.error ?? (left > 0 ? `flush done but ${left} bytes still dirty` : undefined)
      const flushed = sample({ ...fl, ...(flushError === undefined ? {} : { error: flushError }) }, bytes)
      const cpuS: Record<string, number> = {}
      for (const k of Object.keys({ ...save.cpuS, ...fl.cpuS })) cpuS[k] = (save.cpuS[k] ?? 0) + (fl.cpuS[k] ?? 0)
      const peak: Record<string, number> = {}
      for (const k of Object.keys({ ...save.peakRss, ...fl.peakRss })) peak[k] = Math.max(save.peakRss[k] ?? 0, fl.peakRss[k] ?? 0)
      const clean = sample({ seconds: save.seconds + fl.seconds, cpuS, peakRss: peak, ...(flushError === undefined ? {} : { error: flushError }) }, bytes,
        { upstream: upstreamDelta(m0, m1), retries: retriesDelta(m0, m1) })
      if (measured && flushError === undefined) record('flush', 'gateway', flushed)
      done('clean', 'gateway', clean, measured)
      if (flushError !== undefined) return

      await settle('gateway')
      const m2 = await scrape(gw as WritebackGateway)
      const warm = await timed(pidsOf('gateway'), timeout, abort, async (signal) => await restoreCheckpoint(client.container, c, signal), brief)
      const m3 = await scrape(gw as WritebackGateway)
      const restored = sample(warm, bytes, { client: client.tally.take(), upstream: upstreamDelta(m2, m3), served: servedDelta(m2, m3), retries: retriesDelta(m2, m3) })
      done('restore', 'gateway', restored, measured)
      if (!measured) return
    } finally {
      client.close()
    }

    // Cold: a fresh gateway with an empty cache on the same upstream.
    const old = gw as WritebackGateway
    await old.stop()
    forget(old)
    await rm(old.dir, { recursive: true, force: true, maxRetries: 5 })
    gw = await startGw()
    const cold = connect(gw.connectionString as string, GATEWAY_CONTAINER)
    try {
      await settle('gateway')
      const m4 = await scrape(gw)
      const t = await timed(pidsOf('gateway'), timeout, abort, async (signal) => await restoreCheckpoint(cold.container, c, signal), brief)
      const m5 = await scrape(gw)
      const s = sample(t, bytes, { client: cold.tally.take(), upstream: upstreamDelta(m4, m5), served: servedDelta(m4, m5), retries: retriesDelta(m4, m5) })
      done('restore-cold', 'gateway', s, true)
    } finally {
      cold.close()
    }
  }

  /** The same save and restore straight to Azurite (or to the ceiling). */
  async function direct (target: 'azurite' | 'ceiling', c: Checkpoint, measured: boolean): Promise<void> {
    const bytes = checkpointBytes(c)
    const timeout = bulkTimeout(bytes)
    const server = (target === 'azurite' ? azurite : ceiling) as BenchServer
    const client = connect(server.connectionString as string, target === 'azurite' ? DIRECT_CONTAINER : GATEWAY_CONTAINER)
    const upstream = (t: Traffic): Partial<PhaseSample> => target === 'azurite' ? { client: t, upstream: t } : { client: t }
    try {
      await settle(target)
      const save = await timed(pidsOf(target), timeout, abort, async (signal) => await saveCheckpoint(client.container, c, target === 'ceiling' ? ceilingCall(o) : o.upload, signal), brief)
      const saved = sample(save, bytes, upstream(client.tally.take()))
      done('save', target, saved, measured)
      // Written straight to the store, a checkpoint is clean when acknowledged.
      if (measured && target === 'azurite' && saved.error === undefined) record('clean', target, saved)
      if (save.error !== undefined) return
      await settle(target)
      const restore = await timed(pidsOf(target), timeout, abort, async (signal) => await restoreCheckpoint(client.container, c, signal), brief)
      const restored = sample(restore, bytes, upstream(client.tally.take()))
      done('restore', target, restored, measured)
    } finally {
      client.close()
    }
  }

  /** One target's phases; an error outside a timed phase (a server that died, an admin API that failed) fails the run, not the benchmark. */
  const runTarget = async (t: Target, c: Checkpoint, measured: boolean): Promise<void> => {
    try {
      if (t === 'gateway') await viaGateway(c, measured)
      else await direct(t, c, measured)
    } catch (err) {
      done('save', t, { seconds: 0, bytes: 0, cpuS: {}, loadAvg1: loadavg()[0] as number, error: `run failed: ${tail(String((err as Error).message ?? err))}` }, measured)
    }
  }

  progress(`warm-up: one ${o.shards} × ${Math.min(o.shardBytes, 8 * MiB) / MiB} MiB checkpoint per target\n`)
  const warm = checkpoint('warm-up', o.shards, Math.min(o.shardBytes, 8 * MiB), o.metadataBytes)
  for (const t of o.targets) await runTarget(t, warm, false)

  for (let r = 0; r < o.runs; r++) {
    const c = checkpoint(`step-${r + 1}`, o.shards, o.shardBytes, o.metadataBytes)
    if (Date.now() > ctx.deadline || abort.aborted) {
      progress(`run ${r + 1}: skipped (${abort.aborted ? 'aborted' : 'past --max-minutes'})\n`)
      for (const t of o.targets) record('save', t, { seconds: 0, bytes: 0, cpuS: {}, loadAvg1: 0, error: abort.aborted ? 'aborted' : 'skipped: past --max-minutes' })
      continue
    }
    progress(`run ${r + 1}/${o.runs}: ${c.dir}\n`)
    for (const t of rotate(o.targets, r)) await runTarget(t, c, true)
  }
  return results
}
