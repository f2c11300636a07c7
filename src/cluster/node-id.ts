/**
 * The node's stable id: what rendezvous hashing ranks, what peers call this
 * node by. It survives restarts in `<dataDir>/node-id`, so a node that comes
 * back after maintenance is the same node to its peers and to placement.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CacheError } from '../errors.js'
import { fsyncDir, writeFileAtomic } from '../store/durable.js'
import type { Log } from '../log.js'

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The file inside the data dir that records the id. */
export const NODE_ID_FILE = 'node-id'

/** What this module logs through (a pino or fastify logger fits). */
export type NodeIdLog = Pick<Log, 'info' | 'warn'>

/** 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit. */
export function isValidNodeId (id: string): boolean {
  return NODE_ID.test(id)
}

/** A fresh id: `n-` and 12 random hex digits. */
export function newNodeId (): string {
  return `n-${randomBytes(6).toString('hex')}`
}

/**
 * The id this node runs with. A configured id wins and is recorded (replacing
 * a different recorded one, with a warning: the node's copies are now placed
 * as another node's); else the recorded one; else a new one, recorded
 * durably (temp file, fsync, rename, fsync of the directory). A configured or
 * recorded id that is not valid is an error that names it.
 */
export async function loadNodeId (dataDir: string, configured?: string, log?: NodeIdLog): Promise<string> {
  if (configured !== undefined && !isValidNodeId(configured)) {
    throw new CacheError('CC_ERR_INVALID_INPUT', `invalid node id ${JSON.stringify(configured)}: ${RULE}`)
  }
  const file = join(dataDir, NODE_ID_FILE)
  const recorded = await readRecorded(file)
  if (configured === undefined && recorded !== undefined && !isValidNodeId(recorded)) {
    throw new CacheError('CC_ERR_INVALID_INPUT', `invalid node id ${JSON.stringify(recorded)} recorded in ${file}: ${RULE} (fix or remove the file, or configure the node id)`)
  }
  if (configured !== undefined) {
    if (recorded === configured) return configured
    if (recorded !== undefined) {
      log?.warn({ recorded, configured, file }, 'configured node id replaces the recorded one')
    }
    await record(dataDir, file, configured)
    return configured
  }
  if (recorded !== undefined) return recorded
  const id = newNodeId()
  await record(dataDir, file, id)
  log?.info({ nodeId: id, file }, 'new node id recorded')
  return id
}

const RULE = 'a node id is 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit'

/** The recorded id without surrounding whitespace, or undefined when there is no file. */
async function readRecorded (file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CacheError('CC_ERR_INTERNAL', `cannot read the node id from ${file}: ${(err as Error).message}`, { cause: err })
  }
}

async function record (dataDir: string, file: string, id: string): Promise<void> {
  await mkdir(dataDir, { recursive: true })
  await writeFileAtomic(dataDir, file, `${id}\n`)
  await fsyncDir(dataDir)
}
