/**
 * Starts moto's S3 server (the reference the S3 conformance suite is checked against) from the
 * machine's `python3` on 127.0.0.1 and a kernel-chosen port, state in memory.
 *
 * - `ThreadedMotoServer` on port 0 (werkzeug binds, the script prints the port it got), so
 *   parallel tests never race for a port;
 * - the child dies with the test process (see child-server.ts), and the script exits when its
 *   stdin (a pipe from this process) closes, which happens even if the test process is SIGKILLed;
 * - moto accepts any access key and secret: the handle carries a fixed pair for clients to sign
 *   with.
 */
import { startChildServer } from './child-server.js'

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
  const server = await startChildServer({
    name: 'moto',
    command: opts.python ?? 'python3',
    args: ['-c', SERVER],
    env,
    // stdin is a pipe from this process: its end closing ends the script.
    stdio: ['pipe', 'pipe', 'pipe'],
    parseReady: (out) => {
      const line = /^\{.*"port".*\}$/m.exec(out)
      return line ? JSON.parse(line[0]) as { port: number, version: string } : undefined
    },
    portOf: (ready) => ready.port,
    // ListBuckets
    probePath: '/',
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
  })
  return {
    port: server.port,
    s3Endpoint: `http://127.0.0.1:${server.port}`,
    s3AccessKey: MOTO_ACCESS_KEY,
    s3SecretKey: MOTO_SECRET_KEY,
    region: 'us-east-1',
    version: server.ready.version,
    stop: server.stop,
  }
}
