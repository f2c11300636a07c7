/**
 * The bookkeeping of a run: collects the results as they arrive, turns a listed expected failure
 * into `xfail` (or `xpass` when it passed, which means the list is stale), writes a progress line
 * per result, and at the end counts them and gives the verdict.
 */
import { caseId, countStatuses, type CaseResult, type StatusCounts } from './case-result.js'

export interface RecorderOptions {
  /** Case ids (`js:get/range-416`) expected to fail here; see `caseId`. */
  expectedFailures?: Iterable<string>
  /** Progress lines (one per result). */
  log?: (line: string) => void
}

export interface RunTotals<Client extends string> {
  results: CaseResult<Client>[]
  counts: StatusCounts
  /** No `fail` and no `xpass` (an expected failure that passed means the list is stale). */
  ok: boolean
}

export interface ResultRecorder<Client extends string> {
  /** Every result recorded so far, in the order recorded. */
  readonly results: CaseResult<Client>[]
  record(r: CaseResult<Client>): void
  /** Rounds the times to 0.1 ms and counts the statuses. */
  totals(): RunTotals<Client>
}

export function createRecorder<Client extends string>(opts: RecorderOptions = {}): ResultRecorder<Client> {
  const expected = new Set(opts.expectedFailures ?? [])
  const log = opts.log ?? (() => {})
  const results: CaseResult<Client>[] = []
  return {
    results,
    record(r) {
      const id = caseId(r.client, r.operation)
      if (expected.has(id)) {
        if (r.status === 'fail') r.status = 'xfail'
        else if (r.status === 'pass') {
          r.status = 'xpass'
          r.error = 'listed as an expected failure but passed'
        }
      }
      results.push(r)
      log(`${r.status.padEnd(5)} ${id}${r.error ? `  ${r.error}` : ''} (${Math.round(r.ms)} ms)`)
    },
    totals() {
      const counts = countStatuses(results)
      for (const r of results) r.ms = Math.round(r.ms * 10) / 10
      return { results, counts, ok: counts.fail === 0 && counts.xpass === 0 }
    },
  }
}
