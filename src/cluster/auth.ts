/**
 * Signing and verification of peer API requests with the cluster secret
 * (DESIGN.md promise 8). The signing key is HMAC-SHA256(secret,
 * 'ckptcache-peer-v1'); each request carries its date, a random nonce, the
 * sender's node id and the SHA-256 of its body, all covered by an
 * HMAC-SHA256 signature over
 *
 *   CKPT-HMAC-SHA256 \n METHOD \n target \n date \n nonce \n node \n content-sha256
 *
 * where `target` is the request target exactly as sent (path and query). A
 * replica body is signed chunk by chunk instead (chunk-signing.ts): its
 * content-sha256 is `STREAMING_PAYLOAD`, its chunks' signatures chain from
 * the request's.
 * A verifier refuses dates further than the replay window from its clock and
 * nonces it has seen within the window. No HTTP here: the server and the
 * client pass headers in and out.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { ChunkSigner, ChunkVerifier, STREAMING_PAYLOAD } from './chunk-signing.js'
import {
  AUTH_SCHEME, H_AUTHORIZATION, H_CONTENT_SHA256, H_DATE, H_NODE, H_NONCE, SIGNING_CONTEXT
} from './protocol.js'

/** Hex SHA-256 of an empty body (what requests without a body sign). */
export const EMPTY_SHA256 = sha256Hex('')

/** Nonces remembered at most (about 100 MB of memory); past it requests are refused as busy. */
export const DEFAULT_MAX_NONCES = 1_000_000

export function sha256Hex (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The key every signature is made with: HMAC-SHA256(secret, 'ckptcache-peer-v1'). */
export function deriveSigningKey (secret: string): Buffer {
  return createHmac('sha256', secret).update(SIGNING_CONTEXT).digest()
}

export function stringToSign (method: string, target: string, date: string, nonce: string, node: string, contentSha256: string): string {
  return [AUTH_SCHEME, method.toUpperCase(), target, date, nonce, node, contentSha256].join('\n')
}

/** The headers a signed request carries. */
export type SignedHeaders = Record<typeof H_DATE | typeof H_NONCE | typeof H_NODE | typeof H_CONTENT_SHA256 | typeof H_AUTHORIZATION, string>

export interface PeerSignerOptions {
  /** This node's id (`x-ckpt-node`). */
  node: string
  secret: string
  /** The clock (ms since epoch); tests move it. */
  now?: () => number
}

export class PeerSigner {
  readonly #node: string
  readonly #key: Buffer
  readonly #now: () => number

  constructor (opts: PeerSignerOptions) {
    if (!NODE_RE.test(opts.node)) throw new TypeError('A node id is 1 to 256 visible ASCII characters')
    this.#node = opts.node
    this.#key = deriveSigningKey(opts.secret)
    this.#now = opts.now ?? Date.now
  }

  /** The auth headers for a request; `bodySha256Hex` is the hex SHA-256 of its body (of '' when it has none). */
  sign (method: string, target: string, bodySha256Hex: string = EMPTY_SHA256): SignedHeaders {
    return this.#sign(method, target, bodySha256Hex).headers
  }

  /**
   * The auth headers for a request whose `size`-byte body is signed chunk by chunk, and the
   * transform that frames and signs it (its output is the body; `framedLength(size)` bytes).
   */
  signStreaming (method: string, target: string, size: number): { headers: SignedHeaders, body: ChunkSigner } {
    const { headers, sig } = this.#sign(method, target, STREAMING_PAYLOAD)
    return { headers, body: new ChunkSigner(this.#key, sig, size) }
  }

  #sign (method: string, target: string, contentSha256: string): { headers: SignedHeaders, sig: Buffer } {
    const date = String(Math.trunc(this.#now()))
    const nonce = randomBytes(16).toString('hex')
    const sig = createHmac('sha256', this.#key)
      .update(stringToSign(method, target, date, nonce, this.#node, contentSha256))
      .digest()
    const headers = {
      [H_DATE]: date,
      [H_NONCE]: nonce,
      [H_NODE]: this.#node,
      [H_CONTENT_SHA256]: contentSha256,
      [H_AUTHORIZATION]: `${AUTH_SCHEME} ${sig.toString('hex')}`
    }
    return { headers, sig }
  }
}

export type VerifyResult =
  /** `signature`: the request's, which a chunk-signed body's chunk signatures chain from. */
  | { ok: true, node: string, contentSha256: string, signature: Buffer }
  /** `busy`: refused for lack of room to remember the nonce, not for a fault of the request (answer 503, retryable). */
  | { ok: false, reason: string, busy?: boolean }

export interface PeerVerifierOptions {
  secret: string
  /** Dates further than this from the verifier's clock (either way) are refused; nonces are remembered this long past their date. */
  replayWindowMs: number
  maxNonces?: number
  now?: () => number
}

type HeaderValue = string | string[] | undefined

const DATE_RE = /^\d{1,16}$/
const NONCE_RE = /^[0-9a-f]{32}$/
const NODE_RE = /^[\x21-\x7e]{1,256}$/
const SHA256_RE = /^[0-9a-f]{64}$/
const AUTH_RE = new RegExp(`^${AUTH_SCHEME} ([0-9a-f]{64})$`)

export class PeerVerifier {
  readonly #key: Buffer
  readonly #windowMs: number
  readonly #maxNonces: number
  readonly #now: () => number
  /**
   * Nonce → the time after which a request carrying it is refused for its date anyway.
   * In insertion order; pruned from the front, so an entry lives at most
   * two windows (a date one window ahead, plus the window).
   */
  readonly #nonces = new Map<string, number>()

  constructor (opts: PeerVerifierOptions) {
    if (!(opts.replayWindowMs > 0)) throw new TypeError('replayWindowMs must be positive')
    this.#key = deriveSigningKey(opts.secret)
    this.#windowMs = opts.replayWindowMs
    this.#maxNonces = opts.maxNonces ?? DEFAULT_MAX_NONCES
    this.#now = opts.now ?? Date.now
  }

  /** Nonces remembered now. */
  get nonces (): number {
    return this.#nonces.size
  }

  verify (method: string, target: string, headers: Record<string, HeaderValue>): VerifyResult {
    const date = single(headers[H_DATE])
    const nonce = single(headers[H_NONCE])
    const node = single(headers[H_NODE])
    const contentSha256 = single(headers[H_CONTENT_SHA256])
    const authorization = single(headers[H_AUTHORIZATION])
    if (authorization === undefined) return refuse('missing authorization header')
    const m = AUTH_RE.exec(authorization)
    if (m === null) return refuse('malformed authorization header')
    if (date === undefined || !DATE_RE.test(date)) return refuse(`missing or malformed ${H_DATE} header`)
    if (nonce === undefined || !NONCE_RE.test(nonce)) return refuse(`missing or malformed ${H_NONCE} header`)
    if (node === undefined || !NODE_RE.test(node)) return refuse(`missing or malformed ${H_NODE} header`)
    if (contentSha256 === undefined || !(SHA256_RE.test(contentSha256) || contentSha256 === STREAMING_PAYLOAD)) return refuse(`missing or malformed ${H_CONTENT_SHA256} header`)

    const now = this.#now()
    const dateMs = Number(date)
    if (Math.abs(now - dateMs) > this.#windowMs) return refuse(`request date is ${now - dateMs} ms from this node's clock, outside the replay window of ${this.#windowMs} ms`)

    const want = createHmac('sha256', this.#key).update(stringToSign(method, target, date, nonce, node, contentSha256)).digest()
    const given = Buffer.from(m[1] as string, 'hex')
    if (given.length !== want.length || !timingSafeEqual(given, want)) return refuse('signature does not match')

    // Only signed requests reach the nonce memory, so nobody without the secret can fill it.
    this.#prune(now)
    if (this.#nonces.has(nonce)) return refuse('nonce already used (replayed request)')
    if (this.#nonces.size >= this.#maxNonces) return { ok: false, reason: `more than ${this.#maxNonces} nonces within the replay window`, busy: true }
    this.#nonces.set(nonce, dateMs + this.#windowMs)
    return { ok: true, node, contentSha256, signature: given }
  }

  /** Checks a chunk-signed body of `size` bytes of a request verified with `signature`, passing on its verified bytes. */
  chunkVerifier (signature: Buffer, size: number): ChunkVerifier {
    return new ChunkVerifier(this.#key, signature, size)
  }

  #prune (now: number): void {
    for (const [nonce, expires] of this.#nonces) {
      if (expires >= now) break
      this.#nonces.delete(nonce)
    }
  }
}

function single (v: HeaderValue): string | undefined {
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v
}

function refuse (reason: string): VerifyResult {
  return { ok: false, reason }
}
