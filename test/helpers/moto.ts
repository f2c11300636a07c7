/**
 * Starts moto's S3 server (the reference the S3 conformance suite is checked against) from the
 * machine's `python3` on 127.0.0.1 and a kernel-chosen port, state in memory.
 *
 * - `ThreadedMotoServer` on port 0 (werkzeug binds, the script prints the port it got), so
 *   parallel tests never race for a port;
 * - the child dies with the test process: `stop()` kills it, a process 'exit' hook kills it, and
 *   the script exits when its stdin (a pipe from this process) closes, which happens even if the
 *   test process is SIGKILLed;
 * - moto accepts any access key and secret: the handle carries a fixed pair for clients to sign
 *   with.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { tmpdir } from 'node:os'

export interface MotoHandle {
  port: number
  /** `http://127.0.0.1:<port>` (path-style S3). */
  s3Endpoint: string
  s3AccessKey: string
  s3SecretKey: string
  region: string
  /** The moto version that answered. */
  version: string
  stop(): Promise<void>
}

export interface MotoOptions {
  /** Interpreter with moto installed. Default `python3` (the one on PATH). */
  python?: string
  /** How long to wait for the port line. Default 30 s. */
  startTimeoutMs?: number
}

export const MOTO_ACCESS_KEY = 'moto-access-key'
export const MOTO_SECRET_KEY = 'moto-secret-key'

// Prints one JSON line with the port and version, then serves until stdin closes.
const SERVER = `
import json, sys
import moto
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(json.dumps({"port": server.get_host_and_port()[1], "version": moto.__version__}), flush=True)
sys.stdin.read()
`

export async function startMoto(opts: MotoOptions = {}): Promise<MotoHandle> {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' }
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('MOTO_')) delete env[k]
  const child = spawn(opts.python ?? 'python3', ['-c', SERVER], { cwd: tmpdir(), env, stdio: ['pipe', 'pipe', 'pipe'] })
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
    const { port, version } = await waitForPort(child, opts.startTimeoutMs ?? 30_000)
    await probe(port)
    child.stdout?.resume()
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.()
    child.unref()
    return {
      port,
      s3Endpoint: `http://127.0.0.1:${port}`,
      s3AccessKey: MOTO_ACCESS_KEY,
      s3SecretKey: MOTO_SECRET_KEY,
      region: 'us-east-1',
      version,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

function waitForPort(child: ChildProcess, timeoutMs: number): Promise<{ port: number, version: string }> {
  return new Promise((resolvePort, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => fail(new Error(`moto did not start within ${timeoutMs} ms: ${err}`)), timeoutMs)
    const onOut = (chunk: Buffer): void => {
      out += chunk.toString('utf8')
      const line = /^\{.*"port".*\}$/m.exec(out)
      if (line) {
        cleanup()
        const parsed = JSON.parse(line[0]) as { port: number, version: string }
        resolvePort(parsed)
      }
    }
    const onErr = (chunk: Buffer): void => { err = (err + chunk.toString('utf8')).slice(-4096) }
    const onExit = (code: number | null, signal: string | null): void =>
      fail(new Error(`moto exited before listening (code ${code}, signal ${signal}): ${err || out}`))
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
    // Keep draining stderr (werkzeug logs each request there) so the child never blocks on it.
    child.stderr?.on('data', onErr)
    child.once('exit', onExit)
    child.once('error', onSpawnError)
  })
}

/** One real request (ListBuckets), so a handle is only returned for a server that answers HTTP. */
function probe(port: number): Promise<void> {
  return new Promise<void>((ok, ko) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' }, (res) => {
      res.resume()
      res.once('end', ok)
    })
    req.once('error', ko)
    req.end()
  })
}

/** SIGKILL: the state is in memory, there is nothing to flush. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.ref()
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}
