/**
 * `npm run bench -- --only cluster`: the cluster scenario from start to end
 * (setup header, runs, tables, --json), called by bench/run.ts, which owns the
 * temp root, the deadline, the abort signal and stopping what is left.
 */

import { writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { clusterDiskBytes, describeCluster, runCluster, type ClusterContext, type ClusterOptions } from './cluster-plan.js'
import { clusterFailures, printCluster } from './cluster-report.js'
import { collectSetup, freeBytes, GiB, printSetup } from './report.js'
import { resetPeakRss } from './rss.js'

export interface ClusterMainOptions extends ClusterContext {
  repoRoot: string
  /** The client library and its version, for the setup header. */
  sdk: string
  jsonOut?: string
  /** Setup-header lines the caller adds (timeouts, deadline). */
  plan: string[]
}

/** Runs the scenario and prints its report; resolves with the number of failed phases. */
export async function clusterMain (o: ClusterOptions, ctx: ClusterMainOptions): Promise<number> {
  const t0 = Date.now()
  const needed = clusterDiskBytes(o)
  const free = freeBytes(ctx.tempRoot)
  if (free !== undefined && free < needed) {
    throw new Error(`${ctx.tempRoot} has ${(free / GiB).toFixed(1)} GiB free; the cluster scenario may hold up to ${(needed / GiB).toFixed(1)} GiB`)
  }
  const setup = collectSetup(ctx.repoRoot, ctx.tempRoot, ctx.sdk, 'cluster', [...describeCluster(o), ...ctx.plan])
  const results = await runCluster(o, ctx, (servers) => {
    servers.forEach((s, i) => {
      const key = s.name === 'gateway' ? `node ${o.ids[i] ?? '?'}` : s.name
      setup.servers[key] = `pid ${s.pid}: ${s.command.replaceAll(ctx.repoRoot + '/', '').replaceAll(ctx.tempRoot, '$TMP')}`
    })
    setup.rssResetSupported = servers.every((s) => resetPeakRss(s.pid))
    if (servers.some((s) => s.name === 'gateway' && s.command.includes('tsx'))) {
      setup.plan.push('NOTE: the gateways ran from their TypeScript sources through tsx (test/helpers/gateway.ts does that when dist/ is missing or older than src/): ' +
        'their RSS includes the tsx loader and bin/ckptcache.cjs (which sizes the libuv pool) was not used. Run `npm run build` first for the shipped form.')
    }
    setup.plan.push('a new cluster (fresh data dirs, new ports) is started for every run; the lines above show the first')
    printSetup(setup)
  })
  setup.loadAvgEnd = loadavg()
  const summary = printCluster(results, o.targets)
  const failures = clusterFailures(results)
  if (failures.length > 0) console.log(`\nfailed runs (${failures.length}):\n  ${failures.join('\n  ')}`)
  console.log(`\nload average at end ${setup.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}; wall time ${((Date.now() - t0) / 60_000).toFixed(1)} min`)
  if (ctx.jsonOut !== undefined) {
    await writeFile(ctx.jsonOut, JSON.stringify({ setup, options: o, results, summary, failures }, null, 2) + '\n')
    console.log(`raw numbers written to ${ctx.jsonOut}`)
  }
  return failures.length
}
