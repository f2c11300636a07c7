/**
 * Statistics, the setup header and the tables of the benchmark (Blob and S3),
 * and what the checkpoint and cluster scenarios' tables share (cells, ratios,
 * the samples of a phase, the failures).
 */

import { execFileSync } from 'node:child_process'
import { readFileSync, statfsSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import type { ServerName } from './servers/start.js'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

// ---- statistics ---------------------------------------------------------------------------------

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export interface Stats {
  median: number
  min: number
  max: number
  n: number
}

export function stats (xs: number[]): Stats | undefined {
  if (xs.length === 0) return undefined
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}

// ---- one measured run -------------------------------------------------------------------------

export interface Sample {
  /** MiB/s or ops/s; absent when the run failed. */
  value?: number
  seconds: number
  bytes: number
  ops: number
  /** Server process CPU seconds (all threads) during the run. */
  serverCpuS?: number
  /** Benchmark (client) process CPU seconds during the run. */
  clientCpuS: number
  /** Server CPU seconds after the last response until it was quiet again (deferred work). */
  deferredCpuS?: number
  /** How long the server took to go quiet after the run. */
  settleS?: number
  /** 1-minute load average when the run started (the machine is shared). */
  loadAvg1?: number
  /** Server peak RSS during the run and its settling, bytes. */
  peakRssBytes?: number
  error?: string
}

/** The reference server a protocol's rows are compared with besides the ceiling. */
export interface Peer {
  name: ServerName
  /** Column heading. */
  label: string
  /** Letter in the target column. */
  letter: string
}

export const PEERS = {
  blob: { name: 'azurite', label: 'Azurite', letter: 'A' },
  s3: { name: 'moto', label: 'moto', letter: 'M' }
} as const satisfies Record<string, Peer>

export type Protocol = keyof typeof PEERS

export interface Scenario {
  key: string
  label: string
  unit: 'MiB/s' | 'ops/s'
  protocol: Protocol
  servers: readonly ServerName[]
  /** Targets this row is judged against: the ceiling, the protocol's peer. */
  targets: { vsCeiling?: number, vsPeer?: number }
  /** Which RSS phase this row belongs to (for the "peak during" table). */
  rssPhase: string
}

export type Results = Record<string, Partial<Record<ServerName, Sample[]>>>

export function valueStats (samples: Sample[] | undefined): Stats | undefined {
  return stats((samples ?? []).flatMap((s) => s.value === undefined ? [] : [s.value]))
}

// ---- setup header -----------------------------------------------------------------------------

/** Filesystem type and source of the mount holding `path` (longest mount-point prefix). */
export function filesystemOf (path: string): { type: string, source: string, mountPoint: string } {
  let best = { type: '?', source: '?', mountPoint: '' }
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ')
      if (pre === undefined || post === undefined) continue
      const mountPoint = pre.split(' ')[4] ?? ''
      const [type, source] = post.split(' ')
      const under = path === mountPoint || path.startsWith(mountPoint.endsWith('/') ? mountPoint : mountPoint + '/')
      if (under && mountPoint.length >= best.mountPoint.length) best = { type: type ?? '?', source: source ?? '?', mountPoint }
    }
  } catch { /* not Linux */ }
  return best
}

export function freeBytes (path: string): number | undefined {
  try {
    const s = statfsSync(path)
    return s.bavail * s.bsize
  } catch {
    return undefined
  }
}

function git (args: string[], cwd: string): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return '?'
  }
}

export interface Setup {
  date: string
  node: string
  cpu: string
  cpus: number
  memory: string
  kernel: string
  loadAvgStart: number[]
  loadAvgEnd?: number[]
  tempRoot: string
  filesystem: string
  freeAtStart: string
  gitHead: string
  gitDirty: string[]
  sdk: string
  /** What the benchmark covers, for the title: 'Blob', 'S3' or 'Blob and S3'. */
  title: string
  servers: Record<string, string>
  rssResetSupported: boolean
  plan: string[]
}

export function collectSetup (repoRoot: string, tempRoot: string, sdk: string, title: string, plan: string[]): Setup {
  const fs = filesystemOf(tempRoot)
  const free = freeBytes(tempRoot)
  const dirty = git(['status', '--porcelain', '--', 'src', 'test/helpers', 'bench'], repoRoot)
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model.trim() ?? '?',
    cpus: cpus().length,
    memory: `${(totalmem() / GiB).toFixed(1)} GiB`,
    kernel: release(),
    loadAvgStart: loadavg(),
    tempRoot,
    filesystem: `${fs.type} on ${fs.source} (mounted at ${fs.mountPoint})`,
    freeAtStart: free === undefined ? '?' : `${(free / GiB).toFixed(0)} GiB`,
    gitHead: git(['rev-parse', '--short', 'HEAD'], repoRoot),
    gitDirty: dirty === '' || dirty === '?' ? [] : dirty.split('\n').map((l) => l.trim()),
    sdk,
    title,
    servers: {},
    rssResetSupported: false,
    plan
  }
}

/** 'a', 'a and b', 'a, b and c' */
export const listing = (xs: readonly string[]): string => xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1] as string}`

const SERVER_LABELS: Record<ServerName, string> = { gateway: 'gateway', ceiling: 'ceiling', azurite: 'Azurite', moto: 'moto' }

export function printSetup (s: Setup): void {
  const lines = [
    `# ckptcache ${s.title} benchmark  ${s.date}`,
    '',
    `Node ${s.node}; ${s.cpus} × ${s.cpu}; ${s.memory} RAM; Linux ${s.kernel}; load average at start ${s.loadAvgStart.map((l) => l.toFixed(2)).join(' ')}`,
    `temp dir ${s.tempRoot}: ${s.filesystem}, ${s.freeAtStart} free (${listing(Object.keys(s.servers).map((n) => SERVER_LABELS[n as ServerName] ?? n))} each in a subdirectory)`,
    `source: git ${s.gitHead}${s.gitDirty.length > 0 ? ` + uncommitted: ${s.gitDirty.join(', ')}` : ''}`,
    `client: ${s.sdk} in the benchmark process (retries off); each server is its own child process:`,
    ...Object.entries(s.servers).map(([k, v]) => `  ${k.padEnd(8)} ${v}`),
    ...s.plan,
    `peak RSS = VmHWM from /proc/<pid>/status${s.rssResetSupported ? ', reset before each run (clear_refs) for per-phase peaks' : ' (reset not permitted: phase peaks are peaks since start)'}`
  ]
  console.log(lines.join('\n'))
}

// ---- tables -----------------------------------------------------------------------------------

/** 3 significant digits at most: 123, 12.3, 1.23. */
export const fmt = (v: number): string => v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)

/** `median (min–max) [n failed]`, `failed ×n` when every run failed, — when none ran. */
export function cell (st: Stats | undefined, failed: number): string {
  if (st === undefined) return failed > 0 ? `failed ×${failed}` : '—'
  const range = st.n > 1 ? ` (${fmt(st.min)}–${fmt(st.max)})` : ''
  return `${fmt(st.median)}${range}${failed > 0 ? ` [${failed} failed]` : ''}`
}

function ratio (a: Stats | undefined, b: Stats | undefined): number | undefined {
  return a === undefined || b === undefined || b.median === 0 ? undefined : a.median / b.median
}

/** The ratio of two medians as `1.23×`, or — when either is missing. */
export const ratioCell = (a: Stats | undefined, b: Stats | undefined): string => {
  const r = ratio(a, b)
  return r === undefined ? '—' : `${r.toFixed(2)}×`
}

export function printTable (title: string, head: string[], rows: string[][], align?: Array<'l' | 'r'>): void {
  console.log(`\n${title}`)
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const pad = (s: string, i: number): string => (align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? s.padEnd(widths[i] as number) : s.padStart(widths[i] as number)
  console.log('| ' + head.map(pad).join(' | ') + ' |')
  console.log('|' + widths.map((w, i) => (align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|')
  for (const r of rows) console.log('| ' + r.map(pad).join(' | ') + ' |')
}

export interface RowSummary {
  key: string
  label: string
  unit: string
  gateway?: Stats
  ceiling?: Stats
  /** The protocol's peer (Azurite for Blob, moto for S3). */
  peerName: ServerName
  peer?: Stats
  gatewayVsCeiling?: number
  gatewayVsPeer?: number
  targets: Array<{ what: string, want: number, got?: number, met?: boolean }>
}

export function summarize (scenarios: Scenario[], results: Results): RowSummary[] {
  return scenarios.map((sc) => {
    const peerName = PEERS[sc.protocol].name
    const r = results[sc.key] ?? {}
    const gateway = valueStats(r.gateway)
    const ceiling = valueStats(r.ceiling)
    const peer = valueStats(r[peerName])
    const gatewayVsCeiling = ratio(gateway, ceiling)
    const gatewayVsPeer = ratio(gateway, peer)
    const targets: RowSummary['targets'] = []
    if (sc.targets.vsCeiling !== undefined) {
      targets.push({ what: 'gateway/ceiling', want: sc.targets.vsCeiling, got: gatewayVsCeiling, met: gatewayVsCeiling === undefined ? undefined : gatewayVsCeiling >= sc.targets.vsCeiling })
    }
    if (sc.targets.vsPeer !== undefined) {
      targets.push({ what: `gateway/${PEERS[sc.protocol].label}`, want: sc.targets.vsPeer, got: gatewayVsPeer, met: gatewayVsPeer === undefined ? undefined : gatewayVsPeer >= sc.targets.vsPeer })
    }
    return { key: sc.key, label: sc.label, unit: sc.unit, gateway, ceiling, peerName, peer, gatewayVsCeiling, gatewayVsPeer, targets }
  })
}

/**
 * The throughput table of one protocol's rows: gateway, ceiling, the protocol's
 * peer, both ratios, targets. `title` defaults to the Blob table's.
 */
export function printResults (scenarios: Scenario[], results: Results, summary: RowSummary[], protocol: Protocol = 'blob', title?: string): void {
  const peer = PEERS[protocol]
  const failed = (key: string, s: ServerName): number => (results[key]?.[s] ?? []).filter((x) => x.value === undefined).length
  const rows = summary.map((row) => {
    const sc = scenarios.find((s) => s.key === row.key) as Scenario
    const has = (s: ServerName): boolean => sc.servers.includes(s)
    const target = row.targets.map((t) => {
      const name = t.what === 'gateway/ceiling' ? 'C' : peer.letter
      const verdict = t.met === undefined ? '?' : t.met ? 'ok' : 'MISS'
      return `≥${t.want}×${name} ${verdict}`
    }).join(', ')
    return [
      `${row.label} [${row.unit}]`,
      cell(row.gateway, failed(row.key, 'gateway')),
      has('ceiling') ? cell(row.ceiling, failed(row.key, 'ceiling')) : 'n/a',
      has(peer.name) ? cell(row.peer, failed(row.key, peer.name)) : 'n/a',
      row.gatewayVsCeiling === undefined ? '—' : `${row.gatewayVsCeiling.toFixed(2)}×`,
      row.gatewayVsPeer === undefined ? '—' : `${row.gatewayVsPeer.toFixed(2)}×`,
      target
    ]
  })
  printTable(title ?? `Throughput: median (min–max) over runs; higher is better. Target: C = ceiling, ${peer.letter} = ${peer.label}.`,
    ['scenario', 'gateway', 'ceiling', peer.label, 'gateway/ceiling', `gateway/${peer.label}`, 'target'], rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'l'])
}

/**
 * Server CPU per unit of work, medians: during the run, plus what it spent after
 * its last response before going quiet (deferred work such as a background MD5),
 * and the client's (benchmark process) CPU.
 */
export function printCpu (scenarios: Scenario[], results: Results, servers: readonly ServerName[], prefix = ''): void {
  const rows = scenarios.map((sc) => {
    const per = (s: ServerName): string => {
      const xs = (results[sc.key]?.[s] ?? []).filter((x) => x.value !== undefined && x.serverCpuS !== undefined)
      if (xs.length === 0 || !sc.servers.includes(s)) return '—'
      const unit = (x: Sample): number => sc.unit === 'MiB/s' ? x.bytes / GiB : x.ops / 1e6
      const during = median(xs.map((x) => (x.serverCpuS as number) / unit(x)))
      const after = median(xs.map((x) => (x.deferredCpuS ?? 0) / unit(x)))
      const client = median(xs.map((x) => x.clientCpuS / unit(x)))
      return `${fmt(during)}${after >= (sc.unit === 'MiB/s' ? 0.05 : 50) ? ` (+${fmt(after)})` : ''} / ${fmt(client)}`
    }
    return [`${sc.label} [${sc.unit === 'MiB/s' ? 's/GiB' : 'µs/op'}]`, ...servers.map(per)]
  })
  printTable(`${prefix}CPU per unit of work, medians: server during the run (+ after its last response, until quiet) / client (this process). All share 2 cores.`,
    ['scenario', ...servers], rows)
}

export const fmtMiB = (b: number | undefined): string => b === undefined || b === 0 ? '—' : `${(b / MiB).toFixed(0)} MiB`

// ---- the checkpoint and cluster scenarios: samples by phase, then target -----------------------

/** What a phase sample of those scenarios has at least. */
interface PhaseOutcome {
  error?: string
}

type ByPhase<P extends string, T extends string, S> = { [phase in P]?: { [target in T]?: S[] } }
/** Any such scenario's results. */
export type PhaseResults = ByPhase<string, string, PhaseOutcome>

/** The samples of `phase` on `target` that did not fail. */
export const phaseSamples = <P extends string, T extends string, S extends PhaseOutcome>(r: ByPhase<P, T, S>, phase: P, target: T): S[] =>
  (r[phase]?.[target] ?? []).filter((s) => s.error === undefined)

/** How many samples of `phase` on `target` failed (or were skipped). */
export const phaseFailed = <P extends string, T extends string, S extends PhaseOutcome>(r: ByPhase<P, T, S>, phase: P, target: T): number =>
  (r[phase]?.[target] ?? []).filter((s) => s.error !== undefined).length

/** Every failed or skipped phase, `phase target: error`. */
export function phaseFailures (r: PhaseResults): string[] {
  return Object.entries(r).flatMap(([phase, byTarget]) => Object.entries(byTarget ?? {}).flatMap(([t, xs]) =>
    (xs ?? []).filter((s) => s.error !== undefined).map((s) => `${phase} ${t}: ${s.error as string}`)))
}
