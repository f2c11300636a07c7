/**
 * S3 conformance suite, command line:
 *
 *   CKPTCACHE_CONFORMANCE_S3_ENDPOINT=http://127.0.0.1:9000 CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY=… \
 *   CKPTCACHE_CONFORMANCE_S3_SECRET_KEY=… [CKPTCACHE_CONFORMANCE_S3_REGION=us-east-1] \
 *     node --import tsx conformance/s3/run.ts [--json FILE] [--expect-fail ID]… [--only TEXT]…
 *       [--python PATH | --no-python] [--aws CMD | --no-awscli] [--s3cmd CMD | --no-s3cmd]
 *       [--rclone CMD | --no-rclone] [--quiet]
 *
 * Prints the operation × client table on stdout (progress on stderr), writes the full report as
 * JSON with --json, and exits 1 if a case failed that is not listed as expected (or an expected
 * failure passed: the list is then stale), 2 on bad usage. Expected failures (`js:get/range-416`)
 * come from --expect-fail (repeatable, comma-separated) and CKPTCACHE_CONFORMANCE_S3_EXPECTED_FAILURES
 * (comma- or space-separated). The keys are read from the environment only, so they never show
 * in a process list.
 */
import { runConformanceCli, UsageError } from '../shared/cli.js'
import { endpointFromEnv } from './endpoint.js'
import { formatReport } from './report.js'
import { DEFAULT_PYTHON, runSuite, type ToolName } from './suite.js'

const USAGE = `usage: node --import tsx conformance/s3/run.ts [options]
  env CKPTCACHE_CONFORMANCE_S3_ENDPOINT           endpoint, path-style, e.g. http://127.0.0.1:9000 (required)
  env CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY         access key id (required)
  env CKPTCACHE_CONFORMANCE_S3_SECRET_KEY         secret access key (required)
  env CKPTCACHE_CONFORMANCE_S3_REGION             signing region (default us-east-1)
  env CKPTCACHE_CONFORMANCE_S3_EXPECTED_FAILURES  ids expected to fail, comma/space-separated
  --json FILE         write the report as JSON
  --expect-fail ID    case id expected to fail, e.g. js:get/range-416 (repeatable)
  --only TEXT         run only case ids containing TEXT (repeatable)
  --python PATH       Python interpreter with boto3 (default ${DEFAULT_PYTHON} on PATH)
  --no-python         leave the Python client out
  --aws CMD, --s3cmd CMD, --rclone CMD
                      run that tool as CMD (default: its name on PATH)
  --no-awscli, --no-s3cmd, --no-rclone
                      leave that tool out (a tool that is not installed is skipped anyway)
  --quiet             no progress lines on stderr`

process.exitCode = await runConformanceCli({
  usage: USAGE,
  options: {
    aws: { type: 'string' },
    'no-awscli': { type: 'boolean' },
    s3cmd: { type: 'string' },
    'no-s3cmd': { type: 'boolean' },
    rclone: { type: 'string' },
    'no-rclone': { type: 'boolean' },
  },
  expectedFailuresEnv: 'CKPTCACHE_CONFORMANCE_S3_EXPECTED_FAILURES',
  defaultPython: DEFAULT_PYTHON,
  async run(args, common) {
    const endpoint = endpointFromEnv(process.env)
    if ('missing' in endpoint) throw new UsageError(`${endpoint.missing.join(', ')} ${endpoint.missing.length === 1 ? 'is' : 'are'} not set`)
    const tool = (off: boolean | undefined, command: string | undefined): string | false | undefined => (off ? false : command)
    const tools: Partial<Record<ToolName, string | false>> = {}
    for (const [name, value] of [['awscli', tool(args['no-awscli'], args.aws)], ['s3cmd', tool(args['no-s3cmd'], args.s3cmd)], ['rclone', tool(args['no-rclone'], args.rclone)]] as const) {
      if (value !== undefined) tools[name] = value
    }
    // The SDK's notice about future Node versions is not a finding.
    process.removeAllListeners('warning')
    return runSuite({ endpoint, ...common, tools })
  },
  format: formatReport,
})
