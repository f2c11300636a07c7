/**
 * Runs the Blob conformance cases of every client against one endpoint, given its connection
 * string: makes a container unique to the run, runs the JS cases one after another while the
 * Python cases run beside them (each client under its own name prefix), marks expected failures,
 * and deletes every container the run created.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { caseId } from '../shared/case-result.js'
import { createRecorder } from '../shared/result-recorder.js'
import { runCase } from '../shared/run-case.js'
import type { CommonSuiteOptions, CommonSuiteReport } from '../shared/suite-contract.js'
import { describeError, type ClientName, type JsContext } from './case.js'
import { jsCases } from './js-cases.js'
import { runPythonCases, type PythonEnv, type PythonRun } from './python-cases.js'

export interface SuiteOptions extends CommonSuiteOptions {
  connectionString: string
}

export interface SuiteReport extends CommonSuiteReport<ClientName> {
  endpoint: string
  container: string
  clients: { js: { sdk: string }, python?: PythonEnv }
}

export const DEFAULT_PYTHON = '/usr/bin/python3'
const PYTHON_TIMEOUT_MS = 300_000

const jsSdkVersion = (createRequire(import.meta.url)('@azure/storage-blob/package.json') as { version: string }).version

export async function runSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const started = Date.now()
  const accept = opts.filter ?? (() => true)
  const recorder = createRecorder<ClientName>(opts)
  const record = recorder.record

  // Conformance, not resilience: one try per request, so a single 5xx is a finding, not a retry.
  const service = BlobServiceClient.fromConnectionString(opts.connectionString, { retryOptions: { maxTries: 1 } })
  const credential = service.credential instanceof StorageSharedKeyCredential ? service.credential : undefined
  const account = credential?.accountName ?? service.accountName
  const runId = `cc-conf-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const container = service.getContainerClient(runId)

  let pythonEnv: PythonEnv | undefined
  try {
    await container.create()
  } catch (err) {
    record({ client: 'js', operation: 'setup', status: 'fail', ms: Date.now() - started, error: `Create Container ${runId}: ${describeError(err)}` })
    return finish()
  }

  let python: Promise<PythonRun | undefined> | undefined
  if (opts.python !== false) {
    python = runPythonCases({
      connectionString: opts.connectionString,
      container: runId,
      python: opts.python ?? DEFAULT_PYTHON,
      prefix: 'py/',
      timeoutMs: PYTHON_TIMEOUT_MS,
      onResult: record,
      ...(opts.filter ? { filter: opts.filter } : {}),
    })
  }

  for (const c of jsCases) {
    if (!accept(caseId('js', c.operation))) continue
    const ctx: JsContext = { service, container, credential, account, runId, prefix: `js/${c.operation}/` }
    record(await runCase({ client: 'js', operation: c.operation, timeoutMs: c.timeoutMs ?? 60_000, describeError }, () => c.run(ctx)))
  }

  if (python) pythonEnv = (await python)?.env
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
    const { results, counts, ok } = recorder.totals()
    return {
      endpoint: service.url,
      container: runId,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      clients: { js: { sdk: jsSdkVersion }, ...(pythonEnv ? { python: pythonEnv } : {}) },
      results,
      counts,
      ok,
    }
  }
}
