/**
 * Durable records of upstream deletes still to do. A client delete of an
 * object the upstream may hold writes one (temp file → fdatasync → rename →
 * fsync of the directory) before the local delete goes ahead, so a crash at
 * any point either keeps the object or keeps the record, and the writeback
 * replays the record after a restart.
 *
 * One file per logical name in `<dir>/deletes/`, named by a hash of container
 * and name (any name fits, none escapes the directory); a later delete of the
 * same name replaces the record. Temp files live in `<dir>/tmp/` and are
 * removed at open.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncDir, writeFileAtomic } from '../store/durable.js'
import { KeyLock } from '../store/key-lock.js'

/** One upstream delete to do. */
export interface DeleteRecord {
  container: string
  name: string
  /** The local version deleted (its etag): while it is still current the delete has not happened. */
  etag: string
  /**
   * Delete only this upstream version (the one last known uploaded). Absent: unconditional, when
   * an upload in flight at the delete may have committed a version whose etag nobody knows.
   */
  ifMatch?: string
  createdMs: number
}

/** The record file of a name: sha-256 of container, NUL, name. */
export function recordFileName (container: string, name: string): string {
  return createHash('sha256').update(container).update('\u0000').update(name).digest('hex') + '.json'
}

function parseRecord (text: string): DeleteRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<DeleteRecord>
    if (typeof v.container !== 'string' || typeof v.name !== 'string' || typeof v.etag !== 'string') return undefined
    if (v.ifMatch !== undefined && typeof v.ifMatch !== 'string') return undefined
    return {
      container: v.container,
      name: v.name,
      etag: v.etag,
      ...(v.ifMatch === undefined ? {} : { ifMatch: v.ifMatch }),
      createdMs: typeof v.createdMs === 'number' ? v.createdMs : 0
    }
  } catch {
    return undefined
  }
}

export class Tombstones {
  readonly #deletes: string
  readonly #tmp: string
  /** Writes and removals of one record file are serialized. */
  readonly #lock = new KeyLock()

  constructor (dir: string) {
    this.#deletes = join(dir, 'deletes')
    this.#tmp = join(dir, 'tmp')
  }

  /** Creates the directories, removes temp files and returns every record (unreadable ones are reported and skipped). */
  async open (onBad?: (file: string, why: string) => void): Promise<DeleteRecord[]> {
    await mkdir(this.#deletes, { recursive: true })
    await rm(this.#tmp, { recursive: true, force: true })
    await mkdir(this.#tmp, { recursive: true })
    const out: DeleteRecord[] = []
    for (const file of await readdir(this.#deletes)) {
      if (!file.endsWith('.json')) continue
      const rec = parseRecord(await readFile(join(this.#deletes, file), 'utf8').catch(() => ''))
      if (rec === undefined || recordFileName(rec.container, rec.name) !== file) {
        onBad?.(file, 'unreadable delete record')
        continue
      }
      out.push(rec)
    }
    return out
  }

  /** Makes `rec` durable (replacing the name's earlier record); resolves once it survives a crash. */
  async write (rec: DeleteRecord): Promise<void> {
    const file = recordFileName(rec.container, rec.name)
    await this.#lock.run(file, async () => {
      await writeFileAtomic(this.#tmp, join(this.#deletes, file), JSON.stringify(rec))
      await fsyncDir(this.#deletes)
    })
  }

  /**
   * Removes the name's record, durably: an unconditional record replayed after a crash could
   * otherwise delete a version uploaded (and evicted locally) since. `still`, checked under the
   * record's lock, lets the caller keep a record that a later delete has just replaced.
   */
  async remove (container: string, name: string, still: () => boolean = () => true): Promise<void> {
    const file = recordFileName(container, name)
    await this.#lock.run(file, async () => {
      if (!still()) return
      try {
        await unlink(join(this.#deletes, file))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw err
      }
      await fsyncDir(this.#deletes)
    })
  }
}
