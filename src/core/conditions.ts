import { CacheError } from '../errors.js'
import type { Conditions } from './types.js'

/**
 * HTTP preconditions (RFC 9110 §13) over an object's version. Protocol-neutral:
 * the front ends map the outcomes (412 / 304 / "already exists") to their codes.
 */

function normalize (tag: string): string {
  let t = tag.trim()
  if (t.startsWith('W/')) t = t.slice(2)
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1)
  return t
}

/** Parses an If-Match / If-None-Match header value into its entity tags (`*` kept as is). */
export function parseEtagList (value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const out: string[] = []
  for (const part of value.split(',')) {
    const t = part.trim()
    if (t !== '') out.push(t === '*' ? '*' : normalize(t))
  }
  return out.length > 0 ? out : undefined
}

function matches (list: string[], etag: string): boolean {
  return list.some((t) => t === '*' || t === etag)
}

/** HTTP dates have whole seconds; compare at that precision. */
function seconds (ms: number): number {
  return Math.floor(ms / 1000)
}

export interface Version {
  etag: string
  lastModifiedMs: number
}

/**
 * Read preconditions (Get Blob, Get Blob Properties, GetObject, HeadObject).
 * `current` is the version being read; a missing object is the caller's 404.
 */
export function checkReadConditions (current: Version, c: Conditions | undefined): void {
  if (c === undefined) return
  if (c.ifMatch !== undefined && !matches(c.ifMatch, current.etag)) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
  if (c.ifMatch === undefined && c.ifUnmodifiedSinceMs !== undefined &&
      seconds(current.lastModifiedMs) > seconds(c.ifUnmodifiedSinceMs)) {
    throw new CacheError('CC_ERR_CONDITION_NOT_MET')
  }
  if (c.ifNoneMatch !== undefined && matches(c.ifNoneMatch, current.etag)) throw new CacheError('CC_ERR_NOT_MODIFIED')
  if (c.ifNoneMatch === undefined && c.ifModifiedSinceMs !== undefined &&
      seconds(current.lastModifiedMs) <= seconds(c.ifModifiedSinceMs)) {
    throw new CacheError('CC_ERR_NOT_MODIFIED')
  }
}

/**
 * Write preconditions (Put Blob, Put Block List, Set Blob *, Delete Blob,
 * PutObject, CompleteMultipartUpload, DeleteObject). `If-None-Match: *` on an
 * existing object is CC_ERR_OBJECT_EXISTS; every other failure is
 * CC_ERR_CONDITION_NOT_MET.
 */
export function checkWriteConditions (current: Version | undefined, c: Conditions | undefined): void {
  if (c === undefined) return
  if (current === undefined) {
    if (c.ifMatch !== undefined) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
    if (c.ifUnmodifiedSinceMs !== undefined) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
    return
  }
  if (c.ifMatch !== undefined && !matches(c.ifMatch, current.etag)) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
  if (c.ifNoneMatch !== undefined && matches(c.ifNoneMatch, current.etag)) {
    throw new CacheError(c.ifNoneMatch.includes('*') ? 'CC_ERR_OBJECT_EXISTS' : 'CC_ERR_CONDITION_NOT_MET')
  }
  if (c.ifModifiedSinceMs !== undefined && seconds(current.lastModifiedMs) <= seconds(c.ifModifiedSinceMs)) {
    throw new CacheError('CC_ERR_CONDITION_NOT_MET')
  }
  if (c.ifUnmodifiedSinceMs !== undefined && seconds(current.lastModifiedMs) > seconds(c.ifUnmodifiedSinceMs)) {
    throw new CacheError('CC_ERR_CONDITION_NOT_MET')
  }
}

export function hasConditions (c: Conditions | undefined): boolean {
  return c !== undefined && (c.ifMatch !== undefined || c.ifNoneMatch !== undefined ||
    c.ifModifiedSinceMs !== undefined || c.ifUnmodifiedSinceMs !== undefined)
}
