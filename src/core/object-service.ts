import type { Readable } from 'node:stream'
import type { NodeMetrics } from '../admin/metrics.js'
import { CacheError } from '../errors.js'
import type { LocalStore, StoreListPage } from '../store/local-store.js'
import type { ListQuery } from '../store/sorted-names.js'
import { ingestBody, storedChecksums } from './body-ingest.js'
import { appendedChecksums, crcsToCarry } from './checksum/append-checksums.js'
import type { ObjectCluster } from './cluster-port.js'
import { checkReadConditions, checkWriteConditions } from './conditions.js'
import { ContainerService } from './container-service.js'
import { INLINE_MD5_MAX, Md5Backfill } from './md5-backfill.js'
import {
  MAX_BLOCK_PUT, MAX_OBJECT_PUT, type AppendObjectInput, type BodyChecksums, type CommitBlocksInput,
  type PutObjectInput, type ReadResult, type StageBlockInput
} from './object-inputs.js'
import { exclusiveStart, mergePages } from './tier-listing.js'
import type { ObjectTier } from './tier-port.js'
import { MAX_PARTS, partCount, type ByteRange, type Conditions, type ContainerMeta, type ContentHeaders, type ObjectMeta, type StagedBlock, type UserMetadata } from './types.js'

/**
 * Object semantics shared by the Blob and S3 front ends: containers (delegated to
 * ContainerService), single-shot and block writes with checksum verification
 * (the body's ingest in body-ingest.ts), conditional reads and writes, copy,
 * listing. Knows nothing of HTTP or XML.
 */
export class ObjectService {
  readonly store: LocalStore
  readonly #backfill: Md5Backfill | undefined
  readonly #tier: ObjectTier | undefined
  readonly #metrics: NodeMetrics | undefined
  readonly #cluster: ObjectCluster | undefined
  readonly #containers: ContainerService

  constructor (store: LocalStore, backfill?: Md5Backfill, opts: { tier?: ObjectTier, metrics?: NodeMetrics, cluster?: ObjectCluster } = {}) {
    this.store = store
    this.#backfill = backfill
    this.#tier = opts.tier
    this.#metrics = opts.metrics
    this.#cluster = opts.cluster
    this.#containers = new ContainerService(store, { tier: opts.tier, cluster: opts.cluster })
  }

  // ---- containers (see ContainerService) ----

  /** Create Container / CreateBucket; in a cluster the other live nodes create it too. */
  async createContainer (name: string, metadata: UserMetadata): Promise<ContainerMeta> {
    return await this.#containers.create(name, metadata)
  }

  getContainer (name: string): ContainerMeta {
    return this.#containers.get(name)
  }

  /**
   * Get Container Properties / HeadBucket / the container check of listings and batch deletes:
   * like `getContainer`, but with a cloud tier a container the cache does not know and the
   * upstream holds blobs of is adopted first (a wiped or new node restoring a checkpoint).
   */
  async container (name: string, signal?: AbortSignal): Promise<ContainerMeta> {
    return await this.#containers.resolve(name, signal)
  }

  listContainers (prefix?: string): ContainerMeta[] {
    return this.#containers.list(prefix)
  }

  setContainerMetadata (name: string, metadata: UserMetadata, conditions?: Conditions): Promise<ContainerMeta> {
    return this.#containers.setMetadata(name, metadata, conditions)
  }

  /** Delete Container / DeleteBucket, the upstream's objects too with a cloud tier (see ContainerService.delete). */
  async deleteContainer (name: string, conditions?: Conditions, requireEmpty = false): Promise<void> {
    await this.#containers.delete(name, conditions, requireEmpty)
  }

  // ---- reads ----

  /** The cached version only (write preconditions, Abort Copy): never asks the upstream. */
  head (container: string, name: string, conditions?: Conditions): ObjectMeta {
    const meta = this.#existing(container, name)
    checkReadConditions(meta, conditions)
    return meta
  }

  /**
   * Get Blob / Get Blob Properties / GetObject / HeadObject / copy sources: the cached version,
   * else (with a cloud tier) the upstream one, which `read` then streams while it fills the
   * cache. A clean cached version due for revalidation is checked against the upstream etag first.
   */
  async lookup (container: string, name: string, conditions?: Conditions, signal?: AbortSignal): Promise<ObjectMeta> {
    const tier = this.#tier
    if (tier === undefined && this.#cluster === undefined) return this.head(container, name, conditions)
    await this.#containers.adopt(container, signal)
    this.getContainer(container)
    let meta = this.store.head(container, name)
    if (meta !== undefined) {
      this.#metrics?.cacheLookups.inc({ result: 'hit' })
      if (meta.dirty !== true && tier !== undefined) meta = await tier.readThrough.revalidate(meta, signal)
    } else {
      this.#metrics?.cacheLookups.inc({ result: 'miss' })
      // Local, then the nodes of the object's order, then the upstream.
      meta = await this.#cluster?.lookup(container, name, signal)
      if (meta === undefined && tier !== undefined) meta = await tier.readThrough.head(container, name, signal)
    }
    if (meta === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    checkReadConditions(meta, conditions)
    return meta
  }

  /** Opens a read of a version `lookup` returned. `range` is resolved by the caller (protocols differ on bad ranges). */
  read (meta: ObjectMeta, range?: ByteRange, signal?: AbortSignal): ReadResult {
    let body: Readable
    if (meta.origin === 'peer') {
      if (this.#cluster === undefined) throw new CacheError('CC_ERR_INTERNAL', 'a peer object without a cluster')
      body = this.#cluster.read(meta, range, signal)
    } else if (meta.origin === 'upstream') {
      if (this.#tier === undefined) throw new CacheError('CC_ERR_INTERNAL', 'an upstream object without a cloud tier')
      body = this.#tier.readThrough.read(meta, range, signal)
    } else {
      body = this.store.openRead(meta, range)
      this.#metrics?.servedBytes.inc({ source: 'local' }, range === undefined ? meta.size : range.end - range.start + 1)
    }
    return range === undefined ? { meta, body } : { meta, range, body }
  }

  /**
   * List Blobs / ListObjects. With a cloud tier, the cached entries (dirty ones included) merged
   * with the upstream's, the cached version winning, names with a pending upstream delete left out.
   */
  async list (container: string, query: ListQuery, signal?: AbortSignal): Promise<StoreListPage> {
    const tier = this.#tier
    const cluster = this.#cluster
    if (tier === undefined && cluster === undefined) return this.store.list(container, query)
    await this.#containers.adopt(container, signal)
    let local = this.store.list(container, query)
    if (cluster !== undefined) local = await cluster.list(container, query, local, signal)
    if (tier === undefined) return local
    const startAfter = exclusiveStart(query)
    const remote = await tier.listUpstream(container, {
      ...(query.prefix === undefined ? {} : { prefix: query.prefix }),
      ...(query.delimiter === undefined || query.delimiter === '' ? {} : { delimiter: query.delimiter }),
      ...(startAfter === undefined ? {} : { startAfter }),
      maxResults: query.maxResults,
      ...(signal === undefined ? {} : { signal })
    })
    return mergePages(container, query.maxResults, local, remote, (n) => tier.writeback.deletePending(container, n))
  }

  stagedBlocks (container: string, name: string): StagedBlock[] {
    return this.store.stagedBlocks(container, name)
  }

  /** Names of the container with staged blocks (ListMultipartUploads). */
  stagedNames (container: string): string[] {
    return this.store.stagedNames(container)
  }

  /** Reads a small staged block whole (an S3 upload's own record). */
  async readStagedBlock (container: string, name: string, block: StagedBlock, limit: number): Promise<Buffer> {
    if (block.size > limit) throw new CacheError('CC_ERR_INTERNAL', 'staged record too large')
    const chunks: Buffer[] = []
    for await (const c of this.store.openStagedBlock(container, name, block) as AsyncIterable<Buffer>) chunks.push(c)
    return Buffer.concat(chunks)
  }

  // ---- writes ----

  /**
   * Put Blob / PutObject. Verifies client checksums before commit and
   * computes the MD5 Azure stores as the blob's Content-MD5 (on worker
   * threads; after the acknowledgement for large bodies). Preconditions are checked before the body is read (fail fast) and
   * again atomically at commit.
   */
  async putObject (p: PutObjectInput): Promise<{ meta: ObjectMeta, checksums: BodyChecksums }> {
    await this.#writable(p.container, p.size)
    checkWriteConditions(this.store.head(p.container, p.name), p.conditions)
    // Small bodies get their MD5 now; a large one's is computed after the acknowledgement.
    const wantMd5 = p.md5Etag === true || p.contentMd5 !== false
    // With a cloud tier the upload computes it (and records it), so it is not computed twice.
    const inlineMd5 = p.md5Etag === true || (wantMd5 && (p.size <= INLINE_MD5_MAX || (this.#backfill === undefined && this.#tier === undefined)))
    const { data, checksums } = await ingestBody(this.store, p.body, p.size, MAX_OBJECT_PUT, inlineMd5, p.expect, p.signal)
    const content = { ...p.content }
    if (content.contentMd5 === undefined && checksums.md5 !== undefined) content.contentMd5 = checksums.md5.toString('base64')
    const meta = await this.store.commitObject(p.container, p.name, data, {
      content,
      metadata: p.metadata,
      checksums: storedChecksums(checksums),
      ...(p.md5Etag === true && checksums.md5 !== undefined ? { etag: checksums.md5.toString('hex') } : {}),
      ...(wantMd5 ? {} : { parts: 1 })
    }, (current) => checkWriteConditions(current, p.conditions))
    if (checksums.md5 === undefined && wantMd5 && this.#tier === undefined) this.#backfill?.schedule(meta)
    await this.#committed(meta)
    return { meta, checksums }
  }

  /**
   * PutObject with `x-amz-write-offset-bytes` (S3 Express append): the body becomes a new version
   * made of the current one's data plus the body, with a new tag. Client checksums are verified
   * before the commit. An existing object keeps its content headers and metadata; its whole-object
   * CRCs are carried forward by combination (computing each over the body), while digests that
   * cannot be combined (SHA, MD5, Content-MD5) are dropped. Conditions, the offset and the part
   * limit are checked before the body is read (fail fast) and again under the lock at commit.
   */
  async appendObject (p: AppendObjectInput): Promise<{ meta: ObjectMeta, checksums: BodyChecksums }> {
    await this.#writable(p.container, p.size)
    const before = this.store.head(p.container, p.name)
    checkWriteConditions(before, p.conditions)
    if ((before?.size ?? 0) !== p.offset) throw new CacheError('CC_ERR_INVALID_WRITE_OFFSET', undefined, { detail: { size: before?.size ?? 0, offset: p.offset } })
    if (before !== undefined && partCount(before) >= MAX_PARTS) throw new CacheError('CC_ERR_TOO_MANY_PARTS')
    const { data, checksums } = await ingestBody(this.store, p.body, p.size, MAX_OBJECT_PUT, false, p.expect, p.signal, crcsToCarry(before))
    const meta = await this.store.appendObject(p.container, p.name, data, {
      offset: p.offset,
      write: (current) => current === undefined
        ? {
            content: checksums.md5 === undefined ? p.content : { ...p.content, contentMd5: checksums.md5.toString('base64') },
            metadata: p.metadata,
            checksums: storedChecksums(checksums)
          }
        : {
            content: withoutMd5(current.content),
            metadata: current.metadata,
            checksums: appendedChecksums(current, data.size, checksums.crcs ?? {})
          }
    }, (current) => checkWriteConditions(current, p.conditions))
    await this.#committed(meta)
    return { meta, checksums }
  }

  /** Put Block / UploadPart. Computes MD5 only when the client sent one to check. */
  async stageBlock (p: StageBlockInput): Promise<{ block: StagedBlock, checksums: BodyChecksums }> {
    // Staged blocks become dirty bytes at commit: the limit pushes back on the data, where clients retry cheaply.
    await this.#writable(p.container, p.size)
    const { data, checksums } = await ingestBody(this.store, p.body, p.size, MAX_BLOCK_PUT, p.md5 === true, p.expect, p.signal)
    let blockId: string
    try {
      blockId = typeof p.blockId === 'string' ? p.blockId : p.blockId(checksums)
    } catch (err) {
      await this.store.discard(data)
      throw err
    }
    const block = await this.store.stageBlock(p.container, p.name, blockId, data)
    return { block, checksums }
  }

  /** Put Block List / CompleteMultipartUpload. */
  async commitBlocks (p: CommitBlocksInput): Promise<ObjectMeta> {
    await this.#writable(p.container, 0)
    const meta = await this.store.commitBlocks(p.container, p.name, p.blocks,
      { content: p.content, metadata: p.metadata, checksums: p.checksums ?? {}, ...(p.etag === undefined ? {} : { etag: p.etag }) },
      (current) => checkWriteConditions(current, p.conditions))
    await this.#committed(meta)
    return meta
  }

  /** Copy Blob / CopyObject within the store. */
  async copyObject (p: {
    source: ObjectMeta
    container: string
    name: string
    content?: ContentHeaders
    metadata?: UserMetadata
    conditions?: Conditions
    /** Writer-supplied version tag (S3 keeps a copy's MD5 ETag); default: a new unique tag. */
    etag?: string
  }): Promise<ObjectMeta> {
    if (p.source.origin !== undefined) return await this.#copyFromElsewhere(p)
    await this.#writable(p.container, p.source.size)
    const meta = await this.store.copyObject(p.source, p.container, p.name, {
      content: p.content ?? p.source.content,
      metadata: p.metadata ?? p.source.metadata,
      checksums: p.source.checksums,
      ...(p.etag === undefined ? {} : { etag: p.etag })
    }, (current) => checkWriteConditions(current, p.conditions))
    await this.#committed(meta)
    return meta
  }

  async updateObject (container: string, name: string, patch: { content?: ContentHeaders, metadata?: UserMetadata }, conditions?: Conditions): Promise<ObjectMeta> {
    await this.#writable(container, this.store.head(container, name)?.size ?? 0)
    const meta = await this.store.updateObject(container, name, patch, (current) => {
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      checkWriteConditions(current, conditions)
    })
    await this.#committed(meta)
    return meta
  }

  /**
   * Delete Blob / DeleteObject. With a cloud tier, a name the cache does not hold is deleted in
   * the upstream at once (the delete of a cached version reaches the upstream through the
   * writeback queue).
   */
  async deleteObject (container: string, name: string, conditions?: Conditions): Promise<ObjectMeta> {
    await this.#containers.adopt(container)
    this.getContainer(container)
    const tier = this.#tier
    const cluster = this.#cluster
    if (cluster !== undefined && this.store.head(container, name) === undefined) {
      const remote = await cluster.lookup(container, name)
      if (remote !== undefined && this.store.head(container, name) === undefined) {
        checkWriteConditions(remote, conditions)
        await cluster.deleteRemote(remote)
        return remote
      }
    }
    // A few rounds: another writer may replace the upstream version between its head and the delete.
    for (let round = 0; tier !== undefined && round < 3 && this.store.head(container, name) === undefined; round++) {
      const remote = await tier.readThrough.head(container, name)
      // Nothing upstream, or a local version appeared meanwhile: the local delete answers.
      if (remote === undefined || this.store.head(container, name) !== undefined) break
      checkWriteConditions(remote, conditions)
      if (await tier.readThrough.deleteUpstream(remote)) {
        // A read-through fill of that version may have committed meanwhile: that copy is gone upstream too.
        const cached = this.store.head(container, name)
        if (cached !== undefined && cached.dirty !== true && cached.upstreamEtag === remote.upstreamEtag) await this.store.evict(container, name, cached.etag)
        return remote
      }
    }
    const deleted = await this.store.deleteObject(container, name, (current) => {
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      checkWriteConditions(current, conditions)
    })
    await cluster?.deleted(deleted)
    return deleted
  }

  dropStagedBlocks (container: string, name: string): Promise<void> {
    return this.store.dropStagedBlocks(container, name)
  }

  // ---- internals ----

  /** A copy whose source is not held here: its bytes come from a peer or through the read-through fill (which caches the source too). */
  async #copyFromElsewhere (p: { source: ObjectMeta, container: string, name: string, content?: ContentHeaders, metadata?: UserMetadata, conditions?: Conditions, etag?: string }): Promise<ObjectMeta> {
    const { meta } = await this.putObject({
      container: p.container,
      name: p.name,
      body: this.read(p.source).body,
      size: p.source.size,
      content: p.content ?? p.source.content,
      metadata: p.metadata ?? p.source.metadata,
      ...(p.conditions === undefined ? {} : { conditions: p.conditions }),
      // S3 keeps a copy's MD5 ETag: computed again over the bytes.
      ...(p.etag === undefined ? {} : { md5Etag: true })
    })
    return meta
  }

  /** Before a write: the container exists (adopted from the upstream after a wiped cache), and the dirty limit admits `bytes` more. */
  async #writable (container: string, bytes: number): Promise<void> {
    await this.#containers.adopt(container)
    this.getContainer(container)
    this.#tier?.writeback.admit(bytes)
  }

  /**
   * After a commit, before the acknowledgement: the cluster places the other copies (ack=all
   * waits for them), and writethrough waits until the version is committed upstream.
   */
  async #committed (meta: ObjectMeta): Promise<void> {
    await this.#cluster?.placed(meta)
    if (this.#tier?.mode === 'writethrough') await this.#tier.writeback.whenClean(meta.container, meta.name, meta.etag)
  }

  #existing (container: string, name: string): ObjectMeta {
    this.getContainer(container)
    const meta = this.store.head(container, name)
    if (meta === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    return meta
  }
}

/** Content headers without the Content-MD5 property (it no longer describes the content). */
function withoutMd5 (content: ContentHeaders): ContentHeaders {
  const { contentMd5: _dropped, ...rest } = content
  return rest
}
