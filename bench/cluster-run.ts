/**
 * `npm run bench -- --only cluster`: the cluster scenario from start to end
 * (setup header, runs, tables, --json), called by bench/run.ts, which owns the
 * temp root, the deadline, the abort signal and stopping what is left.
 */

import { clusterDiskBytes, describeCluster, runCluster, type ClusterOptions } from './cluster-plan.js'
import { printCluster } from './cluster-report.js'
import { scenarioMain, type ScenarioMainOptions } from './scenario.js'

/** Runs the scenario and prints its report; resolves with the number of failed phases. */
export async function clusterMain (o: ClusterOptions, ctx: ScenarioMainOptions): Promise<number> {
  return await scenarioMain({
    name: 'cluster',
    options: o,
    diskBytes: clusterDiskBytes(o),
    diskUse: 'hold',
    describe: describeCluster(o),
    // The nodes come first, in the order of their ids.
    serverKey: (s, i) => s.name === 'gateway' ? `node ${o.ids[i] ?? '?'}` : s.name,
    restarts: 'a new cluster (fresh data dirs, new ports) is started for every run; the lines above show the first',
    run: async (onStarted) => await runCluster(o, ctx, onStarted),
    print: (results) => printCluster(results, o.targets)
  }, ctx)
}
