/**
 * Version tags. Every commit gets a new, never-repeating tag shaped like
 * Azure's (`0x` + 15 hex digits of a FILETIME-like tick count), strictly
 * increasing within the process.
 */

const FILETIME_EPOCH_OFFSET = 116444736000000000n
let last = 0n

export function newEtag (nowMs: number = Date.now()): string {
  let tick = BigInt(nowMs) * 10000n + FILETIME_EPOCH_OFFSET
  if (tick <= last) tick = last + 1n
  last = tick
  return '0x' + tick.toString(16).toUpperCase()
}
