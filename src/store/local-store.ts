import type { Readable } from 'node:stream'
import type {
  ByteRange, ContainerMeta, ContentHeaders, ObjectChecksums, ObjectMeta, StagedBlock, UserMetadata
} from '../core/types.js'
import type { ChunkObserver } from './durable.js'
import type { ListQuery } from './sorted-names.js'

/** A body written durably to a temp file, with its capacity reservation, not yet part of any object. */
export interface Ingested {
  readonly path: string
  readonly size: number
  readonly reserved: number
}

export interface IngestRequest {
  body: Readable
  expectedSize?: number
  maxSize: number
  observers?: ChunkObserver[]
  signal?: AbortSignal
}

/** What a commit stores besides the data. */
export interface ObjectWrite {
  content: ContentHeaders
  metadata: UserMetadata
  checksums: ObjectChecksums
  /**
   * The version tag, when the writer supplies one (S3: the content MD5 hex, or the multipart
   * `<md5 of part md5s>-N`); otherwise the store makes a new unique one. Both front ends answer
   * with the stored tag, so conditions hold across protocols.
   */
  etag?: string
  /** Parts toward S3's per-object limit, when the writer counts them (see `ObjectMeta.parts`). */
  parts?: number
  /**
   * A read-through fill: the version is a copy of the upstream blob with this etag, clean from
   * the start. Other writes of a tiered store are dirty.
   */
  fill?: { upstreamEtag: string }
  /**
   * A copy of a version another node committed (cluster replication, refill): its times and
   * tier state are the writer's, not new ones. `dirty` only applies to a tiered store.
   */
  replica?: { createdMs: number, lastModifiedMs: number, dirty: boolean, upstreamEtag?: string }
  /** The nodes holding copies of the version (cluster). */
  holders?: string[]
}

/**
 * What changed, told to the store's watchers (the writeback) under the object's lock.
 * - `commit`: a new version is durable and current (any write: put, append, blocks, copy, metadata).
 * - `delete`: a client delete is about to remove `meta`; the watcher's promise is awaited first
 *   and a rejection aborts the delete (so a record of the upstream delete is durable before it).
 * - `evict`: a clean or cache-only object was dropped to make room or because it went stale;
 *   not a delete (nothing changes upstream). `deleted`: a copy dropped because a client deleted
 *   the object through another node (cluster), which carries the delete upstream.
 * - `delete-container`: a client Delete Container / DeleteBucket is about to remove the container
 *   and every object in it (no `delete` event per object); awaited like `delete`.
 */
export type StoreEvent =
  | { type: 'commit', meta: ObjectMeta, previous: ObjectMeta | undefined }
  | { type: 'delete', meta: ObjectMeta }
  | { type: 'evict', meta: ObjectMeta, deleted?: boolean }
  | { type: 'delete-container', container: string }

export type StoreWatcher = (event: StoreEvent) => void | Promise<void>

/** Evaluated under the object's lock against the current version; throws to refuse the commit. */
export type Precheck = (current: ObjectMeta | undefined) => void

/** An append: where the data goes, and what the new version stores besides its data. */
export interface AppendWrite {
  /** Must equal the current size under the lock, else CC_ERR_INVALID_WRITE_OFFSET; 0 on a missing object creates it. */
  offset: number
  /**
   * The new version's headers, metadata, checksums and tag, from the version appended to
   * (undefined when the append creates the object). Runs under the lock, after the checks.
   */
  write: (current: ObjectMeta | undefined) => ObjectWrite
}

export type BlockSource = 'committed' | 'uncommitted' | 'latest'

export interface BlockRef {
  id: string
  source: BlockSource
}

export type ListedEntry = { kind: 'object', meta: ObjectMeta } | { kind: 'prefix', name: string }

export interface StoreListPage {
  entries: ListedEntry[]
  next?: string
}

export interface StoreStats {
  capacity: number
  used: number
  committed: number
  staged: number
  reserved: number
  objects: number
  containers: number
}

/**
 * The node's local NVMe store. Every method that changes state is durable
 * when it resolves (fsync of data, metadata and directory) and atomic: a
 * crash leaves the old or the new state, never a mix.
 */
export interface LocalStore {
  /** Rebuilds the index from disk and removes orphaned temp and extent files. */
  open (): Promise<void>
  close (): Promise<void>
  stats (): StoreStats

  /** Create Container / CreateBucket. */
  createContainer (name: string, metadata: UserMetadata): Promise<ContainerMeta>
  /** Get Container Properties / HeadBucket. */
  getContainer (name: string): ContainerMeta | undefined
  /** List Containers / ListBuckets, sorted by name. */
  listContainers (prefix?: string): ContainerMeta[]
  /** Set Container Metadata. */
  setContainerMetadata (name: string, metadata: UserMetadata, precheck?: (c: ContainerMeta) => void): Promise<ContainerMeta>
  /** Delete Container / DeleteBucket (with `requireEmpty` for S3). */
  deleteContainer (name: string, opts?: { precheck?: (c: ContainerMeta) => void, requireEmpty?: boolean }): Promise<void>

  /** Get Blob Properties / HeadObject: the committed version, if any. */
  head (container: string, name: string): ObjectMeta | undefined
  /** Streams a request body into a durable temp file, reserving capacity first. */
  ingest (req: IngestRequest): Promise<Ingested>
  /** Drops an ingested file that will not be committed and frees its reservation. */
  discard (ingested: Ingested): Promise<void>
  /** Put Blob / PutObject: the ingested file becomes the object's only extent. */
  commitObject (container: string, name: string, data: Ingested, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta>
  /**
   * PutObject with `x-amz-write-offset-bytes` (S3 Express append): the ingested file becomes one
   * more extent after the current ones, in one metadata commit; no data is copied and readers of
   * the previous version keep it. Checked under the object's lock: `precheck`, then the offset
   * (CC_ERR_INVALID_WRITE_OFFSET), then the part limit (CC_ERR_TOO_MANY_PARTS).
   */
  appendObject (container: string, name: string, data: Ingested, append: AppendWrite, precheck: Precheck): Promise<ObjectMeta>
  /** Put Block / UploadPart: stages a block under an id, replacing an earlier one with that id. */
  stageBlock (container: string, name: string, blockId: string, data: Ingested): Promise<StagedBlock>
  /** Get Block List (uncommitted part) / ListParts. Sorted by staging time. */
  stagedBlocks (container: string, name: string): StagedBlock[]
  /** ListMultipartUploads: every name of the container with staged blocks, sorted by name. */
  stagedNames (container: string): string[]
  /** CompleteMultipartUpload (the upload's own record): streams one staged block's data. */
  openStagedBlock (container: string, name: string, block: StagedBlock): Readable
  /** Put Block List / CompleteMultipartUpload: the listed blocks become the object; other staged blocks are dropped. */
  commitBlocks (container: string, name: string, blocks: BlockRef[], write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta>
  /** Abort Multipart Upload: drops every staged block of the name. */
  dropStagedBlocks (container: string, name: string): Promise<void>
  /** Copy Blob / CopyObject within the store (hard links, no data copy). */
  copyObject (source: ObjectMeta, container: string, name: string, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta>
  /** Set Blob Metadata / Set Blob Properties: new etag, same data. */
  updateObject (container: string, name: string, patch: { content?: ContentHeaders, metadata?: UserMetadata }, precheck: Precheck): Promise<ObjectMeta>
  /**
   * Records checksums computed after the commit (the Content-MD5 Azure stores for Put Blob) on
   * the version `etag` names: same etag and last-modified time, since the content did not change.
   * Returns false when that version is no longer current.
   */
  addChecksums (container: string, name: string, etag: string, checksums: ObjectChecksums): Promise<boolean>
  /**
   * The writeback uploaded the version `etag` names as the upstream blob `upstreamEtag`: it is
   * clean from now on (evictable). `checksums` computed by the upload (the MD5 of a version that
   * had none) are recorded as `addChecksums` does. Returns false when that version is no longer current.
   */
  markClean (container: string, name: string, etag: string, upstreamEtag: string, checksums?: ObjectChecksums): Promise<boolean>
  /**
   * Drops the clean version `etag` names from the cache (its upstream copy changed), telling
   * watchers `evict`, not `delete`. Returns false when that version is not current or is dirty.
   */
  evict (container: string, name: string, etag: string): Promise<boolean>
  /**
   * A durable-to-be temp file of exactly `size` bytes (sparse), with its capacity reserved, for a
   * writer that fills it at offsets (read-through) and then commits it with `commitObject` (which
   * takes its bytes as they are: the writer fsyncs before committing) or `discard`s it.
   */
  allocate (size: number): Promise<Ingested>
  /** Records which nodes hold copies of the version `etag` names (same etag). False when that version is not current. */
  setHolders (container: string, name: string, etag: string, holders: string[]): Promise<boolean>
  /**
   * Drops this node's copy of an object (the version `etag` names, when given), dirty or not,
   * telling watchers `evict`: the object lives on elsewhere (a newer version on other nodes, a
   * copy handed away), so nothing changes upstream. Returns the dropped version. `deleted`: a
   * client deleted the object through another node (told to watchers).
   */
  dropCopy (container: string, name: string, etag?: string, opts?: { deleted?: boolean }): Promise<ObjectMeta | undefined>
  /** Registers a watcher of commits, deletes and evictions (see StoreEvent). */
  watch (watcher: StoreWatcher): void
  /** Every committed object (start-up scans). */
  objects (): IterableIterator<ObjectMeta>
  /** Delete Blob / DeleteObject. Returns the deleted version. */
  deleteObject (container: string, name: string, precheck: Precheck): Promise<ObjectMeta>
  /** Get Blob / GetObject: streams the version `meta` names (whole or a resolved range). */
  openRead (meta: ObjectMeta, range?: ByteRange): Readable
  /** List Blobs / ListObjects: names in order, with common prefixes for a delimiter. */
  list (container: string, query: ListQuery): StoreListPage
}
