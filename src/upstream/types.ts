/**
 * The seams of the cloud tier. `Upstream` is the Azure Blob adapter (one
 * implementation, `azure-upstream.ts`, tested against Azurite); `Layout`
 * maps logical object names to upstream blob names; `Writeback` and
 * `ReadThrough` are what the object core and the admin API see of the tier.
 * Nothing here knows HTTP front ends, XML or protocol error codes.
 */
import type { Readable } from 'node:stream'
import type { ByteRange, ContentHeaders, ObjectMeta, UserMetadata } from '../core/types.js'

/** Where a logical object lives upstream: an Azure container and a blob name in it. */
export interface UpstreamRef {
  container: string
  blob: string
}

/** What Get Blob Properties (and each List Blobs item) says of an upstream blob. */
export interface UpstreamProps {
  size: number
  /** Without quotes. */
  etag: string
  lastModifiedMs: number
  createdMs?: number
  /** Content headers, `contentMd5` base64 when the blob has one. */
  content: ContentHeaders
  metadata: UserMetadata
}

/** The data of one object version, read from the cache for an upload. */
export interface UploadSource {
  size: number
  /** Streams the object's bytes, whole or an inclusive range. */
  open (range?: ByteRange): Readable
}

export interface UploadRequest {
  ref: UpstreamRef
  source: UploadSource
  /** Carried as the blob's HTTP headers; `contentMd5` (base64) when known, else computed while reading. */
  content: ContentHeaders
  metadata: UserMetadata
  /**
   * A stable id of the version being uploaded (its local etag). Block ids derive from it, so a
   * re-upload after a crash stages the same ids and a retried commit is harmless.
   */
  version: string
  signal?: AbortSignal
}

export interface UploadResult {
  /** The upstream blob's etag after the commit, without quotes. */
  etag: string
  /** Base64 MD5 of the uploaded content (the blob's Content-MD5). */
  md5: string
  /** Upstream requests the upload made (Put Blob, or Put Block ×N + Put Block List). */
  requests: number
}

export interface UpstreamListQuery {
  /** Blob-name prefix ('' for all). */
  prefix: string
  delimiter?: string
  /** The opaque continuation marker of the previous page. */
  marker?: string
  /** Page size, at most 5000 (Azure's limit). */
  maxResults?: number
}

export type UpstreamListItem =
  | { kind: 'blob', name: string, props: UpstreamProps }
  | { kind: 'prefix', name: string }

export interface UpstreamListPage {
  items: UpstreamListItem[]
  /** Marker for the next page; absent on the last page. */
  next?: string
}

/**
 * The Azure Blob account the gateway writes back to and reads through from.
 * Every method retries throttling (429/500/503) and network errors with
 * exponential backoff and jitter, honours the configured request-rate cap and
 * counts its requests and bytes in the metrics. Errors that remain are
 * CacheErrors (`CC_ERR_UPSTREAM_UNAVAILABLE` after the retries,
 * `CC_ERR_CONDITION_NOT_MET` for a failed If-Match, `CC_ERR_INTERNAL` else).
 */
export interface Upstream {
  /** Create Container, once per container per process (an existing one is fine). */
  ensureContainer (container: string): Promise<void>
  /**
   * Put Blob for a source up to one block, else Put Block (blocks of the configured size, bounded
   * parallelism, streamed from the source) + Put Block List with the content headers, metadata
   * and Content-MD5. Creates the container on its first 404 ContainerNotFound.
   */
  upload (req: UploadRequest): Promise<UploadResult>
  /** Get Blob Properties; undefined on 404. */
  head (ref: UpstreamRef, opts?: { signal?: AbortSignal }): Promise<UpstreamProps | undefined>
  /**
   * Get Blob (whole or an inclusive range). With `ifMatch`, a blob changed since fails with
   * CC_ERR_CONDITION_NOT_MET; a missing one with CC_ERR_OBJECT_NOT_FOUND.
   */
  download (ref: UpstreamRef, opts?: { range?: ByteRange, ifMatch?: string, signal?: AbortSignal }): Promise<Readable>
  /** Delete Blob. With `ifMatch`, only that version. False when there was nothing (or nothing matching) to delete. */
  delete (ref: UpstreamRef, opts?: { ifMatch?: string }): Promise<boolean>
  /** List Blobs (flat, or hierarchical with a delimiter); a missing container lists as empty. */
  list (container: string, query: UpstreamListQuery): Promise<UpstreamListPage>
  close (): Promise<void>
}

/**
 * Logical name (local container + object name) ↔ upstream location. A pure
 * function plus configuration: any node computes the same mapping, and
 * `fromUpstream(toUpstream(x))` is `x` for every name.
 */
export interface Layout {
  /** The strategy, as configured (`identity`, `hash:2`, …). */
  readonly description: string
  toUpstream (container: string, name: string): UpstreamRef
  /** The logical name an upstream blob holds, or undefined when it belongs to no local container this layout maps. */
  fromUpstream (ref: UpstreamRef, container: string): string | undefined
  /**
   * The upstream listings whose union holds every blob of `container` whose logical name starts
   * with `prefix`: each a container and a blob-name prefix to list. Listing code merges them in
   * logical-name order and keeps only blobs `fromUpstream` maps back into the container. Layouts
   * whose prefixes cannot be enumerated (rank prefixes) discover them with one delimiter listing
   * of the container's top level through `upstream`.
   */
  listSources (container: string, prefix: string, upstream?: Pick<Upstream, 'list'>): Promise<ListSource[]>
}

/**
 * Whether a common prefix of a delimiter listing of a source can hold a name of that source:
 * `no` (drop it), `yes`, or `verify` (only a flat listing under it can tell).
 */
export type PrefixVerdict = 'yes' | 'no' | 'verify'

/** One upstream listing of `listSources`: every blob of it is `root + logical name`. */
export interface ListSource extends UpstreamRef {
  /** The part of each blob name before the logical name (`blob` is `root + prefix`). */
  root: string
  /** Judges a logical common prefix this source lists; absent means `yes`. */
  holds?: (logicalPrefix: string) => PrefixVerdict
}

/** What `ckptcache status` and `/metrics` show of the writeback queue. */
export interface WritebackStatus {
  mode: 'cache-only' | 'writeback' | 'writethrough'
  dirtyObjects: number
  dirtyBytes: number
  dirtyLimit: number
  /** Milliseconds since the oldest dirty object was committed; 0 when nothing is dirty. */
  oldestDirtyAgeMs: number
  /** Dirty objects waiting for an upload slot (markers waiting for their directory included). */
  queued: number
  /** Uploads in progress. */
  uploading: number
  /** Upstream deletes recorded and not yet done. */
  pendingDeletes: number
  uploadedObjects: number
  uploadedBytes: number
  failedAttempts: number
  /** The last upload error, if the last attempt of some object failed. */
  lastError?: string
}

/** Progress of a flush: everything dirty under a prefix when it started, and how much of it is clean now. */
export interface FlushProgress {
  objects: number
  bytes: number
  cleanObjects: number
  cleanBytes: number
  /** True when every object counted is clean upstream (or gone). */
  done: boolean
  startedMs: number
}

export interface FlushHandle {
  progress (): FlushProgress
  /** Resolves when done. */
  readonly done: Promise<void>
}

/**
 * The writeback queue: every dirty object reaches the upstream exactly once
 * per version, in commit order, commit markers last, deletes propagated.
 */
export interface Writeback {
  status (): WritebackStatus
  /**
   * Refuses a write of `bytes` more dirty bytes past the dirty limit (CC_ERR_SERVER_BUSY with a retryAfter, which
   * front ends answer 503 ServerBusy / SlowDown with Retry-After).
   */
  admit (bytes: number): void
  /** Writethrough: resolves when the version `etag` of the object is clean upstream (or replaced, or deleted). */
  whenClean (container: string, name: string, etag: string): Promise<void>
  /** Waits until everything dirty under `container/prefix` now is clean upstream. `container` undefined: all. */
  flush (container?: string, prefix?: string): FlushHandle
  /** True while an upstream delete of this name is recorded and not yet done (reads must not resurrect it). */
  deletePending (container: string, name: string): boolean
  /**
   * Cluster: another holder uploaded the version `etag` names as upstream blob `upstreamEtag`;
   * this node's copy is clean too. False when that version is not current here.
   */
  cleaned (container: string, name: string, etag: string, upstreamEtag: string, md5?: string): Promise<boolean>
  close (): Promise<void>
}

/**
 * Cluster: which node uploads a dirty version held by several (DESIGN.md, promise 4). Without
 * a gate every dirty version of the store is this node's to upload.
 */
export interface UploadGate {
  /**
   * 0 when this node is the version's writeback owner in its current view (the first live
   * holder of its order) and uploads it now; otherwise how long before it is looked at again
   * (sooner when `onViewChange` fires).
   */
  waitMs (meta: ObjectMeta): number
  /** Registers what to call when the cluster view changes (ownership may have moved here). */
  onViewChange (fn: () => void): void
  /** A commit marker: whether no live node holds a dirty object of its directory committed before it. */
  markerReady (meta: ObjectMeta, signal: AbortSignal): Promise<boolean>
  /** This node uploaded `meta` as upstream blob `upstreamEtag` (Content-MD5 `md5`): the other holders may mark it clean. */
  uploaded (meta: ObjectMeta, upstreamEtag: string, md5: string): void
  /** How long a marker whose directory is not clean on every node waits before it is looked at again. */
  readonly recheckMs: number
}

/** A local miss answered from the upstream. */
export interface ReadThrough {
  /**
   * Get Blob Properties of the upstream blob as an ObjectMeta of the container (with
   * `origin: 'upstream'`, no extents), or undefined when upstream has none.
   */
  head (container: string, name: string, signal?: AbortSignal): Promise<ObjectMeta | undefined>
  /**
   * Streams the bytes of an upstream object (whole or a resolved range) while the whole object
   * fills the cache in the background; concurrent reads of one version share one fill. The
   * stream errors if the upstream version changes or the fetch fails.
   */
  read (meta: ObjectMeta, range?: ByteRange, signal?: AbortSignal): Readable
  /**
   * For a clean cached object last checked longer ago than the revalidation interval: checks its
   * upstream etag; a changed upstream blob evicts the cached copy. Returns the meta to serve
   * (the cached one, or the upstream one after eviction, or undefined when upstream has none).
   */
  revalidate (meta: ObjectMeta, signal?: AbortSignal): Promise<ObjectMeta | undefined>
  /**
   * Delete Blob / DeleteObject of a name the cache does not hold: deletes upstream the version
   * `meta` (from `head`) names, at once (If-Match); false when that version is gone. A running
   * fill of it is not kept.
   */
  deleteUpstream (meta: ObjectMeta): Promise<boolean>
  close (): Promise<void>
}
