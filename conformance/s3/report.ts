/**
 * Renders a suite report: operation × client table, a count per client, then every case that did
 * not pass, with why.
 */
import { countStatuses } from '../shared/case-result.js'
import { formatCounts, formatNotPassing, formatTable } from '../shared/report-table.js'
import { CLIENTS, type ClientName } from './case.js'
import type { SuiteReport } from './suite.js'

export function formatReport(report: SuiteReport): string {
  const seen = new Set(report.results.map((r) => r.client))
  const clients = CLIENTS.filter((c) => seen.has(c))
  // Rows in the order of the clients' columns, then of the cases.
  const out = formatTable(report.results, clients)

  out.push('')
  for (const client of clients) {
    const counts = countStatuses(report.results.filter((r) => r.client === client))
    out.push(`${client.padEnd(7)} ${(['pass', 'fail', 'xfail', 'xpass', 'skip'] as const).map((s) => `${counts[s]} ${s}`).join(', ')}  (${versionOf(report, client)})`)
  }

  out.push(...formatNotPassing(report.results))
  out.push('', `${formatCounts(report.counts, report.ms)} — ${report.endpoint} (${report.region}, bucket ${report.bucket}) — ${report.ok ? 'OK' : 'NOT OK'}`)
  return out.join('\n')
}

function versionOf(report: SuiteReport, client: ClientName): string {
  const v = report.clients
  switch (client) {
    case 'js': return `@aws-sdk/client-s3 ${v.js.sdk}`
    case 'python': return v.python ? `python ${v.python.python ?? '?'}, boto3 ${v.python.sdk ?? 'missing'}` : 'python not run'
    default: return v[client] ?? `${client} missing`
  }
}
