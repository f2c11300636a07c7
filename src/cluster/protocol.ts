/**
 * The peer API on the wire, shared by the peer server and the peer client:
 * header names, routes, the WireMeta header encoding, ranges and the map
 * between catalogue error codes and HTTP statuses.
 *
 *   GET  /v1/probe                      → ProbeInfo (JSON)
 *   POST /v1/rpc/<method>               JSON argument → JSON result (PeerRpc)
 *   GET  /v1/o/<container>/<name>       [Range: bytes=a-b] [x-ckpt-etag] → 200/206, x-ckpt-meta, body
 *   PUT  /v1/o/<container>/<name>       x-ckpt-meta, content-length = meta.size, body → 201
 *
 * Container and name are each one `encodeURIComponent`-encoded path segment.
 * Errors are `{ code, message, detail }` JSON with the code's status.
 */
import type { ByteRange, ContentHeaders, ObjectChecksums } from '../core/types.js'
import { CacheError, ERROR_CODES, type ErrorCode } from '../errors.js'
import type { RpcMethod, WireMeta } from './types.js'

export const AUTH_SCHEME = 'CKPT-HMAC-SHA256'
export const SIGNING_CONTEXT = 'ckptcache-peer-v1'

export const H_AUTHORIZATION = 'authorization'
export const H_DATE = 'x-ckpt-date'
export const H_NONCE = 'x-ckpt-nonce'
export const H_NODE = 'x-ckpt-node'
export const H_CONTENT_SHA256 = 'x-ckpt-content-sha256'
/** base64url of the JSON WireMeta of the object a read answers or a write carries. */
export const H_META = 'x-ckpt-meta'
/** On a read: the version the reader wants (412 when the copy here is another one). */
export const H_ETAG = 'x-ckpt-etag'

/** An RPC argument or result larger than this is refused. */
export const RPC_BODY_MAX = 16 * 1024 * 1024
/** An error answer larger than this is not read. */
export const ERROR_BODY_MAX = 64 * 1024

export const PROBE_PATH = '/v1/probe'
const RPC_PREFIX = '/v1/rpc/'
const OBJECT_PREFIX = '/v1/o/'

/** Every PeerRpc method, checked against the interface by the compiler. */
const RPC_METHOD_SET: Record<RpcMethod, true> = {
  head: true,
  delete: true,
  locate: true,
  clean: true,
  checksums: true,
  list: true,
  dirty: true,
  check: true,
  createContainer: true,
  getContainer: true,
  deleteContainer: true,
  listContainers: true
}
export const RPC_METHODS = Object.keys(RPC_METHOD_SET) as RpcMethod[]

export function isRpcMethod (s: string): s is RpcMethod {
  return Object.prototype.hasOwnProperty.call(RPC_METHOD_SET, s)
}

export function rpcPath (method: RpcMethod): string {
  return RPC_PREFIX + method
}

export function objectPath (container: string, name: string): string {
  return `${OBJECT_PREFIX}${encodeURIComponent(container)}/${encodeURIComponent(name)}`
}

export type PeerRoute =
  | { kind: 'probe' }
  | { kind: 'rpc', method: RpcMethod }
  | { kind: 'object', container: string, name: string }
  /** An object path whose segments do not decode (400). */
  | { kind: 'bad', reason: string }

/** The route of a request target (path and optional query), or undefined when there is none (404). */
export function parsePeerPath (target: string): PeerRoute | undefined {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  if (path === PROBE_PATH) return { kind: 'probe' }
  if (path.startsWith(RPC_PREFIX)) {
    const method = path.slice(RPC_PREFIX.length)
    return isRpcMethod(method) ? { kind: 'rpc', method } : undefined
  }
  if (path.startsWith(OBJECT_PREFIX)) {
    const segments = path.slice(OBJECT_PREFIX.length).split('/')
    if (segments.length !== 2) return { kind: 'bad', reason: 'an object path is /v1/o/<container>/<name>, each one encoded segment' }
    try {
      const container = decodeURIComponent(segments[0] as string)
      const name = decodeURIComponent(segments[1] as string)
      if (container === '' || name === '') return { kind: 'bad', reason: 'empty container or object name' }
      return { kind: 'object', container, name }
    } catch {
      return { kind: 'bad', reason: 'badly encoded container or object name' }
    }
  }
  return undefined
}

/** The method each route answers (405 for another). */
export function routeMethod (route: PeerRoute): 'GET' | 'POST' | 'GET,PUT' {
  if (route.kind === 'probe') return 'GET'
  if (route.kind === 'rpc') return 'POST'
  return 'GET,PUT'
}

// ---- ranges --------------------------------------------------------------

export function formatRange (r: ByteRange): string {
  return `bytes=${r.start}-${r.end}`
}

/** `bytes=a-b`, both given, a ≤ b; anything else is CC_ERR_INVALID_INPUT. */
export function parseRangeHeader (v: string): ByteRange {
  const m = /^bytes=(\d{1,16})-(\d{1,16})$/.exec(v)
  const start = Number(m?.[1])
  const end = Number(m?.[2])
  if (m === null || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) {
    throw new CacheError('CC_ERR_INVALID_INPUT', `A peer read's range is bytes=<first>-<last> (inclusive), not ${JSON.stringify(v.slice(0, 100))}`)
  }
  return { start, end }
}

export function formatContentRange (r: ByteRange, size: number): string {
  return `bytes ${r.start}-${r.end}/${size}`
}

export function parseContentRange (v: string | undefined): ByteRange | undefined {
  const m = v === undefined ? null : /^bytes (\d{1,16})-(\d{1,16})\/\d{1,16}$/.exec(v)
  if (m === null) return undefined
  return { start: Number(m[1]), end: Number(m[2]) }
}

// ---- WireMeta in a header ---------------------------------------------------

export function encodeWireMeta (meta: WireMeta): string {
  return Buffer.from(JSON.stringify(meta)).toString('base64url')
}

/** Decodes and checks an `x-ckpt-meta` value; anything malformed is CC_ERR_INVALID_INPUT. */
export function decodeWireMeta (value: string | undefined): WireMeta {
  if (value === undefined || value === '') throw invalidMeta(`missing ${H_META} header`)
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'))
  } catch {
    throw invalidMeta('not base64url JSON')
  }
  return checkWireMeta(v)
}

const CONTENT_KEYS = ['contentType', 'contentEncoding', 'contentLanguage', 'contentDisposition', 'cacheControl', 'contentMd5'] as const
const CHECKSUM_KEYS = ['md5', 'crc64', 'crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256', 'sha512'] as const

/** The WireMeta in `v` with only its known fields, or CC_ERR_INVALID_INPUT naming the first bad one. */
export function checkWireMeta (v: unknown): WireMeta {
  if (!isRecord(v)) throw invalidMeta('not an object')
  const str = (k: string): string => {
    if (typeof v[k] !== 'string') throw invalidMeta(`${k} is not a string`)
    return v[k] as string
  }
  const num = (k: string): number => {
    if (typeof v[k] !== 'number' || !Number.isSafeInteger(v[k]) || (v[k] as number) < 0) throw invalidMeta(`${k} is not a non-negative integer`)
    return v[k] as number
  }
  const meta: WireMeta = {
    container: str('container'),
    name: str('name'),
    size: num('size'),
    etag: str('etag'),
    createdMs: num('createdMs'),
    lastModifiedMs: num('lastModifiedMs'),
    content: stringFields(v.content, 'content', CONTENT_KEYS) as ContentHeaders,
    metadata: stringRecord(v.metadata, 'metadata'),
    checksums: checksums(v.checksums),
    fromBlocks: bool(v.fromBlocks, 'fromBlocks')
  }
  if (v.parts !== undefined) meta.parts = num('parts')
  if (v.dirty !== undefined) meta.dirty = bool(v.dirty, 'dirty')
  if (v.upstreamEtag !== undefined) meta.upstreamEtag = str('upstreamEtag')
  if (v.holders !== undefined) {
    if (!Array.isArray(v.holders) || !v.holders.every(h => typeof h === 'string')) throw invalidMeta('holders is not a list of node ids')
    meta.holders = v.holders as string[]
  }
  return meta
}

function checksums (v: unknown): ObjectChecksums {
  const out = stringFields(v, 'checksums', CHECKSUM_KEYS) as ObjectChecksums
  const type = (v as Record<string, unknown>).checksumType
  if (type !== undefined) {
    if (type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw invalidMeta('checksums.checksumType is not FULL_OBJECT or COMPOSITE')
    out.checksumType = type
  }
  return out
}

function stringFields (v: unknown, what: string, keys: readonly string[]): Record<string, string> {
  if (!isRecord(v)) throw invalidMeta(`${what} is not an object`)
  const out: Record<string, string> = {}
  for (const k of keys) {
    if (v[k] === undefined) continue
    if (typeof v[k] !== 'string') throw invalidMeta(`${what}.${k} is not a string`)
    out[k] = v[k] as string
  }
  return out
}

function stringRecord (v: unknown, what: string): Record<string, string> {
  if (!isRecord(v)) throw invalidMeta(`${what} is not an object`)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw invalidMeta(`${what}.${k} is not a string`)
    out[k] = x
  }
  return out
}

function bool (v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw invalidMeta(`${what} is not a boolean`)
  return v
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function invalidMeta (why: string): CacheError {
  return new CacheError('CC_ERR_INVALID_INPUT', `Bad ${H_META}: ${why}`)
}

/** A Content-MD5 value: the base64 of 16 bytes (what the `checksums` RPC carries). */
export function isBase64Md5 (v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9+/]{21}[AQgw]==$/.test(v)
}

// ---- errors ----------------------------------------------------------------

/** The status of each catalogue code on the peer API; any other code is a 500. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  CC_ERR_OBJECT_NOT_FOUND: 404,
  CC_ERR_CONTAINER_NOT_FOUND: 404,
  CC_ERR_CONDITION_NOT_MET: 412,
  CC_ERR_INVALID_RANGE: 416,
  CC_ERR_SERVER_BUSY: 503,
  CC_ERR_PEER_UNAVAILABLE: 503,
  CC_ERR_UPSTREAM_UNAVAILABLE: 503,
  CC_ERR_PEER_AUTH: 403,
  CC_ERR_INVALID_INPUT: 400,
  CC_ERR_INVALID_NAME: 400,
  CC_ERR_INCOMPLETE_BODY: 400,
  CC_ERR_BODY_TOO_LARGE: 413,
  CC_ERR_INSUFFICIENT_STORAGE: 507,
  CC_ERR_CONTAINER_EXISTS: 409,
  CC_ERR_OBJECT_EXISTS: 409,
  CC_ERR_CONTAINER_NOT_EMPTY: 409,
  CC_ERR_CONTAINER_BEING_DELETED: 409
}

export function statusForCode (code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500
}

/** An error answer's body. */
export interface WireError {
  code: ErrorCode
  message: string
  detail: Record<string, string | number>
}

export function errorBody (err: CacheError): WireError {
  const detail: Record<string, string | number> = {}
  for (const [k, v] of Object.entries(err.detail)) if (v !== undefined) detail[k] = v
  return { code: err.code, message: err.message, detail }
}

/**
 * The CacheError an error answer stands for: its code when it is one of the catalogue's
 * (else CC_ERR_INTERNAL), its message and detail; a body that is not one falls back on the status.
 */
export function errorFromAnswer (status: number, body: string): CacheError {
  let v: unknown
  try { v = JSON.parse(body) } catch { v = undefined }
  if (isRecord(v) && typeof v.code === 'string') {
    const known = Object.prototype.hasOwnProperty.call(ERROR_CODES, v.code)
    const code: ErrorCode = known ? v.code as ErrorCode : 'CC_ERR_INTERNAL'
    const message = typeof v.message === 'string' ? v.message : ERROR_CODES[code]
    const detail: Record<string, string | number> = {}
    if (isRecord(v.detail)) {
      for (const [k, x] of Object.entries(v.detail)) if (typeof x === 'string' || typeof x === 'number') detail[k] = x
    }
    return new CacheError(code, known ? message : `${message} (peer code ${v.code.slice(0, 64)})`, { detail })
  }
  const code: ErrorCode = status === 404
    ? 'CC_ERR_OBJECT_NOT_FOUND'
    : status === 403 ? 'CC_ERR_PEER_AUTH' : status === 503 ? 'CC_ERR_PEER_UNAVAILABLE' : 'CC_ERR_INTERNAL'
  return new CacheError(code, `The peer answered ${status} without an error body`)
}
