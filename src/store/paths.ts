import { createHash } from 'node:crypto'
import { join } from 'node:path'

/**
 * Object and container names never become file paths. Every name is hashed;
 * the hash picks a directory, and the real name lives only inside the JSON
 * sidecar. `../`, `%2F`, NUL, unicode and 1024-byte names are all just bytes
 * to a hash.
 */

export const STORE_FORMAT = 'ckptcache-store/1'

export function objectHash (container: string, name: string): string {
  return createHash('sha256').update(container).update('\0').update(name).digest('hex')
}

export function containerHash (name: string): string {
  return createHash('sha256').update(name).digest('hex')
}

export class StorePaths {
  readonly root: string
  readonly tmp: string
  readonly objects: string
  readonly containers: string

  constructor (root: string) {
    this.root = root
    this.tmp = join(root, 'tmp')
    this.objects = join(root, 'objects')
    this.containers = join(root, 'containers')
  }

  objectDir (hash: string): string {
    return join(this.objects, hash.slice(0, 2), hash)
  }

  fanoutDir (hash: string): string {
    return join(this.objects, hash.slice(0, 2))
  }

  containerFile (name: string): string {
    return join(this.containers, containerHash(name) + '.json')
  }
}

let lastGenMs = 0
let genCounter = 0

/**
 * A fixed-width, increasing generation id (hex): later files sort after
 * earlier ones, which decides which of two staged copies of a block is the
 * latest after a crash.
 */
export function nextGen (): string {
  const now = Date.now()
  if (now > lastGenMs) {
    lastGenMs = now
    genCounter = 0
  } else {
    genCounter++
    if (genCounter > 0xffffff) {
      lastGenMs++
      genCounter = 0
    }
  }
  return lastGenMs.toString(16).padStart(12, '0') + genCounter.toString(16).padStart(6, '0')
}

/** Extent file of a single-shot write. */
export function blobExtentName (gen: string): string {
  return `x-${gen}`
}

/** Extent file of a staged block: the block id's UTF-8 bytes in hex, so any id maps to a safe name. */
export function blockExtentName (gen: string, blockId: string): string {
  return `b-${gen}-${Buffer.from(blockId, 'utf8').toString('hex')}`
}

/** Parses a block extent file name back into its generation and block id. */
export function parseBlockExtentName (file: string): { gen: string, blockId: string } | undefined {
  const m = /^b-([0-9a-f]{18})-((?:[0-9a-f]{2})+)$/.exec(file)
  if (m === null) return undefined
  return { gen: m[1] as string, blockId: Buffer.from(m[2] as string, 'hex').toString('utf8') }
}
