/**
 * `npm run bench -- --only checkpoint`: the checkpoint scenario from start to
 * end (setup header, runs, tables, --json), called by bench/run.ts, which owns
 * the temp root, the deadline, the abort signal and stopping what is left.
 */

import { checkpointDiskBytes, describeCheckpoint, runCheckpoint, type CheckpointOptions } from './checkpoint-plan.js'
import { printCheckpoint } from './checkpoint-report.js'
import { scenarioMain, type ScenarioMainOptions } from './scenario.js'

/** Runs the scenario and prints its report; resolves with the number of failed phases. */
export async function checkpointMain (o: CheckpointOptions, ctx: ScenarioMainOptions): Promise<number> {
  return await scenarioMain({
    name: 'checkpoint',
    options: o,
    diskBytes: checkpointDiskBytes(o),
    diskUse: 'write',
    describe: describeCheckpoint(o),
    restarts: 'the gateway is restarted (fresh data dir, same Azurite) for every cold restore; the line above shows its first start',
    run: async (onStarted) => await runCheckpoint(o, ctx, onStarted),
    print: (results) => printCheckpoint(results, o.targets)
  }, ctx)
}
