/**
 * Runs python_cases.py (the Python client, azure-storage-blob) against the endpoint and turns its
 * JSON lines into results. A missing interpreter or SDK makes the cases `skip`, with the reason;
 * a script that dies mid-run is reported as a failure with the tail of its stderr.
 */
import { execFile, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { CaseResult } from './case.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'python_cases.py')

export interface PythonRunOptions {
  connectionString: string
  container: string
  /** Interpreter. Debian's python3-azure installs for /usr/bin/python3, not for a venv on PATH. */
  python: string
  prefix: string
  /** Operations to run; all if omitted. */
  only?: string[]
  timeoutMs: number
  onResult?: (r: CaseResult) => void
}

export interface PythonRun {
  results: CaseResult[]
  env: { python?: string, sdk?: string | null }
}

interface Line {
  event?: string
  python?: string
  sdk?: string | null
  operation?: string
  status?: CaseResult['status']
  ms?: number
  error?: string
}

export async function runPythonCases(opts: PythonRunOptions): Promise<PythonRun> {
  const args = [script, '--container', opts.container, '--prefix', opts.prefix]
  if (opts.only) args.push('--only', opts.only.join(','))
  const child = spawn(opts.python, args, {
    env: { ...process.env, CKPTCACHE_CONFORMANCE_CONNECTION_STRING: opts.connectionString, PYTHONUNBUFFERED: '1' },
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
      run.env = { python: line.python, sdk: line.sdk }
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
      error: `python_cases.py ${why}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`.slice(0, 500),
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
export async function listPythonOperations(python: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(python, [script, '--list'], { timeout: 30_000 })
    return JSON.parse(stdout) as string[]
  } catch {
    return undefined
  }
}
