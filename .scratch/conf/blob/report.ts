/** Renders a suite report: operation × client table, then every case that did not pass, with why. */
import type { CaseResult, CaseStatus, ClientName } from './case.js'
import type { SuiteReport } from './suite.js'

const LABEL: Record<CaseStatus, string> = { pass: 'pass', fail: 'FAIL', skip: 'skip', xfail: 'xfail', xpass: 'XPASS' }
const CLIENTS: ClientName[] = ['js', 'python']

export function formatReport(report: SuiteReport): string {
  const byOp = new Map<string, Map<ClientName, CaseResult>>()
  // JS results first (they arrive in case order), then operations only another client has.
  const ordered = [...report.results.filter((r) => r.client === 'js'), ...report.results.filter((r) => r.client !== 'js')]
  for (const r of ordered) {
    let row = byOp.get(r.operation)
    if (!row) byOp.set(r.operation, (row = new Map()))
    row.set(r.client, r)
  }
  const cell = (r: CaseResult | undefined): string => (r ? `${LABEL[r.status].padEnd(5)} ${fmtMs(r.ms).padStart(7)}` : '-')
  const rows = [['operation', ...CLIENTS], ...[...byOp].map(([op, row]) => [op, ...CLIENTS.map((c) => cell(row.get(c)))])]
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: string[]): string => r.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  const out = [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]

  const notPassing = report.results.filter((r) => r.status !== 'pass')
  if (notPassing.length > 0) {
    out.push('', 'not passing:')
    for (const r of notPassing) out.push(`  ${LABEL[r.status].padEnd(5)} ${r.client}:${r.operation}  ${r.error ?? ''}`.trimEnd())
  }
  const c = report.counts
  out.push('', `${c.pass} pass, ${c.fail} fail, ${c.xfail} xfail, ${c.xpass} xpass, ${c.skip} skip in ${fmtMs(report.ms)}` +
    ` — ${report.endpoint} (container ${report.container}; @azure/storage-blob ${report.clients.js.sdk}` +
    `${report.clients.python ? `, python ${report.clients.python.python} azure-storage-blob ${report.clients.python.sdk ?? 'missing'}` : ''})` +
    ` — ${report.ok ? 'OK' : 'NOT OK'}`)
  return out.join('\n')
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`
}
