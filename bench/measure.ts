/**
 * One measured run: the work under a timeout against one server, its wall
 * time, the server's CPU (during the run and after it until quiet), the
 * client's CPU and the server's peak RSS (the Measurer of the Blob and S3
 * plans); and one timed phase against several servers at once, with the wait
 * for quiet servers before it (`quiet`, `timed`: the checkpoint and cluster
 * plans).
 */

import { setMaxListeners } from 'node:events'
import { loadavg } from 'node:os'
import type { Transfer } from './blob-scenarios.js'
import { fmtMiB, MiB, type Results, type Sample, type Scenario } from './report.js'
import { cpuSeconds, peakRss, resetPeakRss, type RssTracker } from './rss.js'
import type { BenchServer, ServerName } from './servers/start.js'

/** Slowest rate a bulk run may take before it is abandoned, and the floor of every timeout. */
export const MIN_RATE = 20 * MiB
export const TIMEOUT_FLOOR_MS = 30_000
export const bulkTimeout = (bytes: number): number => TIMEOUT_FLOOR_MS + bytes / MIN_RATE * 1000
export const smallTimeout = (ops: number): number => TIMEOUT_FLOOR_MS + ops * 25

export const progress = (s: string): void => { process.stderr.write(s) }
export const rotate = <T>(xs: readonly T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length] as T)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** After a run, how long a server may stay busy (deferred work: background MD5, GC, flushes) before we move on. */
const SETTLE_MAX_MS = 60_000
/** One poll window of `settle` and `quiet`. */
const POLL_MS = 100
/** A poll window with at most this much server CPU counts as quiet (one /proc tick is 10 ms). */
const QUIET_CPU_S = 0.01

/**
 * Waits until the server has been quiet for two poll windows, so that work it
 * deferred past its responses is charged to this run (and its CPU) instead of
 * slowing whichever server runs next on the same two cores.
 */
async function settle (pid: number): Promise<{ seconds: number, cpuS?: number }> {
  const t0 = performance.now()
  const c0 = cpuSeconds(pid)
  let prev = c0
  let calm = 0
  while (performance.now() - t0 < SETTLE_MAX_MS && calm < 2) {
    await sleep(POLL_MS)
    const now = cpuSeconds(pid)
    if (now === undefined || prev === undefined) break
    calm = now - prev <= QUIET_CPU_S ? calm + 1 : 0
    prev = now
  }
  const c1 = cpuSeconds(pid)
  return { seconds: (performance.now() - t0) / 1000, ...(c0 === undefined || c1 === undefined ? {} : { cpuS: c1 - c0 }) }
}

// ---- one phase against several servers (checkpoint, cluster) ----------------------------------

/** Before a phase, how long the servers may stay busy before it starts anyway. */
const QUIET_MAX_MS = 30_000

/** Waits until every process in `pids` spent ≤ 10 ms CPU in each of two 100 ms windows (at most 30 s). */
export async function quiet (pids: readonly number[]): Promise<void> {
  const t0 = performance.now()
  let prev = pids.map((p) => cpuSeconds(p) ?? 0)
  let calm = 0
  while (calm < 2 && performance.now() - t0 < QUIET_MAX_MS) {
    await sleep(POLL_MS)
    const now = pids.map((p) => cpuSeconds(p) ?? 0)
    calm = now.every((c, i) => c - (prev[i] as number) <= QUIET_CPU_S) ? calm + 1 : 0
    prev = now
  }
}

export interface Timed<T> {
  seconds: number
  /** CPU seconds during the phase: each server process by name, and `client` (this process). */
  cpuS: Record<string, number>
  /** Peak RSS (VmHWM) of each server process during the phase (since its start where the peak cannot be reset). */
  peakRss: Record<string, number>
  result?: T
  error?: string
}

/** A long error (a server's output) by its start and its end, where the cause is. */
export const tail = (text: string): string => text.length <= 600 ? text : `${text.slice(0, 200)} … ${text.slice(-400)}`

/**
 * Runs `work` under a timeout (and `abort`), timing it and reading the CPU and
 * peak RSS of `servers` (name → pid). A failure's message is shortened by
 * `brief` (default `tail`).
 */
export async function timed<T> (servers: Record<string, number>, timeoutMs: number, abort: AbortSignal, work: (signal: AbortSignal) => Promise<T>,
  brief: (message: string) => string = tail): Promise<Timed<T>> {
  const signal = AbortSignal.any([abort, AbortSignal.timeout(Math.ceil(timeoutMs))])
  setMaxListeners(0, signal) // every request in flight listens on it
  const entries = Object.entries(servers)
  for (const [, pid] of entries) resetPeakRss(pid)
  const cpu0 = entries.map(([, pid]) => cpuSeconds(pid))
  const client0 = process.cpuUsage()
  const t0 = performance.now()
  let result: T | undefined
  let error: string | undefined
  try {
    result = await work(signal)
  } catch (err) {
    error = signal.aborted && !abort.aborted ? `timeout after ${(timeoutMs / 1000).toFixed(0)} s` : brief(String((err as Error).message ?? err))
  }
  const seconds = (performance.now() - t0) / 1000
  const client = process.cpuUsage(client0)
  const cpuS: Record<string, number> = { client: (client.user + client.system) / 1e6 }
  const rss: Record<string, number> = {}
  entries.forEach(([name, pid], i) => {
    const c1 = cpuSeconds(pid)
    const c0 = cpu0[i]
    if (c0 !== undefined && c1 !== undefined) cpuS[name] = c1 - c0
    const peak = peakRss(pid)
    if (peak !== undefined) rss[name] = peak
  })
  return { seconds, cpuS, peakRss: rss, ...(result === undefined ? {} : { result }), ...(error === undefined ? {} : { error }) }
}

// ---- one run against one server (Blob, S3) ------------------------------------------------------

/** A client for one run, made before the clock starts and closed (its connections with it) after the work. */
export interface Connection<C> {
  client: C
  close: () => void
}
export type Connect<C> = (server: BenchServer) => Connection<C>
export type Work<C> = (client: C, signal: AbortSignal) => Promise<Transfer>

export interface MeasurerOptions {
  /** Runs that would start after this time (ms since the epoch) are recorded as skipped. */
  deadline: number
  /** Aborted on SIGINT/SIGTERM: the run in flight stops, later ones are recorded as aborted. */
  abort: AbortSignal
  results: Results
  trackers: Map<ServerName, RssTracker>
}

export class Measurer {
  readonly #o: MeasurerOptions

  constructor (options: MeasurerOptions) {
    this.#o = options
  }

  /**
   * Runs `work` once against `server` on a fresh client from `connect`, under a
   * timeout, then lets the server settle. Records a Sample under `sc`, or
   * nothing when `sc` is undefined (warm-up).
   */
  async measure<C> (server: BenchServer, sc: Scenario | undefined, timeoutMs: number, connect: Connect<C>, work: Work<C>): Promise<Sample> {
    const { deadline, abort, results, trackers } = this.#o
    const tracker = trackers.get(server.name) as RssTracker
    const record = (sample: Sample): Sample => {
      if (sc !== undefined) ((results[sc.key] ??= {})[server.name] ??= []).push(sample)
      return sample
    }
    if (Date.now() > deadline) return record({ seconds: 0, bytes: 0, ops: 0, clientCpuS: 0, error: 'skipped: past --max-minutes' })
    if (abort.aborted) return record({ seconds: 0, bytes: 0, ops: 0, clientCpuS: 0, error: 'aborted' })
    const signal = AbortSignal.any([abort, AbortSignal.timeout(timeoutMs)])
    setMaxListeners(0, signal) // every in-flight request of the run listens on it
    const connection = connect(server)
    const load = loadavg()[0] as number
    tracker.begin()
    const cpu0 = cpuSeconds(server.pid)
    const client0 = process.cpuUsage()
    const t0 = performance.now()
    let transfer: Transfer | undefined
    let error: string | undefined
    try {
      transfer = await work(connection.client, signal)
    } catch (err) {
      error = signal.aborted && !abort.aborted ? `timeout after ${(timeoutMs / 1000).toFixed(0)} s` : String((err as Error).message ?? err).slice(0, 200)
    } finally {
      connection.close()
    }
    const seconds = (performance.now() - t0) / 1000
    const cpu1 = cpuSeconds(server.pid)
    const client = process.cpuUsage(client0)
    const settled = await settle(server.pid)
    const peak = tracker.end(sc?.rssPhase ?? 'warm-up')
    const sample: Sample = {
      seconds,
      bytes: transfer?.bytes ?? 0,
      ops: transfer?.ops ?? 0,
      clientCpuS: (client.user + client.system) / 1e6,
      peakRssBytes: peak,
      settleS: settled.seconds,
      loadAvg1: load,
      ...(cpu0 === undefined || cpu1 === undefined ? {} : { serverCpuS: cpu1 - cpu0 }),
      ...(settled.cpuS === undefined ? {} : { deferredCpuS: settled.cpuS }),
      ...(error === undefined ? {} : { error })
    }
    if (transfer !== undefined && error === undefined) {
      sample.value = sc?.unit === 'ops/s' ? transfer.ops / seconds : transfer.bytes / MiB / seconds
    }
    if (sc !== undefined) {
      const deferred = (sample.deferredCpuS ?? 0) >= 0.05 ? ` + ${(sample.deferredCpuS as number).toFixed(2)} s after the last response` : ''
      progress(error === undefined
        ? `  ${sc.label.padEnd(34)} ${server.name.padEnd(8)} ${(sample.value as number).toFixed(1).padStart(8)} ${sc.unit}  (${seconds.toFixed(2)} s, server CPU ${sample.serverCpuS?.toFixed(2) ?? '?'} s${deferred}, peak RSS ${fmtMiB(peak)})\n`
        : `  ${sc.label.padEnd(34)} ${server.name.padEnd(8)} FAILED: ${error}\n`)
    }
    return record(sample)
  }
}
