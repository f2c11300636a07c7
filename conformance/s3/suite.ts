/**
 * Runs the S3 conformance cases of every client against one endpoint: makes a bucket unique to
 * the run, runs each client's cases one after another while the clients run beside each other
 * (JS, Python, aws, s3cmd, rclone), each client under its own key prefix;
 * marks expected failures; and empties and deletes every bucket the run created.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3'
import { awscli } from './awscli-cases.js'
import { caseId, describeError, SkipCase, withTimeout, type CaseResult, type CaseStatus, type ClientName, type JsContext } from './case.js'
import { deleteRunBuckets } from './cleanup.js'
import { createBucketInput, s3Client, type S3Endpoint } from './endpoint.js'
import { jsCases } from './js-cases.js'
import { listPythonOperations, PYTHON_SCRIPTS, runPythonCases, type PythonEnv, type PythonRun } from './python-cases.js'
import { rclone } from './rclone-cases.js'
import { s3cmd } from './s3cmd-cases.js'
import { runToolCases, type ToolClient } from './tool.js'

export type ToolName = 'awscli' | 's3cmd' | 'rclone'

/** The command-line clients, in the order they run. */
export const TOOLS: Readonly<Record<ToolName, ToolClient>> = { awscli, s3cmd, rclone }

export interface SuiteOptions {
  endpoint: S3Endpoint
  /** Case ids (`js:get/range-416`) expected to fail here; see `caseId`. */
  expectedFailures?: Iterable<string>
  /** Runs only the cases whose id this accepts. */
  filter?: (id: string) => boolean
  /** Python interpreter with boto3 (default: `python3` on PATH), or false to leave Python out. */
  python?: string | false
  /** Per tool: the command to run it with (default its name on PATH), or false to leave it out. */
  tools?: Partial<Record<ToolName, string | false>>
  /** Progress lines (one per finished case). */
  log?: (line: string) => void
}

export interface SuiteReport {
  endpoint: string
  region: string
  bucket: string
  startedAt: string
  ms: number
  /** Client versions; a tool that is missing is null. */
  clients: { js: { sdk: string }, python?: PythonEnv } & Partial<Record<ToolName, string | null>>
  results: CaseResult[]
  counts: Record<CaseStatus, number>
  /** No `fail` and no `xpass` (an expected failure that passed means the list is stale). */
  ok: boolean
}

export const DEFAULT_PYTHON = 'python3'
const PYTHON_TIMEOUT_MS = 300_000

const jsSdkVersion = (createRequire(import.meta.url)('@aws-sdk/client-s3/package.json') as { version: string }).version

export async function runSuite(opts: SuiteOptions): Promise<SuiteReport> {
  const started = Date.now()
  const expected = new Set(opts.expectedFailures ?? [])
  const accept = opts.filter ?? (() => true)
  const log = opts.log ?? (() => {})
  const ep = opts.endpoint
  const s3 = s3Client(ep)
  const runId = `cc-conf-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const bucket = runId

  const results: CaseResult[] = []
  const clients: SuiteReport['clients'] = { js: { sdk: jsSdkVersion } }
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
      const t0 = performance.now()
      try {
        await withTimeout(c.timeoutMs ?? 60_000, c.operation, c.run(ctx))
        record({ client: 'js', operation: c.operation, status: 'pass', ms: performance.now() - t0 })
      } catch (err) {
        const skip = err instanceof SkipCase
        record({ client: 'js', operation: c.operation, status: skip ? 'skip' : 'fail', ms: performance.now() - t0, error: skip ? err.message : describeError(err) })
      } finally {
        for (const client of extra) client.destroy()
      }
    }
  }

  async function pythonLane(): Promise<void> {
    if (opts.python === false) return
    const interpreter = opts.python ?? DEFAULT_PYTHON
    for (const script of PYTHON_SCRIPTS) {
      // The script owns its list of operations; a filter is applied to that list.
      const ops = opts.filter ? await listPythonOperations(interpreter, script) : undefined
      const only = ops?.filter((op) => accept(caseId('python', op)))
      if (only?.length === 0) continue
      const run: PythonRun = await runPythonCases({
        endpoint: ep,
        bucket,
        python: interpreter,
        script,
        prefix: 'python/',
        timeoutMs: PYTHON_TIMEOUT_MS,
        onResult: record,
        ...(only ? { only } : {}),
      })
      clients.python ??= run.env
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
    const counts: Record<CaseStatus, number> = { pass: 0, fail: 0, skip: 0, xfail: 0, xpass: 0 }
    for (const r of results) counts[r.status]++
    for (const r of results) r.ms = Math.round(r.ms * 10) / 10
    return {
      endpoint: ep.url,
      region: ep.region,
      bucket,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      clients,
      results,
      counts,
      ok: counts.fail === 0 && counts.xpass === 0,
    }
  }
}

