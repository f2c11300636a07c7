/**
 * Starts a real gateway process (`ckptcache serve`) on 127.0.0.1 and a
 * kernel-chosen port, with its own data directory. Tests talk to it over real
 * sockets with real clients, and can SIGKILL it to test crash safety.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEV_S3_ACCESS_KEY, DEV_S3_SECRET_KEY, EMULATOR_ACCOUNT, EMULATOR_KEY } from '../../src/config/schema.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface GatewayOptions {
  /** Extra `serve` flags. */
  args?: string[]
  env?: Record<string, string>
  /** Reuse a data directory (e.g. to restart after a crash); otherwise a fresh temp dir is made and removed on stop. */
  dataDir?: string
  startTimeoutMs?: number
}

export interface GatewayHandle {
  port: number
  /** The S3 port (path-style `http://127.0.0.1:<s3Port>/<bucket>/<key>`). */
  s3Port: number
  /** The admin API port (/metrics, /status, /flush). */
  adminPort: number
  /** `http://127.0.0.1:<adminPort>` */
  adminUrl: string
  /** `http://127.0.0.1:<s3Port>` */
  s3Endpoint: string
  s3AccessKey: string
  s3SecretKey: string
  account: string
  accountKey: string
  connectionString: string
  /** `http://127.0.0.1:<port>/<account>` */
  blobEndpoint: string
  dataDir: string
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output (): string
  /** SIGTERM and wait for exit; removes a data dir this helper created. Resolves with the exit code. */
  stop (): Promise<number | null>
  /** Sends a signal (default SIGKILL) and waits for the process to exit; keeps the data dir. */
  kill (signal?: NodeJS.Signals): Promise<void>
}

/**
 * The `ckptcache` command running the compiled gateway (`npm test` builds it
 * first) when the build is at least as new as every source file; otherwise the
 * TypeScript sources through tsx. Tests
 * measure memory against the compiled form, which is what users run.
 */
function entryArgs (): string[] {
  const compiled = join(repoRoot, 'dist', 'src', 'main.js')
  const bin = join(repoRoot, 'bin', 'ckptcache.cjs')
  let builtAt = 0
  try {
    builtAt = statSync(compiled).mtimeMs
  } catch {
    return ['--import', 'tsx', join(repoRoot, 'src', 'main.ts')]
  }
  const newest = (dir: string): number => {
    let m = 0
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      m = Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
    }
    return m
  }
  return newest(join(repoRoot, 'src')) <= builtAt ? [bin] : ['--import', 'tsx', join(repoRoot, 'src', 'main.ts')]
}

// Preloaded into the child: exit when the test process goes away, however it goes.
const watchdog = "data:text/javascript,process.on('disconnect',()=>process.exit(0))"

export async function startGateway (opts: GatewayOptions = {}): Promise<GatewayHandle> {
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'ckptcache-test-'))
  const child = spawn(process.execPath, [
    '--import', watchdog, ...entryArgs(), 'serve',
    '--host', '127.0.0.1', '--blob-port', '0', '--s3-port', '0', '--admin-port', '0', '--data-dir', dataDir, ...(opts.args ?? [])
  ], {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env, CKPTCACHE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString('utf8') })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  const waitExit = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    const [code] = await exited
    return code
  }
  const cleanup = async (): Promise<void> => {
    process.removeListener('exit', killOnExit)
    if (ownDir) await rm(dataDir, { recursive: true, force: true })
  }

  let port: number
  let s3Port = 0
  let adminPort = 0
  try {
    port = await new Promise<number>((ok, ko) => {
      const timer = setTimeout(() => ko(new Error(`gateway did not start within ${opts.startTimeoutMs ?? 30_000} ms:\n${out}`)), opts.startTimeoutMs ?? 30_000)
      const check = (): void => {
        const m = /ckptcache ready blob=http:\/\/(?:[^\s:/]+|\[[^\]]+\]):(\d+)/.exec(out)
        if (m !== null) {
          clearTimeout(timer)
          const s3 = / s3=http:\/\/(?:[^\s:/]+|\[[^\]]+\]):(\d+)/.exec(out)
          if (s3 !== null) s3Port = Number(s3[1])
          const admin = / admin=http:\/\/(?:[^\s:/]+|\[[^\]]+\]):(\d+)/.exec(out)
          if (admin !== null) adminPort = Number(admin[1])
          ok(Number(m[1]))
        }
      }
      child.stdout?.on('data', check)
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        ko(new Error(`gateway exited before ready (code ${String(code)}, signal ${String(signal)}):\n${out}`))
      })
    })
  } catch (err) {
    child.kill('SIGKILL')
    await waitExit()
    await cleanup()
    throw err
  }
  child.channel?.unref()
  const blobEndpoint = `http://127.0.0.1:${port}/${EMULATOR_ACCOUNT}`
  return {
    port,
    s3Port,
    s3Endpoint: `http://127.0.0.1:${s3Port}`,
    adminPort,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    s3AccessKey: DEV_S3_ACCESS_KEY,
    s3SecretKey: DEV_S3_SECRET_KEY,
    account: EMULATOR_ACCOUNT,
    accountKey: EMULATOR_KEY,
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${EMULATOR_ACCOUNT};AccountKey=${EMULATOR_KEY};BlobEndpoint=${blobEndpoint};`,
    dataDir,
    child,
    output: () => out,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const code = await waitExit()
      await cleanup()
      return code
    },
    async kill (signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await waitExit()
      process.removeListener('exit', killOnExit)
    }
  }
}
