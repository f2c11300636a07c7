/**
 * Runs a Python case script (python_cases.py: boto3) against the endpoint and turns its JSON lines
 * into results. A missing interpreter or SDK makes the cases `skip`, with the reason; a script
 * that dies mid-run is reported as a failure with the tail of its stderr. Another script with the
 * same command line and output (e.g. for another bucket type) can be run by passing its path.
 */
import { execFile, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { CaseResult } from './case.js'
import { cleanEnv, ENV, type S3Endpoint } from './endpoint.js'

export const PYTHON_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'python_cases.py')

/**
 * Every Python case script the suite runs, one after another; each prints operation names of its
 * own (they share the `python` column). A feature's script is added here.
 */
export const PYTHON_SCRIPTS: readonly string[] = [PYTHON_SCRIPT, join(dirname(PYTHON_SCRIPT), 'python_express_cases.py')]

export interface PythonRunOptions {
  endpoint: S3Endpoint
  bucket: string
  /** Interpreter with boto3: the machine's `python3` by default. */
  python: string
  /** Case script; default python_cases.py. */
  script?: string
  prefix: string
  /** Operations to run; all if omitted. */
  only?: string[]
  timeoutMs: number
  onResult?: (r: CaseResult) => void
}

export interface PythonEnv {
  python?: string
  sdk?: string | null
  botocore?: string
}

export interface PythonRun {
  results: CaseResult[]
  env: PythonEnv
}

interface Line extends PythonEnv {
  event?: string
  operation?: string
  status?: CaseResult['status']
  ms?: number
  error?: string
}

export async function runPythonCases(opts: PythonRunOptions): Promise<PythonRun> {
  const script = opts.script ?? PYTHON_SCRIPT
  const args = [script, '--bucket', opts.bucket, '--prefix', opts.prefix]
  if (opts.only) args.push('--only', opts.only.join(','))
  const child = spawn(opts.python, args, {
    // No AWS_* of the user's; no config or credentials file either: only what is passed here counts.
    env: cleanEnv({
      [ENV.endpoint]: opts.endpoint.url,
      [ENV.accessKey]: opts.endpoint.accessKeyId,
      [ENV.secretKey]: opts.endpoint.secretAccessKey,
      [ENV.region]: opts.endpoint.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
      PYTHONUNBUFFERED: '1',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: PythonRun = { results: [], env: {} }
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-2000) })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)

  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null, spawnError?: Error }>((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, signal: null, spawnError }))
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  for await (const raw of createInterface({ input: child.stdout })) {
    let line: Line
    try {
      line = JSON.parse(raw) as Line
    } catch {
      continue // not ours (a library printing to stdout)
    }
    if (line.event === 'env') {
      run.env = { python: line.python, sdk: line.sdk, ...(line.botocore ? { botocore: line.botocore } : {}) }
    } else if (line.operation && line.status) {
      const r: CaseResult = { client: 'python', operation: line.operation, status: line.status, ms: line.ms ?? 0 }
      if (line.error) r.error = line.error
      run.results.push(r)
      opts.onResult?.(r)
    }
  }
  const { code, signal, spawnError } = await exit
  clearTimeout(timer)

  if (spawnError) {
    const r: CaseResult = { client: 'python', operation: '*', status: 'skip', ms: 0, error: `cannot run ${opts.python}: ${spawnError.message}` }
    run.results.push(r)
    opts.onResult?.(r)
  } else if (code !== 0) {
    const why = signal === 'SIGKILL' ? `timed out after ${opts.timeoutMs} ms` : `exited with ${code ?? signal}`
    const r: CaseResult = {
      client: 'python', operation: '(runner)', status: 'fail', ms: 0,
      error: `${script.split('/').at(-1)} ${why}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`.slice(0, 500),
    }
    run.results.push(r)
    opts.onResult?.(r)
  }
  return run
}

/**
 * The script's operations in order (`--list` needs no SDK); undefined if the interpreter cannot
 * run it (then running the cases reports why).
 */
export async function listPythonOperations(python: string, script = PYTHON_SCRIPT): Promise<string[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(python, [script, '--list'], { timeout: 30_000 })
    return JSON.parse(stdout) as string[]
  } catch {
    return undefined
  }
}
