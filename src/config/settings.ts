/**
 * The table of settings: for each `Config` key, its flag, environment
 * variable, parser, default and meaning. `load.ts` reads values through it
 * and `help.ts` renders it, so the two cannot drift apart.
 */

import path from 'node:path'
import { DEFAULT_MARKER_PATTERNS } from '../upstream/markers.js'
import { DEV_S3_ACCESS_KEY, DEV_S3_SECRET_KEY, EMULATOR_ACCOUNT, EMULATOR_KEY, type Config } from './schema.js'
import {
  parseAccessKey,
  parseAccountName,
  parseBase64Key,
  parseChoice,
  parseDuration,
  parseHost,
  parsePort,
  parsePositiveInt,
  parseSecretKey,
  parseSize,
  parseBlockSize,
  parseSinglePutSize,
  parseConnectionString,
  parseContainerName,
  parseGlobList,
  parseLayoutSpec,
  parseNonNegativeInt,
  parseUrl,
  parseBoolean,
  parseClusterSecret,
  parseNodeId,
  parsePeerList,
  parsePeersDns,
  parseRate,
  parseReplicas,
} from './parse.js'

/**
 * Config as read, before `capacity: 'auto'` is resolved against the data dir's filesystem and
 * before `clusterSecretFile` (a setting that is no `Config` key) is read into `clusterSecret`.
 */
export type RawConfig = Omit<Config, 'capacity' | 'capacityAuto' | 'dirtyLimit' | 'dirtyLimitAuto'> & {
  capacity: number | 'auto'
  dirtyLimit: number | 'auto'
  /** A file holding the cluster secret; `load.ts` reads it into `clusterSecret`. */
  clusterSecretFile?: string
}

/** Where relative paths resolve and where the default data dir comes from. */
export interface ParseContext {
  /** The current directory for flags and environment, the file's directory for a config file. */
  baseDir: string
}

interface SettingOf<K extends keyof RawConfig> {
  key: K
  /** Flag name without the leading `--`; absent for settings only a config file can set. */
  flag?: string
  /** Argument placeholder in help. */
  arg?: string
  /** Keys and other secrets are never echoed in error messages. */
  secret?: boolean
  /**
   * `boolean`: the flag alone means true (`--flag`, `--flag=false`, `--flag no`), and a config
   * file may give true/false. `list`: a config file may give a JSON array of strings.
   */
  kind?: 'boolean' | 'list'
  parse: (text: string, ctx: ParseContext) => RawConfig[K]
  /** Default, given the environment (only `dataDir` looks at it). */
  default: (env: NodeJS.ProcessEnv, cwd: string) => RawConfig[K]
  /** The default as help shows it. */
  defaultText: string
  /** Meaning, one or more help lines. */
  help: string[]
}

export type Setting = { [K in keyof RawConfig]-?: SettingOf<K> }[keyof RawConfig]

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const EVICTION_POLICIES = ['reject', 'lru'] as const
export const MODES = ['cache-only', 'writeback', 'writethrough'] as const
/** `--dirty-limit auto`: this fraction of the capacity. */
export const AUTO_DIRTY_FRACTION = 0.5
export const AUTO_CAPACITY_FRACTION = 0.9
export const DEFAULT_STAGED_BLOCK_MAX_AGE_MS = 7 * 86_400_000
export const DEFAULT_MAX_REQUESTS = 1024
export const ACK_MODES = ['all', 'local'] as const
/** Next to the admin port (10100); the client ports default to 10000 and 9000. */
export const DEFAULT_PEER_PORT = 10102
export const DEFAULT_REPLICAS = 2
export const DEFAULT_PROBE_INTERVAL_MS = 1000
export const DEFAULT_PROBE_TIMEOUT_MS = 5000
export const DEFAULT_REFILL_GRACE_MS = 60_000
export const DEFAULT_REFILL_RATE = 256 * 2 ** 20
export const DEFAULT_REPLAY_WINDOW_MS = 60_000

function parsePath (text: string, ctx: ParseContext): string {
  if (text.trim() === '') throw new Error('must not be empty')
  return path.resolve(ctx.baseDir, text)
}

export const SETTINGS: readonly Setting[] = [
  {
    key: 'dataDir',
    flag: 'data-dir',
    arg: 'DIR',
    parse: parsePath,
    default: (env, cwd) => {
      // XDG Base Directory spec: an empty or relative XDG_DATA_HOME is ignored.
      const xdg = env.XDG_DATA_HOME
      return xdg !== undefined && path.isAbsolute(xdg) ? path.join(xdg, 'ckptcache') : path.resolve(cwd, 'data')
    },
    defaultText: '$XDG_DATA_HOME/ckptcache if XDG_DATA_HOME is set, else ./data',
    help: ['Root of the local store: objects, staged blocks and temp files.'],
  },
  {
    key: 'host',
    flag: 'host',
    arg: 'ADDR',
    parse: parseHost,
    default: () => '127.0.0.1',
    defaultText: '127.0.0.1',
    help: ['Address the client ports bind to (IPv4, IPv6 or a host name).'],
  },
  {
    key: 'blobPort',
    flag: 'blob-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => 10000,
    defaultText: '10000',
    help: ['Azure Blob REST port; 0 picks any free port.'],
  },
  {
    key: 'account',
    flag: 'account',
    arg: 'NAME',
    parse: parseAccountName,
    default: () => EMULATOR_ACCOUNT,
    defaultText: EMULATOR_ACCOUNT,
    help: ['Storage account name clients use: http://HOST:PORT/NAME/container/blob.', '3-24 lowercase letters and digits.'],
  },
  {
    key: 'accountKey',
    flag: 'account-key',
    arg: 'KEY',
    secret: true,
    parse: parseBase64Key,
    default: () => EMULATOR_KEY,
    defaultText: 'the well-known storage emulator key (loopback hosts only)',
    help: ['Base64 account key that SharedKey and SAS requests are verified with.'],
  },
  {
    key: 's3Port',
    flag: 's3-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => 9000,
    defaultText: '9000',
    help: ['S3 REST port (path-style http://HOST:PORT/bucket/key), on the same', '--host; 0 picks any free port.'],
  },
  {
    key: 's3AccessKey',
    flag: 's3-access-key',
    arg: 'KEY',
    parse: parseAccessKey,
    default: () => DEV_S3_ACCESS_KEY,
    defaultText: DEV_S3_ACCESS_KEY,
    help: ['Access key id S3 clients sign requests with (SigV4).'],
  },
  {
    key: 's3SecretKey',
    flag: 's3-secret-key',
    arg: 'SECRET',
    secret: true,
    parse: parseSecretKey,
    default: () => DEV_S3_SECRET_KEY,
    defaultText: `the development secret ${DEV_S3_SECRET_KEY} (loopback hosts only)`,
    help: ['Secret access key that S3 signatures are verified with.'],
  },
  {
    key: 'capacity',
    flag: 'capacity',
    arg: 'SIZE',
    parse: (text) => text.trim().toLowerCase() === 'auto' ? 'auto' : parseSize(text),
    default: () => 'auto',
    defaultText: 'auto',
    help: [
      'Bytes the store may use for objects and staged blocks, or auto: 90% of',
      'the free space on the data dir\'s filesystem, measured at start-up.',
    ],
  },
  {
    key: 'eviction',
    flag: 'eviction',
    arg: 'reject|lru',
    parse: parseChoice(EVICTION_POLICIES),
    default: () => 'reject',
    defaultText: 'reject',
    help: ['When a write does not fit: reject fails it; lru evicts the least', 'recently used objects.'],
  },
  {
    key: 'stagedBlockMaxAgeMs',
    flag: 'staged-block-max-age',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_STAGED_BLOCK_MAX_AGE_MS,
    defaultText: '7d',
    help: ['Uncommitted blocks older than this are deleted (Azure keeps them 7 days).'],
  },
  {
    key: 'maxRequests',
    flag: 'max-requests',
    arg: 'N',
    parse: parsePositiveInt,
    default: () => DEFAULT_MAX_REQUESTS,
    defaultText: String(DEFAULT_MAX_REQUESTS),
    help: [
      'Requests in flight per client port. Past it a request is answered 503',
      '(Blob ServerBusy, S3 SlowDown) with Retry-After, which the SDKs retry.',
    ],
  },
  {
    key: 'mode',
    flag: 'mode',
    arg: 'cache-only|writeback|writethrough',
    parse: parseChoice(MODES),
    default: () => 'cache-only',
    defaultText: 'cache-only',
    help: [
      'cache-only: no cloud tier, objects live in the cache only. writeback:',
      'a write is acknowledged once durable in the cache and uploaded to Azure',
      'Blob later, in commit order. writethrough: acknowledged after the upload.',
      'Both read through from Azure Blob on a miss and need an upstream.',
    ],
  },
  {
    key: 'upstreamConnectionString',
    flag: 'upstream-connection-string',
    arg: 'STR',
    secret: true,
    parse: parseConnectionString,
    default: () => undefined,
    defaultText: 'none',
    help: ['Azure Storage connection string of the upstream account (AccountKey or', 'SharedAccessSignature).'],
  },
  {
    key: 'upstreamAccountUrl',
    flag: 'upstream-account-url',
    arg: 'URL',
    parse: parseUrl,
    default: () => undefined,
    defaultText: 'none',
    help: ['Or the upstream account\'s blob endpoint, e.g. https://ACCOUNT.blob.core.', 'windows.net, authenticated with DefaultAzureCredential (managed identity,', 'AKS workload identity, environment, Azure CLI).'],
  },
  {
    key: 'upstreamContainer',
    flag: 'upstream-container',
    arg: 'NAME',
    parse: parseContainerName,
    default: () => undefined,
    defaultText: 'none: each container to the upstream container of its name',
    help: ['Put every container into this one upstream container, under', '<container>/.'],
  },
  {
    key: 'layout',
    flag: 'layout',
    arg: 'STRATEGY',
    parse: parseLayoutSpec,
    default: () => 'identity',
    defaultText: 'identity',
    help: [
      'Upstream blob names: identity; hash[:N] (N hex chars of a hash of the',
      'directory first, default 2); round-robin:P1,P2,... (DCP shard',
      '__<rank>_<n>.distcp under P[rank mod count]); binary[:MINLEN] or',
      'hex[:MINLEN] (under the rank reversed in binary or hex, default 8 / 2).',
    ],
  },
  {
    key: 'dirtyLimit',
    flag: 'dirty-limit',
    arg: 'SIZE',
    parse: (text) => text.trim().toLowerCase() === 'auto' ? 'auto' : parseSize(text),
    default: () => 'auto',
    defaultText: 'auto',
    help: ['Bytes not yet uploaded past which writes get a retryable 503 with', 'Retry-After; auto: half the capacity.'],
  },
  {
    key: 'adminPort',
    flag: 'admin-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => 10100,
    defaultText: '10100',
    help: ['Admin API port on --host: /metrics (Prometheus), /healthz, /status,', '/flush; 0 picks any free port.'],
  },
  {
    key: 'uploadBlockSize',
    flag: 'upload-block-size',
    arg: 'SIZE',
    parse: parseBlockSize,
    default: () => 8 * 1024 * 1024,
    defaultText: '8MiB',
    help: ['Block size of uploads to and range reads from Azure Blob (1MiB-4000MiB).'],
  },
  {
    key: 'uploadSingleMax',
    flag: 'upload-single-max',
    arg: 'SIZE',
    parse: parseSinglePutSize,
    default: () => 256 * 1024 * 1024,
    defaultText: '256MiB',
    help: ['Objects up to this size go to Azure Blob in one Put Blob request (up to', '5000MiB); larger ones in blocks of --upload-block-size.'],
  },
  {
    key: 'writebackConcurrency',
    flag: 'writeback-concurrency',
    arg: 'N',
    parse: parsePositiveInt,
    default: () => 8,
    defaultText: '8',
    help: ['Objects uploaded at once.'],
  },
  {
    key: 'blockConcurrency',
    flag: 'block-concurrency',
    arg: 'N',
    parse: parsePositiveInt,
    default: () => 4,
    defaultText: '4',
    help: ['Blocks in flight per upload, and ranges per read-through fill.'],
  },
  {
    key: 'upstreamMaxRps',
    flag: 'upstream-max-rps',
    arg: 'N',
    parse: parseNonNegativeInt,
    default: () => 0,
    defaultText: '0 (no cap)',
    help: ['Upstream requests per second at most from this node; 0: no cap.'],
  },
  {
    key: 'markerPatterns',
    flag: 'marker-patterns',
    arg: 'GLOBS',
    kind: 'list',
    parse: parseGlobList,
    default: () => [...DEFAULT_MARKER_PATTERNS],
    defaultText: DEFAULT_MARKER_PATTERNS.join(','),
    help: ['Commit markers, comma-separated base-name globs (* and ?): uploaded', 'only after every object committed earlier in their directory.'],
  },
  {
    key: 'revalidateAfterMs',
    flag: 'revalidate-after',
    arg: 'DURATION',
    parse: (text) => text.trim() === '0' ? 0 : parseDuration(text),
    default: () => 600_000,
    defaultText: '10m',
    help: ['A clean cached object read longer than this after its last check is', 'checked against the upstream etag; 0: never.'],
  },
  {
    key: 'nodeId',
    flag: 'node-id',
    arg: 'ID',
    parse: parseNodeId,
    default: () => undefined,
    defaultText: 'generated once and kept in DATA_DIR/node-id',
    help: ['Stable id of this node in the cluster: 1-64 characters of A-Z a-z', '0-9 . _ -, starting with a letter or digit (e.g. the host name).'],
  },
  {
    key: 'peerHost',
    flag: 'peer-host',
    arg: 'ADDR',
    parse: parseHost,
    default: () => '127.0.0.1',
    defaultText: '127.0.0.1',
    help: ['Address the peer API binds to: the interface the other nodes reach', 'this one on (e.g. the pod IP). Used only when the node has peers.'],
  },
  {
    key: 'peerPort',
    flag: 'peer-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => DEFAULT_PEER_PORT,
    defaultText: String(DEFAULT_PEER_PORT),
    help: ['Port of the peer API (node-to-node traffic, signed with the cluster', 'secret); listened on only when the node has peers.'],
  },
  {
    key: 'peers',
    flag: 'peers',
    arg: 'HOST:PORT,...',
    kind: 'list',
    parse: parsePeerList,
    default: () => [],
    defaultText: 'none (a single node)',
    help: [
      'Static cluster membership: the peer API address of every node, this',
      'one\'s may be among them. IPv6 addresses in brackets: [fd00::1]:10102.',
      'One of --peers, --peers-file and --peers-dns makes the node clustered.',
    ],
  },
  {
    key: 'peersFile',
    flag: 'peers-file',
    arg: 'PATH',
    parse: parsePath,
    default: () => undefined,
    defaultText: 'none',
    help: ['A file with one HOST:PORT per line (# starts a comment), read again on', 'every membership refresh: edit it to add or remove nodes.'],
  },
  {
    key: 'peersDns',
    flag: 'peers-dns',
    arg: 'NAME:PORT',
    parse: parsePeersDns,
    default: () => undefined,
    defaultText: 'none',
    help: ['Peers are the addresses NAME resolves to (a Kubernetes headless', 'Service), each on PORT; resolved again periodically.'],
  },
  {
    key: 'clusterSecret',
    flag: 'cluster-secret',
    arg: 'SECRET',
    secret: true,
    parse: parseClusterSecret,
    default: () => undefined,
    defaultText: 'none (required with peers)',
    help: ['Shared secret every peer request is signed with (HMAC-SHA256); the', 'same on every node, at least 16 characters (openssl rand -base64 32).'],
  },
  {
    key: 'clusterSecretFile',
    flag: 'cluster-secret-file',
    arg: 'PATH',
    parse: parsePath,
    default: () => undefined,
    defaultText: 'none',
    help: ['Read the cluster secret from this file at start-up (a trailing newline', 'is dropped), e.g. a mounted Kubernetes Secret.'],
  },
  {
    key: 'replicas',
    flag: 'replicas',
    arg: 'N',
    parse: parseReplicas,
    default: () => DEFAULT_REPLICAS,
    defaultText: String(DEFAULT_REPLICAS),
    help: ['Copies of each object in the cluster, the writing node\'s included', '(1-16). A single node keeps one.'],
  },
  {
    key: 'ack',
    flag: 'ack',
    arg: 'all|local',
    parse: parseChoice(ACK_MODES),
    default: () => 'all',
    defaultText: 'all',
    help: ['all: a write is acknowledged once every copy is durable; local: once', 'the local copy is (the others follow, and are lost if this node dies', 'first).'],
  },
  {
    key: 'probeIntervalMs',
    flag: 'probe-interval',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_PROBE_INTERVAL_MS,
    defaultText: '1s',
    help: ['How often each peer is probed.'],
  },
  {
    key: 'probeTimeoutMs',
    flag: 'probe-timeout',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_PROBE_TIMEOUT_MS,
    defaultText: '5s',
    help: ['A peer whose probes have failed for this long is down in this node\'s', 'view. Must be longer than --probe-interval.'],
  },
  {
    key: 'refillGraceMs',
    flag: 'refill-grace',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_REFILL_GRACE_MS,
    defaultText: '60s',
    help: ['A peer down this long has the copies it held made again on the', 'surviving nodes (a restart within it costs no copying).'],
  },
  {
    key: 'refillRate',
    flag: 'refill-rate',
    arg: 'SIZE',
    parse: parseRate,
    default: () => DEFAULT_REFILL_RATE,
    defaultText: '256MiB (per second)',
    help: ['Bytes per second this node sends at most when it makes copies again', 'after a node loss (256MiB and 256MiB/s are the same).'],
  },
  {
    key: 'peerReadCache',
    flag: 'peer-read-cache',
    arg: '[true|false]',
    kind: 'boolean',
    parse: parseBoolean,
    default: () => false,
    defaultText: 'false',
    help: ['Keep a clean local copy of an object read from a peer (uses local', 'capacity; evicted like any clean object).'],
  },
  {
    key: 'replayWindowMs',
    flag: 'replay-window',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_REPLAY_WINDOW_MS,
    defaultText: '60s',
    help: ['Peer requests signed longer ago, or further ahead, than this are', 'refused; nonces are remembered this long. Allows for clock skew.'],
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    arg: 'LEVEL',
    parse: parseChoice(LOG_LEVELS),
    default: () => 'info',
    defaultText: 'info',
    help: [`One of ${LOG_LEVELS.join(', ')}.`, 'Logs are JSON lines on stdout.'],
  },
]

/** `blob-port` → `CKPTCACHE_BLOB_PORT`. */
export function envName (flag: string): string {
  return 'CKPTCACHE_' + flag.toUpperCase().replace(/-/g, '_')
}

export const CONFIG_FLAG = 'config'
export const CONFIG_ENV = envName(CONFIG_FLAG)

/** How error messages name a setting: its flag, or its config-file key when it has none. */
export function settingName (setting: Setting): string {
  return setting.flag === undefined ? setting.key : `--${setting.flag}`
}
