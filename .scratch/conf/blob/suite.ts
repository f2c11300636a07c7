/**
 * Runs the Blob conformance cases of every client against one endpoint, given its connection
 * string: makes a container unique to the run, runs the JS cases one after another while the
 * Python cases run beside them (each client under its own name prefix), marks expected failures,
 * and deletes every container the run created.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import {
  caseId, describeError, SkipCase, withTimeout,
  type CaseResult, type CaseStatus, type JsContext,
} from './case.js'
import { jsCases } from './js-cases.js'
import { listPythonOperations, runPythonCases, type PythonRun } from './python-cases.js'

export interface SuiteOptions {
  connectionString: string
  /** Case ids (`js:download/range-empty-416`) expected to fail here; see `caseId`. */
  expectedFailures?: Iterable<string>
  /** Runs only the cases whose id this accepts (the Python runner gets the matching operations). */
  filter?: (id: string) => boolean
  /** Python interpreter for the Python client, or false to leave the Python cases out. */
  python?: string | false
  /** Progress lines (one per finished case). */
  log?: (line: string) => void
}

export interface SuiteReport {
  endpoint: string
  container: string
  startedAt: string
  ms: number
  clients: { js: { sdk: string }, python?: PythonRun['env'] }
  results: CaseResult[]
  counts: Record<CaseStatus, number>
  /** No `fail` and no `xpass` (an expected failure that passed means the list is stale). */
  ok: boolean
}

export const DEFAULT_PYTHON = '/usr/bin/python3'
const PYTHON_TIMEOUT_MS = 300_000

const jsSdkVersion = (createRequire(import.meta.url)('@azure/storage-blob/package.json') as { version: string }).version

export async function runSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const started = Date.now()
  const expected = new Set(opts.expectedFailures ?? [])
  const accept = opts.filter ?? (() => true)
  const log = opts.log ?? (() => {})

  // Conformance, not resilience: one try per request, so a single 5xx is a finding, not a retry.
  const service = BlobServiceClient.fromConnectionString(opts.connectionString, { retryOptions: { maxTries: 1 } })
  const credential = service.credential instanceof StorageSharedKeyCredential ? service.credential : undefined
  const account = credential?.accountName ?? service.accountName
  const runId = `cc-conf-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const container = service.getContainerClient(runId)

  const results: CaseResult[] = []
  let pythonEnv: PythonRun['env'] | undefined
  const record = (r: CaseResult): void => {
    const id = caseId(r.client, r.operation)
    if (expected.has(id)) {
      if (r.status === 'fail') r.status = 'xfail'
      else if (r.status === 'pass') {
        r.status = 'xpass'
        r.error = 'listed as an expected failure but passed'
      }
    }
    results.push(r)
    log(`${r.status.padEnd(5)} ${id}${r.error ? `  ${r.error}` : ''} (${Math.round(r.ms)} ms)`)
  }

  try {
    await container.create()
  } catch (err) {
    record({ client: 'js', operation: 'setup', status: 'fail', ms: Date.now() - started, error: `Create Container ${runId}: ${describeError(err)}` })
    return finish()
  }

  let python: Promise<PythonRun> | undefined
  if (opts.python !== false) {
    // The script owns its list of operations; a filter is applied to that list.
    const interpreter = opts.python ?? DEFAULT_PYTHON
    const ops = opts.filter ? await listPythonOperations(interpreter) : undefined
    const only = ops?.filter((op) => accept(caseId('python', op)))
    if (only?.length !== 0) {
      python = runPythonCases({
        connectionString: opts.connectionString,
        container: runId,
        python: interpreter,
        prefix: 'py/',
        timeoutMs: PYTHON_TIMEOUT_MS,
        onResult: record,
        ...(only ? { only } : {}),
      })
    }
  }

  for (const c of jsCases) {
    if (!accept(caseId('js', c.operation))) continue
    const ctx: JsContext = { service, container, credential, account, runId, prefix: `js/${c.operation}/` }
    const t0 = performance.now()
    try {
      await withTimeout(c.timeoutMs ?? 60_000, c.operation, c.run(ctx))
      record({ client: 'js', operation: c.operation, status: 'pass', ms: performance.now() - t0 })
    } catch (err) {
      const skip = err instanceof SkipCase
      record({ client: 'js', operation: c.operation, status: skip ? 'skip' : 'fail', ms: performance.now() - t0, error: skip ? err.message : describeError(err) })
    }
  }

  if (python) pythonEnv = (await python).env
  await cleanup()
  return finish()

  async function cleanup(): Promise<void> {
    const t0 = performance.now()
    const left: string[] = []
    try {
      for await (const c of service.listContainers({ prefix: runId })) left.push(c.name)
      for (const name of left) await service.getContainerClient(name).delete()
    } catch (err) {
      record({ client: 'js', operation: 'cleanup', status: 'fail', ms: performance.now() - t0, error: `deleting ${left.join(', ')}: ${describeError(err)}` })
    }
  }

  function finish(): SuiteReport {
    const counts: Record<CaseStatus, number> = { pass: 0, fail: 0, skip: 0, xfail: 0, xpass: 0 }
    for (const r of results) counts[r.status]++
    for (const r of results) r.ms = Math.round(r.ms * 10) / 10
    return {
      endpoint: service.url,
      container: runId,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      clients: { js: { sdk: jsSdkVersion }, ...(pythonEnv ? { python: pythonEnv } : {}) },
      results,
      counts,
      ok: counts.fail === 0 && counts.xpass === 0,
    }
  }
}
