/**
 * Block ids of an upload. Azure requires every block id of a blob to be
 * base64 of the same length (at most 64 bytes before encoding). Ours are a
 * pure function of the version being uploaded and the block index, so an
 * upload restarted after a crash stages the same ids (replacing what the first
 * attempt left uncommitted) and a commit retried after a lost answer names
 * the same list.
 *
 * Layout (32 bytes before encoding): `ckpt` + 20 hex chars of SHA-256(version)
 * + `-` + the index as 7 decimal digits. 44 characters of base64, no padding.
 */
import { createHash } from 'node:crypto'

/** Azure's limit of committed blocks per blob. */
export const MAX_BLOCKS = 50_000

export function blockIdFor (version: string, index: number): string {
  return encode(versionTag(version), index)
}

/** All block ids of an upload of `count` blocks, in order. */
export function blockIdsFor (version: string, count: number): string[] {
  const tag = versionTag(version)
  return Array.from({ length: count }, (_, i) => encode(tag, i))
}

function versionTag (version: string): string {
  return createHash('sha256').update(version).digest('hex').slice(0, 20)
}

function encode (tag: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= 10_000_000) throw new RangeError(`block index out of range: ${index}`)
  return Buffer.from(`ckpt${tag}-${String(index).padStart(7, '0')}`).toString('base64')
}
