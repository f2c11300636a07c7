/**
 * Starts the servers the benchmark compares, each as its own child process (so
 * its peak RSS and CPU can be read from /proc and the client's CPU is not
 * counted against it), each with its own directory under one root on the same
 * filesystem:
 *
 * - gateway: `ckptcache serve` through test/helpers/gateway.ts (Blob and S3 ports);
 * - ceiling: bench/servers/ceiling.ts, a plain node:http file server (Blob and S3 ports);
 * - azurite: Azurite's blob server through test/helpers/azurite.ts, persisting to disk (Blob);
 * - moto: moto's S3 server through bench/servers/moto-server.py and the machine's `python3` (S3).
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { startAzurite } from '../../test/helpers/azurite.js'
import { startGateway } from '../../test/helpers/gateway.js'
import { commandLine, findChildPids } from '../rss.js'

export type ServerName = 'gateway' | 'ceiling' | 'azurite' | 'moto'
export const SERVER_NAMES: readonly ServerName[] = ['gateway', 'ceiling', 'azurite', 'moto']

/** A path-style S3 endpoint and the credentials it accepts. */
export interface S3Endpoint {
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
}

export interface BenchServer {
  name: ServerName
  pid: number
  /** How the process was started, for the setup header. */
  command: string
  /** Blob endpoint, where the server speaks Blob. */
  connectionString?: string
  /** S3 endpoint, where the server speaks S3. */
  s3?: S3Endpoint
  dir: string
  /** Stops the process (bounded: SIGKILL after a grace period). Idempotent. */
  stop (): Promise<void>
}

const here = dirname(fileURLToPath(import.meta.url))
const ACCOUNT = 'devstoreaccount1'
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const STOP_GRACE_MS = 10_000
const START_TIMEOUT_MS = 60_000

const connectionStringFor = (port: number): string =>
  `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined) }, ms) })
  try {
    return await Promise.race([p, t])
  } catch (err) {
    console.error(`bench: ${what} failed: ${String(err)}`)
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

function killQuietly (pid: number): void {
  try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
}

export async function startGatewayServer (dir: string): Promise<BenchServer> {
  await mkdir(dir, { recursive: true })
  const gw = await startGateway({ dataDir: dir, startTimeoutMs: START_TIMEOUT_MS })
  const pid = gw.child.pid as number
  let stopping: Promise<void> | undefined
  return {
    name: 'gateway',
    pid,
    command: commandLine(pid),
    connectionString: gw.connectionString,
    s3: { endpoint: gw.s3Endpoint, accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey },
    dir,
    stop () {
      stopping ??= (async () => {
        const done = await withTimeout(gw.stop().then(() => true), STOP_GRACE_MS, 'gateway stop')
        if (done !== true) await gw.kill('SIGKILL')
      })()
      return stopping
    }
  }
}

/**
 * The ceiling runs as plain JavaScript (no tsx loader in the process, like the
 * compiled gateway): ceiling.ts imports only node: built-ins, so a
 * transpile-only pass into `outDir` is all it needs.
 */
/**
 * Resolves with the match of `ready` on a child's standard output; rejects if the child fails to
 * start, exits first, or prints no match within START_TIMEOUT_MS (`output`: its stderr so far).
 */
function readyLine (child: ChildProcess, name: string, ready: RegExp, output: () => string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms: ${output()}`)) }, START_TIMEOUT_MS)
    let buf = ''
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString('utf8')
      const m = ready.exec(buf)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m)
      }
    })
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited before listening (code ${String(code)}, signal ${String(signal)}): ${output()}`))
    })
  })
}

/**
 * Looks after a spawned server: waits for its ready line (killing it if that fails), kills it if
 * the benchmark exits, and stops it on request (`beforeStop`, SIGTERM, SIGKILL after STOP_GRACE_MS).
 */
async function supervise (child: ChildProcess, name: string, ready: RegExp, beforeStop?: () => void): Promise<{ match: RegExpExecArray, pid: number, stop: () => Promise<void> }> {
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = once(child, 'exit')
  exited.catch(() => {})
  let out = ''
  child.stderr?.on('data', (c: Buffer) => { out = (out + c.toString('utf8')).slice(-4096) })
  let match: RegExpExecArray
  try {
    match = await readyLine(child, name, ready, () => out)
  } catch (err) {
    child.kill('SIGKILL')
    process.removeListener('exit', killOnExit)
    throw err
  }
  child.stdout?.resume()
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        beforeStop?.()
        child.kill('SIGTERM')
        const done = await withTimeout(exited.then(() => true), STOP_GRACE_MS, `${name} stop`)
        if (done !== true) { child.kill('SIGKILL'); await exited }
      }
      process.removeListener('exit', killOnExit)
    })()
    return stopping
  }
  return { match, pid: child.pid as number, stop }
}

async function transpileCeiling (outDir: string): Promise<string> {
  const source = await readFile(join(here, 'ceiling.ts'), 'utf8')
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: 'ceiling.ts'
  }).outputText
  const out = join(outDir, 'ceiling.mjs')
  await writeFile(out, js)
  return out
}

export async function startCeilingServer (dir: string): Promise<BenchServer> {
  await mkdir(dir, { recursive: true })
  const script = await transpileCeiling(dirname(dir))
  const child = spawn(process.execPath, [script, '--dir', dir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  const { match, pid, stop } = await supervise(child, 'ceiling', /ceiling listening on port (\d+)\n[^]*ceiling s3 listening on port (\d+)/)
  return {
    name: 'ceiling',
    pid,
    command: commandLine(pid),
    connectionString: connectionStringFor(Number(match[1])),
    s3: { endpoint: `http://127.0.0.1:${Number(match[2])}`, accessKeyId: 'ceiling', secretAccessKey: 'ceiling' },
    dir,
    stop
  }
}

export async function startAzuriteServer (dir: string): Promise<BenchServer> {
  await mkdir(dir, { recursive: true })
  const az = await startAzurite({ location: dir, startTimeoutMs: START_TIMEOUT_MS })
  // The helper does not expose its child; it is our direct child with `--location <dir>`.
  const pids = findChildPids(process.pid, ['azurite', '--location', dir])
  if (pids.length !== 1) {
    await az.stop()
    throw new Error(`cannot identify the Azurite process (found ${pids.length} candidates)`)
  }
  const pid = pids[0] as number
  let stopping: Promise<void> | undefined
  return {
    name: 'azurite',
    pid,
    command: commandLine(pid),
    connectionString: az.connectionString,
    dir,
    stop () {
      stopping ??= (async () => {
        const done = await withTimeout(az.stop().then(() => true), STOP_GRACE_MS, 'azurite stop')
        if (done !== true) killQuietly(pid)
      })()
      return stopping
    }
  }
}

/**
 * moto through bench/servers/moto-server.py. Its standard input is a pipe from this
 * process: moto exits at end of file, so it cannot outlive the benchmark.
 * Temporary files (bodies above moto's key buffer size) go to `dir`.
 */
export async function startMotoServer (dir: string): Promise<BenchServer> {
  await mkdir(dir, { recursive: true })
  const child = spawn('python3', [join(here, 'moto-server.py'), '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir, PYTHONUNBUFFERED: '1' }
  })
  const { match, pid, stop } = await supervise(child, 'moto', /moto listening on port (\d+) \(([^)]*)\)/, () => { child.stdin?.end() })
  return {
    name: 'moto',
    pid,
    command: `${commandLine(pid)} (${match[2] as string})`,
    s3: { endpoint: `http://127.0.0.1:${Number(match[1])}`, accessKeyId: 'moto', secretAccessKey: 'moto' },
    dir,
    stop
  }
}

const STARTERS: Record<ServerName, (dir: string) => Promise<BenchServer>> = {
  gateway: startGatewayServer,
  ceiling: startCeilingServer,
  azurite: startAzuriteServer,
  moto: startMotoServer
}

/** Starts `names` one after the other, each pushed to `started` (so the caller can stop them whatever fails). */
export async function startServers (root: string, started: BenchServer[], names: readonly ServerName[] = SERVER_NAMES): Promise<BenchServer[]> {
  for (const name of names) started.push(await STARTERS[name](join(root, name)))
  return started
}
