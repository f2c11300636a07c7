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
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
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

async function main(): Promise<number> {
  let args
  try {
    args = parseArgs({
      options: {
        json: { type: 'string' },
        'expect-fail': { type: 'string', multiple: true },
        only: { type: 'string', multiple: true },
        python: { type: 'string' },
        'no-python': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const connectionString = process.env.CKPTCACHE_CONFORMANCE_CONNECTION_STRING
  if (!connectionString) {
    process.stderr.write(`CKPTCACHE_CONFORMANCE_CONNECTION_STRING is not set\n${USAGE}\n`)
    return 2
  }
  const expectedFailures = [
    ...(process.env.CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES ?? '').split(/[\s,]+/),
    ...(args['expect-fail'] ?? []).flatMap((v) => v.split(',')),
  ].map((s) => s.trim()).filter(Boolean)
  const only = args.only ?? []

  const report = await runSuite({
    connectionString,
    expectedFailures,
    ...(only.length > 0 ? { filter: (id: string) => only.some((o) => id.includes(o)) } : {}),
    python: args['no-python'] ? false : (args.python ?? process.env.CKPTCACHE_CONFORMANCE_PYTHON ?? DEFAULT_PYTHON),
    ...(args.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
  })
  process.stdout.write(`${formatReport(report)}\n`)
  if (args.json) await writeFile(args.json, `${JSON.stringify({ ...report, expectedFailures }, null, 2)}\n`)
  return report.ok ? 0 : 1
}

process.exitCode = await main()
