import { link, mkdir, readFile, rename, rm, rmdir, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { CacheError } from '../errors.js'
import { newEtag } from '../core/etag.js'
import { MAX_PARTS, partCount, type ByteRange, type ContainerMeta, type Extent, type ObjectMeta, type StagedBlock, type UserMetadata } from '../core/types.js'
import type { EvictionPolicy } from '../config/schema.js'
import { Capacity } from './capacity.js'
import { fsyncDir, ingestToTemp, writeFileAtomic } from './durable.js'
import { KeyLock } from './key-lock.js'
import type {
  AppendWrite, BlockRef, Ingested, IngestRequest, ListedEntry, LocalStore, ObjectWrite, Precheck, StoreEvent, StoreListPage, StoreStats, StoreWatcher
} from './local-store.js'
import { blobExtentName, blockExtentName, nextGen, objectHash, STORE_FORMAT, StorePaths } from './paths.js'
import { Pins } from './pins.js'
import { SliceReader, type FileSlice } from './read-stream.js'
import { rebuildIndex } from './rebuild.js'
import { SortedNames, type ListQuery } from './sorted-names.js'

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

interface ContainerState {
  meta: ContainerMeta
  names: SortedNames
  objects: Map<string, ObjectMeta>
}

interface StagedSet {
  container: string
  name: string
  blocks: Map<string, StagedBlock>
}

const MAX_STAGED_DEFAULT = 100_000

/** The local NVMe store: one directory per object, JSON sidecar as commit point, extents as files. */
export class FsStore implements LocalStore {
  readonly #paths: StorePaths
  readonly #opts: FsStoreOptions
  readonly #capacity: Capacity
  readonly #lock = new KeyLock()
  readonly #pins = new Pins()
  readonly #containers = new Map<string, ContainerState>()
  readonly #deleting = new Set<string>()
  readonly #byHash = new Map<string, ObjectMeta>()
  readonly #staged = new Map<string, StagedSet>()
  #gcTimer: NodeJS.Timeout | undefined
  readonly #watchers: StoreWatcher[] = []
  /** The next dirty version's commit sequence number. */
  #nextSeq = 1

  constructor (opts: FsStoreOptions) {
    this.#opts = opts
    this.#paths = new StorePaths(opts.root)
    this.#capacity = new Capacity(opts.capacity, opts.eviction)
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
    for (const c of idx.containers) this.#containers.set(c.name, { meta: c, names: new SortedNames(), objects: new Map() })
    idx.objects.sort((a, b) => a.lastModifiedMs - b.lastModifiedMs)
    for (const meta of idx.objects) {
      this.#install(objectHash(meta.container, meta.name), meta)
      if (meta.seq !== undefined && meta.seq >= this.#nextSeq) this.#nextSeq = meta.seq + 1
    }
    for (const s of idx.staged) {
      this.#staged.set(s.hash, { container: s.container, name: s.name, blocks: new Map(s.blocks.map((b) => [b.blockId, b])) })
      for (const b of s.blocks) this.#capacity.staged += b.size
    }
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
      objects: this.#byHash.size, containers: this.#containers.size
    }
  }

  // ---- containers -------------------------------------------------------

  async createContainer (name: string, metadata: UserMetadata): Promise<ContainerMeta> {
    return this.#lock.run('container:' + name, async () => {
      if (this.#deleting.has(name)) throw new CacheError('CC_ERR_CONTAINER_BEING_DELETED')
      if (this.#containers.has(name)) throw new CacheError('CC_ERR_CONTAINER_EXISTS')
      const now = Date.now()
      const meta: ContainerMeta = { name, etag: newEtag(now), createdMs: now, lastModifiedMs: now, metadata }
      await writeFileAtomic(this.#paths.tmp, this.#paths.containerFile(name), JSON.stringify(meta))
      await fsyncDir(this.#paths.containers)
      this.#containers.set(name, { meta, names: new SortedNames(), objects: new Map() })
      return meta
    })
  }

  getContainer (name: string): ContainerMeta | undefined {
    return this.#containers.get(name)?.meta
  }

  listContainers (prefix = ''): ContainerMeta[] {
    const out: ContainerMeta[] = []
    for (const c of this.#containers.values()) if (c.meta.name.startsWith(prefix)) out.push(c.meta)
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  async setContainerMetadata (name: string, metadata: UserMetadata, precheck?: (c: ContainerMeta) => void): Promise<ContainerMeta> {
    return this.#lock.run('container:' + name, async () => {
      const state = this.#container(name)
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
      const state = this.#container(name)
      opts.precheck?.(state.meta)
      if (opts.requireEmpty === true && state.objects.size > 0) throw new CacheError('CC_ERR_CONTAINER_NOT_EMPTY')
      await this.#tell({ type: 'delete-container', container: name })
      // Commit point: the container record goes; objects of a missing container are debris at the next start.
      await unlink(this.#paths.containerFile(name))
      await fsyncDir(this.#paths.containers)
      this.#containers.delete(name)
      this.#deleting.add(name)
      return state
    })
    const purge = (async () => {
      for (const meta of state.objects.values()) {
        const hash = objectHash(name, meta.name)
        await this.#lock.run(hash, async () => {
          this.#uninstall(hash, meta)
          await this.#removeObjectFiles(hash, meta.extents, true)
        })
      }
      for (const [hash, set] of [...this.#staged]) {
        if (set.container !== name) continue
        await this.#lock.run(hash, async () => {
          await this.#removeAll(this.#dropStaged(hash, new Set()))
          await this.#removeDirIfEmpty(hash)
        })
      }
    })().catch((err) => this.#opts.onError?.(err, 'container purge')).finally(() => this.#deleting.delete(name))
    // Like Azure, the container is gone at once and its blobs are removed behind it; small ones finish before we answer.
    await Promise.race([purge, new Promise((resolve) => setTimeout(resolve, 2000).unref())])
  }

  // ---- objects: reads ---------------------------------------------------

  head (container: string, name: string): ObjectMeta | undefined {
    return this.#containers.get(container)?.objects.get(name)
  }

  openRead (meta: ObjectMeta, range?: ByteRange): Readable {
    const hash = objectHash(meta.container, meta.name)
    const dir = this.#paths.objectDir(hash)
    const start = range?.start ?? 0
    const end = range?.end ?? meta.size - 1
    const slices: FileSlice[] = []
    let offset = 0
    for (const e of meta.extents) {
      const eStart = offset
      const eEnd = offset + e.size - 1
      offset += e.size
      if (e.size === 0 || eEnd < start || eStart > end) continue
      slices.push({ path: join(dir, e.file), start: Math.max(start, eStart) - eStart, end: Math.min(end, eEnd) - eStart })
    }
    const pinned = slices.map((s) => s.path)
    this.#pins.pin(pinned)
    this.#capacity.touch(hash)
    return new SliceReader(slices, () => this.#pins.unpin(pinned))
  }

  list (container: string, query: ListQuery): StoreListPage {
    const state = this.#container(container)
    const page = state.names.list(query)
    const entries: ListedEntry[] = []
    for (const e of page.entries) {
      if (e.kind === 'prefix') {
        entries.push(e)
      } else {
        const meta = state.objects.get(e.name)
        if (meta !== undefined) entries.push({ kind: 'object', meta })
      }
    }
    return page.next === undefined ? { entries } : { entries, next: page.next }
  }

  stagedBlocks (container: string, name: string): StagedBlock[] {
    this.#container(container)
    const set = this.#staged.get(objectHash(container, name))
    if (set === undefined) return []
    return [...set.blocks.values()].sort((a, b) => (a.file < b.file ? -1 : 1))
  }

  stagedNames (container: string): string[] {
    this.#container(container)
    const names: string[] = []
    for (const set of this.#staged.values()) if (set.container === container && set.blocks.size > 0) names.push(set.name)
    return names.sort()
  }

  openStagedBlock (container: string, name: string, block: StagedBlock): Readable {
    const path = join(this.#paths.objectDir(objectHash(container, name)), block.file)
    const slices: FileSlice[] = block.size === 0 ? [] : [{ path, start: 0, end: block.size - 1 }]
    const pinned = slices.map((s) => s.path)
    this.#pins.pin(pinned)
    return new SliceReader(slices, () => this.#pins.unpin(pinned))
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
    const hash = objectHash(container, name)
    return await this.#withIngested(hash, data, async (body) => {
      const state = this.#container(container)
      const current = state.objects.get(name)
      precheck(current)
      const dir = await this.#ensureDir(hash)
      const file = blobExtentName(nextGen())
      await body.place(dir, file)
      const meta = this.#newMeta(container, name, current, write, [{ file, size: data.size }], false)
      await this.#commitMeta(hash, meta)
      body.charged()
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  async appendObject (container: string, name: string, data: Ingested, append: AppendWrite, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return await this.#withIngested(hash, data, async (body) => {
      const current = this.#container(container).objects.get(name)
      precheck(current)
      // Checked here, under the lock: a concurrent append that committed first changed the size.
      const size = current?.size ?? 0
      if (append.offset !== size) throw new CacheError('CC_ERR_INVALID_WRITE_OFFSET', undefined, { detail: { size, offset: append.offset } })
      const parts = current === undefined ? 1 : partCount(current) + 1
      if (parts > (this.#opts.maxParts ?? MAX_PARTS)) throw new CacheError('CC_ERR_TOO_MANY_PARTS', undefined, { detail: { parts: parts - 1 } })
      // The previous version's extents are shared, not copied: only the appended bytes are new.
      const file = blobExtentName(nextGen())
      const extents = [...(current?.extents ?? []), { file, size: data.size }]
      const meta = this.#newMeta(container, name, current, { ...append.write(current), parts }, extents, false)
      const dir = await this.#ensureDir(hash)
      await body.place(dir, file)
      await this.#commitMeta(hash, meta)
      body.charged()
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  /**
   * Runs `fn` under the object's lock with an ingested body. `place(dir, file)` moves the body into
   * the object's directory (from then on it is no longer discarded on failure); `charged()` hands
   * its capacity reservation over to the committed or staged bytes. A body never placed is
   * discarded; the reservation is released whatever happens.
   */
  async #withIngested<T> (hash: string, data: Ingested, fn: (body: { place (dir: string, file: string): Promise<void>, charged (): void }) => Promise<T>): Promise<T> {
    let reserved = data.reserved
    let moved = false
    try {
      return await this.#lock.run(hash, async () => await fn({
        place: async (dir, file) => {
          await rename(data.path, join(dir, file))
          moved = true
        },
        charged: () => {
          this.#capacity.unreserve(reserved)
          reserved = 0
        }
      }))
    } finally {
      if (!moved) await this.discard({ ...data, reserved })
      else this.#capacity.unreserve(reserved)
    }
  }

  async stageBlock (container: string, name: string, blockId: string, data: Ingested): Promise<StagedBlock> {
    const hash = objectHash(container, name)
    return await this.#withIngested(hash, data, async (body) => {
      this.#container(container)
      let set = this.#staged.get(hash)
      const previous = set?.blocks.get(blockId)
      if (previous === undefined && (set?.blocks.size ?? 0) >= (this.#opts.maxStagedBlocks ?? MAX_STAGED_DEFAULT)) {
        throw new CacheError('CC_ERR_BLOCK_COUNT_EXCEEDED')
      }
      const dir = await this.#ensureDir(hash)
      if (set === undefined && !this.#byHash.has(hash)) {
        await writeFileAtomic(this.#paths.tmp, join(dir, 'owner.json'), JSON.stringify({ container, name }))
      }
      const file = blockExtentName(nextGen(), blockId)
      await body.place(dir, file)
      await fsyncDir(dir)
      const block: StagedBlock = { blockId, size: data.size, file, stagedMs: Date.now() }
      if (set === undefined) {
        set = { container, name, blocks: new Map() }
        this.#staged.set(hash, set)
      }
      set.blocks.set(blockId, block)
      body.charged()
      this.#capacity.staged += block.size
      if (previous !== undefined) {
        this.#capacity.staged -= previous.size
        await this.#pins.remove(join(dir, previous.file))
      }
      return block
    })
  }

  async commitBlocks (container: string, name: string, blocks: BlockRef[], write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const state = this.#container(container)
      const current = state.objects.get(name)
      precheck(current)
      const committed = new Map<string, Extent>()
      if (current?.fromBlocks === true) for (const e of current.extents) if (e.blockId !== undefined) committed.set(e.blockId, e)
      const staged = this.#staged.get(hash)?.blocks
      const extents: Extent[] = []
      for (const ref of blocks) {
        const fromStaged = staged?.get(ref.id)
        const fromCommitted = committed.get(ref.id)
        const pick = ref.source === 'committed'
          ? fromCommitted
          : ref.source === 'uncommitted'
            ? fromStaged
            : fromStaged ?? fromCommitted
        if (pick === undefined) {
          throw new CacheError('CC_ERR_INVALID_BLOCK_LIST', undefined, { detail: { blockId: ref.id, source: ref.source } })
        }
        extents.push({ file: pick.file, size: pick.size, blockId: ref.id })
      }
      await this.#ensureDir(hash)
      const meta = this.#newMeta(container, name, current, write, extents, true)
      await this.#commitMeta(hash, meta)
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  async dropStagedBlocks (container: string, name: string): Promise<void> {
    const hash = objectHash(container, name)
    await this.#lock.run(hash, async () => {
      this.#container(container)
      await this.#removeAll(this.#dropStaged(hash, new Set()))
      if (!this.#byHash.has(hash)) await this.#removeDirIfEmpty(hash)
    })
  }

  async copyObject (source: ObjectMeta, container: string, name: string, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    const srcDir = this.#paths.objectDir(objectHash(source.container, source.name))
    const srcPaths = source.extents.map((e) => join(srcDir, e.file))
    this.#pins.pin(srcPaths)
    const hash = objectHash(container, name)
    this.#makeRoom(source.size)
    let reserved = source.size
    try {
      return await this.#lock.run(hash, async () => {
        const state = this.#container(container)
        const current = state.objects.get(name)
        precheck(current)
        const dir = await this.#ensureDir(hash)
        const extents: Extent[] = []
        for (const [i, e] of source.extents.entries()) {
          const gen = nextGen()
          const file = e.blockId !== undefined ? blockExtentName(gen, e.blockId) : blobExtentName(gen)
          await link(srcPaths[i] as string, join(dir, file))
          extents.push(e.blockId !== undefined ? { file, size: e.size, blockId: e.blockId } : { file, size: e.size })
        }
        // A copy is one part toward S3's append limit, however many blocks its source had.
        const parts = source.fromBlocks && extents.length !== 1 ? { parts: 1 } : {}
        const meta = this.#newMeta(container, name, current, { ...write, ...parts }, extents, source.fromBlocks)
        await this.#commitMeta(hash, meta)
        this.#capacity.unreserve(reserved)
        reserved = 0
        await this.#afterCommit(hash, current, meta)
        return meta
      })
    } finally {
      this.#capacity.unreserve(reserved)
      this.#pins.unpin(srcPaths)
    }
  }

  async updateObject (container: string, name: string, patch: { content?: ObjectMeta['content'], metadata?: UserMetadata }, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const state = this.#container(container)
      const current = state.objects.get(name)
      precheck(current)
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      const now = Date.now()
      const meta: ObjectMeta = {
        ...current,
        content: patch.content ?? current.content,
        metadata: patch.metadata ?? current.metadata,
        etag: newEtag(now),
        lastModifiedMs: now,
        ...this.#tierState(current)
      }
      await this.#commitMeta(hash, meta)
      this.#install(hash, meta)
      await this.#tell({ type: 'commit', meta, previous: current })
      return meta
    })
  }

  async addChecksums (container: string, name: string, etag: string, checksums: ObjectMeta['checksums']): Promise<boolean> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#containers.get(container)?.objects.get(name)
      if (current === undefined || current.etag !== etag) return false
      const meta = withChecksums(current, checksums)
      await this.#commitMeta(hash, meta)
      this.#install(hash, meta)
      return true
    })
  }

  async markClean (container: string, name: string, etag: string, upstreamEtag: string, checksums?: ObjectMeta['checksums']): Promise<boolean> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#containers.get(container)?.objects.get(name)
      if (current === undefined || current.etag !== etag) return false
      const md5 = checksums?.md5 !== undefined && current.checksums.md5 === undefined ? checksums.md5 : undefined
      if (current.dirty !== true && current.upstreamEtag === upstreamEtag && md5 === undefined) return true
      const { dirty: _dirty, seq: _seq, ...rest } = current
      const meta = withChecksums({ ...rest, upstreamEtag }, md5 === undefined ? {} : { md5 })
      await this.#commitMeta(hash, meta)
      this.#install(hash, meta)
      return true
    })
  }

  async evict (container: string, name: string, etag: string): Promise<boolean> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#containers.get(container)?.objects.get(name)
      if (current === undefined || current.etag !== etag || current.dirty === true) return false
      this.#uninstall(hash, current)
      await this.#removeObjectFiles(hash, current.extents, true)
      await this.#tell({ type: 'evict', meta: current })
      return true
    })
  }

  async setHolders (container: string, name: string, etag: string, holders: string[]): Promise<boolean> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#containers.get(container)?.objects.get(name)
      if (current === undefined || current.etag !== etag) return false
      const meta = { ...current, holders }
      await this.#commitMeta(hash, meta)
      this.#install(hash, meta)
      return true
    })
  }

  async dropCopy (container: string, name: string, etag?: string, opts: { deleted?: boolean } = {}): Promise<ObjectMeta | undefined> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const current = this.#containers.get(container)?.objects.get(name)
      if (current === undefined || (etag !== undefined && current.etag !== etag)) return undefined
      this.#uninstall(hash, current)
      await this.#removeObjectFiles(hash, current.extents, true)
      await this.#tell({ type: 'evict', meta: current, deleted: opts.deleted === true })
      return current
    })
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
    return this.#byHash.values()
  }

  async deleteObject (container: string, name: string, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#lock.run(hash, async () => {
      const state = this.#container(container)
      const current = state.objects.get(name)
      precheck(current)
      if (current === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      await this.#tell({ type: 'delete', meta: current })
      this.#uninstall(hash, current)
      await this.#removeObjectFiles(hash, current.extents, true)
      return current
    })
  }

  /** Removes uncommitted blocks older than the configured age. */
  async collectStagedBlocks (now = Date.now()): Promise<number> {
    let removed = 0
    const cutoff = now - this.#opts.stagedBlockMaxAgeMs
    for (const [hash, set] of [...this.#staged]) {
      if (![...set.blocks.values()].some((b) => b.stagedMs < cutoff)) continue
      await this.#lock.run(hash, async () => {
        const dir = this.#paths.objectDir(hash)
        for (const b of [...set.blocks.values()]) {
          if (b.stagedMs >= cutoff) continue
          set.blocks.delete(b.blockId)
          this.#capacity.staged -= b.size
          await this.#pins.remove(join(dir, b.file))
          removed++
        }
        if (set.blocks.size === 0) {
          this.#staged.delete(hash)
          if (!this.#byHash.has(hash)) await this.#removeDirIfEmpty(hash)
        }
      })
    }
    return removed
  }

  // ---- internals --------------------------------------------------------

  #container (name: string): ContainerState {
    const state = this.#containers.get(name)
    if (state === undefined) throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    return state
  }

  #newMeta (container: string, name: string, current: ObjectMeta | undefined, write: ObjectWrite, extents: Extent[], fromBlocks: boolean): ObjectMeta {
    const now = Date.now()
    return {
      container,
      name,
      size: extents.reduce((n, e) => n + e.size, 0),
      etag: write.etag ?? newEtag(now),
      createdMs: write.replica?.createdMs ?? current?.createdMs ?? now,
      lastModifiedMs: write.replica?.lastModifiedMs ?? now,
      content: write.content,
      metadata: write.metadata,
      checksums: write.checksums,
      extents,
      fromBlocks,
      ...(write.parts === undefined ? {} : { parts: write.parts }),
      ...(write.holders === undefined ? {} : { holders: write.holders }),
      ...this.#tierState(current, write.fill, write.replica)
    }
  }

  /** A tiered store's new version is dirty (keeping what upstream holds of the name), unless it is a fill. */
  #tierState (current: ObjectMeta | undefined, fill?: ObjectWrite['fill'], replica?: ObjectWrite['replica']): Pick<ObjectMeta, 'dirty' | 'seq' | 'upstreamEtag'> {
    if (this.#opts.tiered !== true) return {}
    if (fill !== undefined) return { upstreamEtag: fill.upstreamEtag }
    if (replica !== undefined && !replica.dirty) return replica.upstreamEtag === undefined ? {} : { upstreamEtag: replica.upstreamEtag }
    if (replica !== undefined) return { dirty: true, seq: this.#nextSeq++, ...(replica.upstreamEtag === undefined ? {} : { upstreamEtag: replica.upstreamEtag }) }
    return { dirty: true, seq: this.#nextSeq++, ...(current?.upstreamEtag === undefined ? {} : { upstreamEtag: current.upstreamEtag }) }
  }

  /** Tells the watchers, in order, waiting for each. */
  async #tell (event: StoreEvent): Promise<void> {
    for (const w of this.#watchers) await w(event)
  }

  /** Reserves room for a write, evicting least recently used objects under `lru`. */
  #makeRoom (bytes: number): void {
    // Dirty data is never evicted: it exists nowhere else yet.
    const victims = this.#capacity.planRoom(bytes, (hash) => this.#byHash.get(hash)?.dirty === true)
    for (const hash of victims) {
      const meta = this.#byHash.get(hash)
      if (meta === undefined) continue
      this.#uninstall(hash, meta)
      this.#tell({ type: 'evict', meta }).catch((err) => this.#opts.onError?.(err, 'evict watcher'))
      void this.#lock.run(hash, async () => {
        const now = this.#byHash.get(hash)
        const keep = new Set(now?.extents.map((e) => e.file) ?? [])
        await this.#removeObjectFiles(hash, meta.extents.filter((e) => !keep.has(e.file)), now === undefined)
      }).catch((err) => this.#opts.onError?.(err, 'evict'))
    }
    this.#capacity.reserve(bytes)
  }

  async #ensureDir (hash: string): Promise<string> {
    const dir = this.#paths.objectDir(hash)
    const created = await mkdir(dir, { recursive: true })
    if (created !== undefined) {
      // Make the new directory entries durable: the object dir in its fan-out dir, and the
      // fan-out dir itself when this mkdir created it.
      await fsyncDir(this.#paths.fanoutDir(hash))
      if (created !== dir) await fsyncDir(this.#paths.objects)
    }
    return dir
  }

  /** The commit point: meta.json replaced atomically, then the directory fsynced. */
  async #commitMeta (hash: string, meta: ObjectMeta): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    // The temp file lives in the object's own directory: creating every commit's temp file in
    // one shared directory serializes them on that directory's lock. A crash leaves it
    // unreferenced there, and the start-up scan removes it.
    await writeFileAtomic(dir, join(dir, 'meta.json'), JSON.stringify(meta))
    await fsyncDir(dir)
  }

  async #afterCommit (hash: string, previous: ObjectMeta | undefined, meta: ObjectMeta): Promise<void> {
    const keep = new Set(meta.extents.map((e) => e.file))
    // The container may have been deleted while this commit ran.
    const state = this.#containers.get(meta.container)
    if (state === undefined) {
      await this.#removeObjectFiles(hash, meta.extents, true)
      throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    }
    // owner.json names the object of blocks staged before it existed; the meta.json now does.
    const hadOwnerFile = previous === undefined && this.#staged.has(hash)
    this.#install(hash, meta)
    // Files the new version does not use are unreferenced from here on (the start-up scan removes
    // them if we crash first), so they are unlinked after the answer: freeing a replaced 1 GiB
    // extent takes the filesystem half a second.
    const dir = this.#paths.objectDir(hash)
    const garbage = this.#dropStaged(hash, keep)
    for (const e of previous?.extents ?? []) if (!keep.has(e.file)) garbage.push(join(dir, e.file))
    if (hadOwnerFile) garbage.push(join(dir, 'owner.json'))
    this.#removeLater(garbage)
    await this.#tell({ type: 'commit', meta, previous })
  }

  #removeLater (paths: string[]): void {
    if (paths.length === 0) return
    void (async () => {
      for (const p of paths) await this.#pins.remove(p)
    })().catch((err) => this.#opts.onError?.(err, 'remove replaced files'))
  }

  /** Forgets every staged block of an object; returns the paths of those `keep` does not name, for the caller to remove. */
  #dropStaged (hash: string, keep: Set<string>): string[] {
    const set = this.#staged.get(hash)
    if (set === undefined) return []
    this.#staged.delete(hash)
    const dir = this.#paths.objectDir(hash)
    const garbage: string[] = []
    for (const b of set.blocks.values()) {
      this.#capacity.staged -= b.size
      if (!keep.has(b.file)) garbage.push(join(dir, b.file))
    }
    return garbage
  }

  async #removeAll (paths: string[]): Promise<void> {
    for (const p of paths) await this.#pins.remove(p)
  }

  #install (hash: string, meta: ObjectMeta): void {
    const state = this.#containers.get(meta.container)
    if (state === undefined) return
    const old = state.objects.get(meta.name)
    state.objects.set(meta.name, meta)
    if (old === undefined) state.names.add(meta.name)
    this.#byHash.set(hash, meta)
    this.#capacity.setObject(hash, old?.size, meta.size)
  }

  #uninstall (hash: string, meta: ObjectMeta): void {
    const state = this.#containers.get(meta.container)
    if (state !== undefined && state.objects.get(meta.name) === meta) {
      state.objects.delete(meta.name)
      state.names.delete(meta.name)
    }
    if (this.#byHash.get(hash) === meta) {
      this.#byHash.delete(hash)
      this.#capacity.setObject(hash, meta.size, undefined)
    }
  }

  /** Deletes an object's files. With `withMeta`, meta.json goes first (the commit point of a delete). */
  async #removeObjectFiles (hash: string, extents: Extent[], withMeta: boolean): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    if (withMeta) {
      await rm(join(dir, 'meta.json'), { force: true })
      await fsyncDir(dir).catch(() => {})
      await this.#removeAll(this.#dropStaged(hash, new Set()))
    }
    for (const e of extents) await this.#pins.remove(join(dir, e.file))
    if (withMeta) await this.#removeDirIfEmpty(hash)
  }

  async #removeDirIfEmpty (hash: string): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    await rm(join(dir, 'owner.json'), { force: true })
    await rmdir(dir).catch(() => {})
  }
}

/** The same version with checksums computed after its commit; an MD5 also becomes its Content-MD5 if it has none. */
function withChecksums (meta: ObjectMeta, checksums: ObjectMeta['checksums']): ObjectMeta {
  return {
    ...meta,
    checksums: { ...meta.checksums, ...checksums },
    content: meta.content.contentMd5 === undefined && checksums.md5 !== undefined ? { ...meta.content, contentMd5: checksums.md5 } : meta.content
  }
}
