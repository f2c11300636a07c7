import { link, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { CacheError } from '../errors.js'
import { newEtag } from '../core/etag.js'
import { MAX_PARTS, partCount, type Extent, type ObjectMeta, type StagedBlock, type UserMetadata } from '../core/types.js'
import type { Capacity } from './capacity.js'
import { fsyncDir } from './durable.js'
import type { KeyLock } from './key-lock.js'
import type { AppendWrite, BlockRef, Ingested, ObjectWrite, Precheck, StoreEvent } from './local-store.js'
import type { ObjectFiles } from './object-files.js'
import type { Versions } from './object-versions.js'
import { blobExtentName, blockExtentName, nextGen, objectHash } from './paths.js'
import type { Pins } from './pins.js'
import type { StagedBlocks } from './staged-blocks.js'
import type { StoreIndex } from './store-index.js'

const MAX_STAGED_DEFAULT = 100_000

/** The parts of the store the writes work with (FsStore builds them). */
export interface WriteContext {
  readonly lock: KeyLock
  readonly pins: Pins
  readonly capacity: Capacity
  readonly index: StoreIndex
  readonly staged: StagedBlocks
  readonly files: ObjectFiles
  readonly versions: Versions
  /** Azure's uncommitted blocks per blob and S3's parts per object, when not the protocols' own. */
  readonly limits: { readonly maxStagedBlocks?: number, readonly maxParts?: number }
  /** Tells the watchers, in order, waiting for each. */
  tell (event: StoreEvent): Promise<void>
  /** Reserves room for a write (evicting under `lru`) or throws CC_ERR_INSUFFICIENT_STORAGE. */
  makeRoom (bytes: number): void
  discard (data: Ingested): Promise<void>
  /** Deletes an object's files; with `withMeta`, meta.json first (the commit point of a delete). */
  removeObject (hash: string, extents: Extent[], withMeta: boolean): Promise<void>
}

/** A body handed to a write under the object's lock (see `withIngested`). */
interface HeldBody {
  place (dir: string, file: string): Promise<void>
  charged (): void
}

/**
 * The writes that make a new version of an object current (Put Blob, append, Put Block List,
 * copy, Set Blob Metadata), the staging of blocks and the rewrites of a version's record, each
 * under the object's lock: data files in place and durable, then meta.json committed, then the
 * index, then the watchers.
 */
export class ObjectWrites {
  readonly #c: WriteContext

  constructor (ctx: WriteContext) {
    this.#c = ctx
  }

  async commitObject (container: string, name: string, data: Ingested, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return await this.#withIngested(hash, data, async (body) => {
      const state = this.#c.index.container(container)
      const current = state.objects.get(name)
      precheck(current)
      const dir = await this.#c.files.ensureDir(hash)
      const file = blobExtentName(nextGen())
      await body.place(dir, file)
      const meta = this.#c.versions.create(container, name, current, write, [{ file, size: data.size }], false)
      await this.#c.files.commitMeta(hash, meta)
      body.charged()
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  async appendObject (container: string, name: string, data: Ingested, append: AppendWrite, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return await this.#withIngested(hash, data, async (body) => {
      const current = this.#c.index.container(container).objects.get(name)
      precheck(current)
      // Checked here, under the lock: a concurrent append that committed first changed the size.
      const size = current?.size ?? 0
      if (append.offset !== size) throw new CacheError('CC_ERR_INVALID_WRITE_OFFSET', undefined, { detail: { size, offset: append.offset } })
      const parts = current === undefined ? 1 : partCount(current) + 1
      if (parts > (this.#c.limits.maxParts ?? MAX_PARTS)) throw new CacheError('CC_ERR_TOO_MANY_PARTS', undefined, { detail: { parts: parts - 1 } })
      // The previous version's extents are shared, not copied: only the appended bytes are new.
      const file = blobExtentName(nextGen())
      const extents = [...(current?.extents ?? []), { file, size: data.size }]
      const meta = this.#c.versions.create(container, name, current, { ...append.write(current), parts }, extents, false)
      const dir = await this.#c.files.ensureDir(hash)
      await body.place(dir, file)
      await this.#c.files.commitMeta(hash, meta)
      body.charged()
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  async stageBlock (container: string, name: string, blockId: string, data: Ingested): Promise<StagedBlock> {
    const hash = objectHash(container, name)
    const { staged, files } = this.#c
    return await this.#withIngested(hash, data, async (body) => {
      this.#c.index.container(container)
      const hadBlocks = staged.has(hash)
      const previous = staged.get(hash, blockId)
      if (previous === undefined && staged.count(hash) >= (this.#c.limits.maxStagedBlocks ?? MAX_STAGED_DEFAULT)) {
        throw new CacheError('CC_ERR_BLOCK_COUNT_EXCEEDED')
      }
      const dir = await files.ensureDir(hash)
      if (!hadBlocks && this.#c.index.byHash(hash) === undefined) await files.writeOwner(dir, container, name)
      const file = blockExtentName(nextGen(), blockId)
      await body.place(dir, file)
      await fsyncDir(dir)
      const block: StagedBlock = { blockId, size: data.size, file, stagedMs: Date.now() }
      // Counts the block's bytes and un-counts those of the block it replaces, which under the lock is `previous`.
      staged.add(hash, container, name, block)
      body.charged()
      if (previous !== undefined) await files.removeFiles(hash, [previous])
      return block
    })
  }

  async commitBlocks (container: string, name: string, blocks: BlockRef[], write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#c.lock.run(hash, async () => {
      const state = this.#c.index.container(container)
      const current = state.objects.get(name)
      precheck(current)
      const committed = new Map<string, Extent>()
      if (current?.fromBlocks === true) for (const e of current.extents) if (e.blockId !== undefined) committed.set(e.blockId, e)
      const staged = this.#c.staged.blocks(hash)
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
      await this.#c.files.ensureDir(hash)
      const meta = this.#c.versions.create(container, name, current, write, extents, true)
      await this.#c.files.commitMeta(hash, meta)
      await this.#afterCommit(hash, current, meta)
      return meta
    })
  }

  async copyObject (source: ObjectMeta, container: string, name: string, write: ObjectWrite, precheck: Precheck): Promise<ObjectMeta> {
    const srcDir = this.#c.files.dir(objectHash(source.container, source.name))
    const srcPaths = source.extents.map((e) => join(srcDir, e.file))
    this.#c.pins.pin(srcPaths)
    const hash = objectHash(container, name)
    this.#c.makeRoom(source.size)
    let reserved = source.size
    try {
      return await this.#c.lock.run(hash, async () => {
        const state = this.#c.index.container(container)
        const current = state.objects.get(name)
        precheck(current)
        const dir = await this.#c.files.ensureDir(hash)
        const extents: Extent[] = []
        for (const [i, e] of source.extents.entries()) {
          const gen = nextGen()
          const file = e.blockId !== undefined ? blockExtentName(gen, e.blockId) : blobExtentName(gen)
          await link(srcPaths[i] as string, join(dir, file))
          extents.push(e.blockId !== undefined ? { file, size: e.size, blockId: e.blockId } : { file, size: e.size })
        }
        // A copy is one part toward S3's append limit, however many blocks its source had.
        const parts = source.fromBlocks && extents.length !== 1 ? { parts: 1 } : {}
        const meta = this.#c.versions.create(container, name, current, { ...write, ...parts }, extents, source.fromBlocks)
        await this.#c.files.commitMeta(hash, meta)
        this.#c.capacity.unreserve(reserved)
        reserved = 0
        await this.#afterCommit(hash, current, meta)
        return meta
      })
    } finally {
      this.#c.capacity.unreserve(reserved)
      this.#c.pins.unpin(srcPaths)
    }
  }

  async updateObject (container: string, name: string, patch: { content?: ObjectMeta['content'], metadata?: UserMetadata }, precheck: Precheck): Promise<ObjectMeta> {
    const hash = objectHash(container, name)
    return this.#c.lock.run(hash, async () => {
      const state = this.#c.index.container(container)
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
        ...this.#c.versions.tierState(current)
      }
      await this.#c.files.commitMeta(hash, meta)
      this.#c.index.install(hash, meta)
      await this.#c.tell({ type: 'commit', meta, previous: current })
      return meta
    })
  }

  /**
   * Rewrites the meta.json of the version `etag` names under its lock, same etag (its data did not
   * change): `change` makes the new record, undefined when nothing changes. False when that version
   * is no longer current. Watchers are not told (addChecksums, markClean, setHolders).
   */
  async rewrite (container: string, name: string, etag: string, change: (current: ObjectMeta) => ObjectMeta | undefined): Promise<boolean> {
    const hash = objectHash(container, name)
    return this.#c.lock.run(hash, async () => {
      const current = this.#c.index.head(container, name)
      if (current === undefined || current.etag !== etag) return false
      const meta = change(current)
      if (meta === undefined) return true
      await this.#c.files.commitMeta(hash, meta)
      this.#c.index.install(hash, meta)
      return true
    })
  }

  /**
   * Runs `fn` under the object's lock with an ingested body. `place(dir, file)` moves the body into
   * the object's directory (from then on it is no longer discarded on failure); `charged()` hands
   * its capacity reservation over to the committed or staged bytes. A body never placed is
   * discarded; the reservation is released whatever happens.
   */
  async #withIngested<T> (hash: string, data: Ingested, fn: (body: HeldBody) => Promise<T>): Promise<T> {
    let reserved = data.reserved
    let moved = false
    try {
      return await this.#c.lock.run(hash, async () => await fn({
        place: async (dir, file) => {
          await rename(data.path, join(dir, file))
          moved = true
        },
        charged: () => {
          this.#c.capacity.unreserve(reserved)
          reserved = 0
        }
      }))
    } finally {
      if (!moved) await this.#c.discard({ ...data, reserved })
      else this.#c.capacity.unreserve(reserved)
    }
  }

  async #afterCommit (hash: string, previous: ObjectMeta | undefined, meta: ObjectMeta): Promise<void> {
    const keep = new Set(meta.extents.map((e) => e.file))
    // The container may have been deleted while this commit ran.
    if (this.#c.index.findContainer(meta.container) === undefined) {
      await this.#c.removeObject(hash, meta.extents, true)
      throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    }
    // owner.json names the object of blocks staged before it existed; the meta.json now does.
    const hadOwnerFile = previous === undefined && this.#c.staged.has(hash)
    this.#c.index.install(hash, meta)
    // Files the new version does not use are unreferenced from here on (the start-up scan removes
    // them if we crash first), so they are unlinked after the answer: freeing a replaced 1 GiB
    // extent takes the filesystem half a second.
    const dir = this.#c.files.dir(hash)
    const garbage = this.#c.staged.drop(hash, keep)
    for (const e of previous?.extents ?? []) if (!keep.has(e.file)) garbage.push(join(dir, e.file))
    if (hadOwnerFile) garbage.push(join(dir, 'owner.json'))
    this.#c.files.removeLater(garbage)
    await this.#c.tell({ type: 'commit', meta, previous })
  }
}
