/**
 * Protocol-neutral error catalogue. Every error the core, the store or the
 * cluster raises is a CacheError with one of these stable codes; each front
 * end maps the codes to its protocol's status, code and body at the edge.
 */

export const ERROR_CODES = {
  CC_ERR_CONTAINER_NOT_FOUND: 'The specified container does not exist.',
  CC_ERR_CONTAINER_EXISTS: 'The specified container already exists.',
  CC_ERR_CONTAINER_BEING_DELETED: 'The specified container is being deleted.',
  CC_ERR_CONTAINER_NOT_EMPTY: 'The container is not empty.',
  CC_ERR_OBJECT_NOT_FOUND: 'The specified object does not exist.',
  CC_ERR_OBJECT_EXISTS: 'The specified object already exists.',
  CC_ERR_CONDITION_NOT_MET: 'The condition specified using HTTP conditional header(s) is not met.',
  CC_ERR_NOT_MODIFIED: 'The object has not been modified.',
  CC_ERR_INVALID_RANGE: 'The range specified is invalid for the current size of the resource.',
  CC_ERR_MD5_MISMATCH: 'The MD5 value specified in the request did not match with the MD5 value calculated by the server.',
  CC_ERR_CRC64_MISMATCH: 'The CRC64 value specified in the request did not match with the CRC64 value calculated by the server.',
  CC_ERR_CHECKSUM_MISMATCH: 'The checksum specified in the request did not match the checksum calculated by the server.',
  CC_ERR_INVALID_BLOCK_ID: 'The specified block ID is invalid.',
  CC_ERR_INVALID_BLOCK_LIST: 'The specified block list is invalid.',
  CC_ERR_BLOCK_COUNT_EXCEEDED: 'The uncommitted block count cannot exceed the maximum limit.',
  CC_ERR_INVALID_WRITE_OFFSET: 'The write offset value that you specified does not match the current object size.',
  CC_ERR_TOO_MANY_PARTS: 'The object has the maximum number of parts; no more data can be appended to it.',
  CC_ERR_INSUFFICIENT_STORAGE: 'The cache does not have enough free capacity for this write.',
  CC_ERR_INCOMPLETE_BODY: 'The request body is shorter than the declared content length.',
  CC_ERR_BODY_TOO_LARGE: 'The request body is too large.',
  CC_ERR_INVALID_NAME: 'The specified name is invalid.',
  CC_ERR_INVALID_INPUT: 'One of the request inputs is not valid.',
  CC_ERR_COPY_SOURCE_NOT_FOUND: 'The copy source could not be found or verified.',
  CC_ERR_SERVER_BUSY: 'The server is busy.',
  CC_ERR_UPSTREAM_UNAVAILABLE: 'The upstream storage is unavailable.',
  CC_ERR_PEER_UNAVAILABLE: 'Not enough cluster peers are reachable to keep the configured copies of the object.',
  CC_ERR_PEER_AUTH: 'The peer request is not signed with the cluster secret, or its signature is stale or replayed.',
  CC_ERR_CLIENT_ABORTED: 'The client closed the connection before the request completed.',
  CC_ERR_INTERNAL: 'The server encountered an internal error.',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export interface CacheErrorOptions {
  cause?: unknown
  /** Extra facts a front end may render (e.g. the object size for a 416). */
  detail?: Record<string, string | number | undefined>
}

export class CacheError extends Error {
  readonly code: ErrorCode
  readonly detail: Record<string, string | number | undefined>

  constructor (code: ErrorCode, message?: string, options: CacheErrorOptions = {}) {
    super(message ?? ERROR_CODES[code], options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CacheError'
    this.code = code
    this.detail = options.detail ?? {}
  }
}

export function isCacheError (err: unknown, code?: ErrorCode): err is CacheError {
  return err instanceof CacheError && (code === undefined || err.code === code)
}
