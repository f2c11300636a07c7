/**
 * A local server run as a child process for tests and benchmarks (Azurite, moto): started on
 * 127.0.0.1 with a kernel-chosen port that the server prints on stdout, returned only once it
 * answers one real HTTP request, and never outliving the test process.
 *
 * - `stop()` SIGKILLs the child (the servers keep their state in memory or in a directory the
 *   caller throws away, so there is nothing to flush) and waits for its exit; it is idempotent;
 * - a process 'exit' hook SIGKILLs it if the test process ends without stopping it (the caller
 *   adds what covers a SIGKILL of the test process: a closed stdin, an IPC watchdog);
 * - stdout and stderr are drained for the life of the child, so it never blocks on a full pipe,
 *   and neither they nor the child keep the test process alive.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { tmpdir } from 'node:os'

export interface ChildServerOptions<Ready> {
  /** Names the server in errors. */
  name: string
  command: string
  args: string[]
  env: NodeJS.ProcessEnv
  stdio: SpawnOptions['stdio']
  /** What the server printed once it listens (its port…), from all its stdout so far; undefined until then. */
  parseReady(stdout: string): Ready | undefined
  /** The port to probe, from what the server printed. */
  portOf(ready: Ready): number
  /** Path of the GET request that proves the server answers HTTP. */
  probePath: string
  startTimeoutMs: number
}

export interface ChildServer<Ready> {
  /** What the server printed when it was ready. */
  ready: Ready
  port: number
  stop(): Promise<void>
}

export async function startChildServer<Ready>(opts: ChildServerOptions<Ready>): Promise<ChildServer<Ready>> {
  // The working directory is the OS temp dir, so a server that writes a file by itself leaves it there.
  const child = spawn(opts.command, opts.args, { cwd: tmpdir(), env: opts.env, stdio: opts.stdio })
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
    const ready = await waitForReady(child, opts)
    const port = opts.portOf(ready)
    await probe(port, opts.probePath)
    // Keep draining the pipes (a full pipe would block the server, a closed one would EPIPE it)
    // but do not let them, the IPC channel or the child keep the test process alive.
    child.stdout?.resume()
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.()
    child.channel?.unref()
    child.unref()
    return { ready, port, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

function waitForReady<Ready>(child: ChildProcess, opts: ChildServerOptions<Ready>): Promise<Ready> {
  return new Promise((resolveReady, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => fail(new Error(`${opts.name} did not start within ${opts.startTimeoutMs} ms: ${err}`)), opts.startTimeoutMs)
    const onOut = (chunk: Buffer): void => {
      out += chunk.toString('utf8')
      const ready = opts.parseReady(out)
      if (ready !== undefined) {
        cleanup()
        resolveReady(ready)
      }
    }
    const onErr = (chunk: Buffer): void => { err = (err + chunk.toString('utf8')).slice(-4096) }
    const onExit = (code: number | null, signal: string | null): void =>
      fail(new Error(`${opts.name} exited before listening (code ${code}, signal ${signal}): ${err || out}`))
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
    // Keep draining stderr for the life of the child (servers log requests there).
    child.stderr?.on('data', onErr)
    child.once('exit', onExit)
    child.once('error', onSpawnError)
  })
}

/** One real request, so a handle is only returned for a server that answers HTTP. */
function probe(port: number, path: string): Promise<void> {
  return new Promise<void>((ok, ko) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      res.resume()
      res.once('end', ok)
    })
    req.once('error', ko)
    req.end()
  })
}

/** SIGKILL, and wait for the exit. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.ref() // keep the loop alive until the exit is observed
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}
