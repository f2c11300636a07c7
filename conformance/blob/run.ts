/**
 * Blob conformance suite, command line:
 *
 *   CKPTCACHE_CONFORMANCE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=…;AccountKey=…;BlobEndpoint=http://127.0.0.1:10000/…;' \
 *     node --import tsx conformance/blob/run.ts [--json FILE] [--expect-fail ID]… [--only TEXT]… [--python PATH | --no-python] [--quiet]
 *
 * Prints the operation × client table on stdout (progress on stderr), writes the full report as
 * JSON with --json, and exits 1 if a case failed that is not listed as expected (or an expected
 * failure passed: the list is then stale), 2 on bad usage. Expected failures (`js:download/range`)
 * come from --expect-fail (repeatable, comma-separated) and CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES
 * (comma- or space-separated). The connection string is read from the environment only, so the
 * key never shows in a process list.
 */
import { runConformanceCli, UsageError } from '../shared/cli.js'
import { formatReport } from './report.js'
import { DEFAULT_PYTHON, runSuite } from './suite.js'

const USAGE = `usage: node --import tsx conformance/blob/run.ts [options]
  env CKPTCACHE_CONFORMANCE_CONNECTION_STRING   connection string of the endpoint (required)
  env CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES   ids expected to fail, comma/space-separated
  env CKPTCACHE_CONFORMANCE_PYTHON              Python interpreter (default ${DEFAULT_PYTHON})
  --json FILE         write the report as JSON
  --expect-fail ID    case id expected to fail, e.g. js:download/range-empty-416 (repeatable)
  --only TEXT         run only case ids containing TEXT (repeatable)
  --python PATH       Python interpreter for the Python client
  --no-python         leave the Python client out
  --quiet             no progress lines on stderr`

process.exitCode = await runConformanceCli({
  usage: USAGE,
  options: {},
  expectedFailuresEnv: 'CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES',
  defaultPython: process.env.CKPTCACHE_CONFORMANCE_PYTHON ?? DEFAULT_PYTHON,
  async run(_args, common) {
    const connectionString = process.env.CKPTCACHE_CONFORMANCE_CONNECTION_STRING
    if (!connectionString) throw new UsageError('CKPTCACHE_CONFORMANCE_CONNECTION_STRING is not set')
    return runSuite({ connectionString, ...common })
  },
  format: formatReport,
})
