import type { ByteRange } from './types.js'

/** A parsed `bytes=` range before it is resolved against an object size. */
export type RangeSpec = { kind: 'from', start: number, end?: number } | { kind: 'suffix', length: number }

/**
 * Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Returns
 * undefined for syntax it does not understand (multiple ranges, other
 * units), which HTTP says to ignore.
 */
export function parseRange (value: string | undefined): RangeSpec | undefined {
  if (value === undefined) return undefined
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value)
  if (m === null) return undefined
  const a = m[1] as string
  const b = m[2] as string
  if (a === '' && b === '') return undefined
  if (a === '') return { kind: 'suffix', length: Number(b) }
  const start = Number(a)
  if (b === '') return { kind: 'from', start }
  const end = Number(b)
  if (end < start) return undefined
  return { kind: 'from', start, end }
}

/**
 * Resolves a range against a size, clamping the end to the last byte.
 * Returns 'unsatisfiable' when no byte of the object is in it (including any
 * range on an empty object).
 */
export function resolveRange (spec: RangeSpec, size: number): ByteRange | 'unsatisfiable' {
  if (size === 0) return 'unsatisfiable'
  if (spec.kind === 'suffix') {
    if (spec.length === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - spec.length), end: size - 1 }
  }
  if (spec.start >= size) return 'unsatisfiable'
  return { start: spec.start, end: Math.min(spec.end ?? size - 1, size - 1) }
}
