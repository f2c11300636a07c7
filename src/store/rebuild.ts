import { readFile, readdir, rm, rmdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ContainerMeta, ObjectMeta, StagedBlock } from '../core/types.js'
import { objectHash, parseBlockExtentName, type StorePaths } from './paths.js'

/** What a scan of the data directory found. */
export interface RebuiltIndex {
  containers: ContainerMeta[]
  objects: ObjectMeta[]
  /** Uncommitted blocks per object hash, with the name they belong to. */
  staged: Array<{ hash: string, container: string, name: string, blocks: StagedBlock[] }>
  removedOrphans: number
}

const SCAN_CONCURRENCY = 32

async function readJson<T> (path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function listDir (dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

async function mapLimit<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T)
  })
  await Promise.all(workers)
}

/** Staged-block sidecar: which object a directory's uncommitted blocks belong to. */
export interface StagedOwner {
  container: string
  name: string
}

/**
 * Rebuilds the in-memory index from disk. `meta.json` is each object's commit
 * point: extents it names are the object; unnamed block files are staged
 * (uncommitted) blocks; anything else is debris from a crash and is removed,
 * as is every object of a container that no longer exists.
 */
export async function rebuildIndex (paths: StorePaths): Promise<RebuiltIndex> {
  const result: RebuiltIndex = { containers: [], objects: [], staged: [], removedOrphans: 0 }
  for (const f of await listDir(paths.tmp)) {
    await rm(join(paths.tmp, f), { recursive: true, force: true })
    result.removedOrphans++
  }
  for (const f of await listDir(paths.containers)) {
    if (!f.endsWith('.json')) continue
    const c = await readJson<ContainerMeta>(join(paths.containers, f))
    if (c !== undefined) result.containers.push(c)
  }
  const containerNames = new Set(result.containers.map((c) => c.name))

  const dirs: string[] = []
  for (const fan of await listDir(paths.objects)) {
    for (const h of await listDir(join(paths.objects, fan))) dirs.push(join(paths.objects, fan, h))
  }
  await mapLimit(dirs, SCAN_CONCURRENCY, async (dir) => {
    const files = await listDir(dir)
    const meta = await readJson<ObjectMeta>(join(dir, 'meta.json'))
    const owner = meta ?? await readJson<StagedOwner>(join(dir, 'owner.json'))
    if (owner === undefined || !containerNames.has(owner.container)) {
      await rm(dir, { recursive: true, force: true })
      result.removedOrphans += files.length
      return
    }
    const hash = dir.slice(dir.lastIndexOf('/') + 1)
    if (hash !== objectHash(owner.container, owner.name)) {
      await rm(dir, { recursive: true, force: true })
      result.removedOrphans += files.length
      return
    }
    const referenced = new Set(meta?.extents.map((e) => e.file) ?? [])
    const latest = new Map<string, { gen: string, file: string }>()
    for (const f of files) {
      if (f === 'meta.json' || f === 'owner.json' || referenced.has(f)) continue
      const block = parseBlockExtentName(f)
      if (block === undefined) {
        await rm(join(dir, f), { force: true })
        result.removedOrphans++
        continue
      }
      const prev = latest.get(block.blockId)
      if (prev !== undefined && prev.gen > block.gen) {
        await rm(join(dir, f), { force: true })
        result.removedOrphans++
        continue
      }
      if (prev !== undefined) {
        await rm(join(dir, prev.file), { force: true })
        result.removedOrphans++
      }
      latest.set(block.blockId, { gen: block.gen, file: f })
    }
    if (meta !== undefined) result.objects.push(meta)
    if (latest.size > 0) {
      const blocks: StagedBlock[] = []
      for (const [blockId, { file }] of latest) {
        const st = await stat(join(dir, file))
        blocks.push({ blockId, file, size: st.size, stagedMs: st.mtimeMs })
      }
      blocks.sort((a, b) => (a.file < b.file ? -1 : 1))
      result.staged.push({ hash, container: owner.container, name: owner.name, blocks })
    } else if (meta === undefined) {
      await rm(dir, { recursive: true, force: true })
    } else if (files.includes('owner.json')) {
      await rm(join(dir, 'owner.json'), { force: true })
    }
  })
  // Fan-out directories left empty are harmless; remove them to keep scans short.
  for (const fan of await listDir(paths.objects)) {
    await rmdir(join(paths.objects, fan)).catch(() => {})
  }
  return result
}
