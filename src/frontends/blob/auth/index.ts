/**
 * Request authentication for the Blob front end: Shared Key (and Shared Key Lite), service SAS
 * and account SAS, verified the way Azure Blob Storage verifies them, for path-style URLs
 * (`/<account>/<container>/<blob>`). The front end calls authenticate() on every request and,
 * for a SAS, authorizeSas() once it knows which operation the request is.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { BlobAuthError, headerValue, parseRequestTarget, verifySharedKey } from './shared-key.js'
import { verifySas } from './sas.js'
import type { SasGrant } from './sas.js'

export { BlobAuthError, type BlobAuthErrorCode } from './shared-key.js'
export {
  authorizeSas,
  type AccountSasGrant,
  type SasGrant,
  type SasNeed,
  type SasPermission,
  type SasResponseHeaders,
  type ServiceSasGrant,
} from './sas.js'

export interface BlobAuthRequest {
  method: string
  /** Raw request target as received (path + query), percent-encoding untouched, e.g. '/devstoreaccount1/c/a%20b?comp=list'. */
  url: string
  /** node's lowercased header object. */
  headers: IncomingHttpHeaders
  /** e.g. '127.0.0.1' or '::ffff:127.0.0.1'. */
  remoteAddress: string
  /** Whether the request came over https. */
  secure: boolean
}

export interface AccountCredentials {
  name: string
  /** The base64-decoded account key. */
  key: Buffer
}

export type AuthOutcome = { kind: 'sharedkey' } | { kind: 'sas', grant: SasGrant } | { kind: 'anonymous' }

/**
 * Verifies a request's credentials against the account. An `Authorization` header is checked
 * as Shared Key (a SAS in the same URL is then ignored); otherwise a `sig` query parameter is
 * checked as a service or account SAS. Without either the request is anonymous, which the
 * caller refuses. The first path segment must name the account.
 * Throws BlobAuthError (403, Azure's code) when verification fails; never logs.
 */
export function authenticate (req: BlobAuthRequest, account: AccountCredentials, now: Date): AuthOutcome {
  const target = parseRequestTarget(req.url)
  const authorization = headerValue(req.headers, 'authorization')
  const hasSas = target.query.some(p => p.name === 'sig')
  if (authorization === undefined && !hasSas) return { kind: 'anonymous' }
  if (target.account !== account.name) {
    throw new BlobAuthError('AuthenticationFailed', 'The account in the request URL is not served by this endpoint.')
  }
  if (authorization !== undefined) {
    verifySharedKey({ method: req.method, headers: req.headers, target }, account, now)
    return { kind: 'sharedkey' }
  }
  const grant = verifySas({ target, remoteAddress: req.remoteAddress, secure: req.secure }, account, now)
  return { kind: 'sas', grant }
}
