/**
 * The seams of the cluster layer (DESIGN.md, Placement). Membership says which
 * nodes are live in this node's view; `hrw.ts` orders them per object; the
 * peer client and server carry the peer API (protocol.ts) between gateways,
 * every request signed with the cluster secret (auth.ts). Nothing here knows
 * the client protocols (Blob, S3) or their error codes.
 */
import type { Readable } from 'node:stream'
import type { ByteRange, ContainerMeta, ObjectMeta, UserMetadata } from '../core/types.js'

/** A gateway of the cluster as this node knows it. */
export interface NodeInfo {
  /** Stable node id (persisted in the node's data dir). */
  id: string
  /** `http://host:port` of its peer API. */
  url: string
  /** True while the node hands its data to peers before maintenance: readable, but no new placements or uploads go to it. */
  draining?: boolean
}

export type MembershipEvent =
  | { type: 'up', node: NodeInfo }
  | { type: 'down', node: NodeInfo }
  /** This node was away (its event loop stalled past the probe timeout, e.g. SIGSTOP): what it holds may be stale. */
  | { type: 'rejoined' }

/** This node's view of the cluster. Views of different nodes may differ for a moment; readers tolerate it. */
export interface Membership {
  readonly self: NodeInfo
  /** Live nodes including this one, draining ones included. */
  live (): NodeInfo[]
  isLive (id: string): boolean
  node (id: string): NodeInfo | undefined
  /** Subscribes to changes of the view. */
  onChange (fn: (ev: MembershipEvent) => void): void
  /** Resolves after the first round of probes has been answered or timed out. */
  ready (): Promise<void>
  /** Marks this node draining (probes tell the peers). */
  setDraining (draining: boolean): void
  close (): Promise<void>
}

/** What the probe endpoint answers. */
export interface ProbeInfo {
  id: string
  /** Changes on every start of the process. */
  bootId: string
  draining: boolean
}

/**
 * An object version as it travels between peers: its ObjectMeta without the local store's
 * extents and commit sequence (and never a read's origin), `holders` naming who holds copies.
 */
export type WireMeta = Omit<ObjectMeta, 'extents' | 'seq' | 'origin' | 'peer'>

export type WireListEntry = { kind: 'object', meta: WireMeta } | { kind: 'prefix', name: string }

export interface WireListQuery {
  prefix?: string
  delimiter?: string
  /** Entries strictly after this name. */
  startAfter?: string
  maxResults: number
}

export interface WireListPage {
  entries: WireListEntry[]
  truncated: boolean
}

/** One local copy a returning node asks the object's home about. */
export interface CheckItem {
  container: string
  name: string
  etag: string
  lastModifiedMs: number
}

/** `current`: keep it; `stale`: a newer version exists or the object was deleted since; `unknown`: the home knows nothing newer. */
export type CheckVerdict = 'current' | 'stale' | 'unknown'

/**
 * The metadata calls of the peer API: `POST /v1/rpc/<method>` with the
 * argument as a JSON body, answered with the result as JSON (or an error
 * `{ code, message }` with a status). The handler implements them.
 */
export interface PeerRpc {
  /** The local copy's meta, or (no copy) the holders this node knows of from a location record. */
  head (a: { container: string, name: string }): Promise<{ meta?: WireMeta, holders?: string[] }>
  /**
   * `drop`: remove the local copy (version `etag` only, when given), dirty or not, nothing
   * upstream (a stale or handed-away copy); `deleted`: the same after a client delete elsewhere
   * (the home remembers it for returning nodes); `client`: a client delete carried out here
   * (upstream delete recorded) and the other holders dropped.
   */
  delete (a: { container: string, name: string, etag?: string, mode: 'drop' | 'deleted' | 'client' }): Promise<{ deleted: boolean }>
  /** The home learns where a version lives (replicas=1, or copies added by refill). */
  locate (a: { container: string, name: string, etag: string, lastModifiedMs: number, holders: string[] }): Promise<Record<string, never>>
  /** The writeback owner uploaded version `etag`: the copy here is clean too. */
  clean (a: { container: string, name: string, etag: string, upstreamEtag: string, md5?: string }): Promise<{ cleaned: boolean }>
  /**
   * The writer computed version `etag`'s MD5 after the acknowledgement (a large Put Blob sent
   * without Content-MD5): the copy here records it too, as its Content-MD5 when it has none.
   * `updated`: the copy here of that version carries this MD5 (false: no such copy, or another MD5).
   */
  checksums (a: { container: string, name: string, etag: string, md5: string }): Promise<{ updated: boolean }>
  /** The local entries of a container (dirty ones included), for a cluster listing. */
  list (a: { container: string, query: WireListQuery }): Promise<WireListPage>
  /** Dirty objects of `container` directly in directory `dir` (not deeper), other than `except`, last modified at or before `beforeMs`. */
  dirty (a: { container: string, dir: string, except: string, beforeMs: number }): Promise<{ count: number }>
  /** Verdicts on a returning node's copies whose home this node is, in the order asked. */
  check (a: { items: CheckItem[] }): Promise<{ verdicts: CheckVerdict[] }>
  /** Containers: create if missing (idempotent), get, delete the local one with its objects (nothing upstream), list. */
  createContainer (a: { name: string, metadata: UserMetadata }): Promise<Record<string, never>>
  getContainer (a: { name: string }): Promise<{ container?: ContainerMeta }>
  deleteContainer (a: { name: string }): Promise<Record<string, never>>
  listContainers (a: { prefix?: string }): Promise<{ containers: ContainerMeta[] }>
}

export type RpcMethod = keyof PeerRpc
export type RpcArgs<M extends RpcMethod> = Parameters<PeerRpc[M]>[0]
export type RpcResult<M extends RpcMethod> = Awaited<ReturnType<PeerRpc[M]>>

/** What the peer server calls; implemented by the cluster service over the local store. */
export interface PeerHandler extends PeerRpc {
  probe (): ProbeInfo
  /** `GET /v1/o/...`: the local copy (whole or a range), `etag` when the reader wants exactly that version. */
  read (a: { container: string, name: string, range?: ByteRange, etag?: string }): { meta: WireMeta, range?: ByteRange, body: Readable }
  /**
   * `PUT /v1/o/...`: a replica of version `meta`. `body` yields exactly `meta.size` bytes and
   * errors (before its end) when they do not match the signed digest, so nothing is committed.
   */
  write (meta: WireMeta, body: Readable, signal: AbortSignal): Promise<void>
}

/** The client side of the peer API. Network failures and timeouts are CacheError CC_ERR_PEER_UNAVAILABLE. */
export interface PeerClient {
  probe (url: string, opts?: { signal?: AbortSignal, timeoutMs?: number }): Promise<ProbeInfo>
  rpc<M extends RpcMethod> (node: NodeInfo, method: M, args: RpcArgs<M>, opts?: { signal?: AbortSignal, timeoutMs?: number }): Promise<RpcResult<M>>
  /** Streams a replica read once from `source.open()`, its body signed chunk by chunk as it goes (chunk-signing.ts). */
  write (node: NodeInfo, meta: WireMeta, source: { open (): Readable }, opts?: { signal?: AbortSignal }): Promise<void>
  /** Reads a peer's copy; a 404 is CC_ERR_OBJECT_NOT_FOUND, another version than `etag` CC_ERR_CONDITION_NOT_MET. */
  read (node: NodeInfo, a: { container: string, name: string, range?: ByteRange, etag?: string, signal?: AbortSignal }): Promise<{ meta: WireMeta, range?: ByteRange, body: Readable }>
  close (): Promise<void>
}

/** Progress of `ckptcache drain`: what this node held that peers must hold before it goes away. */
export interface DrainProgress {
  /** Objects (and their bytes) that needed a copy elsewhere when the drain started: dirty ones and sole copies. */
  objects: number
  bytes: number
  /** Of those, now held by enough other nodes. */
  handedObjects: number
  handedBytes: number
  /** Copies that failed on the last attempt (retried until done or the drain is cancelled). */
  failed: number
  done: boolean
  startedMs: number
}

export interface DrainHandle {
  progress (): DrainProgress
  /** Resolves when done. */
  readonly done: Promise<void>
}

/** What `/status` and `ckptcache status` show of the cluster. */
export interface ClusterStatus {
  nodeId: string
  replicas: number
  ack: 'all' | 'local'
  draining: boolean
  nodes: Array<{ id: string, url: string, live: boolean, draining: boolean, self: boolean }>
  refill: { pendingObjects: number, copiedObjects: number, copiedBytes: number }
}
