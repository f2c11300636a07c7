/**
 * Runs a Python case script (python_cases.py: boto3) against the endpoint; the script is driven,
 * and its lines turned into results, by the shared Python runner. Another script with the same
 * command line and output (e.g. for another bucket type) can be run by passing its path.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as runner from '../shared/python-runner.js'
import { cleanEnv, ENV, type S3Endpoint } from './endpoint.js'

export const PYTHON_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'python_cases.py')

/**
 * Every Python case script the suite runs, one after another; each prints operation names of its
 * own (they share the `python` column). A feature's script is added here.
 */
export const PYTHON_SCRIPTS: readonly string[] = [PYTHON_SCRIPT, join(dirname(PYTHON_SCRIPT), 'python_express_cases.py')]

/** The runner's options but the script's arguments and environment, which come from these. */
export interface PythonRunOptions extends Omit<runner.PythonScriptOptions, 'script' | 'args' | 'env'> {
  endpoint: S3Endpoint
  bucket: string
  /** Case script; default python_cases.py. */
  script?: string
  prefix: string
}

/** The versions the script reports. */
export interface PythonEnv {
  python?: string
  sdk?: string | null
  botocore?: string
}

export type PythonRun = runner.PythonRun<PythonEnv>

/** Runs the script's cases; undefined if the filter left none of them. */
export function runPythonCases(opts: PythonRunOptions): Promise<PythonRun | undefined> {
  const { endpoint, bucket, script, prefix, ...rest } = opts
  return runner.runPythonScript<PythonEnv>({
    ...rest,
    script: script ?? PYTHON_SCRIPT,
    args: ['--bucket', bucket, '--prefix', prefix],
    // No AWS_* of the user's; no config or credentials file either: only what is passed here counts.
    env: cleanEnv({
      [ENV.endpoint]: endpoint.url,
      [ENV.accessKey]: endpoint.accessKeyId,
      [ENV.secretKey]: endpoint.secretAccessKey,
      [ENV.region]: endpoint.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    }),
  })
}

/** The script's operations in order; undefined if the interpreter cannot run it. */
export function listPythonOperations(python: string, script = PYTHON_SCRIPT): Promise<string[] | undefined> {
  return runner.listPythonOperations(python, script)
}
