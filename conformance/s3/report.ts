/**
 * Renders a suite report: operation × client table, a count per client, then every case that did
 * not pass, with why.
 */
import { CLIENTS, type CaseResult, type CaseStatus, type ClientName } from './case.js'
import type { SuiteReport } from './suite.js'

const LABEL: Record<CaseStatus, string> = { pass: 'pass', fail: 'FAIL', skip: 'skip', xfail: 'xfail', xpass: 'XPASS' }

export function formatReport(report: SuiteReport): string {
  const seen = new Set(report.results.map((r) => r.client))
  const clients = CLIENTS.filter((c) => seen.has(c))
  // Rows in the order of the clients' columns, then of the cases.
  const byOp = new Map<string, Map<ClientName, CaseResult>>()
  for (const client of clients) {
    for (const r of report.results.filter((x) => x.client === client)) {
      let row = byOp.get(r.operation)
      if (!row) byOp.set(r.operation, (row = new Map()))
      row.set(r.client, r)
    }
  }
  const cell = (r: CaseResult | undefined): string => (r ? `${LABEL[r.status].padEnd(5)} ${fmtMs(r.ms).padStart(7)}` : '-')
  const rows = [['operation', ...clients], ...[...byOp].map(([op, row]) => [op, ...clients.map((c) => cell(row.get(c)))])]
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: string[]): string => r.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  const out = [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]

  out.push('')
  for (const client of clients) {
    const counts = countOf(report.results.filter((r) => r.client === client))
    out.push(`${client.padEnd(7)} ${(['pass', 'fail', 'xfail', 'xpass', 'skip'] as const).map((s) => `${counts[s]} ${s}`).join(', ')}  (${versionOf(report, client)})`)
  }

  const notPassing = report.results.filter((r) => r.status !== 'pass')
  if (notPassing.length > 0) {
    out.push('', 'not passing:')
    for (const r of notPassing) out.push(`  ${LABEL[r.status].padEnd(5)} ${r.client}:${r.operation}  ${r.error ?? ''}`.trimEnd())
  }
  const c = report.counts
  out.push('', `${c.pass} pass, ${c.fail} fail, ${c.xfail} xfail, ${c.xpass} xpass, ${c.skip} skip in ${fmtMs(report.ms)}` +
    ` — ${report.endpoint} (${report.region}, bucket ${report.bucket}) — ${report.ok ? 'OK' : 'NOT OK'}`)
  return out.join('\n')
}

function countOf(results: CaseResult[]): Record<CaseStatus, number> {
  const counts: Record<CaseStatus, number> = { pass: 0, fail: 0, skip: 0, xfail: 0, xpass: 0 }
  for (const r of results) counts[r.status]++
  return counts
}

function versionOf(report: SuiteReport, client: ClientName): string {
  const v = report.clients
  switch (client) {
    case 'js': return `@aws-sdk/client-s3 ${v.js.sdk}`
    case 'python': return v.python ? `python ${v.python.python ?? '?'}, boto3 ${v.python.sdk ?? 'missing'}` : 'python not run'
    default: return v[client] ?? `${client} missing`
  }
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`
}
