/**
 * The text report of a run: the operation × client table, the list of cases that did not pass
 * with why, and the totals line.
 */
import type { CaseResult, CaseStatus, StatusCounts } from './case-result.js'

export const STATUS_LABEL: Readonly<Record<CaseStatus, string>> = { pass: 'pass', fail: 'FAIL', skip: 'skip', xfail: 'xfail', xpass: 'XPASS' }

/**
 * One row per operation, one column per client in `clients` (a `-` where that client has no such
 * case). Rows come in the order of the columns' clients, then of the cases: the first client's
 * operations, then those only a later client has.
 */
export function formatTable<Client extends string>(results: readonly CaseResult<Client>[], clients: readonly Client[]): string[] {
  const byOp = new Map<string, Map<Client, CaseResult<Client>>>()
  for (const client of clients) {
    for (const r of results.filter((x) => x.client === client)) {
      let row = byOp.get(r.operation)
      if (!row) byOp.set(r.operation, (row = new Map()))
      row.set(r.client, r)
    }
  }
  const cell = (r: CaseResult | undefined): string => (r ? `${STATUS_LABEL[r.status].padEnd(5)} ${formatMs(r.ms).padStart(7)}` : '-')
  const rows = [['operation', ...clients], ...[...byOp].map(([op, row]) => [op, ...clients.map((c) => cell(row.get(c)))])]
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: string[]): string => r.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]
}

/** A blank line, `not passing:` and one line per result that did not pass, with why; nothing if all passed. */
export function formatNotPassing(results: readonly CaseResult[]): string[] {
  const notPassing = results.filter((r) => r.status !== 'pass')
  if (notPassing.length === 0) return []
  return ['', 'not passing:', ...notPassing.map((r) => `  ${STATUS_LABEL[r.status].padEnd(5)} ${r.client}:${r.operation}  ${r.error ?? ''}`.trimEnd())]
}

/** `12 pass, 1 fail, 0 xfail, 0 xpass, 2 skip in 9.7 s`: the start of the last line. */
export function formatCounts(c: StatusCounts, ms: number): string {
  return `${c.pass} pass, ${c.fail} fail, ${c.xfail} xfail, ${c.xpass} xpass, ${c.skip} skip in ${formatMs(ms)}`
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`
}
