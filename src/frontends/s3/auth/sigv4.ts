/**
 * AWS Signature Version 4 verification for the S3 front end, for every S3 REST operation
 * (GetObject, PutObject, UploadPart, ListObjectsV2, CreateSession, …) and for both ways S3
 * accepts a signature: the `Authorization` header ("Authenticating Requests: Using the
 * Authorization Header") and a presigned URL ("… Using Query Parameters").
 *
 * - Scope `<date>/<region>/s3|s3express/aws4_request`; any region is accepted and reported
 *   (the front end decides whether it serves it). `s3express` is what S3 Express One Zone
 *   clients sign with: CreateSession with the long-term key, later requests with the session
 *   credentials and an `x-amz-s3session-token` header (`X-Amz-S3session-Token` when presigned).
 * - `x-amz-content-sha256` says how the payload is covered: a hex SHA-256 (the front end
 *   checks the body against it: XAmzContentSHA256Mismatch), `UNSIGNED-PAYLOAD`, or one of the
 *   aws-chunked modes (aws-chunked.ts decodes them, chaining chunk signatures from
 *   `SigV4Auth.signature`). A presigned URL covers `UNSIGNED-PAYLOAD` unless it signed that header.
 * - Time: a header-signed request more than 15 minutes from the server clock is
 *   RequestTimeTooSkewed; a presigned URL is valid from X-Amz-Date (less the same 15 minutes)
 *   for X-Amz-Expires seconds, at most 7 days.
 * - Every `x-amz-*` header must be signed (S3: AccessDenied, "There were headers present in the
 *   request which were not signed"), except `x-amz-content-sha256`, which the canonical request
 *   covers anyway. `host` must be signed.
 * - The signature is compared in constant time. Errors never carry the secret, the expected
 *   signature or the canonical request (which may hold a session token).
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import {
  canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUri, deriveSigningKey, headerMap, hmac,
  parseQuery, splitTarget, stringToSign,
} from './canonical.js'

export type S3AuthErrorCode =
  | 'AccessDenied'
  | 'AuthorizationHeaderMalformed'
  | 'AuthorizationQueryParametersError'
  | 'ExpiredToken'
  | 'InvalidAccessKeyId'
  | 'InvalidArgument'
  | 'InvalidRequest'
  | 'InvalidToken'
  | 'RequestTimeTooSkewed'
  | 'SignatureDoesNotMatch'

/** HTTP status and default message per code, as in S3's "List of error codes". */
const CODES: Record<S3AuthErrorCode, [number, string]> = {
  AccessDenied: [403, 'Access Denied'],
  AuthorizationHeaderMalformed: [400, 'The authorization header you provided is invalid.'],
  AuthorizationQueryParametersError: [400, 'Error parsing the X-Amz-Credential parameter.'],
  ExpiredToken: [400, 'The provided token has expired.'],
  InvalidAccessKeyId: [403, 'The AWS Access Key Id you provided does not exist in our records.'],
  InvalidArgument: [400, 'Invalid Argument'],
  InvalidRequest: [400, 'Invalid Request'],
  InvalidToken: [400, 'The provided token is malformed or otherwise invalid.'],
  RequestTimeTooSkewed: [403, 'The difference between the request time and the current time is too large.'],
  SignatureDoesNotMatch: [403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'],
}

/**
 * An S3 authentication failure: `status`, S3's `s3Code` and message, and `detail`, the extra
 * elements S3 puts in its `<Error>` body (e.g. `HeadersNotSigned`, `RequestTime`, `ServerTime`).
 */
export class S3AuthError extends Error {
  readonly status: number
  readonly s3Code: S3AuthErrorCode
  readonly detail: Record<string, string>

  constructor (s3Code: S3AuthErrorCode, message?: string, detail: Record<string, string> = {}) {
    super(message ?? CODES[s3Code][1])
    this.name = 'S3AuthError'
    this.status = CODES[s3Code][0]
    this.s3Code = s3Code
    this.detail = detail
  }
}

export interface SigV4Input {
  method: string
  /** Raw path and query exactly as received (`req.url`). */
  url: string
  headers: IncomingHttpHeaders
  now: Date
  /** `req.rawHeaders`: when given, repeated headers are canonicalized exactly (node joins or drops some). */
  rawHeaders?: readonly string[]
}

/**
 * The secret for an access key, or undefined if the key is unknown (→ InvalidAccessKeyId).
 * `sessionToken` is the request's `x-amz-s3session-token` (S3 Express session credentials from
 * CreateSession) or `x-amz-security-token` (STS), header or query; the lookup validates it and
 * may throw an S3AuthError itself (`InvalidToken`, `ExpiredToken`).
 */
export interface SecretLookup {
  (accessKeyId: string, ctx: { sessionToken?: string, service: string }): { secretAccessKey: string } | undefined
}

export type SigV4Payload =
  | { kind: 'sha256', hex: string }
  | { kind: 'unsigned' }
  | { kind: 'streaming-signed' }
  | { kind: 'streaming-signed-trailer' }
  | { kind: 'streaming-unsigned-trailer' }

export interface SigV4Auth {
  accessKeyId: string
  service: 's3' | 's3express'
  region: string
  /** yyyymmdd of the credential scope. */
  date: string
  /** The request timestamp as signed (ISO 8601 basic, `yyyymmddThhmmssZ`). */
  amzDate: string
  /** `<date>/<region>/<service>/aws4_request`. */
  scope: string
  signingKey: Buffer
  /** The request's signature: the seed of a signed aws-chunked body's chain. */
  signature: string
  payload: SigV4Payload
  presigned: boolean
  sessionToken?: string
}

export const MAX_SKEW_MS = 15 * 60 * 1000
export const MAX_PRESIGNED_EXPIRES = 7 * 24 * 60 * 60

const ALGORITHM = 'AWS4-HMAC-SHA256'
const CREDENTIAL_FORMAT = 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
const UNSUPPORTED_MECHANISM = 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.'
const QUERY_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires'] as const
const EXCLUDE_SIGNATURE: ReadonlySet<string> = new Set(['X-Amz-Signature'])
const NO_EXCLUSION: ReadonlySet<string> = new Set()

/** What either way of signing names, before the signature is checked. */
interface Claim {
  accessKeyId: string
  date: string
  region: string
  service: 's3' | 's3express'
  signedHeaders: string[]
  signature: string
  amzDate: string
  /** The payload hash(es) the canonical request may end with, and the mode each means. */
  payloads: Array<[string, SigV4Payload]>
  presigned: boolean
  sessionToken?: string
}

/**
 * Verifies a SigV4-signed S3 request. Returns undefined for an anonymous request (no
 * `Authorization` header, no `X-Amz-Algorithm`/`X-Amz-Signature` parameter); throws an
 * S3AuthError for anything signed that does not verify.
 */
export function verifySigV4 (req: SigV4Input, lookup: SecretLookup): SigV4Auth | undefined {
  const { rawPath, rawQuery } = splitTarget(req.url)
  const headers = headerMap(req.headers, req.rawHeaders)
  const params = new Map<string, string>()
  for (const { name, value } of parseQuery(rawQuery)) if (!params.has(name)) params.set(name, value)
  const authorization = headers.get('authorization')?.join(',')
  const queryAuth = params.has('X-Amz-Algorithm') || params.has('X-Amz-Signature') || params.has('X-Amz-Credential')

  if (authorization !== undefined && queryAuth) {
    throw new S3AuthError('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified', { ArgumentName: 'Authorization', ArgumentValue: authorization.split(' ')[0] ?? '' })
  }
  let claim: Claim
  if (authorization !== undefined) claim = parseAuthorizationHeader(authorization, headers, req.now)
  else if (queryAuth) claim = parsePresigned(params, headers, req.now)
  else if (params.has('Signature') && params.has('AWSAccessKeyId')) throw new S3AuthError('InvalidRequest', UNSUPPORTED_MECHANISM)
  else return undefined

  if (!claim.signedHeaders.includes('host')) {
    const code = claim.presigned ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed'
    throw new S3AuthError(code, 'The host header must be signed.')
  }
  const unsigned = [...headers.keys()].filter((name) => name.startsWith('x-amz-') && name !== 'x-amz-content-sha256' && !claim.signedHeaders.includes(name))
  if (unsigned.length > 0) {
    throw new S3AuthError('AccessDenied', 'There were headers present in the request which were not signed', { HeadersNotSigned: unsigned.join(', ') })
  }

  const ctx: { sessionToken?: string, service: string } = { service: claim.service }
  if (claim.sessionToken !== undefined) ctx.sessionToken = claim.sessionToken
  const secret = lookup(claim.accessKeyId, ctx)
  if (secret === undefined) throw new S3AuthError('InvalidAccessKeyId', undefined, { AWSAccessKeyId: claim.accessKeyId })

  const scope = `${claim.date}/${claim.region}/${claim.service}/aws4_request`
  const signingKey = deriveSigningKey(secret.secretAccessKey, claim.date, claim.region, claim.service)
  const headersBlock = canonicalHeaders(claim.signedHeaders, headers)
  const signedList = claim.signedHeaders.join(';')
  const exclude = claim.presigned ? EXCLUDE_SIGNATURE : NO_EXCLUSION

  // S3's own form first; then what a client may have signed when it encoded the path its own
  // way (the bytes as sent) or meant `+` in the query as a space. Each names the same request.
  const uris = unique([canonicalUri(rawPath), rawPath])
  const queries = unique([canonicalQuery(rawQuery, exclude), ...(rawQuery.includes('+') ? [canonicalQuery(rawQuery, exclude, true)] : [])])
  let firstStringToSign: string | undefined
  for (const [payloadHash, payload] of claim.payloads) {
    for (const uri of uris) {
      for (const query of queries) {
        const sts = stringToSign(claim.amzDate, scope, canonicalRequest(req.method, uri, query, headersBlock, signedList, payloadHash))
        firstStringToSign ??= sts
        if (!signatureEquals(hmac(signingKey, sts).toString('hex'), claim.signature)) continue
        const auth: SigV4Auth = {
          accessKeyId: claim.accessKeyId,
          service: claim.service,
          region: claim.region,
          date: claim.date,
          amzDate: claim.amzDate,
          scope,
          signingKey,
          signature: claim.signature,
          payload,
          presigned: claim.presigned,
        }
        if (claim.sessionToken !== undefined) auth.sessionToken = claim.sessionToken
        return auth
      }
    }
  }
  throw new S3AuthError('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: claim.accessKeyId, StringToSign: firstStringToSign ?? '' })
}

function unique (values: string[]): string[] {
  return [...new Set(values)]
}

function signatureEquals (expected: string, presented: string): boolean {
  const a = Buffer.from(expected, 'latin1')
  const b = Buffer.from(presented, 'latin1')
  return a.length === b.length && timingSafeEqual(a, b)
}

/** `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (s3cmd omits the spaces). */
function parseAuthorizationHeader (value: string, headers: Map<string, string[]>, now: Date): Claim {
  const trimmed = value.trim()
  const space = trimmed.indexOf(' ')
  const algorithm = space === -1 ? trimmed : trimmed.slice(0, space)
  if (algorithm !== ALGORITHM) {
    if (algorithm === 'AWS' || algorithm === 'AWS4-ECDSA-P256-SHA256') throw new S3AuthError('InvalidRequest', UNSUPPORTED_MECHANISM)
    throw new S3AuthError('InvalidArgument', 'Unsupported Authorization Type', { ArgumentName: 'Authorization', ArgumentValue: algorithm })
  }
  const fields = new Map<string, string>()
  for (const part of trimmed.slice(space + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = fields.get('Credential')
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (credential === undefined || signedHeaders === undefined || signature === undefined || space === -1) {
    throw new S3AuthError('AuthorizationHeaderMalformed', 'The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.')
  }
  const scope = parseCredential(credential, 'AuthorizationHeaderMalformed', 'The authorization header is malformed; ')

  const amzDate = requestDate(headers)
  if (amzDate.slice(0, 8) !== scope.date) {
    throw new S3AuthError('AuthorizationHeaderMalformed', 'The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.')
  }
  const contentSha = headers.get('x-amz-content-sha256')?.join(',').trim()
  if (contentSha === undefined) throw new S3AuthError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256')
  const payload = payloadMode(contentSha)

  const requestTime = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15))
  if (Math.abs(now.getTime() - requestTime) > MAX_SKEW_MS) {
    throw new S3AuthError('RequestTimeTooSkewed', undefined, { RequestTime: amzDate, ServerTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z'), MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS) })
  }
  const claim: Claim = { ...scope, signedHeaders: parseSignedHeaders(signedHeaders), signature, amzDate, payloads: [[contentSha, payload]], presigned: false }
  const token = headers.get('x-amz-s3session-token')?.[0] ?? headers.get('x-amz-security-token')?.[0]
  if (token !== undefined) claim.sessionToken = token
  return claim
}

/** The query parameters of a presigned URL (S3's `X-Amz-*` names are case-sensitive). */
function parsePresigned (params: Map<string, string>, headers: Map<string, string[]>, now: Date): Claim {
  for (const name of QUERY_PARAMS) {
    if (!params.has(name)) {
      throw new S3AuthError('AuthorizationQueryParametersError', 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.')
    }
  }
  if (params.get('X-Amz-Algorithm') !== ALGORITHM) {
    throw new S3AuthError('AuthorizationQueryParametersError', `X-Amz-Algorithm only supports "${ALGORITHM}"`)
  }
  const scope = parseCredential(params.get('X-Amz-Credential')!, 'AuthorizationQueryParametersError', 'Error parsing the X-Amz-Credential parameter; ')
  const amzDate = params.get('X-Amz-Date')!
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || Number.isNaN(Date.parse(isoFromBasic(amzDate)))) {
    throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"')
  }
  if (amzDate.slice(0, 8) !== scope.date) {
    throw new S3AuthError('AuthorizationQueryParametersError', `Invalid credential date "${scope.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`)
  }
  const expiresText = params.get('X-Amz-Expires')!
  if (!/^-?\d+$/.test(expiresText)) throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number')
  const expires = Number(expiresText)
  if (expires < 0) throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative')
  if (expires > MAX_PRESIGNED_EXPIRES) throw new S3AuthError('AuthorizationQueryParametersError', `X-Amz-Expires must be less than a week (in seconds) that is ${MAX_PRESIGNED_EXPIRES}`)

  const signedAt = Date.parse(isoFromBasic(amzDate))
  const serverTime = now.toISOString().replace(/\.\d{3}Z$/, 'Z')
  if (now.getTime() < signedAt - MAX_SKEW_MS) {
    throw new S3AuthError('AccessDenied', 'Request is not valid yet', { 'X-Amz-Date': amzDate, ServerTime: serverTime })
  }
  if (now.getTime() > signedAt + expires * 1000) {
    throw new S3AuthError('AccessDenied', 'Request has expired', { 'X-Amz-Expires': expiresText, Expires: new Date(signedAt + expires * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'), ServerTime: serverTime })
  }

  // UNSIGNED-PAYLOAD, unless the URL signed a payload hash: as a header, or hoisted into the query
  // (@smithy/signature-v4's presign() moves x-amz-* headers there and signs their value).
  const signedHeaders = parseSignedHeaders(params.get('X-Amz-SignedHeaders')!)
  const payloads: Array<[string, SigV4Payload]> = []
  const contentSha = headers.get('x-amz-content-sha256')?.join(',').trim()
  const hoisted = [...params].find(([name]) => name.toLowerCase() === 'x-amz-content-sha256')?.[1]
  if (signedHeaders.includes('x-amz-content-sha256') && contentSha !== undefined) payloads.push([contentSha, payloadMode(contentSha)])
  else {
    if (hoisted !== undefined && /^[0-9a-fA-F]{64}$/.test(hoisted)) payloads.push([hoisted, payloadMode(hoisted)])
    payloads.push(['UNSIGNED-PAYLOAD', { kind: 'unsigned' }])
  }
  const claim: Claim = { ...scope, signedHeaders, signature: params.get('X-Amz-Signature')!, amzDate, payloads, presigned: true }
  const token = params.get('X-Amz-S3session-Token') ?? params.get('X-Amz-Security-Token') ??
    headers.get('x-amz-s3session-token')?.[0] ?? headers.get('x-amz-security-token')?.[0]
  if (token !== undefined) claim.sessionToken = token
  return claim
}

/** `AKID/yyyymmdd/region/service/aws4_request`; the last four parts are the scope. */
function parseCredential (credential: string, code: S3AuthErrorCode, prefix: string): Pick<Claim, 'accessKeyId' | 'date' | 'region' | 'service'> {
  const parts = credential.split('/')
  if (parts.length < 5 || parts[parts.length - 1] !== 'aws4_request') throw new S3AuthError(code, prefix + CREDENTIAL_FORMAT)
  const [date, region, service] = parts.slice(-4) as [string, string, string]
  const accessKeyId = parts.slice(0, -4).join('/')
  if (accessKeyId === '' || region === '' || !/^\d{8}$/.test(date)) throw new S3AuthError(code, prefix + CREDENTIAL_FORMAT)
  if (service !== 's3' && service !== 's3express') {
    throw new S3AuthError(code, `${prefix}incorrect service "${service}". This endpoint belongs to "s3".`)
  }
  return { accessKeyId, date, region, service }
}

function parseSignedHeaders (list: string): string[] {
  return list.split(';').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** The signed timestamp: `x-amz-date` (ISO 8601 basic), else `Date` (RFC 1123) converted to it. */
function requestDate (headers: Map<string, string[]>): string {
  const amz = headers.get('x-amz-date')?.[0]?.trim()
  if (amz !== undefined) {
    if (/^\d{8}T\d{6}Z$/.test(amz) && !Number.isNaN(Date.parse(isoFromBasic(amz)))) return amz
  } else {
    const date = headers.get('date')?.[0]
    const ms = date === undefined ? NaN : Date.parse(date)
    if (!Number.isNaN(ms)) return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')
  }
  throw new S3AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header')
}

function isoFromBasic (basic: string): string {
  return `${basic.slice(0, 4)}-${basic.slice(4, 6)}-${basic.slice(6, 8)}T${basic.slice(9, 11)}:${basic.slice(11, 13)}:${basic.slice(13, 15)}Z`
}

/** The payload mode an `x-amz-content-sha256` value names. */
export function payloadMode (value: string): SigV4Payload {
  switch (value) {
    case 'UNSIGNED-PAYLOAD': return { kind: 'unsigned' }
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': return { kind: 'streaming-signed' }
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': return { kind: 'streaming-signed-trailer' }
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER': return { kind: 'streaming-unsigned-trailer' }
  }
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'sha256', hex: value.toLowerCase() }
  throw new S3AuthError('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.', { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value })
}
