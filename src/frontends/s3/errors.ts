import type { ErrorCode } from '../../errors.js'

/** An S3 protocol error raised by the front end itself (bad headers, XML, query values, multipart rules). */
export class S3Error extends Error {
  readonly status: number
  readonly s3Code: string
  readonly headers: Record<string, string>
  /** Extra elements of the `<Error>` body (e.g. `ArgumentName`, `PartNumber`). */
  readonly detail: Record<string, string>

  constructor (status: number, s3Code: string, message: string, detail: Record<string, string> = {}, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'S3Error'
    this.status = status
    this.s3Code = s3Code
    this.detail = detail
    this.headers = headers
  }
}

export interface S3ErrorShape {
  status: number
  code: string
  message: string
}

/** Catalogue code → S3 status, error code and message. Every catalogue entry has one (a test checks). */
export const S3_ERRORS: Record<ErrorCode, S3ErrorShape> = {
  CC_ERR_CONTAINER_NOT_FOUND: { status: 404, code: 'NoSuchBucket', message: 'The specified bucket does not exist' },
  CC_ERR_CONTAINER_EXISTS: { status: 409, code: 'BucketAlreadyOwnedByYou', message: 'Your previous request to create the named bucket succeeded and you already own it.' },
  CC_ERR_CONTAINER_BEING_DELETED: { status: 409, code: 'OperationAborted', message: 'A conflicting conditional operation is currently in progress against this resource. Please try again.' },
  CC_ERR_CONTAINER_NOT_EMPTY: { status: 409, code: 'BucketNotEmpty', message: 'The bucket you tried to delete is not empty' },
  CC_ERR_OBJECT_NOT_FOUND: { status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' },
  CC_ERR_OBJECT_EXISTS: { status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' },
  CC_ERR_CONDITION_NOT_MET: { status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' },
  CC_ERR_NOT_MODIFIED: { status: 304, code: 'NotModified', message: 'Not Modified' },
  CC_ERR_INVALID_RANGE: { status: 416, code: 'InvalidRange', message: 'The requested range is not satisfiable' },
  CC_ERR_MD5_MISMATCH: { status: 400, code: 'BadDigest', message: 'The Content-MD5 you specified did not match what we received.' },
  CC_ERR_CRC64_MISMATCH: { status: 400, code: 'BadDigest', message: 'The CRC64 you specified did not match the calculated checksum.' },
  CC_ERR_CHECKSUM_MISMATCH: { status: 400, code: 'BadDigest', message: 'The checksum you specified did not match the calculated checksum.' },
  CC_ERR_INVALID_BLOCK_ID: { status: 400, code: 'InvalidArgument', message: 'The specified part or block id is invalid.' },
  CC_ERR_INVALID_BLOCK_LIST: { status: 400, code: 'InvalidPart', message: 'One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.' },
  CC_ERR_BLOCK_COUNT_EXCEEDED: { status: 400, code: 'InvalidArgument', message: 'Too many parts are staged for this object.' },
  CC_ERR_INVALID_WRITE_OFFSET: { status: 400, code: 'InvalidWriteOffset', message: 'The write offset value that you specified does not match the current object size.' },
  CC_ERR_TOO_MANY_PARTS: { status: 400, code: 'TooManyParts', message: 'You have attempted to add more parts than the maximum of 10000 that are allowed for this object. You can use the CopyObject operation to copy this object to another and then add more data to the newly copied object.' },
  CC_ERR_INSUFFICIENT_STORAGE: { status: 507, code: 'InsufficientStorage', message: 'The cache does not have enough free capacity for this write.' },
  CC_ERR_INCOMPLETE_BODY: { status: 400, code: 'IncompleteBody', message: 'You did not provide the number of bytes specified by the Content-Length HTTP header.' },
  CC_ERR_BODY_TOO_LARGE: { status: 400, code: 'EntityTooLarge', message: 'Your proposed upload exceeds the maximum allowed object size.' },
  CC_ERR_INVALID_NAME: { status: 400, code: 'InvalidArgument', message: 'The specified name is invalid.' },
  CC_ERR_INVALID_INPUT: { status: 400, code: 'InvalidRequest', message: 'One of the request inputs is not valid.' },
  CC_ERR_COPY_SOURCE_NOT_FOUND: { status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' },
  CC_ERR_SERVER_BUSY: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  CC_ERR_UPSTREAM_UNAVAILABLE: { status: 503, code: 'ServiceUnavailable', message: 'The upstream storage is unavailable. Please try again after some time.' },
  CC_ERR_PEER_UNAVAILABLE: { status: 503, code: 'ServiceUnavailable', message: 'Not enough cluster peers are reachable. Please try again after some time.' },
  CC_ERR_PEER_AUTH: { status: 403, code: 'AccessDenied', message: 'Access Denied' },
  CC_ERR_CLIENT_ABORTED: { status: 400, code: 'IncompleteBody', message: 'The request body terminated unexpectedly' },
  CC_ERR_INTERNAL: { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' }
}

/** Catalogue codes whose message is specific to the failure (shown instead of the table's). */
export const SPECIFIC_MESSAGES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CC_ERR_INVALID_INPUT', 'CC_ERR_CHECKSUM_MISMATCH', 'CC_ERR_INSUFFICIENT_STORAGE'])
