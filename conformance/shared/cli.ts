/**
 * The command line every conformance suite shares: the common flags (--json, --expect-fail,
 * --only, --python/--no-python, --quiet, --help) beside the suite's own, the expected-failure list
 * from the flags and an environment variable, the table on stdout and progress on stderr, the
 * JSON report, and the exit code: 0 when the run is ok, 1 when not, 2 on bad usage.
 */
import { writeFile } from 'node:fs/promises'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { CommonSuiteOptions } from './suite-contract.js'

type Options = NonNullable<ParseArgsConfig['options']>

export const COMMON_OPTIONS = {
  json: { type: 'string' },
  'expect-fail': { type: 'string', multiple: true },
  only: { type: 'string', multiple: true },
  python: { type: 'string' },
  'no-python': { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options

/** Thrown by a suite's `run` for a usage error: the message, then the usage, on stderr; exit 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O & typeof COMMON_OPTIONS, strict: true, allowPositionals: false }>>['values']
type CommonValues = Values<Record<never, never>>

export interface CliSpec<O extends Options, Report extends { ok: boolean }> {
  usage: string
  /** The suite's own flags. */
  options: O
  /** The variable holding expected failures, e.g. CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES. */
  expectedFailuresEnv: string
  /** The interpreter when --python is not given. */
  defaultPython: string
  /**
   * Runs the suite. `common` is what the common flags say: the expected failures from the
   * environment variable (comma/space-separated) and every --expect-fail (comma-separated); a
   * filter accepting the case ids that contain one of the --only texts; the interpreter, or false
   * with --no-python; progress lines on stderr unless --quiet.
   */
  run(args: Values<O>, common: CommonSuiteOptions): Promise<Report>
  format(report: Report): string
}

/** Runs the suite's command line; resolves with the exit code. */
export async function runConformanceCli<O extends Options, Report extends { ok: boolean }>(spec: CliSpec<O, Report>): Promise<number> {
  let all: Values<O>
  try {
    all = parseArgs({ options: { ...spec.options, ...COMMON_OPTIONS }, strict: true, allowPositionals: false }).values as Values<O>
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${spec.usage}\n`)
    return 2
  }
  const args = all as CommonValues
  if (args.help) {
    process.stdout.write(`${spec.usage}\n`)
    return 0
  }
  const expectedFailures = [
    ...(process.env[spec.expectedFailuresEnv] ?? '').split(/[\s,]+/),
    ...(args['expect-fail'] ?? []).flatMap((v) => v.split(',')),
  ].map((s) => s.trim()).filter(Boolean)
  const only = args.only ?? []
  const common: CommonSuiteOptions = {
    expectedFailures,
    ...(only.length > 0 ? { filter: (id: string) => only.some((o) => id.includes(o)) } : {}),
    python: args['no-python'] ? false : (args.python ?? spec.defaultPython),
    ...(args.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
  }
  let report: Report
  try {
    report = await spec.run(all, common)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`${err.message}\n${spec.usage}\n`)
    return 2
  }
  process.stdout.write(`${spec.format(report)}\n`)
  if (args.json) await writeFile(args.json, `${JSON.stringify({ ...report, expectedFailures }, null, 2)}\n`)
  return report.ok ? 0 : 1
}
