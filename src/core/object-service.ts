import type { Readable } from 'node:stream'
import { CacheError } from '../errors.js'
import type { ChunkObserver } from '../store/durable.js'
import type { BlockRef, Ingested, LocalStore, StoreListPage } from '../store/local-store.js'
import type { ListQuery } from '../store/sorted-names.js'
import { Crc64 } from './checksum/crc64.js'
import { createMd5Hasher, type Md5Hasher } from './checksum/md5.js'
import { checkReadConditions, checkWriteConditions } from './conditions.js'
import { INLINE_MD5_MAX, Md5Backfill } from './md5-backfill.js'
import type { ByteRange, Conditions, ContainerMeta, ContentHeaders, ObjectMeta, StagedBlock, UserMetadata } from './types.js'

/** Largest single-shot object or block body accepted (Azure: 5000 MiB Put Blob, 4000 MiB block). */
export const MAX_OBJECT_PUT = 5000 * 1024 * 1024
export const MAX_BLOCK_PUT = 4000 * 1024 * 1024

/** Checksums a client sent with a body, to verify before commit. */
export interface ExpectedChecksums {
  md5?: Buffer
  crc64?: Buffer
}

/** Checksums computed over a body. */
export interface BodyChecksums {
  md5?: Buffer
  crc64?: Buffer
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
}

export interface StageBlockInput {
  container: string
  name: string
  blockId: string
  body: Readable
  size: number
  expect?: ExpectedChecksums
  signal?: AbortSignal
}

export interface CommitBlocksInput {
  container: string
  name: string
  blocks: BlockRef[]
  content: ContentHeaders
  metadata: UserMetadata
  conditions?: Conditions
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
    const inlineMd5 = p.size <= INLINE_MD5_MAX || this.#backfill === undefined
    const { data, checksums } = await this.#ingest(p.body, p.size, MAX_OBJECT_PUT, inlineMd5, p.expect, p.signal)
    const content = { ...p.content }
    if (content.contentMd5 === undefined && checksums.md5 !== undefined) content.contentMd5 = checksums.md5.toString('base64')
    const meta = await this.store.commitObject(p.container, p.name, data, {
      content,
      metadata: p.metadata,
      checksums: {
        ...(checksums.md5 === undefined ? {} : { md5: checksums.md5.toString('base64') }),
        ...(checksums.crc64 === undefined ? {} : { crc64: checksums.crc64.toString('base64') })
      }
    }, (current) => checkWriteConditions(current, p.conditions))
    if (checksums.md5 === undefined) this.#backfill?.schedule(meta)
    return { meta, checksums }
  }

  /** Put Block / UploadPart. Computes MD5 only when the client sent one to check. */
  async stageBlock (p: StageBlockInput): Promise<{ block: StagedBlock, checksums: BodyChecksums }> {
    this.getContainer(p.container)
    const { data, checksums } = await this.#ingest(p.body, p.size, MAX_BLOCK_PUT, false, p.expect, p.signal)
    const block = await this.store.stageBlock(p.container, p.name, p.blockId, data)
    return { block, checksums }
  }

  /** Put Block List / CompleteMultipartUpload. */
  commitBlocks (p: CommitBlocksInput): Promise<ObjectMeta> {
    this.getContainer(p.container)
    return this.store.commitBlocks(p.container, p.name, p.blocks,
      { content: p.content, metadata: p.metadata, checksums: {} },
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
  }): Promise<ObjectMeta> {
    this.getContainer(p.container)
    return this.store.copyObject(p.source, p.container, p.name, {
      content: p.content ?? p.source.content,
      metadata: p.metadata ?? p.source.metadata,
      checksums: p.source.checksums
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

  async #ingest (body: Readable, size: number, max: number, alwaysMd5: boolean, expect: ExpectedChecksums | undefined, signal: AbortSignal | undefined): Promise<{ data: Ingested, checksums: BodyChecksums }> {
    if (size > max) throw new CacheError('CC_ERR_BODY_TOO_LARGE', undefined, { detail: { max } })
    const md5: Md5Hasher | undefined = alwaysMd5 || expect?.md5 !== undefined ? createMd5Hasher() : undefined
    const crc = expect?.crc64 !== undefined ? new Crc64() : undefined
    const observers: ChunkObserver[] = []
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
    } catch (err) {
      await this.store.discard(data)
      throw err
    }
    return { data, checksums }
  }
}
