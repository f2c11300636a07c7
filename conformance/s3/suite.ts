/**
 * Runs the S3 conformance cases of every client against one endpoint: makes a bucket unique to
 * the run, runs each client's cases one after another while the clients run beside each other
 * (JS, Python, aws, s3cmd, rclone), each client under its own key prefix;
 * marks expected failures; and empties and deletes every bucket the run created.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3'
import { caseId } from '../shared/case-result.js'
import { createRecorder } from '../shared/result-recorder.js'
import { runCase } from '../shared/run-case.js'
import type { CommonSuiteOptions, CommonSuiteReport } from '../shared/suite-contract.js'
import { awscli } from './awscli-cases.js'
import { describeError, type ClientName, type JsContext } from './case.js'
import { deleteRunBuckets } from './cleanup.js'
import { createBucketInput, s3Client, type S3Endpoint } from './endpoint.js'
import { jsCases } from './js-cases.js'
import { PYTHON_SCRIPTS, runPythonCases, type PythonEnv } from './python-cases.js'
import { rclone } from './rclone-cases.js'
import { s3cmd } from './s3cmd-cases.js'
import { runToolCases, type ToolClient } from './tool.js'

export type ToolName = 'awscli' | 's3cmd' | 'rclone'

/** The command-line clients, in the order they run. */
export const TOOLS: Readonly<Record<ToolName, ToolClient>> = { awscli, s3cmd, rclone }

export interface SuiteOptions extends CommonSuiteOptions {
  endpoint: S3Endpoint
  /** Per tool: the command to run it with (default its name on PATH), or false to leave it out. */
  tools?: Partial<Record<ToolName, string | false>>
}

export interface SuiteReport extends CommonSuiteReport<ClientName> {
  endpoint: string
  region: string
  bucket: string
  /** Client versions; a tool that is missing is null. */
  clients: { js: { sdk: string }, python?: PythonEnv } & Partial<Record<ToolName, string | null>>
}

export const DEFAULT_PYTHON = 'python3'
const PYTHON_TIMEOUT_MS = 300_000

const jsSdkVersion = (createRequire(import.meta.url)('@aws-sdk/client-s3/package.json') as { version: string }).version

export async function runSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const started = Date.now()
  const accept = opts.filter ?? (() => true)
  const ep = opts.endpoint
  const s3 = s3Client(ep)
  const runId = `cc-conf-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const bucket = runId

  const recorder = createRecorder<ClientName>(opts)
  const { record, results } = recorder
  const clients: SuiteReport['clients'] = { js: { sdk: jsSdkVersion } }

  try {
    try {
      await s3.send(new CreateBucketCommand(createBucketInput(ep, bucket)))
    } catch (err) {
      record({ client: 'js', operation: 'setup', status: 'fail', ms: Date.now() - started, error: `CreateBucket ${bucket}: ${describeError(err)}` })
      return finish()
    }
    const tools = Object.entries(TOOLS) as Array<[ToolName, ToolClient]>
    await Promise.all([
      guard('python', pythonLane()),
      ...tools.map(([name, tool]) => guard(name, toolLane(name, tool))),
      guard('js', jsLane()),
    ])
    await cleanup()
    return finish()
  } finally {
    s3.destroy()
  }

  /** A client's lane that breaks (not a case that fails) is a failure of that client, and the run goes on. */
  async function guard(client: ClientName, lane: Promise<void>): Promise<void> {
    const t0 = performance.now()
    try {
      await lane
    } catch (err) {
      record({ client, operation: '(runner)', status: 'fail', ms: performance.now() - t0, error: describeError(err) })
    }
  }

  async function jsLane(): Promise<void> {
    for (const c of jsCases) {
      if (!accept(caseId('js', c.operation))) continue
      const extra: S3Client[] = []
      const ctx: JsContext = {
        endpoint: ep,
        s3,
        client(credentials) {
          const client = s3Client(ep, credentials)
          extra.push(client)
          return client
        },
        bucket,
        runId,
        prefix: `js/${c.operation}/`,
      }
      try {
        record(await runCase({ client: 'js', operation: c.operation, timeoutMs: c.timeoutMs ?? 60_000, describeError }, () => c.run(ctx)))
      } finally {
        for (const client of extra) client.destroy()
      }
    }
  }

  async function pythonLane(): Promise<void> {
    if (opts.python === false) return
    const interpreter = opts.python ?? DEFAULT_PYTHON
    for (const script of PYTHON_SCRIPTS) {
      const run = await runPythonCases({
        endpoint: ep,
        bucket,
        python: interpreter,
        script,
        prefix: 'python/',
        timeoutMs: PYTHON_TIMEOUT_MS,
        onResult: record,
        ...(opts.filter ? { filter: opts.filter } : {}),
      })
      if (run) clients.python ??= run.env
    }
  }

  async function toolLane(name: ToolName, tool: ToolClient): Promise<void> {
    const command = opts.tools?.[name]
    if (command === false) return
    const version = await runToolCases(tool, {
      endpoint: ep, bucket, runId, s3, filter: accept, onResult: record, ...(command ? { command } : {}),
    })
    if (version !== null || results.some((r) => r.client === name)) clients[name] = version
  }

  async function cleanup(): Promise<void> {
    const t0 = performance.now()
    try {
      await deleteRunBuckets(s3, runId)
    } catch (err) {
      record({ client: 'js', operation: 'cleanup', status: 'fail', ms: performance.now() - t0, error: `deleting the run's buckets: ${describeError(err)}` })
    }
  }

  function finish(): SuiteReport {
    const { counts, ok } = recorder.totals()
    return {
      endpoint: ep.url,
      region: ep.region,
      bucket,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      clients,
      results,
      counts,
      ok,
    }
  }
}

