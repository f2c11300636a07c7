/**
 * What a protocol contributes to a benchmark run: its scenarios (table rows),
 * the lines it adds to the setup header, how it prepares each server and the
 * runs themselves. bench/blob-plan.ts and bench/s3-plan.ts implement it.
 */

import type { Measurer } from './measure.js'
import { GiB, MiB, type Protocol, type Scenario } from './report.js'
import type { BenchServer, ServerName } from './servers/start.js'

export interface PlanOptions {
  /** Measured runs per scenario: 64 MiB, 1 GiB (0: no 1 GiB scenarios), 4 KiB. */
  midRuns: number
  bigRuns: number
  smallRuns: number
  /** New small objects per run, and warm-up small ops per server. */
  smallOps: number
  smallWarmup: number
  /** The servers of this run (after --servers), in their rotation order. */
  servers: readonly ServerName[]
}

export interface Plan {
  protocol: Protocol
  /** The servers this plan measures (a subset of PlanOptions.servers). */
  servers: readonly ServerName[]
  scenarios: Scenario[]
  /** Setup-header lines describing the runs. */
  describe: () => string[]
  /** Lines printed under this plan's throughput table (why a cell is n/a, …). */
  notes: string[]
  /** Bytes this plan may leave on the benchmark's filesystem at most (all servers). */
  diskBytes: number
  /** Creates what the runs need on one server (container, bucket). */
  prepare: (server: BenchServer) => Promise<void>
  /** Runs every scenario (warm-up first). */
  run: (m: Measurer, server: (name: ServerName) => BenchServer) => Promise<void>
}

export const KiB = 1024
export const SMALL_SIZE = 4 * KiB
export const SMALL_CONCURRENCY = 16
export const MID = 64 * MiB
export const BIG = GiB
export const CONCURRENCY = [1, 4]
export const sizeLabel = (n: number): string => n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`
