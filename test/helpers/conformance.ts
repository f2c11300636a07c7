/**
 * Checking a conformance suite (conformance/blob, conformance/s3) from tests: each case result as
 * a tap assertion, and the suite's command line run as a child process.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { CaseResult } from '../../conformance/shared/case-result.js'
import { repoRoot } from './gateway.js'

/**
 * One assertion per case: `pass` passes, `xfail` passes saying it fails as documented, `skip` is
 * a skipped assertion with the reason, anything else (`fail`, `xpass`) fails with the error.
 */
export function assertCaseResults (t: Test, results: readonly CaseResult[]): void {
  for (const r of results) {
    const id = `${r.client}:${r.operation}`
    if (r.status === 'pass') t.pass(id)
    else if (r.status === 'xfail') t.pass(`${id} fails as documented (${r.error})`)
    else if (r.status === 'skip') t.pass(id, { skip: r.error ?? 'skipped' })
    else t.fail(`${id}: ${r.status} ${r.error ?? ''}`)
  }
}

/** The operations `client` ran, in the order reported. */
export function ranOperations (results: readonly CaseResult[], client: string): string[] {
  return results.filter((r) => r.client === client).map((r) => r.operation)
}

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs a suite's command line (`conformance/<suite>/run.ts`, relative to the repository) with
 * `args`, in this process's environment changed by `env` (an undefined value removes a variable).
 */
export function runConformanceCli (script: string, args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, script), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8') })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Case id → status, from a JSON report written with --json. */
export async function reportStatuses (file: string): Promise<Record<string, string>> {
  const report = JSON.parse(await readFile(file, 'utf8')) as { results: CaseResult[] }
  return Object.fromEntries(report.results.map((r) => [`${r.client}:${r.operation}`, r.status]))
}
