/**
 * The pieces of an AWS Signature Version 4 canonical request as Amazon S3 computes them
 * ("Authenticating Requests: Using the Authorization Header / Query Parameters", "Create a
 * canonical request"), and the HMAC chain that signs it. Every S3 REST operation signed with
 * SigV4 (GetObject, PutObject, ListObjectsV2, CreateSession, …) goes through these.
 *
 * S3 specifics, as opposed to the generic SigV4 rules other AWS services follow:
 * - the canonical URI is encoded once, not twice, and is never normalized: `//`, `.` and `..`
 *   segments stay as they are (a key may be `a//b/../c`);
 * - S3 does not sign the bytes of the path as received. It percent-decodes the path and
 *   re-encodes it with AWS's UriEncode (every byte but `A-Z a-z 0-9 - . _ ~` and `/` as `%XX`,
 *   uppercase hex). A request for `/%3Fa=b%20c` must be signed over `/%3Fa%3Db%20c` (S3's own
 *   "The Canonical String for this request should have been …" answer, aws-sdk-js#853). For
 *   the SDKs (the JS SDK's per-segment `extendedEncodeURIComponent`, botocore's
 *   `quote(key, safe='/~')`, Go's `EscapePath`) the two forms are identical.
 * - the query is canonicalized the same way: each name and value decoded, UriEncoded (`/`
 *   included), sorted by name, then by value; a name without `=` signs as `name=`.
 */
import { createHash, createHmac } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/** The request target split as received: percent-encoding untouched. */
export interface RawTarget {
  /** Path exactly as received (absolute-form targets lose their `scheme://authority`); `/` if empty. */
  rawPath: string
  /** Everything after the first `?`, or '' (no `?` and an empty query both give ''). */
  rawQuery: string
}

/** One decoded query parameter (`+` left as `+`; a name without `=` has the value ''). */
export interface QueryParam {
  name: string
  value: string
}

const UNRESERVED = new Uint8Array(256)
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[ch.charCodeAt(0)] = 1
const HEX = '0123456789ABCDEF'

/** Splits a raw request target (origin form or absolute form) into path and query. */
export function splitTarget (url: string): RawTarget {
  let target = url
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target)
  if (scheme !== null) target = target.slice(scheme[0].length)
  const hash = target.indexOf('#')
  if (hash !== -1) target = target.slice(0, hash)
  const q = target.indexOf('?')
  const rawPath = q === -1 ? target : target.slice(0, q)
  return { rawPath: rawPath === '' ? '/' : rawPath, rawQuery: q === -1 ? '' : target.slice(q + 1) }
}

function hexValue (code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 65 && code <= 70) return code - 55
  if (code >= 97 && code <= 102) return code - 87
  return -1
}

/**
 * The bytes `text` stands for: `%XX` escapes decoded, `+` as a space when `plusIsSpace`, any
 * other character as its UTF-8 bytes (node answers 400 to a request target with raw non-ASCII
 * bytes, so from a socket these are all ASCII). A `%` not followed by two hex digits stays a
 * literal `%`.
 */
export function percentDecodeBytes (text: string, plusIsSpace = false): Buffer {
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 37 /* % */ && i + 2 < text.length) {
      const hi = hexValue(text.charCodeAt(i + 1))
      const lo = hexValue(text.charCodeAt(i + 2))
      if (hi !== -1 && lo !== -1) {
        out.push(hi * 16 + lo)
        i += 2
        continue
      }
    }
    if (code === 43 /* + */ && plusIsSpace) out.push(32)
    else if (code < 0x80) out.push(code)
    else {
      const cp = text.codePointAt(i)!
      if (cp > 0xffff) i++
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b)
    }
  }
  return Buffer.from(out)
}

/** Percent-decodes to a string (UTF-8); malformed escapes stay literal, invalid UTF-8 becomes U+FFFD. */
export function percentDecode (text: string, plusIsSpace = false): string {
  if (!text.includes('%') && !(plusIsSpace && text.includes('+'))) return text
  return percentDecodeBytes(text, plusIsSpace).toString('utf8')
}

/** AWS's UriEncode of raw bytes: everything but `A-Z a-z 0-9 - . _ ~` (and `/` if `keepSlash`) as `%XX`. */
export function uriEncodeBytes (bytes: Uint8Array, keepSlash: boolean): string {
  let out = ''
  for (const b of bytes) {
    if (UNRESERVED[b] === 1 || (keepSlash && b === 47)) out += String.fromCharCode(b)
    else out += '%' + HEX[b >> 4]! + HEX[b & 15]!
  }
  return out
}

/** AWS's UriEncode of a string's UTF-8 bytes. */
export function uriEncode (text: string, keepSlash = false): string {
  return uriEncodeBytes(Buffer.from(text, 'utf8'), keepSlash)
}

/** The canonical URI S3 computes: the raw path decoded and UriEncoded once, `/` kept, nothing normalized. */
export function canonicalUri (rawPath: string): string {
  // Fast path: a path that is already in canonical form (what every SDK sends).
  if (/^(?:[A-Za-z0-9\-._~/]|%[0-9A-F]{2})*$/.test(rawPath)) {
    let canonical = true
    for (const [, hex] of rawPath.matchAll(/%([0-9A-F]{2})/g)) {
      const b = parseInt(hex!, 16)
      if (UNRESERVED[b] === 1 || b === 47) canonical = false
    }
    if (canonical) return rawPath
  }
  return uriEncodeBytes(percentDecodeBytes(rawPath), true)
}

/** Splits a raw query into decoded parameters, in order (empty `&&` pieces skipped). */
export function parseQuery (rawQuery: string, plusIsSpace = false): QueryParam[] {
  const params: QueryParam[] = []
  if (rawQuery === '') return params
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    const value = eq === -1 ? '' : part.slice(eq + 1)
    params.push({ name: percentDecode(name, plusIsSpace), value: percentDecode(value, plusIsSpace) })
  }
  return params
}

/**
 * The canonical query string: each raw name and value decoded and UriEncoded, sorted by
 * name then value (code-point order of the encoded strings), `name=value` joined by `&`.
 * Parameters whose decoded name is in `exclude` (the presigned `X-Amz-Signature`) are left out.
 */
export function canonicalQuery (rawQuery: string, exclude: ReadonlySet<string>, plusIsSpace = false): string {
  if (rawQuery === '') return ''
  const pairs: Array<[string, string]> = []
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const rawName = eq === -1 ? part : part.slice(0, eq)
    const rawValue = eq === -1 ? '' : part.slice(eq + 1)
    const nameBytes = percentDecodeBytes(rawName, plusIsSpace)
    if (exclude.size > 0 && exclude.has(nameBytes.toString('utf8'))) continue
    pairs.push([uriEncodeBytes(nameBytes, false), uriEncodeBytes(percentDecodeBytes(rawValue, plusIsSpace), false)])
  }
  pairs.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
  return pairs.map(([n, v]) => `${n}=${v}`).join('&')
}

/**
 * Request headers as lowercase name → values in order. From `rawHeaders` when given (exact,
 * including repeated headers node would drop or join), else from node's parsed headers.
 */
export function headerMap (headers: IncomingHttpHeaders, rawHeaders?: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>()
  if (rawHeaders !== undefined) {
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toLowerCase()
      const list = map.get(name)
      if (list === undefined) map.set(name, [rawHeaders[i + 1]!])
      else list.push(rawHeaders[i + 1]!)
    }
    return map
  }
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    map.set(name.toLowerCase(), Array.isArray(value) ? value : [value])
  }
  return map
}

/** A header value as SigV4 canonicalizes it: runs of spaces and tabs collapsed to one space, trimmed. */
export function canonicalHeaderValue (value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim()
}

/** The canonical-headers block (`name:value\n` per signed header, repeated values joined by `,`). */
export function canonicalHeaders (signed: readonly string[], headers: Map<string, string[]>): string {
  let out = ''
  for (const name of signed) {
    const values = headers.get(name) ?? []
    out += `${name}:${values.map(canonicalHeaderValue).join(',')}\n`
  }
  return out
}

export function sha256Hex (data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

export function hmac (key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function deriveSigningKey (secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, date)
  const kRegion = hmac(kDate, region)
  const kService = hmac(kRegion, service)
  return hmac(kService, 'aws4_request')
}

/** The full canonical request. */
export function canonicalRequest (method: string, uri: string, query: string, headersBlock: string, signedHeaders: string, payloadHash: string): string {
  return `${method}\n${uri}\n${query}\n${headersBlock}\n${signedHeaders}\n${payloadHash}`
}

/** `AWS4-HMAC-SHA256\n<amzDate>\n<scope>\n<hex(sha256(canonicalRequest))>`. */
export function stringToSign (amzDate: string, scope: string, canonical: string): string {
  return `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`
}
