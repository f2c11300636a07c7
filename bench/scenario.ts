/**
 * What the checkpoint and cluster scenarios share: the checkpoint they save
 * and restore (--shards, --shard-mib, --runs), and what they do around their
 * runs: the free space check, the setup header (every server as it started, a
 * note when the gateways ran from their TypeScript sources), and after the
 * runs the tables, the failed runs, the load average and wall time, and the
 * --json file.
 */

import { writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { collectSetup, freeBytes, GiB, MiB, phaseFailures, printSetup, type PhaseResults } from './report.js'
import { resetPeakRss } from './rss.js'
import type { BenchServer } from './servers/start.js'

/** The checkpoint a scenario saves and restores, and how many times. */
export interface CheckpointShape {
  shards: number
  shardBytes: number
  metadataBytes: number
  runs: number
}

/**
 * Reads --shards and --shard-mib (8 × 64 MiB, quick 8 × 16 MiB; a 64 KiB
 * .metadata) and takes the shared --runs (default 3, quick 1); throws a
 * message naming the flag on bad input.
 */
export function checkpointShape (option: (name: string) => string | undefined, quick: boolean, runs: number | undefined): CheckpointShape {
  const int = (name: string, fallback: number): number => {
    const text = option(name)
    const n = text === undefined ? fallback : Number(text)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
    return n
  }
  return {
    shards: int('shards', 8),
    shardBytes: int('shard-mib', quick ? 16 : 64) * MiB,
    metadataBytes: 64 * 1024,
    runs: runs ?? (quick ? 1 : 3)
  }
}

/** What a scenario's runs need from the caller (bench/run.ts). */
export interface ScenarioContext {
  tempRoot: string
  /** Every server started is pushed here (and removed once stopped), so the caller can stop what is left. */
  started: BenchServer[]
  abort: AbortSignal
  /** Runs that would start after this time (ms since the epoch) are skipped. */
  deadline: number
}

export interface ScenarioMainOptions extends ScenarioContext {
  repoRoot: string
  /** The client library and its version, for the setup header. */
  sdk: string
  jsonOut?: string
  /** Setup-header lines the caller adds (timeouts, deadline). */
  plan: string[]
}

export interface ScenarioSteps<R extends PhaseResults, S> {
  /** `checkpoint`, `cluster`: the header's title and the scenario's name in messages. */
  name: string
  /** The options as the --json file records them. */
  options: unknown
  /** Bytes the scenario may need under the temp root, and how it uses them (`write`, `hold`), for the free space check. */
  diskBytes: number
  diskUse: string
  /** The scenario's setup-header lines (the caller's follow). */
  describe: string[]
  /** The setup-header key of the `i`-th server started (default: its name). */
  serverKey?: (server: BenchServer, i: number) => string
  /** The header's last line: what is started anew between runs. */
  restarts: string
  /** Starts the servers, calls `onStarted` with the first ones, runs every run and resolves with every sample. */
  run: (onStarted: (servers: BenchServer[]) => void) => Promise<R>
  /** Prints the tables; returns what the --json file records as the summary. */
  print: (results: R) => S
}

/** Runs a scenario and prints its report; resolves with the number of failed phases. */
export async function scenarioMain<R extends PhaseResults, S> (steps: ScenarioSteps<R, S>, ctx: ScenarioMainOptions): Promise<number> {
  const t0 = Date.now()
  const free = freeBytes(ctx.tempRoot)
  if (free !== undefined && free < steps.diskBytes) {
    throw new Error(`${ctx.tempRoot} has ${(free / GiB).toFixed(1)} GiB free; the ${steps.name} scenario may ${steps.diskUse} up to ${(steps.diskBytes / GiB).toFixed(1)} GiB`)
  }
  const setup = collectSetup(ctx.repoRoot, ctx.tempRoot, ctx.sdk, steps.name, [...steps.describe, ...ctx.plan])
  const results = await steps.run((servers) => {
    servers.forEach((s, i) => {
      setup.servers[steps.serverKey?.(s, i) ?? s.name] = `pid ${s.pid}: ${s.command.replaceAll(ctx.repoRoot + '/', '').replaceAll(ctx.tempRoot, '$TMP')}`
    })
    setup.rssResetSupported = servers.every((s) => resetPeakRss(s.pid))
    if (servers.some((s) => s.name === 'gateway' && s.command.includes('tsx'))) {
      const [gateway, its] = servers.filter((s) => s.name === 'gateway').length > 1 ? ['the gateways', 'their'] : ['the gateway', 'its']
      setup.plan.push(`NOTE: ${gateway} ran from ${its} TypeScript sources through tsx (test/helpers/gateway.ts does that when dist/ is missing or older than src/): ` +
        `${its} RSS includes the tsx loader and bin/ckptcache.cjs (which sizes the libuv pool) was not used. Run \`npm run build\` first for the shipped form.`)
    }
    setup.plan.push(steps.restarts)
    printSetup(setup)
  })
  setup.loadAvgEnd = loadavg()
  const summary = steps.print(results)
  const failures = phaseFailures(results)
  if (failures.length > 0) console.log(`\nfailed runs (${failures.length}):\n  ${failures.join('\n  ')}`)
  console.log(`\nload average at end ${setup.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}; wall time ${((Date.now() - t0) / 60_000).toFixed(1)} min`)
  if (ctx.jsonOut !== undefined) {
    await writeFile(ctx.jsonOut, JSON.stringify({ setup, options: steps.options, results, summary, failures }, null, 2) + '\n')
    console.log(`raw numbers written to ${ctx.jsonOut}`)
  }
  return failures.length
}
