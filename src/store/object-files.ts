import { mkdir, rm, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { ByteRange, ObjectMeta, StagedBlock } from '../core/types.js'
import { fsyncDir, writeFileAtomic } from './durable.js'
import type { StorePaths } from './paths.js'
import type { Pins } from './pins.js'
import { SliceReader, type FileSlice } from './read-stream.js'

/**
 * One object's directory on disk: `meta.json` (the commit point), its extent and staged block
 * files, and `owner.json` (the name of blocks staged before the object existed). Files an open
 * read still needs are unlinked when the read lets go (pins). Callers hold the object's lock.
 */
export class ObjectFiles {
  readonly #paths: StorePaths
  readonly #pins: Pins
  readonly #onError: (err: unknown, what: string) => void

  constructor (paths: StorePaths, pins: Pins, onError: (err: unknown, what: string) => void) {
    this.#paths = paths
    this.#pins = pins
    this.#onError = onError
  }

  dir (hash: string): string {
    return this.#paths.objectDir(hash)
  }

  /** Creates the object's directory if needed, making the new directory entries durable. */
  async ensureDir (hash: string): Promise<string> {
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
  async commitMeta (hash: string, meta: ObjectMeta): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    // The temp file lives in the object's own directory: creating every commit's temp file in
    // one shared directory serializes them on that directory's lock. A crash leaves it
    // unreferenced there, and the start-up scan removes it.
    await writeFileAtomic(dir, join(dir, 'meta.json'), JSON.stringify(meta))
    await fsyncDir(dir)
  }

  /** Names the object that blocks staged in `dir` belong to, while it has no meta.json. */
  async writeOwner (dir: string, container: string, name: string): Promise<void> {
    await writeFileAtomic(this.#paths.tmp, join(dir, 'owner.json'), JSON.stringify({ container, name }))
  }

  /** Streams the version's bytes in `range` (whole when absent), keeping its files until the stream closes. */
  read (hash: string, meta: ObjectMeta, range?: ByteRange): Readable {
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
    return this.#sliceReader(slices)
  }

  /** Streams one staged block's bytes, keeping its file until the stream closes. */
  readBlock (hash: string, block: StagedBlock): Readable {
    const path = join(this.#paths.objectDir(hash), block.file)
    return this.#sliceReader(block.size === 0 ? [] : [{ path, start: 0, end: block.size - 1 }])
  }

  #sliceReader (slices: FileSlice[]): Readable {
    const pinned = slices.map((s) => s.path)
    this.#pins.pin(pinned)
    return new SliceReader(slices, () => this.#pins.unpin(pinned))
  }

  /** The delete's commit point: meta.json goes (the directory fsync is best effort). */
  async removeMeta (hash: string): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    await rm(join(dir, 'meta.json'), { force: true })
    await fsyncDir(dir).catch(() => {})
  }

  /** Removes extent or block files of the object's directory, one after the other. */
  async removeFiles (hash: string, files: ReadonlyArray<{ file: string }>): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    for (const e of files) await this.#pins.remove(join(dir, e.file))
  }

  /** Removes files by path, one after the other (each when no read holds it any more). */
  async removeAll (paths: string[]): Promise<void> {
    for (const p of paths) await this.#pins.remove(p)
  }

  /** Removes files no version references any more in the background; errors go to `onError`. */
  removeLater (paths: string[]): void {
    if (paths.length === 0) return
    void (async () => {
      for (const p of paths) await this.#pins.remove(p)
    })().catch((err) => this.#onError(err, 'remove replaced files'))
  }

  /** Removes owner.json and then the directory, if nothing else is left in it. */
  async removeDirIfEmpty (hash: string): Promise<void> {
    const dir = this.#paths.objectDir(hash)
    await rm(join(dir, 'owner.json'), { force: true })
    await rmdir(dir).catch(() => {})
  }
}
