/**
 * Runs python_cases.py (the Python client, azure-storage-blob) against the endpoint; the script
 * is driven, and its lines turned into results, by the shared Python runner.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as runner from '../shared/python-runner.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'python_cases.py')

/**
 * The runner's options but the script and its arguments and environment, which come from these.
 * The interpreter: Debian's python3-azure installs for /usr/bin/python3, not for a venv on PATH.
 */
export interface PythonRunOptions extends Omit<runner.PythonScriptOptions, 'script' | 'args' | 'env'> {
  connectionString: string
  container: string
  prefix: string
}

/** The versions the script reports. */
export interface PythonEnv {
  python?: string
  sdk?: string | null
}

export type PythonRun = runner.PythonRun<PythonEnv>

/** Runs the script's cases; undefined if the filter left none of them. */
export function runPythonCases(opts: PythonRunOptions): Promise<PythonRun | undefined> {
  const { connectionString, container, prefix, ...rest } = opts
  return runner.runPythonScript<PythonEnv>({
    ...rest,
    script,
    args: ['--container', container, '--prefix', prefix],
    env: { ...process.env, CKPTCACHE_CONFORMANCE_CONNECTION_STRING: connectionString },
  })
}

/** The script's operations in order; undefined if the interpreter cannot run it. */
export function listPythonOperations(python: string): Promise<string[] | undefined> {
  return runner.listPythonOperations(python, script)
}
