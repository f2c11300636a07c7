/**
 * Shared access signatures for the Blob front end: service SAS ("Create a service SAS",
 * sr=b|c|bs|bv) and account SAS ("Create an account SAS") signed with the account key,
 * verified per signed version, then checked against each operation by authorizeSas.
 */
import { isIPv4 } from 'node:net'
import { BlobAuthError, hmacBase64, signatureMatches } from './shared-key.js'
import type { RequestTarget } from './shared-key.js'

/** SAS permission letters (service and account SAS share the alphabet). */
export type SasPermission = 'r' | 'a' | 'c' | 'w' | 'd' | 'x' | 'l' | 't' | 'm' | 'e' | 'o' | 'p' | 'i' | 'y' | 'f' | 'u' | 'v'

const PERMISSION_LETTERS = 'racwdxltmeopiyfuv'

/**
 * Response-header overrides a service SAS signs (rscc, rscd, rsce, rscl, rsct), keyed by the
 * response header they replace on Get Blob / Get Blob Properties. Only non-empty ones are set.
 * Values are decoded text without control characters but may hold any Unicode, which node's
 * writeHead refuses (ERR_INVALID_CHAR) above U+00FF and, for Content-Disposition next to a
 * Content-Length, for anything whose UTF-8 bytes do not decode to Latin-1: encode them first.
 */
export type SasResponseHeaders = Partial<Record<'cache-control' | 'content-disposition' | 'content-encoding' | 'content-language' | 'content-type', string>>

const OVERRIDES = [['rscc', 'cache-control'], ['rscd', 'content-disposition'], ['rsce', 'content-encoding'],
  ['rscl', 'content-language'], ['rsct', 'content-type']] as const

interface SasGrantCommon {
  /** Signed version (sv). */
  version: string
  permissions: ReadonlySet<SasPermission>
  start: Date | undefined
  expiry: Date
  /** Signed encryption scope (ses): writes must use it. */
  encryptionScope: string | undefined
  /** Overrides to apply to read responses; always empty for an account SAS (they are not signed there). */
  responseHeaders: SasResponseHeaders
}

/** A verified service SAS. Its scope is the container, or one blob (and snapshot/version). */
export interface ServiceSasGrant extends SasGrantCommon {
  kind: 'service'
  /** Signed resource: blob, container, blob snapshot, blob version. */
  resource: 'b' | 'c' | 'bs' | 'bv'
  container: string
  /** Set unless resource is 'c'. */
  blob: string | undefined
  snapshot: string | undefined
  versionId: string | undefined
}

/** A verified account SAS. Only the Blob service (b) is ever granted here. */
export interface AccountSasGrant extends SasGrantCommon {
  kind: 'account'
  services: ReadonlySet<string>
  resourceTypes: ReadonlySet<'s' | 'c' | 'o'>
}

export type SasGrant = ServiceSasGrant | AccountSasGrant

/** What the request offers beyond its target. */
export interface SasInput {
  target: RequestTarget
  remoteAddress: string
  secure: boolean
}

const SAS_PARAMS = new Set(['sv', 'ss', 'srt', 'sp', 'st', 'se', 'sip', 'spr', 'sr', 'si', 'ses', 'sig',
  'rscc', 'rscd', 'rsce', 'rscl', 'rsct', 'skoid', 'sktid', 'skt', 'ske', 'sks', 'skv', 'saoid', 'suoid', 'scid', 'sdd'])

const OLDEST_VERSION = '2015-04-05'

function fail (detail: string): never {
  throw new BlobAuthError('AuthenticationFailed', detail)
}

/** The SAS parameters of the query; a repeated one is malformed. */
function sasParams (target: RequestTarget): Map<string, string> {
  const params = new Map<string, string>()
  for (const { name, value } of target.query) {
    if (!SAS_PARAMS.has(name)) continue
    if (params.has(name)) fail(`The SAS parameter ${name} appears more than once.`)
    params.set(name, value)
  }
  return params
}

// ISO 8601 as SAS accepts it: a date, or a date and time in UTC (or with an offset).
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2}))?$/

function parseSasTime (name: string, raw: string): Date {
  const match = ISO_TIME.exec(raw)
  const ms = match === null ? NaN : Date.parse(match[1] === undefined ? `${raw}T00:00:00Z` : raw.replace(/(\.\d{3})\d+/, '$1'))
  if (Number.isNaN(ms)) fail(`${name} is not a valid ISO 8601 time: '${raw}'.`)
  return new Date(ms)
}

function parseLetters<T extends string> (name: string, raw: string, alphabet: string): Set<T> {
  if (raw === '') fail(`${name} is mandatory. Cannot be empty`)
  const letters = new Set<T>()
  for (const ch of raw) {
    if (!alphabet.includes(ch)) fail(`${name} contains an unknown value '${ch}'.`)
    letters.add(ch as T)
  }
  return letters
}

function ipToNumber (ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0)
}

/** sip: one IPv4 address or an inclusive range `a.b.c.d-e.f.g.h`; `::ffff:` client addresses are IPv4. */
function checkSourceIp (sip: string, remoteAddress: string): void {
  const [start, end = start, extra] = sip.split('-')
  if (extra !== undefined || start === undefined || !isIPv4(start) || !isIPv4(end)) fail(`sip is not a valid IPv4 address or range: '${sip}'.`)
  const client = remoteAddress.toLowerCase().startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress
  const n = isIPv4(client) ? ipToNumber(client) : NaN
  if (!(n >= ipToNumber(start) && n <= ipToNumber(end))) {
    throw new BlobAuthError('AuthorizationSourceIPMismatch', undefined,
      `This request is not authorized to perform this operation using this source IP ${client}.`)
  }
}

/** Checks the time window, then protocol, then source IP; called only once the signature matched. */
function checkConditions (params: Map<string, string>, input: SasInput, now: Date): { start: Date | undefined, expiry: Date } {
  const rawStart = params.get('st')
  const start = rawStart === undefined || rawStart === '' ? undefined : parseSasTime('st', rawStart)
  const expiry = parseSasTime('se', params.get('se') ?? '')
  if ((start !== undefined && now < start) || now >= expiry) {
    fail(`Signature not valid in the specified time frame: Start [${start?.toUTCString() ?? ''}] - Expiry [${expiry.toUTCString()}] - Current [${now.toUTCString()}]`)
  }
  const spr = params.get('spr')
  if (spr !== undefined && spr !== '') {
    if (spr === 'https') {
      if (!input.secure) throw new BlobAuthError('AuthorizationProtocolMismatch')
    } else if (spr !== 'https,http' && spr !== 'http,https') {
      fail(`spr is not a valid protocol: '${spr}'.`)
    }
  }
  const sip = params.get('sip')
  if (sip !== undefined && sip !== '') checkSourceIp(sip, input.remoteAddress)
  return { start, expiry }
}

function checkVersion (sv: string | undefined): string {
  if (sv === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(sv)) fail('sv is mandatory and must be a service version (YYYY-MM-DD).')
  if (sv < OLDEST_VERSION) fail(`Signed version ${sv} is not supported; use ${OLDEST_VERSION} or later.`)
  return sv
}

/** A base64 signature never contains a space: a '+' sent unencoded reads as one, so undo that. */
function presentedSignature (params: Map<string, string>): string {
  return (params.get('sig') ?? '').replace(/ /g, '+')
}

function verifyServiceSas (params: Map<string, string>, input: SasInput, account: { name: string, key: Buffer }, now: Date): ServiceSasGrant {
  const version = checkVersion(params.get('sv'))
  if (params.get('si') !== undefined) {
    fail('Stored access policies (si) are not supported by this gateway; sign the SAS with explicit sp and se.')
  }
  if (params.has('skoid') || params.has('sktid')) fail('User delegation SAS is not supported by this gateway.')
  const sr = params.get('sr') ?? ''
  if (sr !== 'b' && sr !== 'c' && sr !== 'bs' && sr !== 'bv') fail(`Signed resource '${sr}' is not supported.`)
  // Before 2018-11-09 neither sr nor the snapshot was signed: such a SAS cannot name a snapshot.
  if ((sr === 'bs' || sr === 'bv') && version < '2018-11-09') fail(`Signed resource '${sr}' needs sv 2018-11-09 or later.`)
  const { target } = input
  const get = (name: string): string => params.get(name) ?? ''
  if (target.container === undefined || (sr !== 'c' && target.blob === undefined)) {
    fail('The signed resource does not match the request target.')
  }
  const permissions = parseLetters<SasPermission>('sp', get('sp'), PERMISSION_LETTERS)
  if (get('se') === '') fail('se is mandatory. Cannot be empty')
  const requestParam = (name: string): string | undefined => target.query.find(p => p.name.toLowerCase() === name)?.value
  const snapshot = sr === 'bs' ? requestParam('snapshot') : undefined
  const versionId = sr === 'bv' ? requestParam('versionid') : undefined
  if ((sr === 'bs' && snapshot === undefined) || (sr === 'bv' && versionId === undefined)) {
    fail('The signed resource does not match the request target.')
  }
  const canonical = `/blob/${account.name}/${target.container}${sr === 'c' ? '' : `/${target.blob as string}`}`
  const fields = [get('sp'), get('st'), get('se'), canonical, get('si'), get('sip'), get('spr'), version]
  if (version >= '2018-11-09') fields.push(sr, snapshot ?? versionId ?? '')
  if (version >= '2020-12-06') fields.push(get('ses'))
  for (const [param] of OVERRIDES) fields.push(get(param))
  if (!signatureMatches(presentedSignature(params), [hmacBase64(account.key, fields.join('\n'))])) {
    fail('Signature did not match.')
  }
  const { start, expiry } = checkConditions(params, input, now)
  const responseHeaders: SasResponseHeaders = {}
  for (const [param, header] of OVERRIDES) {
    const value = get(param)
    // A signed value that cannot be a header value (CR, LF, NUL, ...) would break the response.
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) fail(`${param} contains a character not allowed in an HTTP header.`)
    if (value !== '') responseHeaders[header] = value
  }
  return {
    kind: 'service',
    version,
    permissions,
    start,
    expiry,
    encryptionScope: params.get('ses') || undefined,
    resource: sr,
    container: target.container as string,
    blob: sr === 'c' ? undefined : target.blob,
    snapshot,
    versionId,
    responseHeaders,
  }
}

function verifyAccountSas (params: Map<string, string>, input: SasInput, account: { name: string, key: Buffer }, now: Date): AccountSasGrant {
  const version = checkVersion(params.get('sv'))
  const get = (name: string): string => params.get(name) ?? ''
  const services = parseLetters<string>('ss', get('ss'), 'bfqt')
  const resourceTypes = parseLetters<'s' | 'c' | 'o'>('srt', get('srt'), 'sco')
  const permissions = parseLetters<SasPermission>('sp', get('sp'), PERMISSION_LETTERS)
  if (get('se') === '') fail('se is mandatory. Cannot be empty')
  const fields = [account.name, get('sp'), get('ss'), get('srt'), get('st'), get('se'), get('sip'), get('spr'), version]
  if (version >= '2020-12-06') fields.push(get('ses'))
  fields.push('')
  if (!signatureMatches(presentedSignature(params), [hmacBase64(account.key, fields.join('\n'))])) {
    fail('Signature did not match.')
  }
  const { start, expiry } = checkConditions(params, input, now)
  if (!services.has('b')) throw new BlobAuthError('AuthorizationServiceMismatch')
  return {
    kind: 'account',
    version,
    permissions,
    start,
    expiry,
    encryptionScope: params.get('ses') || undefined,
    responseHeaders: {},
    services,
    resourceTypes,
  }
}

/**
 * Verifies the SAS in the request's query string (the caller saw a `sig` parameter): signature
 * per signed version, time window, protocol, source IP. A SAS with `sr` is a service SAS, one
 * with `ss`/`srt` an account SAS. Throws BlobAuthError (AuthenticationFailed,
 * AuthorizationProtocolMismatch, AuthorizationSourceIPMismatch, AuthorizationServiceMismatch).
 */
export function verifySas (input: SasInput, account: { name: string, key: Buffer }, now: Date): SasGrant {
  const params = sasParams(input.target)
  if (params.has('sr')) return verifyServiceSas(params, input, account, now)
  if (params.has('ss') || params.has('srt')) return verifyAccountSas(params, input, account, now)
  return fail('The SAS has neither a signed resource (sr) nor signed services (ss).')
}

/** What an operation needs from a SAS. */
export interface SasNeed {
  permission: SasPermission
  resourceType: 'service' | 'container' | 'object'
  container?: string
  blob?: string
}

/**
 * Checks that a verified SAS grant allows an operation on a target: the permission letter, the
 * resource type (account SAS `srt`; a service SAS covers its container or its one blob) and the
 * container/blob scope. Throws BlobAuthError AuthorizationPermissionMismatch,
 * AuthorizationResourceTypeMismatch or AuthorizationFailure. (An account SAS without the Blob
 * service never becomes a grant: authenticate() answers AuthorizationServiceMismatch.)
 * Operations Azure allows with either of two letters (Put Blob: 'c' for a new blob, 'w' for an
 * existing one) call this once per letter the situation calls for.
 */
export function authorizeSas (grant: SasGrant, need: SasNeed): void {
  if (grant.kind === 'account') {
    const type = need.resourceType === 'service' ? 's' : need.resourceType === 'container' ? 'c' : 'o'
    if (!grant.resourceTypes.has(type)) throw new BlobAuthError('AuthorizationResourceTypeMismatch')
  } else {
    if (need.resourceType === 'service') throw new BlobAuthError('AuthorizationResourceTypeMismatch')
    if (grant.resource !== 'c' && need.resourceType !== 'object') throw new BlobAuthError('AuthorizationResourceTypeMismatch')
    if (need.container !== undefined && need.container !== grant.container) throw new BlobAuthError('AuthorizationFailure')
    if (grant.resource !== 'c' && need.blob !== undefined && need.blob !== grant.blob) throw new BlobAuthError('AuthorizationFailure')
  }
  if (!grant.permissions.has(need.permission)) throw new BlobAuthError('AuthorizationPermissionMismatch')
}
