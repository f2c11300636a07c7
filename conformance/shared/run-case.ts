/**
 * Running one case of any client: a time limit, and the outcome as a result (`pass`, `skip` when
 * the case throws `SkipCase`, otherwise `fail` with a one-line reason).
 */
import type { CaseResult } from './case-result.js'

/** A case of a client that runs in this process (the JS SDK, a command-line tool), given its context. */
export interface CaseDefinition<Context> {
  operation: string
  /** The suite's default applies when absent. */
  timeoutMs?: number
  run(ctx: Context): Promise<void>
}

/** Thrown by a case that cannot run against this endpoint or on this machine. */
export class SkipCase extends Error {
  override name = 'SkipCase'
}

/** Rejects after `ms` (the operation itself keeps running; the run's buckets or containers are deleted anyway). */
export async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export interface CaseRun<Client extends string> {
  client: Client
  operation: string
  timeoutMs: number
  /** The one-line reason of a failure, in the protocol's terms (status and error code). */
  describeError(err: unknown): string
}

/** Runs `run` under the time limit and returns its result, timed from the start of the call. */
export async function runCase<Client extends string>(c: CaseRun<Client>, run: () => Promise<void>): Promise<CaseResult<Client>> {
  const t0 = performance.now()
  try {
    await withTimeout(c.timeoutMs, c.operation, run())
    return { client: c.client, operation: c.operation, status: 'pass', ms: performance.now() - t0 }
  } catch (err) {
    const skip = err instanceof SkipCase
    return { client: c.client, operation: c.operation, status: skip ? 'skip' : 'fail', ms: performance.now() - t0, error: skip ? err.message : c.describeError(err) }
  }
}
