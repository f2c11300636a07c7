/**
 * `npm run bench -- --only checkpoint`: the checkpoint scenario from start to
 * end (setup header, runs, tables, --json), called by bench/run.ts, which owns
 * the temp root, the deadline, the abort signal and stopping what is left.
 */

import { writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { checkpointDiskBytes, describeCheckpoint, runCheckpoint, type CheckpointContext, type CheckpointOptions } from './checkpoint-plan.js'
import { checkpointFailures, printCheckpoint } from './checkpoint-report.js'
import { collectSetup, freeBytes, GiB, printSetup } from './report.js'
import { resetPeakRss } from './rss.js'

export interface CheckpointMainOptions extends CheckpointContext {
  repoRoot: string
  /** The client library and its version, for the setup header. */
  sdk: string
  jsonOut?: string
  /** Setup-header lines the caller adds (timeouts, deadline). */
  plan: string[]
}

/** Runs the scenario and prints its report; resolves with the number of failed phases. */
export async function checkpointMain (o: CheckpointOptions, ctx: CheckpointMainOptions): Promise<number> {
  const t0 = Date.now()
  const needed = checkpointDiskBytes(o)
  const free = freeBytes(ctx.tempRoot)
  if (free !== undefined && free < needed) {
    throw new Error(`${ctx.tempRoot} has ${(free / GiB).toFixed(1)} GiB free; the checkpoint scenario may write up to ${(needed / GiB).toFixed(1)} GiB`)
  }
  const setup = collectSetup(ctx.repoRoot, ctx.tempRoot, ctx.sdk, 'checkpoint', [...describeCheckpoint(o), ...ctx.plan])
  const results = await runCheckpoint(o, ctx, (servers) => {
    for (const s of servers) setup.servers[s.name] = `pid ${s.pid}: ${s.command.replaceAll(ctx.repoRoot + '/', '').replaceAll(ctx.tempRoot, '$TMP')}`
    setup.rssResetSupported = servers.every((s) => resetPeakRss(s.pid))
    if (servers.some((s) => s.name === 'gateway' && s.command.includes('tsx'))) {
      setup.plan.push('NOTE: the gateway ran from its TypeScript sources through tsx (test/helpers/gateway.ts does that when dist/ is missing or older than src/): ' +
        'its RSS includes the tsx loader and bin/ckptcache.cjs (which sizes the libuv pool) was not used. Run `npm run build` first for the shipped form.')
    }
    setup.plan.push('the gateway is restarted (fresh data dir, same Azurite) for every cold restore; the line above shows its first start')
    printSetup(setup)
  })
  setup.loadAvgEnd = loadavg()
  const summary = printCheckpoint(results, o.targets)
  const failures = checkpointFailures(results)
  if (failures.length > 0) console.log(`\nfailed runs (${failures.length}):\n  ${failures.join('\n  ')}`)
  console.log(`\nload average at end ${setup.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}; wall time ${((Date.now() - t0) / 60_000).toFixed(1)} min`)
  if (ctx.jsonOut !== undefined) {
    await writeFile(ctx.jsonOut, JSON.stringify({ setup, options: o, results, summary, failures }, null, 2) + '\n')
    console.log(`raw numbers written to ${ctx.jsonOut}`)
  }
  return failures.length
}
