import { join } from 'node:path'
import type { StagedBlock } from '../core/types.js'
import type { Capacity } from './capacity.js'
import type { KeyLock } from './key-lock.js'
import type { ObjectFiles } from './object-files.js'
import type { RebuiltIndex } from './rebuild.js'

interface StagedSet {
  container: string
  name: string
  blocks: Map<string, StagedBlock>
}

export interface StagedBlocksOptions {
  files: ObjectFiles
  capacity: Capacity
  lock: KeyLock
  /** Whether the object has a committed version (its directory then stays). */
  hasObject: (hash: string) => boolean
}

/**
 * The uncommitted blocks of each object (Put Block / UploadPart), by object hash and block id, with
 * their bytes counted as staged in the capacity. The block files live in the object's directory;
 * whoever changes the blocks of an object holds its lock (the removals here take it themselves).
 */
export class StagedBlocks {
  readonly #files: ObjectFiles
  readonly #capacity: Capacity
  readonly #lock: KeyLock
  readonly #hasObject: (hash: string) => boolean
  readonly #sets = new Map<string, StagedSet>()

  constructor (opts: StagedBlocksOptions) {
    this.#files = opts.files
    this.#capacity = opts.capacity
    this.#lock = opts.lock
    this.#hasObject = opts.hasObject
  }

  /** Start-up: the staged blocks the scan of the data directory found. */
  restore (staged: RebuiltIndex['staged']): void {
    for (const s of staged) {
      this.#sets.set(s.hash, { container: s.container, name: s.name, blocks: new Map(s.blocks.map((b) => [b.blockId, b])) })
      for (const b of s.blocks) this.#capacity.staged += b.size
    }
  }

  has (hash: string): boolean {
    return this.#sets.has(hash)
  }

  get (hash: string, blockId: string): StagedBlock | undefined {
    return this.#sets.get(hash)?.blocks.get(blockId)
  }

  count (hash: string): number {
    return this.#sets.get(hash)?.blocks.size ?? 0
  }

  /** The object's staged blocks by id. */
  blocks (hash: string): ReadonlyMap<string, StagedBlock> | undefined {
    return this.#sets.get(hash)?.blocks
  }

  /** The object's staged blocks in staging order (their files' generations). */
  list (hash: string): StagedBlock[] {
    const set = this.#sets.get(hash)
    if (set === undefined) return []
    return [...set.blocks.values()].sort((a, b) => (a.file < b.file ? -1 : 1))
  }

  /** The names of the container with staged blocks, sorted. */
  names (container: string): string[] {
    const names: string[] = []
    for (const set of this.#sets.values()) if (set.container === container && set.blocks.size > 0) names.push(set.name)
    return names.sort()
  }

  /** Records a block whose file is durable in the object's directory; returns the block it replaced (same id), whose file the caller removes. */
  add (hash: string, container: string, name: string, block: StagedBlock): StagedBlock | undefined {
    let set = this.#sets.get(hash)
    if (set === undefined) {
      set = { container, name, blocks: new Map() }
      this.#sets.set(hash, set)
    }
    const replaced = set.blocks.get(block.blockId)
    set.blocks.set(block.blockId, block)
    this.#capacity.staged += block.size
    if (replaced !== undefined) this.#capacity.staged -= replaced.size
    return replaced
  }

  /** Forgets every staged block of an object; returns the paths of those `keep` does not name, for the caller to remove. */
  drop (hash: string, keep: Set<string>): string[] {
    const set = this.#sets.get(hash)
    if (set === undefined) return []
    this.#sets.delete(hash)
    const dir = this.#files.dir(hash)
    const garbage: string[] = []
    for (const b of set.blocks.values()) {
      this.#capacity.staged -= b.size
      if (!keep.has(b.file)) garbage.push(join(dir, b.file))
    }
    return garbage
  }

  /** Abort Multipart Upload: removes every staged block of the object (the caller holds its lock). */
  async remove (hash: string): Promise<void> {
    await this.#files.removeAll(this.drop(hash, new Set()))
    if (!this.#hasObject(hash)) await this.#files.removeDirIfEmpty(hash)
  }

  /** A deleted container: removes the staged blocks of all its names, each under the object's lock. */
  async purge (container: string): Promise<void> {
    for (const [hash, set] of [...this.#sets]) {
      if (set.container !== container) continue
      await this.#lock.run(hash, async () => {
        await this.#files.removeAll(this.drop(hash, new Set()))
        await this.#files.removeDirIfEmpty(hash)
      })
    }
  }

  /** Removes the blocks staged before `cutoff`, each object's under its lock; returns how many. */
  async collect (cutoff: number): Promise<number> {
    let removed = 0
    for (const [hash, set] of [...this.#sets]) {
      if (![...set.blocks.values()].some((b) => b.stagedMs < cutoff)) continue
      await this.#lock.run(hash, async () => {
        // A commit that held the lock may have taken these blocks into its object: not ours then.
        if (this.#sets.get(hash) !== set) return
        for (const b of [...set.blocks.values()]) {
          if (b.stagedMs >= cutoff) continue
          set.blocks.delete(b.blockId)
          this.#capacity.staged -= b.size
          await this.#files.removeFiles(hash, [b])
          removed++
        }
        if (set.blocks.size === 0) {
          this.#sets.delete(hash)
          if (!this.#hasObject(hash)) await this.#files.removeDirIfEmpty(hash)
        }
      })
    }
    return removed
  }
}
