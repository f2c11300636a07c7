/**
 * Runs a Python script (the machine's `python3`) that prints one `ok <what>` or `FAIL <what>` line
 * per check, and reports each line as a tap assertion, plus: the script exited 0, and every check
 * ran.
 */
import { spawn } from 'node:child_process'
import type { Test } from 'tap'

export interface PythonChecks {
  /** The script's source, run with `python3 -c`. */
  script: string
  /** Added to this process's environment. */
  env: Record<string, string>
  /** How many check lines the script prints when it runs to the end. */
  checks: number
}

export async function runPythonChecks (t: Test, opts: PythonChecks): Promise<void> {
  const child = spawn('python3', ['-c', opts.script], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, `python exited 0; stderr: ${err}`)
  const lines = out.split('\n').filter(Boolean)
  for (const line of lines) t.ok(line.startsWith('ok '), line)
  t.equal(lines.length, opts.checks, 'every check ran')
}
