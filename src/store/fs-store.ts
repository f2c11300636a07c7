import { mkdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { CacheError } from '../errors.js'
import { newEtag } from '../core/etag.js'
import type { ByteRange, ContainerMeta, Extent, ObjectMeta, StagedBlock, UserMetadata } from '../core/types.js'
import type { EvictionPolicy } from '../config/schema.js'
import { Capacity } from './capacity.js'
import { fsyncDir, ingestToTemp, writeFileAtomic } from './durable.js'
import { KeyLock } from './key-lock.js'
import type {
  AppendWrite, BlockRef, Ingested, IngestRequest, LocalStore, ObjectWrite, Precheck, StoreEvent, StoreListPage, StoreStats, StoreWatcher
} from './local-store.js'
import { ObjectFiles } from './object-files.js'
import { cleanVersion, Versions, withChecksums } from './object-versions.js'
import { ObjectWrites } from './object-writes.js'
import { nextGen, objectHash, STORE_FORMAT, StorePaths } from './paths.js'
import { Pins } from './pins.js'
import { rebuildIndex } from './rebuild.js'
import type { ListQuery } from './sorted-names.js'
import { StagedBlocks } from './staged-blocks.js'
import { StoreIndex } from './store-index.js'

export interface FsStoreOptions {
  root: string
  capacity: number
  eviction: EvictionPolicy
  /** Uncommitted blocks older than this are removed. */
  stagedBlockMaxAgeMs: number
  /** Azure allows 100,000 uncommitted blocks per blob. */
  maxStagedBlocks?: number
  /** S3 allows 10,000 parts per object (appends plus multipart parts). */
  maxParts?: number
  onError?: (err: unknown, what: string) => void
  /**
   * A store with a cloud tier (writeback modes): every write makes a dirty version (never
   * evicted) until `markClean`; read-through fills (`ObjectWrite.fill`) are clean from the start.
   */
  tiered?: boolean
}

/**
 * The local NVMe store: one directory per object, JSON sidecar as commit point, extents as files.
 * Its parts: the in-memory index (store-index.ts), the object directories on disk
 * (object-files.ts), the staged blocks (staged-blocks.ts), what a new version holds
 * (object-versions.ts) and the writes that commit versions (object-writes.ts).
 */
export class FsStore implements LocalStore {
  readonly #paths: StorePaths
  readonly #opts: FsStoreOptions
  readonly #capacity: Capacity
  readonly #lock = new KeyLock()
  readonly #pins = new Pins()
  readonly #index: StoreIndex
  readonly #files: ObjectFiles
  readonly #staged: StagedBlocks
  readonly #versions: Versions
  readonly #writes: ObjectWrites
  readonly #deleting = new Set<string>()
  #gcTimer: NodeJS.Timeout | undefined
  readonly #watchers: StoreWatcher[] = []

  constructor (opts: FsStoreOptions) {
    this.#opts = opts
    this.#paths = new StorePaths(opts.root)
    this.#capacity = new Capacity(opts.capacity, opts.eviction)
    this.#index = new StoreIndex(this.#capacity)
    this.#files = new ObjectFiles(this.#paths, this.#pins, (err, what) => this.#opts.onError?.(err, what))
    this.#staged = new StagedBlocks({
      files: this.#files, capacity: this.#capacity, lock: this.#lock, hasObject: (hash) => this.#index.byHash(hash) !== undefined
    })
    this.#versions = new Versions(opts.tiered === true)
    this.#writes = new ObjectWrites({
      lock: this.#lock,
      pins: this.#pins,
      capacity: this.#capacity,
      index: this.#index,
      staged: this.#staged,
      files: this.#files,
      versions: this.#versions,
      limits: opts,
      tell: async (event) => await this.#tell(event),
      makeRoom: (bytes) => this.#makeRoom(bytes),
      discard: async (data) => await this.discard(data),
      removeObject: async (hash, extents, withMeta) => await this.#removeObject(hash, extents, withMeta)
    })
  }

  async open (): Promise<void> {
    const p = this.#paths
    await mkdir(p.root, { recursive: true })
    const formatFile = join(p.root, 'FORMAT')
    const format = await readFile(formatFile, 'utf8').catch(() => undefined)
    if (format !== undefined && format.trim() !== STORE_FORMAT) {
      throw new Error(`data directory ${p.root} holds store format '${format.trim()}', expected '${STORE_FORMAT}'`)
    }
    for (const d of [p.tmp, p.objects, p.containers]) await mkdir(d, { recursive: true })
    if (format === undefined) {
      await writeFile(formatFile, STORE_FORMAT + '\n')
      await fsyncDir(p.root)
    }
    const idx = await rebuildIndex(p)
    for (const c of idx.containers) this.#index.addContainer(c)
    idx.objects.sort((a, b) => a.lastModifiedMs - b.lastModifiedMs)
    for (const meta of idx.objects) {
      this.#index.install(objectHash(meta.container, meta.name), meta)
      this.#versions.saw(meta.seq)
    }
    this.#staged.restore(idx.staged)
    const every = Math.max(1000, Math.min(this.#opts.stagedBlockMaxAgeMs / 4, 10 * 60_000))
    this.#gcTimer = setInterval(() => { this.collectStagedBlocks().catch((err) => this.#opts.onError?.(err, 'staged block gc')) }, every)
    this.#gcTimer.unref()
  }

  async close (): Promise<void> {
    if (this.#gcTimer !== undefined) clearInterval(this.#gcTimer)
    this.#gcTimer = undefined
  }

  /** Changes the capacity limit (e.g. once the bytes already stored are known at start). */
  setCapacity (limit: number): void {
    this.#capacity.limit = limit
  }

  stats (): StoreStats {
    const c = this.#capacity
    return {
      capacity: c.limit, used: c.used, committed: c.committed, staged: c.staged, reserved: c.reserved,
      objects: this.#index.objectCount, containers: this.#index.containerCount
    }
  }

  // ---- containers -------------------------------------------------------

  async createContainer (name: string, metadata: UserMetadata): Promise<ContainerMeta> {
    return this.#lock.run('container:' + name, async () => {
      if (this.#deleting.has(name)) throw new CacheError('CC_ERR_CONTAINER_BEING_DELETED')
      if (this.#index.findContainer(name) !== undefined) throw new CacheError('CC_ERR_CONTAINER_EXISTS')
      const now = Date.now()
      const meta: ContainerMeta = { name, etag: newEtag(now), createdMs: now, lastModifiedMs: now, metadata }
      await writeFileAtomic(this.#paths.tmp, this.#paths.containerFile(name), JSON.stringify(meta))
      await fsyncDir(this.#paths.containers)
      this.#index.addContainer(meta)
      return meta
    })
  }

  getContainer (name: string): ContainerMeta | undefined {
    return this.#index.findContainer(name)?.meta
  }

  listContainers (prefix = ''): ContainerMeta[] {
    return this.#index.listContainers(prefix)
  }

  async setContainerMetadata (name: string, metadata: UserMetadata, precheck?: (c: ContainerMeta) => void): Promise<ContainerMeta> {
    return this.#lock.run('container:' + name, async () => {
      const state = this.#index.container(name)
      precheck?.(state.meta)
      const now = Date.now()
      const meta: ContainerMeta = { ...state.meta, metadata, etag: newEtag(now), lastModifiedMs: now }
      await writeFileAtomic(this.#paths.tmp, this.#paths.containerFile(name), JSON.stringify(meta))
      await fsyncDir(this.#paths.containers)
      state.meta = meta
      return meta
    })
  }

  async deleteContainer (name: string, opts: { precheck?: (c: ContainerMeta) => void, requireEmpty?: boolean } = {}): Promise<void> {
    const state = await this.#lock.run('container:' + name, async () => {
      const state = this.#index.container(name)
      opts.precheck?.(state.meta)
      if (opts.requireEmpty === true && state.objects.size > 0) throw new CacheError('CC_ERR_CONTAINER_NOT_EMPTY')
      await this.#tell({ type: 'delete-container', container: name })
      // Commit point: the container record goes; objects of a missing container are debris at the next start.
      await unlink(this.#paths.containerFile(name))
      await fsyncDir(this.#paths.containers)
      this.#index.removeContainer(name)
      this.#deleting.add(name)
      return state
    })
    const purge = (async () => {
      for (const meta of state.objects.values()) {
        const hash = objectHash(name, meta.name)
        await this.#lock.run(hash, async () => {
          this.#index.uninstall(hash, meta)
          await this.#removeObject(hash, meta.extents, true)
        })
      }
      await this.#staged.purge(name)
    })().catch((err) => this.#opts.onError?.(err, 'container purge')).finally(() => this.#deleting.delete(name))
    // Like Azure, the container is gone at once and its blobs are removed behind it; small ones finish before we answer.
    await Promise.race([purge, new Promise((resolve) => setTimeout(resolve, 2000).unref())])
  }

  // ---- objects: reads ---------------------------------------------------

  head (container: string, name: string): ObjectMeta | undefined {
    return this.#index.head(container, name)
  }

  openRead (meta: ObjectMeta, range?: ByteRange): Readable {
    const hash = objectHash(meta.container, meta.name)
    this.#capacity.touch(hash)
    return this.#files.read(hash, meta, range)
  }

  list (container: string, query: ListQuery): StoreListPage {
    return this.#index.list(container, query)
  }

  stagedBlocks (container: string, name: string): StagedBlock[] {
    this.#index.container(container)
    return this.#staged.list(objectHash(container, name))
  }

  stagedNames (container: string): string[] {
    this.#index.container(container)
    return this.#staged.names(container)
  }

  openStagedBlock (container: string, name: string, block: StagedBlock): Readable {
    return this.#files.readBlock(objectHash(container, name), block)
  }

  // ---- objects: writes --------------------------------------------------

  async ingest (req: IngestRequest): Promise<Ingested> {
    const reserve = req.expectedSize ?? req.maxSize
    this.#makeRoom(reserve)
    try {
      const file = await ingestToTemp(this.#paths.tmp, req.body, {
        maxSize: req.maxSize,
        ...(req.expectedSize === undefined ? {} : { expectedSize: req.expectedSize }),
        ...(req.observers === undefined ? {} : { observers: req.observers }),
        ...(req.signal === undefined ? {} : { signal: req.signal })
      })
      // Give back what an unsized body did not use.
      this.#capacity.unreserve(reserve - file.size)
      return { path: file.path, size: file.size, reserved: file.size }
    } catch (err) {
      this.#capacity.unreserve(reserve)
      throw err
    }
  }

  async discard (data: Ingested): Promise<void> {
    this.#capacity.unreserve(data.reserved)
    await rm(data.path, { force: true })
  }

  async commitObject (container: string, name: string, data: Ingested, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    return await this.#writes.commitObject(container, name, data, write, precheck)
  }

  async appendObject (container: string, name: string, data: Ingested, append: AppendWrite, precheck: Precheck): Promise<ObjectMeta> {
    return await this.#writes.appendObject(container, name, data, append, precheck)
  }

  async stageBlock (container: string, name: string, blockId: string, data: Ingested): Promise<StagedBlock> {
    return await this.#writes.stageBlock(container, name, blockId, data)
  }

  async commitBlocks (container: string, name: string, blocks: BlockRef[], write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    return await this.#writes.commitBlocks(container, name, blocks, write, precheck)
  }

  async dropStagedBlocks (container: string, name: string): Promise<void> {
    const hash = objectHash(container, name)
    await this.#lock.run(hash, async () => {
      this.#index.container(container)
      await this.#staged.remove(hash)
    })
  }

  async copyObject (source: ObjectMeta, container: string, name: string, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    return await this.#writes.copyObject(source, container, name, write, precheck)
  }

  async updateObject (container: string, name: string, patch: { content?: ObjectMeta['content'], metadata?: UserMetadata }, precheck: Precheck): Promise<ObjectMeta> {
    return await this.#writes.updateObject(container, name, patch, precheck)
  }

  async addChecksums (container: string, name: string, etag: string, checksums: ObjectMeta['checksums']): Promise<boolean> {
    return await this.#writes.rewrite(container, name, etag, (current) => withChecksums(current, checksums))
  }

  async markClean (container: string, name: string, etag: string, upstreamEtag: string, checksums?: ObjectMeta['checksums']): Promise<boolean> {
    return await this.#writes.rewrite(container, name, etag, (current) => cleanVersion(current, upstreamEtag, checksums))
  }

  async evict (container: string, name: string, etag: string): Promise<boolean> {
    return (await this.#dropVersion(container, name, (current) => current.etag === etag && current.dirty !== true)) !== undefined
  }

  async setHolders (container: string, name: string, etag: string, holders: string[]): Promise<boolean> {
    return await this.#writes.rewrite(container, name, etag, (current) => ({ ...current, holders }))
  }

  async dropCopy (container: string, name: string, etag?: string, opts: { deleted?: boolean } = {}): Promise<ObjectMeta | undefined> {
    return await this.#dropVersion(container, name, (current) => etag === undefined || current.etag === etag, opts.deleted === true)
  }

  async allocate (size: number): Promise<Ingested> {
    this.#makeRoom(size)
    const path = join(this.#paths.tmp, `f-${nextGen()}`)
    try {
      await writeFile(path, '', { flag: 'wx' })
      await truncate(path, size)
    } catch (err) {
      this.#capacity.unreserve(size)
      await rm(path, { force: true })
      throw err
    }
    return { path, size, reserved: size }
  }

  watch (watcher: StoreWatcher): void {
    this.#watchers.push(watcher)
  }

  objects (): IterableIterator<ObjectMeta> {
    return this.#index.objects()
  }

  async deleteObject (container: string, name: string, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#index.container(container).objects.get(name)
      precheck(current)
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      await this.#tell({ type: 'delete', meta: current })
      this.#index.uninstall(hash, current)
      await this.#removeObject(hash, current.extents, true)
      return current
    })
  }

  /** Removes uncommitted blocks older than the configured age. */
  async collectStagedBlocks (now = Date.now()): Promise<number> {
    return await this.#staged.collect(now - this.#opts.stagedBlockMaxAgeMs)
  }

  // ---- internals --------------------------------------------------------

  /** Tells the watchers, in order, waiting for each. */
  async #tell (event: StoreEvent): Promise<void> {
    for (const w of this.#watchers) await w(event)
  }

  /**
   * Drops this node's copy of a name under its lock when `accept` takes the current version: files
   * removed (meta.json first), then watchers told `evict` (with `deleted` when given). Returns the
   * dropped version.
   */
  async #dropVersion (container: string, name: string, accept: (current: ObjectMeta) => boolean, deleted?: boolean): Promise<ObjectMeta | undefined> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#index.head(container, name)
      if (current === undefined || !accept(current)) return undefined
      this.#index.uninstall(hash, current)
      await this.#removeObject(hash, current.extents, true)
      await this.#tell(deleted === undefined ? { type: 'evict', meta: current } : { type: 'evict', meta: current, deleted })
      return current
    })
  }

  /** Reserves room for a write, evicting least recently used objects under `lru`. */
  #makeRoom (bytes: number): void {
    // Dirty data is never evicted: it exists nowhere else yet.
    const victims = this.#capacity.planRoom(bytes, (hash) => this.#index.byHash(hash)?.dirty === true)
    for (const hash of victims) {
      const meta = this.#index.byHash(hash)
      if (meta === undefined) continue
      this.#index.uninstall(hash, meta)
      this.#tell({ type: 'evict', meta }).catch((err) => this.#opts.onError?.(err, 'evict watcher'))
      void this.#lock.run(hash, async () => {
        const now = this.#index.byHash(hash)
        const keep = new Set(now?.extents.map((e) => e.file) ?? [])
        await this.#removeObject(hash, meta.extents.filter((e) => !keep.has(e.file)), now === undefined)
      }).catch((err) => this.#opts.onError?.(err, 'evict'))
    }
    this.#capacity.reserve(bytes)
  }

  /** Deletes an object's files. With `withMeta`, meta.json goes first (the commit point of a delete), then its staged blocks. */
  async #removeObject (hash: string, extents: Extent[], withMeta: boolean): Promise<void> {
    if (withMeta) {
      await this.#files.removeMeta(hash)
      await this.#files.removeAll(this.#staged.drop(hash, new Set()))
    }
    await this.#files.removeFiles(hash, extents)
    if (withMeta) await this.#files.removeDirIfEmpty(hash)
  }
}
