/**
 * Drives a Python case script (one built on case_harness.py) and turns its JSON lines into
 * results of the `python` client. A missing interpreter makes the cases `skip`, with the reason;
 * a script that dies mid-run, or outlives its time, is reported as a failure of `(runner)` with
 * the tail of its stderr.
 *
 * The script's command line: `--list` (its operations as a JSON array; needs no SDK), or the
 * suite's own arguments plus `--only op,op`. Its output, one JSON object per line: an
 * `{"event": "env", …versions}` line, then `{"operation", "status", "ms", "error"?}` per case.
 */
import { execFile, spawn } from 'node:child_process'
import { basename } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { caseId, type CaseResult } from './case-result.js'

export type PythonResult = CaseResult<'python'>

export interface PythonScriptOptions {
  /** Interpreter. */
  python: string
  /** Path of the case script. */
  script: string
  /** The script's arguments (the bucket or container, the key prefix…); `--only` is added here. */
  args: string[]
  /** The child's whole environment (PYTHONUNBUFFERED is added). */
  env: NodeJS.ProcessEnv
  timeoutMs: number
  /**
   * Runs only the operations whose case id this accepts, asking the script for its list first
   * (the script owns its list of operations). Without it, every operation runs.
   */
  filter?: (id: string) => boolean
  onResult?: (r: PythonResult) => void
}

export interface PythonRun<Env> {
  results: PythonResult[]
  /** The versions the script reported (its `env` line without `event`); empty if none came. */
  env: Env | Record<string, never>
}

interface Line {
  event?: string
  operation?: string
  status?: PythonResult['status']
  ms?: number
  error?: string
}

/** Runs the script's cases; undefined if a filter left none of its operations to run. */
export async function runPythonScript<Env extends object>(opts: PythonScriptOptions): Promise<PythonRun<Env> | undefined> {
  let only: string[] | undefined
  if (opts.filter) {
    const filter = opts.filter
    // A script that cannot even list its operations runs them all, and says why it fails.
    only = (await listPythonOperations(opts.python, opts.script))?.filter((op) => filter(caseId('python', op)))
    if (only?.length === 0) return undefined
  }
  const args = [opts.script, ...opts.args]
  if (only) args.push('--only', only.join(','))
  const child = spawn(opts.python, args, { env: { ...opts.env, PYTHONUNBUFFERED: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  const run: PythonRun<Env> = { results: [], env: {} }
  const report = (r: PythonResult): void => {
    run.results.push(r)
    opts.onResult?.(r)
  }
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
      const { event: _, ...env } = line
      run.env = env as Env
    } else if (line.operation && line.status) {
      const r: PythonResult = { client: 'python', operation: line.operation, status: line.status, ms: line.ms ?? 0 }
      if (line.error) r.error = line.error
      report(r)
    }
  }
  const { code, signal, spawnError } = await exit
  clearTimeout(timer)

  if (spawnError) {
    report({ client: 'python', operation: '*', status: 'skip', ms: 0, error: `cannot run ${opts.python}: ${spawnError.message}` })
  } else if (code !== 0) {
    const why = signal === 'SIGKILL' ? `timed out after ${opts.timeoutMs} ms` : `exited with ${code ?? signal}`
    report({
      client: 'python', operation: '(runner)', status: 'fail', ms: 0,
      error: `${basename(opts.script)} ${why}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`.slice(0, 500),
    })
  }
  return run
}

/**
 * The script's operations in order (`--list` needs no SDK); undefined if the interpreter cannot
 * run it (then running the cases reports why).
 */
export async function listPythonOperations(python: string, script: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(python, [script, '--list'], { timeout: 30_000 })
    return JSON.parse(stdout) as string[]
  } catch {
    return undefined
  }
}
