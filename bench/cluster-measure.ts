/**
 * One timed phase of the cluster benchmark: the work under a timeout, its wall
 * time, the CPU of each server process and of the client (this process), each
 * server's peak RSS; and the wait for quiet servers before a phase, so one
 * phase's leftovers do not slow the next on the machine's shared cores.
 */

import { setMaxListeners } from 'node:events'
import { cpuSeconds, peakRss, resetPeakRss } from './rss.js'

/** After a phase, how long the servers may stay busy before the next phase starts anyway. */
const QUIET_MAX_MS = 30_000
const QUIET_POLL_MS = 100
/** A poll window with at most this much CPU per process counts as quiet (one /proc tick is 10 ms). */
const QUIET_CPU_S = 0.01

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Waits until every process in `pids` spent ≤ 10 ms CPU in each of two 100 ms windows (at most 30 s). */
export async function quiet (pids: readonly number[]): Promise<void> {
  const t0 = performance.now()
  let prev = pids.map((p) => cpuSeconds(p) ?? 0)
  let calm = 0
  while (calm < 2 && performance.now() - t0 < QUIET_MAX_MS) {
    await sleep(QUIET_POLL_MS)
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

/** Runs `work` under a timeout (and `abort`), timing it and reading the CPU and peak RSS of `servers` (name → pid). */
export async function timed<T> (servers: Record<string, number>, timeoutMs: number, abort: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<Timed<T>> {
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
    error = signal.aborted && !abort.aborted ? `timeout after ${(timeoutMs / 1000).toFixed(0)} s` : tail(String((err as Error).message ?? err))
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
