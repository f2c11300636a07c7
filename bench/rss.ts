/**
 * Per-process memory and CPU from Linux /proc, for servers running as child
 * processes: peak RSS (VmHWM), current RSS, a reset of the peak between
 * measurements (`clear_refs` 5) and CPU time (utime + stime of all threads).
 * Everything degrades to `undefined` where /proc is missing or not ours.
 */

import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

const KiB = 1024
/** USER_HZ: /proc/<pid>/stat counts CPU time in clock ticks, 100 per second on Linux. */
const TICKS_PER_S = 100

type StatusField = 'VmHWM' | 'VmRSS' | 'RssAnon' | 'RssFile' | 'RssShmem'

function statusField (pid: number, field: StatusField): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * KiB
  } catch {
    return undefined
  }
}

/** Peak resident set size in bytes since start or since the last `resetPeakRss`. */
export function peakRss (pid: number): number | undefined {
  return statusField(pid, 'VmHWM')
}

/** Current resident set size in bytes. */
export function currentRss (pid: number): number | undefined {
  return statusField(pid, 'VmRSS')
}

/** Current RSS split into anonymous memory (heaps, buffers) and file-backed pages (the node binary, libraries). */
export function rssBreakdown (pid: number): { anon?: number, file?: number, shmem?: number } {
  return { anon: statusField(pid, 'RssAnon'), file: statusField(pid, 'RssFile'), shmem: statusField(pid, 'RssShmem') }
}

/** Number of threads of a process (main, libuv pool, V8 platform, workers). */
export function threadCount (pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/task`).length
  } catch {
    return undefined
  }
}

/** Resets VmHWM to the current RSS (proc(5): clear_refs, value 5). Returns false where not allowed. */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** User + system CPU seconds of a process, all its threads included. */
export function cpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_S
  } catch {
    return undefined
  }
}

/** The command line of a process, arguments joined by spaces. */
export function commandLine (pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '').join(' ')
  } catch {
    return ''
  }
}

/** The direct children of `parent` whose command line contains every one of `needles`. */
export function findChildPids (parent: number, needles: string[]): number[] {
  const out: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    const pid = Number(e)
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== parent) continue
    } catch {
      continue
    }
    const cmd = commandLine(pid)
    if (needles.every((n) => cmd.includes(n))) out.push(pid)
  }
  return out
}

/**
 * Tracks one server process's peak RSS: overall, and per labelled phase.
 * `begin()` folds the peak so far into the overall figure and resets the
 * kernel's counter; `end(label)` reads the peak of the phase.
 */
export class RssTracker {
  readonly pid: number
  /** Whether the kernel let us reset the peak; if not, phase peaks are peaks since start. */
  readonly canReset: boolean
  overall = 0
  readonly phases = new Map<string, number>()
  readonly idle: number
  readonly idleBreakdown: ReturnType<typeof rssBreakdown>

  constructor (pid: number) {
    this.pid = pid
    this.idle = currentRss(pid) ?? 0
    this.idleBreakdown = rssBreakdown(pid)
    this.overall = peakRss(pid) ?? 0
    this.canReset = resetPeakRss(pid)
  }

  begin (): void {
    this.#fold()
    if (this.canReset) resetPeakRss(this.pid)
  }

  end (label: string): number {
    const peak = this.#fold()
    this.phases.set(label, Math.max(this.phases.get(label) ?? 0, peak))
    return peak
  }

  /** Reads the final peak (call before stopping the process). */
  finish (): number {
    this.#fold()
    return this.overall
  }

  #fold (): number {
    const peak = peakRss(this.pid) ?? 0
    this.overall = Math.max(this.overall, peak)
    return peak
  }
}
