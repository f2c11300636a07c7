/**
 * Starts Microsoft's Azurite Blob emulator (the reference implementation the conformance suite is
 * checked against) as a child process on 127.0.0.1 and a kernel-chosen port (or a given one, to restart
 * it where a gateway expects it).
 *
 * - in-memory persistence by default (Azurite then writes no files; its working directory is the OS
 *   temp dir anyway), so nothing is left behind and no `--location` is needed (the two are
 *   exclusive); `location` persists to a directory the caller owns instead (benchmarks);
 * - `--disableTelemetry`: Azurite ≥ 3.32 otherwise phones home from every test run;
 * - the child dies with the test process (see child-server.ts), and an IPC-disconnect watchdog
 *   preloaded into the child ends it even if the test process is SIGKILLed (tap's timeout does
 *   that);
 * - SIGKILL, not SIGTERM, to stop it: Azurite's graceful close waits for idle keep-alive client
 *   sockets (up to 5 s per stop), and there is nothing to flush.
 */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startChildServer } from './child-server.js'

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
  /**
   * Listen on this port instead of a kernel-chosen one: e.g. `port` of an Azurite just stopped, to
   * bring "the same" upstream back after an outage (in memory, it starts empty).
   */
  port?: number
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
// Azurite 3.35 reads its --blobKeepAliveTimeout flag under another name, so its server keeps
// Node's 5 s idle timeout: on a loaded machine an SDK reusing a pooled connection can write into
// one the server is just closing (EPIPE). Azure keeps idle connections far longer; so does this.
const keepAlive = 'data:text/javascript,' + encodeURIComponent(
  "import http from 'node:http';const listen=http.Server.prototype.listen;" +
  'http.Server.prototype.listen=function(...a){this.keepAliveTimeout=120000;return listen.apply(this,a)}')

export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const env = { ...process.env }
  delete env.AZURITE_ACCOUNTS // the well-known account must be the one Azurite serves
  const server = await startChildServer({
    name: 'Azurite',
    command: process.execPath,
    args: [
      '--import', watchdog,
      '--import', keepAlive,
      azuriteBlobMain,
      '--blobHost', '127.0.0.1',
      '--blobPort', String(opts.port ?? 0),
      ...(opts.location === undefined ? ['--inMemoryPersistence'] : ['--location', opts.location]),
      '--skipApiVersionCheck',
      '--loose',
      '--disableProductStyleUrl',
      '--disableTelemetry',
      '--silent',
      ...(opts.args ?? []),
    ],
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // "successfully listens on http://127.0.0.1:<port>"
    parseReady: (out) => {
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      return m ? Number(m[1]) : undefined
    },
    portOf: (port) => port,
    probePath: `/${AZURITE_ACCOUNT}?comp=list`,
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
  })
  const blobEndpoint = `http://127.0.0.1:${server.port}/${AZURITE_ACCOUNT}`
  return {
    port: server.port,
    account: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    blobEndpoint,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};` +
      `AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    stop: server.stop,
  }
}
