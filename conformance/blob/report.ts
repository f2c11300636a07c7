/** Renders a suite report: operation × client table, then every case that did not pass, with why. */
import { formatCounts, formatNotPassing, formatTable } from '../shared/report-table.js'
import type { ClientName } from './case.js'
import type { SuiteReport } from './suite.js'

const CLIENTS: ClientName[] = ['js', 'python']

export function formatReport(report: SuiteReport): string {
  // JS results first (they arrive in case order), then operations only the Python client has.
  const out = [...formatTable(report.results, CLIENTS), ...formatNotPassing(report.results)]
  out.push('', formatCounts(report.counts, report.ms) +
    ` — ${report.endpoint} (container ${report.container}; @azure/storage-blob ${report.clients.js.sdk}` +
    `${report.clients.python ? `, python ${report.clients.python.python} azure-storage-blob ${report.clients.python.sdk ?? 'missing'}` : ''})` +
    ` — ${report.ok ? 'OK' : 'NOT OK'}`)
  return out.join('\n')
}
