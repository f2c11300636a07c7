/**
 * The one typed configuration of a gateway node. Every setting has a
 * default here; `load.ts` merges a config file, CKPTCACHE_* environment
 * variables and command-line flags over these defaults and validates once.
 */

export type EvictionPolicy = 'reject' | 'lru'
export type Mode = 'cache-only' | 'writeback' | 'writethrough'

export interface Config {
  /** Root of the local store (objects, staged blocks, temp files). */
  dataDir: string
  /** Address the client ports bind to. */
  host: string
  /** Azure Blob REST port. */
  blobPort: number
  /** S3 REST port (same host). */
  s3Port: number
  /** SigV4 access key id S3 clients sign with. */
  s3AccessKey: string
  /** SigV4 secret access key. */
  s3SecretKey: string
  /** Account name clients use in path-style URLs (`/<account>/<container>/<blob>`). */
  account: string
  /** Base64 account key for SharedKey and SAS verification. */
  accountKey: string
  /** Store capacity in bytes (objects plus staged blocks). */
  capacity: number
  /**
   * Set when `capacity` came from `auto` (a fraction of the free space at start-up): the node then
   * adds the same fraction of what the store already holds, so a full cache keeps its size across restarts.
   */
  capacityAuto?: boolean
  /** What a write that does not fit does: `reject` fails it, `lru` evicts least recently used objects. */
  eviction: EvictionPolicy
  /** Uncommitted blocks older than this are garbage-collected (Azure keeps them 7 days). */
  stagedBlockMaxAgeMs: number
  /** Requests in flight per client port; more are refused with a retryable 503 and Retry-After. */
  maxRequests: number
  /** cache-only: no cloud tier; writeback: acknowledge locally, upload later; writethrough: acknowledge after the upload. */
  mode: Mode
  /** Azure Blob account for the cloud tier: a connection string with an account key or a SAS. */
  upstreamConnectionString?: string
  /** Or the account's blob endpoint URL, authenticated with DefaultAzureCredential (managed / workload identity). */
  upstreamAccountUrl?: string
  /** All local containers into this one upstream container (each under `<container>/`); else one upstream container per local one. */
  upstreamContainer?: string
  /** Prefix `Layout` strategy: identity, hash[:N], round-robin:P1,P2,…, binary[:MINLEN], hex[:MINLEN]. */
  layout: string
  /** Dirty bytes past which writes are refused with a retryable 503. */
  dirtyLimit: number
  /** Set when `dirtyLimit` came from `auto` (half the capacity). */
  dirtyLimitAuto?: boolean
  /** Port of the admin API (/metrics, /healthz, /status, /flush); same --host. */
  adminPort: number
  /** Block size of upstream uploads and read-through range GETs. */
  uploadBlockSize: number
  /** Objects up to this size are uploaded in one Put Blob; larger ones in blocks. */
  uploadSingleMax: number
  /** Objects uploaded at once. */
  writebackConcurrency: number
  /** Blocks in flight per upload (and ranges in flight per read-through fill). */
  blockConcurrency: number
  /** Upstream requests per second at most, 0 = no cap. */
  upstreamMaxRps: number
  /** Commit markers (basename globs): uploaded after every object committed earlier in their directory. */
  markerPatterns: string[]
  /** Clean objects are checked against the upstream etag when last checked longer ago than this; 0 = never. */
  revalidateAfterMs: number
  /** Stable id of this node in the cluster; default: generated once and kept in `<dataDir>/node-id`. */
  nodeId?: string
  /** Address the peer API binds to (the interface peers reach this node on). */
  peerHost: string
  /** Port of the peer API (listened on only when the node has peers). */
  peerPort: number
  /** Static peers, `host:port` of their peer APIs (this node's own address may be among them). */
  peers: string[]
  /** A file with one `host:port` per line (re-read on every membership refresh). */
  peersFile?: string
  /** `NAME:PORT`: peers are the addresses NAME resolves to (a Kubernetes headless Service), re-resolved periodically. */
  peersDns?: string
  /** Shared secret every peer request is signed with (required with peers). */
  clusterSecret?: string
  /** Copies of each object in the cluster, the writer's included. */
  replicas: number
  /** `all`: a write is acknowledged after every copy is durable; `local`: after the local one (the others follow). */
  ack: 'all' | 'local'
  /** How often each peer is probed. */
  probeIntervalMs: number
  /** A peer whose probes have failed for this long is down in this node's view. */
  probeTimeoutMs: number
  /** A peer down this long has its lost copies re-replicated by the survivors. */
  refillGraceMs: number
  /** Bytes per second the re-replication after a node loss sends at most. */
  refillRate: number
  /** Keep a clean local copy of an object read from a peer. */
  peerReadCache: boolean
  /** Peer requests signed longer ago (or further ahead) than this are refused; nonces are remembered this long. */
  replayWindowMs: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

/** The well-known storage emulator account; accepted on loopback only. */
export const EMULATOR_ACCOUNT = 'devstoreaccount1'
export const EMULATOR_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

/** The documented development S3 key pair; the secret is accepted on loopback only. */
export const DEV_S3_ACCESS_KEY = 'ckptcache'
export const DEV_S3_SECRET_KEY = 'ckptcache-dev-secret'
