import type { IncomingHttpHeaders } from 'node:http'
import { parseEtagList } from '../../core/conditions.js'
import type { Conditions } from '../../core/types.js'

function first (headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, or their
 * prefixed copy-source forms. The protocols differ only on a date they cannot
 * parse: `badDate` throws the protocol's error, or returns undefined to ignore it.
 */
export function conditionsFromHeaders (headers: IncomingHttpHeaders, prefix: string, badDate: (name: string) => undefined): Conditions | undefined {
  const date = (name: string): number | undefined => {
    const v = first(headers, name)
    if (v === undefined || v === '') return undefined
    const ms = Date.parse(v)
    return Number.isNaN(ms) ? badDate(name) : ms
  }
  const c: Conditions = {}
  const ifMatch = parseEtagList(first(headers, prefix + 'if-match'))
  const ifNoneMatch = parseEtagList(first(headers, prefix + 'if-none-match'))
  const ims = date(prefix + 'if-modified-since')
  const ius = date(prefix + 'if-unmodified-since')
  if (ifMatch !== undefined) c.ifMatch = ifMatch
  if (ifNoneMatch !== undefined) c.ifNoneMatch = ifNoneMatch
  if (ims !== undefined) c.ifModifiedSinceMs = ims
  if (ius !== undefined) c.ifUnmodifiedSinceMs = ius
  return Object.keys(c).length > 0 ? c : undefined
}
