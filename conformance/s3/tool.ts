/**
 * Command-line clients (aws, s3cmd, rclone): what a tool case is, how a tool is found and run,
 * and how its cases are run, each with its own temp directory and key prefix. A tool that is
 * not installed makes its cases `skip`. Every tool runs with a temp HOME and a config the suite
 * writes, so nothing of the user's is read.
 */
import { AssertionError } from 'node:assert'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import type { S3Client } from '@aws-sdk/client-s3'
import { caseId } from '../shared/case-result.js'
import { mapLimit } from '../shared/map-limit.js'
import { runCase, type CaseDefinition } from '../shared/run-case.js'
import { describeError, type CaseResult, type ClientName } from './case.js'
import type { S3Endpoint } from './endpoint.js'
import { payload } from './data.js'

export interface ToolResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface ToolContext {
  endpoint: S3Endpoint
  bucket: string
  runId: string
  /** Key prefix reserved for the running case: `<client>/<operation>/`. */
  prefix: string
  /** An empty temp directory of the case's own (removed afterwards). */
  dir: string
  /** A JS client, to set up and check what the tool did. */
  s3: S3Client
  /**
   * Runs the tool with the suite's environment and base arguments; throws an assertion error
   * with the output's tail if the exit code is not `expectCode` (default 0).
   */
  run(args: string[], opts?: { expectCode?: number | 'nonzero', timeoutMs?: number }): Promise<ToolResult>
}

/** A tool case; its time limit defaults to 90 s. */
export type ToolCase = CaseDefinition<ToolContext>

export interface ToolSetup {
  env: NodeJS.ProcessEnv
  /** Arguments every call starts with (e.g. `-c <config>`). */
  args: string[]
}

export interface ToolClient {
  name: ClientName
  /** The command on PATH. */
  command: string
  /** Arguments that print the version. */
  versionArgs: string[]
  /** Writes the tool's config into `home` (a temp dir) and returns how to run it. */
  setup(ep: S3Endpoint, home: string): Promise<ToolSetup>
  cases: readonly ToolCase[]
}

/** Runs a command to completion; a command that cannot be started resolves with code null. */
export function runCommand(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs?: number } = {}): Promise<ToolResult & { spawnError?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout = (stdout + c.toString('utf8')).slice(-200_000) })
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-200_000) })
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${opts.timeoutMs} ms)`
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 60_000)
    child.once('error', (spawnError) => {
      clearTimeout(timer)
      resolve({ code: null, stdout, stderr, spawnError })
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** The tool's version line, or why it cannot be used here (not installed, a shim without it…). */
export async function toolVersion(command: string, versionArgs: string[], env?: NodeJS.ProcessEnv): Promise<{ version: string } | { missing: string }> {
  const r = await runCommand(command, versionArgs, { timeoutMs: 30_000, ...(env ? { env } : {}) })
  const out = `${r.stdout}\n${r.stderr}`.trim()
  if (r.spawnError) return { missing: `${command} is not installed (${r.spawnError.message})` }
  if (r.code !== 0) return { missing: `${command} ${versionArgs.join(' ')} exited with ${r.code}: ${out.split('\n').slice(-1)[0] ?? ''}` }
  return { version: out.split('\n')[0]?.trim() ?? '' }
}

export interface ToolRunOptions {
  endpoint: S3Endpoint
  bucket: string
  runId: string
  s3: S3Client
  /** Overrides the tool's command (a path or another name). */
  command?: string
  filter?: (id: string) => boolean
  onResult(r: CaseResult): void
}

const TOOL_CONCURRENCY = 2

/** Runs every case of `tool`; returns the version seen, or null if the tool is missing. */
export async function runToolCases(tool: ToolClient, opts: ToolRunOptions): Promise<string | null> {
  const cases = tool.cases.filter((c) => (opts.filter ?? (() => true))(caseId(tool.name, c.operation)))
  if (cases.length === 0) return null
  const home = await mkdtemp(join(tmpdir(), `ckptcache-conformance-${tool.name}-`))
  try {
    const command = opts.command ?? tool.command
    const setup = await tool.setup(opts.endpoint, home)
    const v = await toolVersion(command, tool.versionArgs, setup.env)
    if ('missing' in v) {
      for (const c of cases) opts.onResult({ client: tool.name, operation: c.operation, status: 'skip', ms: 0, error: v.missing })
      return null
    }
    const runOne = async (c: ToolCase): Promise<CaseResult> => {
      const dir = await mkdtemp(join(home, 'case-'))
      const ctx: ToolContext = {
        endpoint: opts.endpoint,
        bucket: opts.bucket,
        runId: opts.runId,
        prefix: `${tool.name}/${c.operation}/`,
        dir,
        s3: opts.s3,
        async run(args, runOpts = {}) {
          const r = await runCommand(command, [...setup.args, ...args], { env: setup.env, cwd: dir, timeoutMs: runOpts.timeoutMs ?? 60_000 })
          const want = runOpts.expectCode ?? 0
          if (want === 'nonzero' ? r.code === 0 : r.code !== want) {
            const tail = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' | ')
            throw new AssertionError({ message: `${tool.name} ${args.join(' ')}: exit ${r.code}, expected ${want}: ${tail}`.slice(0, 400) })
          }
          return r
        },
      }
      try {
        return await runCase({ client: tool.name, operation: c.operation, timeoutMs: c.timeoutMs ?? 90_000, describeError }, () => c.run(ctx))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
    // Cases are independent (own prefix, own directory): two at a time, since most of a case is
    // the tool starting up. Results are reported in case order.
    const done: Array<CaseResult | undefined> = []
    let reported = 0
    await mapLimit(cases, TOOL_CONCURRENCY, async (c, i) => {
      done[i] = await runOne(c)
      for (let r = done[reported]; r !== undefined; r = done[reported]) {
        opts.onResult(r)
        reported++
      }
    })
    return v.version
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}

/** Writes `size` payload bytes (named by `seed`) to `path`, making its directory; returns them. */
export async function writePayload(path: string, seed: string, size: number): Promise<Buffer> {
  const data = payload(seed, size)
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, data)
  return data
}

/** Relative path → sha256 of every file under `dir`, sorted by path. */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const p = join(e.parentPath ?? e.path, e.name)
    out[relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex')
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
