/**
 * What a conformance case comes to, whatever the protocol: one result per (client, operation),
 * its status, and the id expected-failure lists and filters name it by.
 */

/** `pass`, `fail`; `skip` (could not run here); `xfail`/`xpass`: listed as expected to fail. */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'xfail' | 'xpass'

export interface CaseResult<Client extends string = string> {
  client: Client
  operation: string
  status: CaseStatus
  ms: number
  error?: string
}

export type StatusCounts = Record<CaseStatus, number>

/** Id used in expected-failure lists and filters: `<client>:<operation>`, e.g. `js:get/range-416`. */
export function caseId(client: string, operation: string): string {
  return `${client}:${operation}`
}

/** How many results have each status. */
export function countStatuses(results: readonly CaseResult[]): StatusCounts {
  const counts: StatusCounts = { pass: 0, fail: 0, skip: 0, xfail: 0, xpass: 0 }
  for (const r of results) counts[r.status]++
  return counts
}
