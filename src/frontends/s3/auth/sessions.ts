/**
 * S3 Express One Zone session credentials (CreateSession): short-lived credentials scoped to one
 * directory bucket and one mode (ReadWrite or ReadOnly), which later requests sign with (service
 * `s3express`) and present as `x-amz-s3session-token`.
 *
 * Sessions are stateless: the token carries its grant (issuing access key, bucket, mode, expiry,
 * a nonce) and an HMAC under a key derived from the issuing access key's secret; the session's
 * access key id and secret are HMACs of the token too. So the gateway keeps no session table
 * (nothing grows with the number of sessions, nothing is lost on restart), any node configured
 * with the same credentials accepts a session another issued, and rotating a secret revokes
 * every session issued under it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { S3AuthError } from './sigv4.js'

export type SessionMode = 'ReadWrite' | 'ReadOnly'

/** What a session token grants. */
export interface SessionGrant {
  /** The long-term access key that created the session. */
  issuer: string
  bucket: string
  mode: SessionMode
  expiresMs: number
}

/** CreateSession's answer: the credentials a client signs with. */
export interface SessionCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string
  expiresMs: number
}

/** S3 Express sessions last five minutes. */
export const SESSION_TTL_MS = 5 * 60 * 1000

const TOKEN_VERSION = 'c1'
const KEY_CONTEXT = 'ckptcache s3express session v1'

interface Payload {
  /** issuing access key */
  a: string
  /** bucket */
  b: string
  /** mode: w (ReadWrite) | r (ReadOnly) */
  m: 'w' | 'r'
  /** expiry, ms since the epoch */
  e: number
  /** nonce */
  n: string
}

function mac (key: Buffer, label: string, data: string): Buffer {
  return createHmac('sha256', key).update(label).update('\n').update(data).digest()
}

/**
 * Issues and verifies session credentials. `secretOf` returns the long-term secret of an access
 * key (undefined for an unknown key).
 */
export class SessionIssuer {
  readonly #secretOf: (accessKeyId: string) => string | undefined
  readonly #ttlMs: number
  readonly #keys = new Map<string, Buffer>()

  constructor (secretOf: (accessKeyId: string) => string | undefined, ttlMs = SESSION_TTL_MS) {
    this.#secretOf = secretOf
    this.#ttlMs = ttlMs
  }

  /** CreateSession: new credentials for `bucket`, signed with the key of `issuer`. */
  issue (issuer: string, bucket: string, mode: SessionMode, nowMs = Date.now()): SessionCredentials {
    const key = this.#key(issuer)
    if (key === undefined) throw new S3AuthError('InvalidAccessKeyId', undefined, { AWSAccessKeyId: issuer })
    const payload: Payload = { a: issuer, b: bucket, m: mode === 'ReadOnly' ? 'r' : 'w', e: nowMs + this.#ttlMs, n: randomBytes(12).toString('base64url') }
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
    const token = `${TOKEN_VERSION}.${body}.${mac(key, 'token', body).toString('base64url')}`
    return { ...this.#derived(key, token), sessionToken: token, expiresMs: payload.e }
  }

  /**
   * The grant of a session token presented with `accessKeyId`, and the secret to verify the
   * request's signature with. InvalidToken for a token this gateway did not issue (or issued
   * under a secret since rotated), ExpiredToken once it has expired.
   */
  verify (accessKeyId: string, token: string, nowMs = Date.now()): { grant: SessionGrant, secretAccessKey: string } {
    const parts = token.split('.')
    if (parts.length !== 3 || parts[0] !== TOKEN_VERSION) throw new S3AuthError('InvalidToken')
    const [, body, sig] = parts as [string, string, string]
    let payload: Payload
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload
    } catch {
      throw new S3AuthError('InvalidToken')
    }
    if (typeof payload?.a !== 'string' || typeof payload.b !== 'string' || typeof payload.e !== 'number' || (payload.m !== 'r' && payload.m !== 'w')) {
      throw new S3AuthError('InvalidToken')
    }
    const key = this.#key(payload.a)
    const presented = Buffer.from(sig, 'base64url')
    const expected = key === undefined ? undefined : mac(key, 'token', body)
    if (expected === undefined || presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw new S3AuthError('InvalidToken')
    }
    const creds = this.#derived(key as Buffer, token)
    if (creds.accessKeyId !== accessKeyId) throw new S3AuthError('InvalidToken', 'The provided token does not belong to the access key id the request was signed with.')
    if (nowMs >= payload.e) throw new S3AuthError('ExpiredToken', 'The provided token has expired.')
    return {
      grant: { issuer: payload.a, bucket: payload.b, mode: payload.m === 'r' ? 'ReadOnly' : 'ReadWrite', expiresMs: payload.e },
      secretAccessKey: creds.secretAccessKey
    }
  }

  #key (issuer: string): Buffer | undefined {
    let key = this.#keys.get(issuer)
    if (key === undefined) {
      const secret = this.#secretOf(issuer)
      if (secret === undefined) return undefined
      key = createHmac('sha256', secret).update(KEY_CONTEXT).digest()
      this.#keys.set(issuer, key)
    }
    return key
  }

  #derived (key: Buffer, token: string): { accessKeyId: string, secretAccessKey: string } {
    // Access key ids are upper-case alphanumerics, like AWS's; base32-ish from the MAC.
    const id = mac(key, 'access-key-id', token).toString('hex').toUpperCase().slice(0, 16)
    return { accessKeyId: `CKSE${id}`, secretAccessKey: mac(key, 'secret', token).toString('base64').slice(0, 40) }
  }
}
