/**
 * Shared Key authorization for the Blob front end ("Authorize with Shared Key"): the
 * string-to-sign, its canonicalized headers and resource, and a constant-time check of the
 * signature. Also the pieces the SAS verifier shares with it: the request-target parser,
 * HMAC-SHA256 and BlobAuthError (index.ts re-exports the public ones).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/** The Azure error codes authentication and SAS authorization answer with (all HTTP 403). */
export type BlobAuthErrorCode =
  | 'AuthenticationFailed'
  | 'AuthorizationFailure'
  | 'AuthorizationPermissionMismatch'
  | 'AuthorizationResourceTypeMismatch'
  | 'AuthorizationServiceMismatch'
  | 'AuthorizationProtocolMismatch'
  | 'AuthorizationSourceIPMismatch'

const MESSAGES: Record<BlobAuthErrorCode, string> = {
  AuthenticationFailed: 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.',
  AuthorizationFailure: 'This request is not authorized to perform this operation.',
  AuthorizationPermissionMismatch: 'This request is not authorized to perform this operation using this permission.',
  AuthorizationResourceTypeMismatch: 'This request is not authorized to perform this operation using this resource type.',
  AuthorizationServiceMismatch: 'This request is not authorized to perform this operation using this service.',
  AuthorizationProtocolMismatch: 'This request is not authorized to perform this operation using this protocol.',
  AuthorizationSourceIPMismatch: 'This request is not authorized to perform this operation using this source IP.',
}

/**
 * An Azure Blob 403. `azureCode` is Azure's exact error code, `message` Azure's text for it and
 * `detail` what Azure puts in `<AuthenticationErrorDetail>`. None of them ever contains the
 * account key, a signature or a string-to-sign (which may carry a copy source's SAS).
 */
export class BlobAuthError extends Error {
  readonly status: number = 403
  readonly azureCode: BlobAuthErrorCode
  readonly detail: string | undefined

  constructor (azureCode: BlobAuthErrorCode, detail?: string, message?: string) {
    super(message ?? MESSAGES[azureCode])
    this.name = 'BlobAuthError'
    this.azureCode = azureCode
    this.detail = detail
  }
}

/** One query parameter, name and value percent-decoded ('+' read as a space, as Azure does). */
export interface QueryParam {
  name: string
  value: string
}

/** A path-style request target: `/<account>[/<container>[/<blob>]][?query]`. */
export interface RequestTarget {
  /** The path exactly as received, percent-encoding untouched; what Shared Key signs. */
  rawPath: string
  /** Decoded path segments. */
  account: string
  container: string | undefined
  blob: string | undefined
  /** Parameters in the order received; a bare `name` has the value ''. */
  query: QueryParam[]
}

/** Decodes %XX escapes; a malformed sequence leaves the text as it was (as Python's unquote keeps it). */
export function percentDecode (text: string): string {
  if (!text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Splits a raw request target into the parts authentication needs. Accepts origin and absolute form. */
export function parseRequestTarget (url: string): RequestTarget {
  let target = url
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i.exec(target)
  if (scheme !== null) target = target.slice(scheme[0].length)
  const q = target.indexOf('?')
  let rawPath = q === -1 ? target : target.slice(0, q)
  if (rawPath === '') rawPath = '/'
  const query: QueryParam[] = []
  if (q !== -1) {
    for (const part of target.slice(q + 1).split('&')) {
      if (part === '') continue
      const eq = part.indexOf('=')
      const name = eq === -1 ? part : part.slice(0, eq)
      const value = eq === -1 ? '' : part.slice(eq + 1)
      query.push({ name: percentDecode(name.replace(/\+/g, ' ')), value: percentDecode(value.replace(/\+/g, ' ')) })
    }
  }
  const rest = rawPath.slice(1)
  const firstSlash = rest.indexOf('/')
  const account = percentDecode(firstSlash === -1 ? rest : rest.slice(0, firstSlash))
  let container: string | undefined
  let blob: string | undefined
  if (firstSlash !== -1) {
    const afterAccount = rest.slice(firstSlash + 1)
    const secondSlash = afterAccount.indexOf('/')
    container = percentDecode(secondSlash === -1 ? afterAccount : afterAccount.slice(0, secondSlash))
    if (secondSlash !== -1 && secondSlash < afterAccount.length - 1) blob = percentDecode(afterAccount.slice(secondSlash + 1))
    if (container === '') container = undefined
  }
  return { rawPath, account, container, blob, query }
}

/** Base64 HMAC-SHA256 of the UTF-8 string-to-sign, as every Azure scheme computes it. */
export function hmacBase64 (key: Buffer, stringToSign: string): string {
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('base64')
}

/** Constant-time comparison of a presented signature with each expected one. */
export function signatureMatches (presented: string, expected: readonly string[]): boolean {
  const given = Buffer.from(presented, 'utf8')
  let match = false
  for (const candidate of expected) {
    const want = Buffer.from(candidate, 'utf8')
    if (want.length === given.length && timingSafeEqual(want, given)) match = true
  }
  return match
}

/** The value of a request header as one string (repeated headers joined as node joins them). */
export function headerValue (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : value
}

// ---------------------------------------------------------------------------------------------
// Canonicalized headers. The service sorts x-ms-* names with .NET's culture-aware (en-US)
// comparison: '-' and '\'' are ignored except to break ties, and '_' sorts before digits and
// letters. The JS SDK reproduces that; Python azure-storage-blob 12.15 sorts with its own
// weight table and older clients sort by code unit. They agree on ordinary names; where they
// differ (e.g. `x-ms-meta-a-b` vs `x-ms-meta-a_c`) every ordering is tried, which still signs
// the same set of headers and values.

/** Primary (level-0) weights; characters absent here ('-', '\'') are ignorable at this level. */
const AZURE_PRIMARY = '!#$%&*.^_`|~+0123456789abcdefghijklmnopqrstuvwxyz'
/** Tie-breaking weights of the characters ignorable at level 0. */
const AZURE_SPECIAL = '\'-'

function azureWeight (table: string, ch: string): number {
  return table.indexOf(ch.toLowerCase()) + 1
}

/** Compares two lowercase header names the way the Blob service orders them. */
export function compareHeaderNamesAzure (a: string, b: string): number {
  const pa = [...a].map(ch => azureWeight(AZURE_PRIMARY, ch)).filter(w => w > 0)
  const pb = [...b].map(ch => azureWeight(AZURE_PRIMARY, ch)).filter(w => w > 0)
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return (pa[i] as number) - (pb[i] as number)
  }
  if (pa.length !== pb.length) return pa.length - pb.length
  // Same letters: the name whose first '-' or '\'' comes later sorts first.
  for (let i = 0; ; i++) {
    const wa = i < a.length ? azureWeight(AZURE_SPECIAL, a[i] as string) : -1
    const wb = i < b.length ? azureWeight(AZURE_SPECIAL, b[i] as string) : -1
    if (wa === -1 && wb === -1) return 0
    if (wa === wb) continue
    if (wa === 0) return -1
    if (wb === 0) return 1
    return wa - wb
  }
}

const PYTHON_WEIGHTS = '-!#$%&*.^_|~+"\'(),/`~0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz{}'

function comparePython (a: string, b: string): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = PYTHON_WEIGHTS.indexOf(a[i] as string) - PYTHON_WEIGHTS.indexOf(b[i] as string)
    if (d !== 0) return d
  }
  return a.length - b.length
}

function compareOrdinal (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

const HEADER_ORDERS = [compareHeaderNamesAzure, comparePython, compareOrdinal]

/** The distinct canonicalized-header blocks the known orderings produce (the service's first). */
function canonicalizedHeaderBlocks (headers: IncomingHttpHeaders): string[] {
  const entries: Array<[string, string]> = []
  for (const name of Object.keys(headers)) {
    if (!name.startsWith('x-ms-')) continue
    entries.push([name, (headerValue(headers, name) ?? '').trim()])
  }
  const blocks = new Set<string>()
  for (const order of HEADER_ORDERS) {
    const sorted = [...entries].sort((x, y) => order(x[0], y[0]))
    blocks.add(sorted.map(([name, value]) => `${name}:${value}\n`).join(''))
  }
  return [...blocks]
}

/** `/<account><raw path>` then, per lowercase name in order, `\nname:v1,v2` with values sorted. */
function canonicalizedResource (accountName: string, target: RequestTarget): string {
  const byName = new Map<string, string[]>()
  for (const { name, value } of target.query) {
    const key = name.toLowerCase()
    const values = byName.get(key)
    if (values === undefined) byName.set(key, [value])
    else values.push(value)
  }
  let out = `/${accountName}${target.rawPath}`
  for (const name of [...byName.keys()].sort(compareOrdinal)) {
    const values = (byName.get(name) as string[]).sort(compareOrdinal)
    out += `\n${name}:${values.join(',')}`
  }
  return out
}

/** Shared Key Lite signs only the `comp` parameter: `/<account><raw path>[?comp=<value>]`. */
function canonicalizedResourceLite (accountName: string, target: RequestTarget): string {
  const comp = target.query.find(p => p.name.toLowerCase() === 'comp')
  return `/${accountName}${target.rawPath}${comp === undefined ? '' : `?comp=${comp.value}`}`
}

const SKEW_MS = 15 * 60 * 1000

/** Azure refuses a request whose x-ms-date (else Date) is missing, unparsable or 15 min off. */
function checkRequestDate (headers: IncomingHttpHeaders, now: Date): void {
  const raw = headerValue(headers, 'x-ms-date') ?? headerValue(headers, 'date')
  if (raw === undefined || raw === '') {
    throw new BlobAuthError('AuthenticationFailed', 'Request date header not specified.')
  }
  const at = Date.parse(raw)
  if (Number.isNaN(at)) throw new BlobAuthError('AuthenticationFailed', 'The Date header in the request is incorrect.')
  if (Math.abs(now.getTime() - at) > SKEW_MS) {
    throw new BlobAuthError('AuthenticationFailed', `Request date header too old or too far in the future: '${raw}'.`)
  }
}

/** The inputs Shared Key verification reads from the request. */
export interface SharedKeyInput {
  method: string
  headers: IncomingHttpHeaders
  target: RequestTarget
}

/** Every string-to-sign an honest client could have signed for this request. */
export function sharedKeyStringsToSign (input: SharedKeyInput, accountName: string, lite: boolean): string[] {
  const { headers } = input
  const get = (name: string): string => headerValue(headers, name) ?? ''
  const version = get('x-ms-version')
  let contentLength = get('content-length')
  // "When using version 2015-02-21 or later, if Content-Length is zero, then set the
  // Content-Length part of the StringToSign to an empty string."
  if (contentLength === '0' && (version === '' || version >= '2015-02-21')) contentLength = ''
  // With x-ms-date present the Date slot is empty; a client that also sent Date may have signed it.
  const dates = headers['x-ms-date'] === undefined ? [get('date')] : [...new Set(['', get('date')])]
  const resource = lite ? canonicalizedResourceLite(accountName, input.target) : canonicalizedResource(accountName, input.target)
  const verb = input.method.toUpperCase()
  const out: string[] = []
  for (const date of dates) {
    const fixed = lite
      ? [verb, get('content-md5'), get('content-type'), date]
      : [verb, get('content-encoding'), get('content-language'), contentLength, get('content-md5'), get('content-type'),
          date, get('if-modified-since'), get('if-match'), get('if-none-match'), get('if-unmodified-since'), get('range')]
    for (const block of canonicalizedHeaderBlocks(headers)) out.push(fixed.join('\n') + '\n' + block + resource)
  }
  return out
}

const AUTHORIZATION = /^(SharedKey|SharedKeyLite) ([^\s:]+):([A-Za-z0-9+/=]+)$/

/**
 * Verifies `Authorization: SharedKey <account>:<signature>` (or SharedKeyLite) against the
 * account key. Throws BlobAuthError AuthenticationFailed on any mismatch or malformation.
 */
export function verifySharedKey (input: SharedKeyInput, account: { name: string, key: Buffer }, now: Date): void {
  const authorization = headerValue(input.headers, 'authorization') ?? ''
  const parsed = AUTHORIZATION.exec(authorization.trim())
  if (parsed === null) {
    const scheme = authorization.trim().split(/\s+/, 1)[0] ?? ''
    throw new BlobAuthError('AuthenticationFailed', /^SharedKey(Lite)?$/.test(scheme)
      ? 'The Authorization header is not in the form "SharedKey <account>:<signature>".'
      : `Authorization scheme '${scheme.slice(0, 32)}' is not supported; use SharedKey or a SAS.`)
  }
  const [, scheme, accountName, signature] = parsed as unknown as [string, string, string, string]
  if (accountName !== account.name) {
    throw new BlobAuthError('AuthenticationFailed', 'The account in the Authorization header is not the account being accessed.')
  }
  const expected = sharedKeyStringsToSign(input, account.name, scheme === 'SharedKeyLite')
    .map(stringToSign => hmacBase64(account.key, stringToSign))
  if (!signatureMatches(signature, expected)) {
    throw new BlobAuthError('AuthenticationFailed', 'The MAC signature found in the HTTP request is not the same as any computed signature.')
  }
  checkRequestDate(input.headers, now)
}
