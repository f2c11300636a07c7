/**
 * Blob and S3 throughput, small-object ops/s and server memory: the gateway
 * against its ceiling (a plain node:http file server) and a reference server
 * of each protocol (Azurite for Blob, moto for S3), in one run, on this machine.
 * With --only checkpoint: a DCP-style checkpoint saved and restored through a
 * writeback gateway in front of Azurite, against the same client writing
 * straight to Azurite and against the ceiling (bench/checkpoint-plan.ts).
 * With --only cluster: a checkpoint saved through one gateway of a three-node
 * cache-only cluster (replicas 2) on loopback, restored through the other two
 * and through a survivor right after the writer is killed, against Azurite
 * direct and the ceiling (bench/cluster-plan.ts).
 *
 *   npm run bench -- [--quick] [--only blob|s3|checkpoint|cluster] [--json FILE] [--runs N] [--max-minutes M]
 *                    [--small-ops N] [--servers gateway,ceiling,azurite,moto]
 *                    [--shards N] [--shard-mib S] [--upload uploadStream|uploadData]
 *
 * --quick      fewer runs, no 1 GiB scenarios, 500 small ops: a smoke check (~1 min per protocol);
 *              checkpoint and cluster: one run of 16 MiB shards
 * --only P     only the Blob rows (gateway, ceiling, Azurite), only the S3 rows (gateway, ceiling, moto),
 *              only the checkpoint scenario or only the cluster scenario (neither is part of the default
 *              run, which already takes most of an hour; the cluster one takes ~1.5 min quick, ~6 min full)
 * --json FILE  also write every sample, the setup and the summary as JSON
 * --runs N     measured runs per scenario (default: 5 for 64 MiB and 4 KiB, 3 for 1 GiB; checkpoint 3, quick 1)
 * --max-minutes M  overall deadline (default 20 for Blob plus 30 for S3; quick 5 each; checkpoint and cluster 10,
 *              quick 5): runs after it are skipped
 * --shards N, --shard-mib S   checkpoint and cluster: N ranks, each saving one S MiB shard at once (default 8 × 64,
 *              quick 8 × 16)
 * --upload C   checkpoint: the SDK call ranks save with, at its defaults (default uploadData; the cluster
 *              scenario always uses uploadData)
 * --servers    cluster: gateway (the cluster, required), azurite, ceiling
 *
 * Each server is its own child process with its own directory under one temp
 * root; runs rotate the server order so drift on this shared machine hits all
 * of them alike. Every run has a timeout; temp dirs and child processes are
 * removed however the benchmark ends.
 */

import { setMaxListeners } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { blobPlan } from './blob-plan.js'
import { checkpointOptions, type CheckpointOptions } from './checkpoint-plan.js'
import { checkpointMain } from './checkpoint-run.js'
import { clusterOptions, type ClusterOptions } from './cluster-plan.js'
import { clusterMain } from './cluster-run.js'
import { MIN_RATE, Measurer, progress, TIMEOUT_FLOOR_MS } from './measure.js'
import type { Plan, PlanOptions } from './plan.js'
import {
  collectSetup, fmtMiB, freeBytes, GiB, MiB, PEERS, printCpu, printResults, printSetup, printTable, summarize,
  type Protocol, type Results, type RowSummary, type Setup
} from './report.js'
import { rssBreakdown, RssTracker, threadCount } from './rss.js'
import { s3Plan } from './s3-plan.js'
import { SERVER_NAMES, startServers, type BenchServer, type ServerName } from './servers/start.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// ---- options ----------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : argv[i + 1]
}
const known = new Set(['--quick', '--only', '--json', '--runs', '--max-minutes', '--small-ops', '--servers', '--help', '--shards', '--shard-mib', '--upload'])
for (const a of argv) {
  if (a.startsWith('--') && !known.has(a)) {
    console.error(`bench: unknown option ${a}`)
    process.exit(2)
  }
}
if (flag('help')) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0])
  process.exit(0)
}
const QUICK = flag('quick')
const JSON_OUT = option('json')
const RUNS = option('runs') === undefined ? undefined : Number(option('runs'))
const CHECKPOINT = option('only') === 'checkpoint'
const CLUSTER = option('only') === 'cluster'
const PROTOCOLS: Protocol[] = CHECKPOINT || CLUSTER ? [] : option('only') === undefined ? ['blob', 's3'] : [option('only') as Protocol]
for (const p of PROTOCOLS) {
  if (!(p in PEERS)) {
    console.error(`bench: --only takes ${Object.keys(PEERS).join(', ')}, checkpoint or cluster`)
    process.exit(2)
  }
}
const SMALL_OPS = Number(option('small-ops') ?? (QUICK ? 500 : 2000))
/** Default deadline per protocol, minutes: moto's slow S3 writes make the S3 rows the longer ones. */
const MINUTES: Record<Protocol, number> = QUICK ? { blob: 5, s3: 5 } : { blob: 20, s3: 30 }
const DEADLINE = Date.now() + Number(option('max-minutes') ?? (CHECKPOINT || CLUSTER ? (QUICK ? 5 : 10) : PROTOCOLS.reduce((n, p) => n + MINUTES[p], 0))) * 60_000
const ONLY = (option('servers') ?? SERVER_NAMES.join(',')).split(',') as ServerName[]
for (const s of ONLY) {
  if (!SERVER_NAMES.includes(s)) {
    console.error(`bench: unknown server ${s} (have ${SERVER_NAMES.join(', ')})`)
    process.exit(2)
  }
}
if (RUNS !== undefined && !(Number.isInteger(RUNS) && RUNS > 0)) {
  console.error('bench: --runs must be a positive integer')
  process.exit(2)
}
const planOptions: PlanOptions = {
  midRuns: RUNS ?? (QUICK ? 2 : 5),
  bigRuns: QUICK ? 0 : RUNS ?? 3,
  smallRuns: RUNS ?? (QUICK ? 2 : 5),
  smallOps: SMALL_OPS,
  smallWarmup: Math.min(200, SMALL_OPS),
  servers: SERVER_NAMES.filter((s) => ONLY.includes(s))
}
/** A scenario's options from the flags; a bad flag ends the run with its message (exit 2). */
function scenarioOptions<T> (wanted: boolean, parse: typeof checkpointOptions | typeof clusterOptions): T | undefined {
  if (!wanted) return undefined
  try {
    return parse(option, QUICK, RUNS, option('servers')?.split(',')) as T
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`)
    process.exit(2)
  }
}
const CHECKPOINT_OPTIONS = scenarioOptions<CheckpointOptions>(CHECKPOINT, checkpointOptions)
const CLUSTER_OPTIONS = scenarioOptions<ClusterOptions>(CLUSTER, clusterOptions)
const PLANS: Plan[] = PROTOCOLS.map((p) => p === 'blob' ? blobPlan(planOptions) : s3Plan(planOptions))
/** Every server some plan measures, in SERVER_NAMES order. */
const ALL: readonly ServerName[] = SERVER_NAMES.filter((s) => PLANS.some((p) => p.servers.includes(s)))
const RSS_TARGET = 200 * MiB

// ---- lifecycle: everything started is stopped, every temp dir removed ---------------------------

const started: BenchServer[] = []
let tempRoot: string | undefined
const aborter = new AbortController()
setMaxListeners(0, aborter.signal) // each run's combined signal listens on it
let cleaning: Promise<void> | undefined

async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(started.map(async (s) => { await s.stop().catch(() => {}) }))
    if (tempRoot !== undefined) await rm(tempRoot, { recursive: true, force: true, maxRetries: 5 })
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\nbench: ${sig}: stopping servers and removing ${tempRoot ?? 'temp dirs'}`)
    aborter.abort()
    void cleanup().finally(() => process.exit(130))
  })
}
// Last resort (an uncaught error, process.exit): the helpers SIGKILL their children on 'exit'.
process.once('exit', () => {
  for (const s of started) { try { process.kill(s.pid, 'SIGKILL') } catch { /* gone */ } }
  if (tempRoot !== undefined) rmSync(tempRoot, { recursive: true, force: true, maxRetries: 5 })
})

// ---- measuring --------------------------------------------------------------------------------

const results: Results = {}
const trackers = new Map<ServerName, RssTracker>()
const byName = (name: ServerName): BenchServer => started.find((s) => s.name === name) as BenchServer

const version = (pkg: string): string =>
  (JSON.parse(readFileSync(join(repoRoot, 'node_modules', ...pkg.split('/'), 'package.json'), 'utf8')) as { version: string }).version

// ---- main -------------------------------------------------------------------------------------

/** The throughput, CPU and RSS tables of one plan. Blob's titles are the benchmark's original ones. */
function report (plan: Plan, summary: RowSummary[], rss: Record<string, { idle: number, overall: number, phases: Record<string, number>, threads?: number }>): void {
  const s3 = plan.protocol === 's3'
  const { scenarios, servers } = plan
  if (s3) console.log('\n## S3')
  printResults(scenarios, results, summary, plan.protocol,
    s3 ? `S3 throughput: median (min–max) over runs; higher is better. Target: C = ceiling, ${PEERS.s3.letter} = ${PEERS.s3.label}.` : undefined)
  for (const note of plan.notes) console.log(note)
  printCpu(scenarios, results, servers, s3 ? 'S3: ' : '')
  const phases = [...new Set(scenarios.map((s) => s.rssPhase))]
  printTable(`${s3 ? 'S3: s' : 'S'}erver peak RSS (VmHWM): idle after start (anon + file-backed), per phase (max over its runs), whole run. Target: gateway < 200 MiB.`,
    ['server', 'idle', ...phases, 'whole run', 'threads at end', 'target'],
    servers.map((name) => {
      const r = rss[name]
      const b = trackers.get(name)?.idleBreakdown
      const idle = `${fmtMiB(r?.idle)}${b?.anon !== undefined && b.file !== undefined ? ` (${(b.anon / MiB).toFixed(0)}+${(b.file / MiB).toFixed(0)})` : ''}`
      return [name, idle, ...phases.map((p) => fmtMiB(r?.phases[p])), fmtMiB(r?.overall), String(r?.threads ?? '?'),
        name === 'gateway' ? (r === undefined ? '?' : r.overall < RSS_TARGET ? '<200 MiB ok' : '<200 MiB MISS') : '']
    }))
}

async function main (): Promise<void> {
  const t0 = Date.now()
  tempRoot = await mkdtemp(join(tmpdir(), 'ckptcache-bench-'))
  if (CHECKPOINT_OPTIONS !== undefined) {
    const failed = await checkpointMain(CHECKPOINT_OPTIONS, {
      repoRoot, tempRoot, started, abort: aborter.signal, deadline: DEADLINE, sdk: `@azure/storage-blob ${version('@azure/storage-blob')}`,
      ...(JSON_OUT === undefined ? {} : { jsonOut: JSON_OUT }),
      plan: [`timeouts: ${TIMEOUT_FLOOR_MS / 1000} s + 1 s per ${MIN_RATE / MiB} MiB per phase (flush: twice that); deadline ${new Date(DEADLINE).toISOString()}${QUICK ? '; --quick' : ''}`]
    })
    if (failed > 0) process.exitCode = 1
    return
  }
  if (CLUSTER_OPTIONS !== undefined) {
    const failed = await clusterMain(CLUSTER_OPTIONS, {
      repoRoot, tempRoot, started, abort: aborter.signal, deadline: DEADLINE, sdk: `@azure/storage-blob ${version('@azure/storage-blob')}`,
      ...(JSON_OUT === undefined ? {} : { jsonOut: JSON_OUT }),
      plan: [`timeouts: ${TIMEOUT_FLOOR_MS / 1000} s + 1 s per ${MIN_RATE / MiB} MiB per phase; each gateway 60 s to start, 30 s for the views to agree, 10 s to stop; deadline ${new Date(DEADLINE).toISOString()}${QUICK ? '; --quick' : ''}`]
    })
    if (failed > 0) process.exitCode = 1
    return
  }
  const needed = PLANS.reduce((n, p) => n + p.diskBytes, 0)
  const free = freeBytes(tempRoot)
  if (free !== undefined && free < needed) {
    throw new Error(`${tempRoot} has ${(free / GiB).toFixed(1)} GiB free; this run may write up to ${(needed / GiB).toFixed(0)} GiB (Azurite keeps overwritten extents until its GC)`)
  }
  const clients = PROTOCOLS.map((p) => p === 'blob' ? `@azure/storage-blob ${version('@azure/storage-blob')}` : `@aws-sdk/client-s3 ${version('@aws-sdk/client-s3')}`)
  const plan = [
    ...PLANS.flatMap((p) => p.describe()),
    'after each run the server must go quiet (≤ 10 ms CPU in each of two 100 ms windows, at most 60 s) before the next: CPU it spends after its last response shows as (+…) in the CPU table',
    `timeouts: ${TIMEOUT_FLOOR_MS / 1000} s + 1 s per ${MIN_RATE / MiB} MiB per run; deadline ${new Date(DEADLINE).toISOString()}${QUICK ? '; --quick (no 1 GiB)' : ''}`
  ]
  const title = PROTOCOLS.map((p) => p === 'blob' ? 'Blob' : 'S3').join(' and ')
  const setup: Setup = collectSetup(repoRoot, tempRoot, clients.join(' and '), title, plan)

  progress(`starting servers under ${tempRoot}\n`)
  await startServers(tempRoot, started, ALL)
  for (const s of started) {
    setup.servers[s.name] = `pid ${s.pid}: ${s.command.replaceAll(repoRoot + '/', '').replaceAll(tempRoot, '$TMP')}`
  }
  for (const s of started) {
    for (const p of PLANS) if (p.servers.includes(s.name)) await p.prepare(s)
    trackers.set(s.name, new RssTracker(s.pid))
  }
  setup.rssResetSupported = [...trackers.values()].every((t) => t.canReset)
  const gw = started.find((s) => s.name === 'gateway')
  if (gw !== undefined && gw.command.includes('tsx')) {
    setup.plan.push('NOTE: the gateway ran from its TypeScript sources through tsx (test/helpers/gateway.ts does that when dist/ is missing or older than src/): ' +
      'its RSS includes the tsx loader and bin/ckptcache.cjs (which sizes the libuv pool) was not used. Run `npm run build` first for the shipped form.')
  }
  printSetup(setup)
  console.log('')

  const measurer = new Measurer({ deadline: DEADLINE, abort: aborter.signal, results, trackers })
  for (const p of PLANS) await p.run(measurer, byName)

  const rss: Record<string, { idle: number, overall: number, phases: Record<string, number>, idleBreakdown: object, endBreakdown: object, threads?: number }> = {}
  for (const [name, t] of trackers) {
    rss[name] = { idle: t.idle, overall: t.finish(), phases: Object.fromEntries(t.phases), idleBreakdown: t.idleBreakdown, endBreakdown: rssBreakdown(t.pid), threads: threadCount(t.pid) }
  }
  setup.loadAvgEnd = loadavg()

  // ---- report ----
  const summary: Partial<Record<Protocol, RowSummary[]>> = {}
  for (const p of PLANS) {
    const rows = summarize(p.scenarios, results)
    summary[p.protocol] = rows
    report(p, rows, rss)
  }
  const failures = Object.entries(results).flatMap(([key, byServer]) =>
    Object.entries(byServer).flatMap(([server, samples]) => (samples ?? []).filter((s) => s.error !== undefined).map((s) => `${key} ${server}: ${s.error as string}`)))
  if (failures.length > 0) console.log(`\nfailed runs (${failures.length}):\n  ${failures.join('\n  ')}`)
  console.log(`\nload average at end ${setup.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}; wall time ${((Date.now() - t0) / 60_000).toFixed(1)} min`)

  if (JSON_OUT !== undefined) {
    const scenarios = PLANS.flatMap((p) => p.scenarios)
    await writeFile(JSON_OUT, JSON.stringify({ setup, scenarios, results, summary, rss, failures }, null, 2) + '\n')
    console.log(`raw numbers written to ${JSON_OUT}`)
  }
  if (failures.length > 0) process.exitCode = 1
}

try {
  await main()
} catch (err) {
  console.error(`bench: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
