import type { Readable } from 'node:stream'
import { CacheError } from '../errors.js'
import type { ChunkObserver } from '../store/durable.js'
import type { BlockRef, Ingested, LocalStore, StoreListPage } from '../store/local-store.js'
import type { ListQuery } from '../store/sorted-names.js'
import { appendedChecksums, crcsToCarry, type PartCrcs } from './checksum/append-checksums.js'
import { isCombinableCrc, type CombinableCrc } from './checksum/crc-combine.js'
import { Crc64 } from './checksum/crc64.js'
import { createS3Hasher, type S3ChecksumAlgorithm } from './checksum/s3-checksums.js'
import { createMd5Hasher, type Md5Hasher } from './checksum/md5.js'
import { checkReadConditions, checkWriteConditions } from './conditions.js'
import { INLINE_MD5_MAX, Md5Backfill } from './md5-backfill.js'
import { MAX_PARTS, partCount, type ByteRange, type Conditions, type ContainerMeta, type ContentHeaders, type ObjectChecksums, type ObjectMeta, type StagedBlock, type UserMetadata } from './types.js'

/** Largest single-shot object or block body accepted (Azure: 5000 MiB Put Blob, 4000 MiB block). */
export const MAX_OBJECT_PUT = 5000 * 1024 * 1024
export const MAX_BLOCK_PUT = 4000 * 1024 * 1024

/** Checksums a client sent with a body, to verify before commit. */
export interface ExpectedChecksums {
  md5?: Buffer
  crc64?: Buffer
  /**
   * An additional checksum (S3 `x-amz-checksum-*`). `value` is read once the body has ended,
   * so it may come from a trailer; undefined there means "compute, nothing to compare".
   */
  additional?: { algorithm: S3ChecksumAlgorithm, value: () => Buffer | undefined }
}

/** Checksums computed over a body. */
export interface BodyChecksums {
  md5?: Buffer
  crc64?: Buffer
  additional?: { algorithm: S3ChecksumAlgorithm, value: Buffer }
  /** CRCs computed to carry an object's whole-object CRCs across an append (the additional one included). */
  crcs?: PartCrcs
}

export interface PutObjectInput {
  container: string
  name: string
  body: Readable
  size: number
  content: ContentHeaders
  metadata: UserMetadata
  conditions?: Conditions
  expect?: ExpectedChecksums
  signal?: AbortSignal
  /**
   * The version tag is the hex MD5 of the content (S3 PutObject: clients compare it with their
   * own MD5). The MD5 is then computed before the commit whatever the size.
   */
  md5Etag?: boolean
  /**
   * Compute the Content-MD5 Azure stores (default true: inline for small bodies, after the
   * acknowledgement for large ones). False for S3 Express directory buckets, whose ETags are
   * opaque: no MD5 is computed unless the client sent one to check, and the object is recorded as
   * one part (as S3 Express counts it), which also keeps it out of the start-up MD5 scan.
   */
  contentMd5?: boolean
}

/** Content headers and metadata apply only to an object the append creates; an existing object keeps its own. */
export interface AppendObjectInput extends Omit<PutObjectInput, 'md5Etag' | 'contentMd5'> {
  /** Where the body goes: must be the object's current size; 0 on a missing object creates it. */
  offset: number
}

export interface StageBlockInput {
  container: string
  name: string
  /** The block id, or a function of the body's checksums (S3 parts are named by their MD5). */
  blockId: string | ((checksums: BodyChecksums) => string)
  body: Readable
  size: number
  expect?: ExpectedChecksums
  signal?: AbortSignal
  /** Compute the MD5 even when the client sent none to check (S3 part ETags). */
  md5?: boolean
}

export interface CommitBlocksInput {
  container: string
  name: string
  blocks: BlockRef[]
  content: ContentHeaders
  metadata: UserMetadata
  conditions?: Conditions
  /** Writer-supplied version tag (S3 multipart `<md5 of md5s>-N`); default: a new unique tag. */
  etag?: string
  checksums?: ObjectChecksums
}

export interface ReadResult {
  meta: ObjectMeta
  /** The resolved range, when the caller asked for one. */
  range?: ByteRange
  body: Readable
}

/**
 * Object semantics shared by the Blob and S3 front ends: containers,
 * single-shot and block writes with checksum verification, conditional
 * reads and writes, copy, listing. Knows nothing of HTTP or XML.
 */
export class ObjectService {
  readonly store: LocalStore
  readonly #backfill: Md5Backfill | undefined

  constructor (store: LocalStore, backfill?: Md5Backfill) {
    this.store = store
    this.#backfill = backfill
  }

  // ---- containers ----

  createContainer (name: string, metadata: UserMetadata): Promise<ContainerMeta> {
    return this.store.createContainer(name, metadata)
  }

  getContainer (name: string): ContainerMeta {
    const c = this.store.getContainer(name)
    if (c === undefined) throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    return c
  }

  listContainers (prefix?: string): ContainerMeta[] {
    return this.store.listContainers(prefix)
  }

  setContainerMetadata (name: string, metadata: UserMetadata, conditions?: Conditions): Promise<ContainerMeta> {
    return this.store.setContainerMetadata(name, metadata, (c) => checkWriteConditions(c, conditions))
  }

  deleteContainer (name: string, conditions?: Conditions, requireEmpty = false): Promise<void> {
    return this.store.deleteContainer(name, { precheck: (c) => checkWriteConditions(c, conditions), requireEmpty })
  }

  // ---- reads ----

  head (container: string, name: string, conditions?: Conditions): ObjectMeta {
    const meta = this.#existing(container, name)
    checkReadConditions(meta, conditions)
    return meta
  }

  /** Opens a read of the current version. `range` is resolved by the caller (protocols differ on bad ranges). */
  read (meta: ObjectMeta, range?: ByteRange): ReadResult {
    const body = this.store.openRead(meta, range)
    return range === undefined ? { meta, body } : { meta, range, body }
  }

  list (container: string, query: ListQuery): StoreListPage {
    return this.store.list(container, query)
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
    this.getContainer(p.container)
    checkWriteConditions(this.store.head(p.container, p.name), p.conditions)
    // Small bodies get their MD5 now; a large one's is computed after the acknowledgement.
    const wantMd5 = p.md5Etag === true || p.contentMd5 !== false
    const inlineMd5 = p.md5Etag === true || (wantMd5 && (p.size <= INLINE_MD5_MAX || this.#backfill === undefined))
    const { data, checksums } = await this.#ingest(p.body, p.size, MAX_OBJECT_PUT, inlineMd5, p.expect, p.signal)
    const content = { ...p.content }
    if (content.contentMd5 === undefined && checksums.md5 !== undefined) content.contentMd5 = checksums.md5.toString('base64')
    const meta = await this.store.commitObject(p.container, p.name, data, {
      content,
      metadata: p.metadata,
      checksums: storedChecksums(checksums),
      ...(p.md5Etag === true && checksums.md5 !== undefined ? { etag: checksums.md5.toString('hex') } : {}),
      ...(wantMd5 ? {} : { parts: 1 })
    }, (current) => checkWriteConditions(current, p.conditions))
    if (checksums.md5 === undefined && wantMd5) this.#backfill?.schedule(meta)
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
    this.getContainer(p.container)
    const before = this.store.head(p.container, p.name)
    checkWriteConditions(before, p.conditions)
    if ((before?.size ?? 0) !== p.offset) throw new CacheError('CC_ERR_INVALID_WRITE_OFFSET', undefined, { detail: { size: before?.size ?? 0, offset: p.offset } })
    if (before !== undefined && partCount(before) >= MAX_PARTS) throw new CacheError('CC_ERR_TOO_MANY_PARTS')
    const { data, checksums } = await this.#ingest(p.body, p.size, MAX_OBJECT_PUT, false, p.expect, p.signal, crcsToCarry(before))
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
    return { meta, checksums }
  }

  /** Put Block / UploadPart. Computes MD5 only when the client sent one to check. */
  async stageBlock (p: StageBlockInput): Promise<{ block: StagedBlock, checksums: BodyChecksums }> {
    this.getContainer(p.container)
    const { data, checksums } = await this.#ingest(p.body, p.size, MAX_BLOCK_PUT, p.md5 === true, p.expect, p.signal)
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
  commitBlocks (p: CommitBlocksInput): Promise<ObjectMeta> {
    this.getContainer(p.container)
    return this.store.commitBlocks(p.container, p.name, p.blocks,
      { content: p.content, metadata: p.metadata, checksums: p.checksums ?? {}, ...(p.etag === undefined ? {} : { etag: p.etag }) },
      (current) => checkWriteConditions(current, p.conditions))
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
    this.getContainer(p.container)
    return this.store.copyObject(p.source, p.container, p.name, {
      content: p.content ?? p.source.content,
      metadata: p.metadata ?? p.source.metadata,
      checksums: p.source.checksums,
      ...(p.etag === undefined ? {} : { etag: p.etag })
    }, (current) => checkWriteConditions(current, p.conditions))
  }

  updateObject (container: string, name: string, patch: { content?: ContentHeaders, metadata?: UserMetadata }, conditions?: Conditions): Promise<ObjectMeta> {
    this.getContainer(container)
    return this.store.updateObject(container, name, patch, (current) => {
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      checkWriteConditions(current, conditions)
    })
  }

  deleteObject (container: string, name: string, conditions?: Conditions): Promise<ObjectMeta> {
    this.getContainer(container)
    return this.store.deleteObject(container, name, (current) => {
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      checkWriteConditions(current, conditions)
    })
  }

  dropStagedBlocks (container: string, name: string): Promise<void> {
    return this.store.dropStagedBlocks(container, name)
  }

  // ---- internals ----

  #existing (container: string, name: string): ObjectMeta {
    this.getContainer(container)
    const meta = this.store.head(container, name)
    if (meta === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    return meta
  }

  /** `carry`: CRCs to compute besides the ones the client sent (an append carrying whole-object CRCs forward). */
  async #ingest (body: Readable, size: number, max: number, alwaysMd5: boolean, expect: ExpectedChecksums | undefined, signal: AbortSignal | undefined, carry: CombinableCrc[] = []): Promise<{ data: Ingested, checksums: BodyChecksums }> {
    if (size > max) throw new CacheError('CC_ERR_BODY_TOO_LARGE', undefined, { detail: { max } })
    const md5: Md5Hasher | undefined = alwaysMd5 || expect?.md5 !== undefined ? createMd5Hasher() : undefined
    const crc = expect?.crc64 !== undefined ? new Crc64() : undefined
    const extra = expect?.additional === undefined ? undefined : createS3Hasher(expect.additional.algorithm)
    const carried = carry.filter((a) => a !== extra?.algorithm).map((a) => createS3Hasher(a))
    const observers: ChunkObserver[] = []
    if (extra !== undefined) observers.push((chunk) => { extra.update(chunk) })
    for (const h of carried) observers.push((chunk) => { h.update(chunk) })
    if (md5 !== undefined) observers.push((chunk) => md5.update(chunk) ? undefined : md5.ready())
    if (crc !== undefined) observers.push((chunk) => { crc.update(chunk) })
    let data: Ingested
    try {
      data = await this.store.ingest({ body, expectedSize: size, maxSize: max, observers, ...(signal === undefined ? {} : { signal }) })
    } catch (err) {
      md5?.destroy()
      throw err
    }
    const checksums: BodyChecksums = {}
    try {
      if (md5 !== undefined) checksums.md5 = await md5.digest()
      if (crc !== undefined) checksums.crc64 = crc.digest()
      if (expect?.md5 !== undefined && !expect.md5.equals(checksums.md5 as Buffer)) throw new CacheError('CC_ERR_MD5_MISMATCH')
      if (expect?.crc64 !== undefined && !expect.crc64.equals(checksums.crc64 as Buffer)) throw new CacheError('CC_ERR_CRC64_MISMATCH')
      if (extra !== undefined && expect?.additional !== undefined) {
        const value = extra.digest()
        const sent = expect.additional.value()
        if (sent !== undefined && !sent.equals(value)) {
          throw new CacheError('CC_ERR_CHECKSUM_MISMATCH', `The ${expect.additional.algorithm.toUpperCase()} you specified did not match the calculated checksum.`)
        }
        checksums.additional = { algorithm: extra.algorithm, value }
      }
      const crcs: PartCrcs = {}
      for (const h of carried) crcs[h.algorithm as CombinableCrc] = h.digest()
      if (checksums.additional !== undefined && isCombinableCrc(checksums.additional.algorithm)) crcs[checksums.additional.algorithm] = checksums.additional.value
      if (Object.keys(crcs).length > 0) checksums.crcs = crcs
    } catch (err) {
      await this.store.discard(data)
      throw err
    }
    return { data, checksums }
  }
}

/** What a single-shot write stores of its body's checksums (Put Blob, PutObject, an append that creates the object). */
function storedChecksums (checksums: BodyChecksums): ObjectChecksums {
  const stored: ObjectChecksums = {
    ...(checksums.md5 === undefined ? {} : { md5: checksums.md5.toString('base64') }),
    ...(checksums.crc64 === undefined ? {} : { crc64: checksums.crc64.toString('base64') })
  }
  if (checksums.additional !== undefined) {
    stored[checksums.additional.algorithm === 'md5' ? 'md5' : checksums.additional.algorithm] = checksums.additional.value.toString('base64')
    stored.checksumType = 'FULL_OBJECT'
  }
  return stored
}

/** Content headers without the Content-MD5 property (it no longer describes the content). */
function withoutMd5 (content: ContentHeaders): ContentHeaders {
  const { contentMd5: _dropped, ...rest } = content
  return rest
}
