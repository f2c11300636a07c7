/**
 * The `ckptcache` command: `serve` (default), `flush`, `drain`, `status`,
 * `help` / `--help`, `--version`. `serve` loads the config, starts the node,
 * logs one ready line, prints ready-to-paste connection strings and drains on
 * SIGTERM / SIGINT. `flush`, `drain` and `status` ask a running node's admin
 * API (src/cli/flush.ts, src/cli/drain.ts, src/cli/status.ts).
 *
 * Exit status of serve: 0 stopped cleanly, 1 failed to start or to stop,
 * 2 invalid configuration or command line. flush, drain and status: 0 done,
 * 1 admin API unreachable or failed, 2 usage error; flush and drain without
 * --wait exit 3 while they are still going.
 */

import fs from 'node:fs'
import { ConfigError, loadConfig } from './config/load.js'
import { helpText } from './config/help.js'
import { envName } from './config/settings.js'
import { DEV_S3_SECRET_KEY, EMULATOR_KEY, type Config } from './config/schema.js'
import type { RunningNode } from './node.js'

const EXIT_FAILURE = 1
const EXIT_USAGE = 2

async function main (args: string[]): Promise<void> {
  const [command, ...rest] = args
  if (command === 'help' || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText(version()))
  } else if (command === 'version' || args.includes('--version')) {
    process.stdout.write(`${version()}\n`)
  } else if (command === 'serve') {
    await serve(rest)
  } else if (command === 'flush' || command === 'drain' || command === 'status') {
    await adminCommand(command, rest)
  } else if (command === undefined || command.startsWith('-')) {
    await serve(args)
  } else {
    fail(EXIT_USAGE, `unknown command ${JSON.stringify(command)} (commands: serve, flush, drain, status, help); see ckptcache --help`)
  }
}

/** `flush`, `drain` and `status` talk to a running node's admin API; their modules own their exit status. */
async function adminCommand (command: 'flush' | 'drain' | 'status', args: string[]): Promise<void> {
  // Output piped into a reader that quits early (`| head -1`) must not end the command with a stack trace.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  const io = { stdout: process.stdout, stderr: process.stderr }
  const status = command === 'flush'
    ? await (await import('./cli/flush.js')).flushCommand(args, process.env, io)
    : command === 'drain'
      ? await (await import('./cli/drain.js')).drainCommand(args, process.env, io)
      : await (await import('./cli/status.js')).statusCommand(args, process.env, io)
  process.exit(status)
}

async function serve (flags: string[]): Promise<void> {
  // A log reader that goes away (closed pipe) must not take the gateway down or keep it from stopping.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  let config: Config
  try {
    config = loadConfig(flags, process.env)
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT_USAGE, ...err.problems)
    throw err
  }

  // Installed before start-up so a signal during it still shuts down cleanly.
  let node: RunningNode | undefined
  let stopSignal: NodeJS.Signals | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) fail(EXIT_FAILURE, `second ${signal} while stopping: exiting without waiting`)
    stopSignal = signal
    if (node !== undefined) void stop(node, signal)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  try {
    // Loaded here, not at the top, so --help and --version stay fast and independent of the server.
    const { startNode } = await import('./node.js')
    node = await startNode(config)
  } catch (err) {
    if (config.logLevel === 'debug' || config.logLevel === 'trace') console.error(err)
    fail(EXIT_FAILURE, describeStartError(err, config))
  }
  if (stopSignal !== undefined) return stop(node, stopSignal)

  const endpoint = `http://${urlHost(connectHost(config.host))}:${node.ports.blob}/${config.account}`
  const s3Endpoint = `http://${urlHost(connectHost(config.host))}:${node.ports.s3}`
  const adminEndpoint = `http://${urlHost(connectHost(config.host))}:${node.ports.admin}`
  node.log.info({ ports: node.ports, mode: config.mode }, `ckptcache ready blob=${endpoint} s3=${s3Endpoint} admin=${adminEndpoint}`)
  // pino writes asynchronously, so on a pipe this text may land before the ready line.
  process.stdout.write(connectionInfo(config, endpoint) + s3ConnectionInfo(config, s3Endpoint))
}

async function stop (node: RunningNode, signal: NodeJS.Signals): Promise<void> {
  node.log.info({ signal }, 'ckptcache stopping: finishing requests in flight')
  try {
    await node.close()
  } catch (err) {
    node.log.error({ err }, 'ckptcache failed to stop cleanly')
    process.exit(EXIT_FAILURE)
  }
  node.log.info({ signal }, 'ckptcache stopped')
  process.exit(0)
}

/** Ready-to-paste connection strings for the JS and Python SDKs and azure-cli. */
function connectionInfo (config: Config, endpoint: string): string {
  const emulatorKey = config.accountKey === EMULATOR_KEY
  const key = emulatorKey ? config.accountKey : '<your key>'
  const cs = `DefaultEndpointsProtocol=http;AccountName=${config.account};AccountKey=${key};BlobEndpoint=${endpoint};`
  const lines = [
    '',
    `ckptcache is serving Azure Blob at ${endpoint}`,
  ]
  if (connectHost(config.host) !== config.host) {
    lines.push(`(listening on all interfaces: from another machine use its address instead of ${connectHost(config.host)})`)
  }
  if (!emulatorKey) lines.push('(replace <your key> with the account key you configured)')
  lines.push(
    '',
    'Connection string:',
    `  ${cs}`,
    '',
    'JavaScript (@azure/storage-blob):',
    `  import { BlobServiceClient } from '@azure/storage-blob'; const client = BlobServiceClient.fromConnectionString('${cs}')`,
    '',
    'Python (azure-storage-blob):',
    `  from azure.storage.blob import BlobServiceClient; client = BlobServiceClient.from_connection_string('${cs}')`,
    '',
    'Azure CLI:',
    `  export AZURE_STORAGE_CONNECTION_STRING='${cs}'`,
    '  az storage container create -n ckpt',
    '',
  )
  return lines.join('\n')
}

/** Endpoint and keys for boto3, the AWS CLI and the JavaScript SDK (path-style addressing). */
function s3ConnectionInfo (config: Config, endpoint: string): string {
  const devSecret = config.s3SecretKey === DEV_S3_SECRET_KEY
  const secret = devSecret ? config.s3SecretKey : '<your secret>'
  const lines = [
    `ckptcache is serving S3 at ${endpoint} (path-style: ${endpoint}/<bucket>/<key>)`,
  ]
  if (!devSecret) lines.push('(replace <your secret> with the S3 secret key you configured)')
  lines.push(
    '',
    'S3 credentials:',
    `  export AWS_ENDPOINT_URL=${endpoint} AWS_ACCESS_KEY_ID=${config.s3AccessKey} AWS_SECRET_ACCESS_KEY='${secret}' AWS_DEFAULT_REGION=us-east-1`,
    '',
    'AWS CLI:',
    `  aws --endpoint-url ${endpoint} s3 mb s3://ckpt`,
    '',
    'Python (boto3):',
    `  import boto3; s3 = boto3.client('s3', endpoint_url='${endpoint}', aws_access_key_id='${config.s3AccessKey}', aws_secret_access_key='${secret}', region_name='us-east-1', config=boto3.session.Config(s3={'addressing_style': 'path'}))`,
    '',
    'JavaScript (@aws-sdk/client-s3):',
    `  import { S3Client } from '@aws-sdk/client-s3'; const s3 = new S3Client({ endpoint: '${endpoint}', region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: '${config.s3AccessKey}', secretAccessKey: '${secret}' } })`,
    '',
  )
  return lines.join('\n')
}

/** A wildcard bind address cannot be connected to from elsewhere; this machine reaches it via loopback. */
function connectHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::' || host === '0:0:0:0:0:0:0:0') return '::1'
  return host
}

function urlHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** One line a user can act on, for the errors start-up commonly hits. */
function describeStartError (err: unknown, config: Config): string {
  let e = err as (NodeJS.ErrnoException & { port?: number, address?: string }) | undefined
  // startNode may wrap the socket error; the cause chain still carries it.
  while (e !== undefined && e !== null && e.code === undefined && e.cause !== undefined) e = e.cause as typeof e
  const base = err instanceof Error ? err.message : String(err)
  if (e === undefined || e === null || typeof e !== 'object') return `failed to start: ${oneLine(base)}`
  const port = e.port ?? config.blobPort
  const host = e.address ?? config.host
  const flag = port === config.s3Port && port !== config.blobPort
    ? 's3-port'
    : port === config.adminPort && port !== config.blobPort
      ? 'admin-port'
      : port === config.peerPort && port !== config.blobPort ? 'peer-port' : 'blob-port'
  const portHelp = `choose another with --${flag} or ${envName(flag)} (0 picks any free port)`
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${urlHost(host)}:${port}: port ${port} is already in use (another ckptcache or Azurite?); ${portHelp}`
    case 'EACCES':
      if (e.syscall === 'listen' || e.syscall === 'bind') {
        return `cannot listen on ${urlHost(host)}:${port}: permission denied (ports below 1024 need privileges); ${portHelp}`
      }
      return `failed to start: permission denied: ${oneLine(e.message)} (check --data-dir ${JSON.stringify(config.dataDir)})`
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${urlHost(host)}:${port}: --host ${JSON.stringify(config.host)} is not an address of this machine`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve --host ${JSON.stringify(config.host)}: ${oneLine(e.message)}`
    default:
      return `failed to start: ${oneLine(base)}`
  }
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}

function fail (status: number, ...messages: string[]): never {
  process.stderr.write(messages.map(m => `ckptcache: ${m}\n`).join(''))
  process.exit(status)
}

/** From package.json, found upwards from this file (src/ under tsx, dist/src/ when built). */
function version (): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    const file = new URL('package.json', dir)
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version
    if (dir.pathname === '/') return 'unknown'
  }
}

await main(process.argv.slice(2))
