/**
 * Blob throughput, small-object ops/s and server memory: the gateway against
 * its ceiling (a plain node:http file server) and Azurite, in one run, on this
 * machine.
 *
 *   npm run bench -- [--quick] [--json FILE] [--runs N] [--max-minutes M]
 *                    [--small-ops N] [--servers gateway,ceiling,azurite]
 *
 * --quick      fewer runs, no 1 GiB scenarios, 500 small ops: a smoke check (~1 min)
 * --json FILE  also write every sample, the setup and the summary as JSON
 * --runs N     measured runs per scenario (default: 5 for 64 MiB and 4 KiB, 3 for 1 GiB)
 * --max-minutes M  overall deadline (default 20, quick 5): runs after it are skipped
 *
 * Each server is its own child process with its own directory under one temp
 * root; runs rotate the server order so drift on this shared machine hits all
 * three alike. Every run has a timeout; temp dirs and child processes are
 * removed however the benchmark ends.
 */

import { setMaxListeners } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { Agent } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ContainerClient } from '@azure/storage-blob'
import {
  containerClient, getObjects, getSmall, KiB, openContainer, putObjects, putSmall, repeatedBuffer, uploadDataObject, type Transfer
} from './blob-scenarios.js'
import {
  collectSetup, fmtMiB, freeBytes, GiB, MiB, printCpu, printResults, printSetup, printTable, summarize,
  type Results, type Sample, type Scenario, type Setup
} from './report.js'
import { cpuSeconds, rssBreakdown, RssTracker, threadCount } from './rss.js'
import { SERVER_NAMES, startServers, type BenchServer, type ServerName } from './servers/start.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// ---- options ----------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : argv[i + 1]
}
const known = new Set(['--quick', '--json', '--runs', '--max-minutes', '--small-ops', '--servers', '--help'])
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
const MID_RUNS = RUNS ?? (QUICK ? 2 : 5)
const BIG_RUNS = QUICK ? 0 : RUNS ?? 3
const SMALL_RUNS = RUNS ?? (QUICK ? 2 : 5)
const SMALL_OPS = Number(option('small-ops') ?? (QUICK ? 500 : 2000))
const SMALL_WARMUP = Math.min(200, SMALL_OPS)
const SMALL_SIZE = 4 * KiB
const SMALL_CONCURRENCY = 16
const MID = 64 * MiB
const BIG = GiB
const CONCURRENCY = [1, 4]
const DEADLINE = Date.now() + Number(option('max-minutes') ?? (QUICK ? 5 : 20)) * 60_000
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
/** Slowest rate a bulk run may take before it is abandoned, and the floor of every timeout. */
const MIN_RATE = 20 * MiB
const TIMEOUT_FLOOR_MS = 30_000
const bulkTimeout = (bytes: number): number => TIMEOUT_FLOOR_MS + bytes / MIN_RATE * 1000
const smallTimeout = (ops: number): number => TIMEOUT_FLOOR_MS + ops * 25

// ---- scenarios --------------------------------------------------------------------------------

const ALL: readonly ServerName[] = SERVER_NAMES.filter((s) => ONLY.includes(s))
const BLOCK_SERVERS: readonly ServerName[] = ALL.filter((s) => s !== 'ceiling')
const sizeLabel = (n: number): string => n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`

const scenarios: Scenario[] = []
for (const size of BIG_RUNS > 0 ? [MID, BIG] : [MID]) {
  for (const c of CONCURRENCY) {
    for (const op of ['PUT', 'GET'] as const) {
      scenarios.push({
        key: `${op.toLowerCase()}-${sizeLabel(size).replace(' ', '')}-c${c}`,
        label: `${op} ${sizeLabel(size)} ×${c}`,
        unit: 'MiB/s',
        servers: ALL,
        targets: size === BIG ? { vsCeiling: 0.8, vsAzurite: 2 } : { vsAzurite: 2 },
        rssPhase: `${op} ${sizeLabel(size)}`
      })
    }
  }
}
if (BIG_RUNS > 0) {
  scenarios.push({
    key: 'uploaddata-1GiB', label: 'uploadData 1 GiB (Put Block ×256 + Put Block List)', unit: 'MiB/s',
    servers: BLOCK_SERVERS, targets: { vsAzurite: 2 }, rssPhase: 'uploadData 1 GiB'
  }, {
    key: 'get-blocks-1GiB', label: 'GET 1 GiB block blob (256 blocks)', unit: 'MiB/s',
    servers: BLOCK_SERVERS, targets: { vsAzurite: 2 }, rssPhase: 'GET 1 GiB blocks'
  })
}
scenarios.push({
  key: 'put-4KiB-c16', label: `PUT 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s',
  servers: ALL, targets: { vsAzurite: 2 }, rssPhase: '4 KiB'
}, {
  key: 'get-4KiB-c16', label: `GET 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s',
  servers: ALL, targets: { vsAzurite: 2 }, rssPhase: '4 KiB'
})
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
const progress = (s: string): void => { process.stderr.write(s) }

const rotate = <T>(xs: readonly T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length] as T)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** After a run, how long a server may stay busy (deferred work: background MD5, GC, flushes) before we move on. */
const SETTLE_MAX_MS = 60_000
const SETTLE_POLL_MS = 100
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
  let quiet = 0
  while (performance.now() - t0 < SETTLE_MAX_MS && quiet < 2) {
    await sleep(SETTLE_POLL_MS)
    const now = cpuSeconds(pid)
    if (now === undefined || prev === undefined) break
    quiet = now - prev <= QUIET_CPU_S ? quiet + 1 : 0
    prev = now
  }
  const c1 = cpuSeconds(pid)
  return { seconds: (performance.now() - t0) / 1000, ...(c0 === undefined || c1 === undefined ? {} : { cpuS: c1 - c0 }) }
}

type Work = (container: ContainerClient, signal: AbortSignal) => Promise<Transfer>

/**
 * Runs `work` once against `server` on a fresh keep-alive agent, under a
 * timeout, then lets the server settle. Records a Sample under `sc`, or
 * nothing when `sc` is undefined (warm-up).
 */
async function measure (server: BenchServer, sc: Scenario | undefined, timeoutMs: number, work: Work): Promise<Sample> {
  const tracker = trackers.get(server.name) as RssTracker
  const record = (sample: Sample): Sample => {
    if (sc !== undefined) ((results[sc.key] ??= {})[server.name] ??= []).push(sample)
    return sample
  }
  if (Date.now() > DEADLINE) return record({ seconds: 0, bytes: 0, ops: 0, clientCpuS: 0, error: 'skipped: past --max-minutes' })
  if (aborter.signal.aborted) return record({ seconds: 0, bytes: 0, ops: 0, clientCpuS: 0, error: 'aborted' })
  const signal = AbortSignal.any([aborter.signal, AbortSignal.timeout(timeoutMs)])
  setMaxListeners(0, signal) // every in-flight request of the run listens on it
  const agent = new Agent({ keepAlive: true })
  const container = containerClient(server.connectionString, agent)
  const load = loadavg()[0] as number
  tracker.begin()
  const cpu0 = cpuSeconds(server.pid)
  const client0 = process.cpuUsage()
  const t0 = performance.now()
  let transfer: Transfer | undefined
  let error: string | undefined
  try {
    transfer = await work(container, signal)
  } catch (err) {
    error = signal.aborted && !aborter.signal.aborted ? `timeout after ${(timeoutMs / 1000).toFixed(0)} s` : String((err as Error).message ?? err).slice(0, 200)
  } finally {
    agent.destroy()
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

const byName = (name: ServerName): BenchServer => started.find((s) => s.name === name) as BenchServer
const scenario = (key: string): Scenario => scenarios.find((s) => s.key === key) as Scenario

async function bulk (size: number, runs: number): Promise<void> {
  const tag = sizeLabel(size).replace(' ', '')
  for (const c of CONCURRENCY) {
    const names = Array.from({ length: c }, (_, i) => `obj-${tag}-${i}`)
    progress(`${sizeLabel(size)} ×${c}: ${runs} runs\n`)
    for (let r = 0; r < runs; r++) {
      for (const name of rotate(ALL, r)) {
        const server = byName(name)
        const timeout = bulkTimeout(size * c)
        await measure(server, scenario(`put-${tag}-c${c}`), timeout, async (c, signal) => await putObjects(c, names, size, signal))
        await measure(server, scenario(`get-${tag}-c${c}`), timeout, async (c, signal) => await getObjects(c, names, size, signal))
      }
    }
  }
}

async function blocks (runs: number): Promise<void> {
  progress(`uploadData 1 GiB: ${runs} runs\n`)
  const data = repeatedBuffer(BIG)
  for (let r = 0; r < runs; r++) {
    for (const name of rotate(BLOCK_SERVERS, r)) {
      const server = byName(name)
      await measure(server, scenario('uploaddata-1GiB'), bulkTimeout(BIG), async (c, signal) => await uploadDataObject(c, 'blocks-1GiB', data, signal))
      await measure(server, scenario('get-blocks-1GiB'), bulkTimeout(BIG), async (c, signal) => await getObjects(c, ['blocks-1GiB'], BIG, signal))
    }
  }
}

async function small (runs: number): Promise<void> {
  progress(`4 KiB ×${SMALL_CONCURRENCY}: warm-up ${SMALL_WARMUP} ops, then ${runs} runs of ${SMALL_OPS} new objects\n`)
  for (const name of ALL) {
    const warm = Array.from({ length: SMALL_WARMUP }, (_, i) => `warm-${i}`)
    await measure(byName(name), undefined, smallTimeout(SMALL_WARMUP), async (c, signal) => await putSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
    await measure(byName(name), undefined, smallTimeout(SMALL_WARMUP), async (c, signal) => await getSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
  }
  for (let r = 0; r < runs; r++) {
    const names = Array.from({ length: SMALL_OPS }, (_, i) => `small-${r}-${i}`)
    for (const name of rotate(ALL, r)) {
      const server = byName(name)
      await measure(server, scenario('put-4KiB-c16'), smallTimeout(SMALL_OPS), async (c, signal) => await putSmall(c, names, SMALL_SIZE, SMALL_CONCURRENCY, signal))
      await measure(server, scenario('get-4KiB-c16'), smallTimeout(SMALL_OPS), async (c, signal) => await getSmall(c, names, SMALL_SIZE, SMALL_CONCURRENCY, signal))
    }
  }
}

// ---- main -------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const t0 = Date.now()
  tempRoot = await mkdtemp(join(tmpdir(), 'ckptcache-bench-'))
  const needed = (BIG_RUNS > 0 ? (BIG * 5 * BIG_RUNS + BIG * BIG_RUNS) + BIG * 7 : MID * 10)
  const free = freeBytes(tempRoot)
  if (free !== undefined && free < needed) {
    throw new Error(`${tempRoot} has ${(free / GiB).toFixed(1)} GiB free; this run may write up to ${(needed / GiB).toFixed(0)} GiB (Azurite keeps overwritten extents until its GC)`)
  }
  const sdkVersion = (JSON.parse(readFileSync(join(repoRoot, 'node_modules', '@azure', 'storage-blob', 'package.json'), 'utf8')) as { version: string }).version
  const plan = [
    `objects: PUT/GET ${sizeLabel(MID)}${BIG_RUNS > 0 ? ` and ${sizeLabel(BIG)}` : ''} at concurrency ${CONCURRENCY.join(' and ')} (c distinct blobs in parallel; one Put Blob each via upload(() => stream, size), body = one random 4 MiB buffer repeated; GET = download() streamed and counted)`,
    ...(BIG_RUNS > 0 ? ['SDK default for large objects (gateway and Azurite; the ceiling has no blocks): uploadData(1 GiB buffer) = Put Block 4 MiB ×256, 5 in flight, + Put Block List; then download() of that blob'] : []),
    `small: ${SMALL_OPS} new 4 KiB blobs per run, ${SMALL_CONCURRENCY} in flight (upload(buffer), then download() of the same names), after ${SMALL_WARMUP} warm-up ops`,
    `runs: ${MID_RUNS} × ${sizeLabel(MID)}${BIG_RUNS > 0 ? `, ${BIG_RUNS} × ${sizeLabel(BIG)} and uploadData` : ''}, ${SMALL_RUNS} × 4 KiB; one warm-up ${sizeLabel(MID)} PUT+GET per server; server order rotates every run; large-object runs after the first overwrite the same names; GETs read what the PUT just wrote (page cache)`,
    'after each run the server must go quiet (≤ 10 ms CPU in each of two 100 ms windows, at most 60 s) before the next: CPU it spends after its last response shows as (+…) in the CPU table',
    `timeouts: ${TIMEOUT_FLOOR_MS / 1000} s + 1 s per ${MIN_RATE / MiB} MiB per run; deadline ${new Date(DEADLINE).toISOString()}${QUICK ? '; --quick (no 1 GiB)' : ''}`
  ]
  const setup: Setup = collectSetup(repoRoot, tempRoot, sdkVersion, plan)

  progress(`starting servers under ${tempRoot}\n`)
  await startServers(tempRoot, started)
  for (const s of [...started]) {
    if (!ALL.includes(s.name)) {
      await s.stop()
      started.splice(started.indexOf(s), 1)
      continue
    }
    setup.servers[s.name] = `pid ${s.pid}: ${s.command.replaceAll(repoRoot + '/', '').replaceAll(tempRoot, '$TMP')}`
  }
  for (const s of started) {
    const agent = new Agent({ keepAlive: true })
    await openContainer(s.connectionString, agent)
    agent.destroy()
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

  // Warm-up: one mid-size PUT + GET per server (JIT, sockets, first-touch of buffers).
  for (const name of ALL) {
    await measure(byName(name), undefined, bulkTimeout(MID), async (c, signal) => await putObjects(c, ['warm-mid'], MID, signal))
    await measure(byName(name), undefined, bulkTimeout(MID), async (c, signal) => await getObjects(c, ['warm-mid'], MID, signal))
  }
  await bulk(MID, MID_RUNS)
  if (BIG_RUNS > 0) {
    await bulk(BIG, BIG_RUNS)
    await blocks(BIG_RUNS)
  }
  await small(SMALL_RUNS)

  const rss: Record<string, { idle: number, overall: number, phases: Record<string, number>, idleBreakdown: object, endBreakdown: object, threads?: number }> = {}
  for (const [name, t] of trackers) {
    rss[name] = { idle: t.idle, overall: t.finish(), phases: Object.fromEntries(t.phases), idleBreakdown: t.idleBreakdown, endBreakdown: rssBreakdown(t.pid), threads: threadCount(t.pid) }
  }
  setup.loadAvgEnd = loadavg()

  // ---- report ----
  const summary = summarize(scenarios, results)
  printResults(scenarios, results, summary)
  printCpu(scenarios, results, ALL)
  const phases = [...new Set(scenarios.map((s) => s.rssPhase))]
  printTable('Server peak RSS (VmHWM): idle after start (anon + file-backed), per phase (max over its runs), whole run. Target: gateway < 200 MiB.',
    ['server', 'idle', ...phases, 'whole run', 'threads at end', 'target'],
    ALL.map((name) => {
      const r = rss[name]
      const b = trackers.get(name)?.idleBreakdown
      const idle = `${fmtMiB(r?.idle)}${b?.anon !== undefined && b.file !== undefined ? ` (${(b.anon / MiB).toFixed(0)}+${(b.file / MiB).toFixed(0)})` : ''}`
      return [name, idle, ...phases.map((p) => fmtMiB(r?.phases[p])), fmtMiB(r?.overall), String(r?.threads ?? '?'),
        name === 'gateway' ? (r === undefined ? '?' : r.overall < RSS_TARGET ? '<200 MiB ok' : '<200 MiB MISS') : '']
    }))
  const failures = Object.entries(results).flatMap(([key, byServer]) =>
    Object.entries(byServer).flatMap(([server, samples]) => (samples ?? []).filter((s) => s.error !== undefined).map((s) => `${key} ${server}: ${s.error as string}`)))
  if (failures.length > 0) console.log(`\nfailed runs (${failures.length}):\n  ${failures.join('\n  ')}`)
  console.log(`\nload average at end ${setup.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}; wall time ${((Date.now() - t0) / 60_000).toFixed(1)} min`)

  if (JSON_OUT !== undefined) {
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
