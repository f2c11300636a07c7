/**
 * Starts Microsoft's Azurite Blob emulator (the reference implementation the conformance suite is
 * checked against) as a child process on 127.0.0.1 and a kernel-chosen port.
 *
 * - in-memory persistence by default (Azurite then writes no files; its working directory is the OS
 *   temp dir anyway), so nothing is left behind and no `--location` is needed (the two are
 *   exclusive); `location` persists to a directory the caller owns instead (benchmarks);
 * - `--disableTelemetry`: Azurite ≥ 3.32 otherwise phones home from every test run;
 * - the child dies with the test process: `stop()` kills it (see `terminate`), a process 'exit'
 *   hook kills it, and an IPC-disconnect watchdog preloaded into the child ends it
 *   even if the test process is SIGKILLed (tap's timeout does that).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface AzuriteHandle {
  port: number
  account: string
  accountKey: string
  connectionString: string
  /** `http://127.0.0.1:<port>/<account>` (path-style). */
  blobEndpoint: string
  stop(): Promise<void>
}

export interface AzuriteOptions {
  /** Extra command-line arguments for azurite-blob (e.g. `['--debug', '/tmp/az.log']`). */
  args?: string[]
  /** How long to wait for the "listens on" line. Default 30 s. */
  startTimeoutMs?: number
  /**
   * Persist blobs and metadata under this directory (`--location`) instead of in memory. The
   * caller creates it and removes it after `stop()`.
   */
  location?: string
}

/** Azurite's well-known development account (documented, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1'
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const azuriteBlobMain = join(repoRoot, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js')

// Preloaded into the child: when the parent's end of the IPC channel closes (parent exited or was
// killed), exit. The listener keeps the channel referenced, which is fine for a server process.
const watchdog = "data:text/javascript,process.on('disconnect',()=>process.exit(0))"

export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const env = { ...process.env }
  delete env.AZURITE_ACCOUNTS // the well-known account must be the one Azurite serves
  const child = spawn(
    process.execPath,
    [
      '--import', watchdog,
      azuriteBlobMain,
      '--blobHost', '127.0.0.1',
      '--blobPort', '0',
      ...(opts.location === undefined ? ['--inMemoryPersistence'] : ['--location', opts.location]),
      '--skipApiVersionCheck',
      '--loose',
      '--disableProductStyleUrl',
      '--disableTelemetry',
      '--silent',
      ...(opts.args ?? []),
    ],
    { cwd: tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  )
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.removeListener('exit', killOnExit)
      await terminate(child)
    })()
    return stopped
  }

  try {
    const port = await waitForPort(child, opts.startTimeoutMs ?? 30_000)
    await probe(port)
    // Keep draining the pipes (a full pipe would block Azurite, a closed one would EPIPE it) but do
    // not let them, the IPC channel or the child keep the test process alive.
    child.stdout?.resume()
    for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.()
    child.channel?.unref()
    child.unref()
    const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`
    return {
      port,
      account: AZURITE_ACCOUNT,
      accountKey: AZURITE_ACCOUNT_KEY,
      blobEndpoint,
      connectionString:
        `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};` +
        `AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Resolves with the port from Azurite's "successfully listens on http://127.0.0.1:<port>" line. */
function waitForPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within ${timeoutMs} ms`)), timeoutMs)
    const onOut = (chunk: Buffer): void => {
      out += chunk.toString('utf8')
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (m) {
        cleanup()
        resolvePort(Number(m[1]))
      }
    }
    const onErr = (chunk: Buffer): void => { err = (err + chunk.toString('utf8')).slice(-4096) }
    const onExit = (code: number | null, signal: string | null): void =>
      fail(new Error(`Azurite exited before listening (code ${code}, signal ${signal}): ${err || out}`))
    const onSpawnError = (e: Error): void => fail(e)
    function fail(e: Error): void {
      cleanup()
      reject(e)
    }
    function cleanup(): void {
      clearTimeout(timer)
      child.stdout?.off('data', onOut)
      child.off('exit', onExit)
      child.off('error', onSpawnError)
    }
    child.stdout?.on('data', onOut)
    // Keep draining stderr for the life of the child so it can never block on a full pipe.
    child.stderr?.on('data', onErr)
    child.once('exit', onExit)
    child.once('error', onSpawnError)
  })
}

/** One real request, so a handle is only returned for an emulator that answers HTTP. */
function probe(port: number): Promise<void> {
  return new Promise<void>((ok, ko) => {
    const req = request({ host: '127.0.0.1', port, path: `/${AZURITE_ACCOUNT}?comp=list`, method: 'GET' }, (res) => {
      res.resume()
      res.once('end', ok)
    })
    req.once('error', ko)
    req.end()
  })
}

/**
 * SIGKILL, not SIGTERM: the emulator keeps everything in memory (or in a `location` its caller
 * throws away), so there is nothing to flush, and
 * Azurite's graceful close waits for idle keep-alive client sockets (up to 5 s per stop).
 */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.ref() // keep the loop alive until the exit is observed
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}
