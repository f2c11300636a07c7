/**
 * What every suite's `runSuite` takes and gives back besides its protocol's own settings
 * (endpoint, tools) and facts (bucket or container, client versions).
 */
import type { CaseResult, StatusCounts } from './case-result.js'

export interface CommonSuiteOptions {
  /** Case ids (`js:get/range-416`) expected to fail here; see `caseId`. */
  expectedFailures?: Iterable<string>
  /** Runs only the cases whose id this accepts (a Python script gets its matching operations). */
  filter?: (id: string) => boolean
  /** Python interpreter for the Python client, or false to leave the Python cases out. */
  python?: string | false
  /** Progress lines (one per finished case). */
  log?: (line: string) => void
}

export interface CommonSuiteReport<Client extends string> {
  startedAt: string
  ms: number
  results: CaseResult<Client>[]
  counts: StatusCounts
  /** No `fail` and no `xpass` (an expected failure that passed means the list is stale). */
  ok: boolean
}
