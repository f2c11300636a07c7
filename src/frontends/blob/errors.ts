import type { ErrorCode } from '../../errors.js'

/** An Azure Blob protocol error raised by the front end itself (bad headers, XML, query values, auth). */
export class BlobError extends Error {
  readonly status: number
  readonly azureCode: string
  readonly headers: Record<string, string>

  constructor (status: number, azureCode: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'BlobError'
    this.status = status
    this.azureCode = azureCode
    this.headers = headers
  }
}

export interface AzureErrorShape {
  status: number
  code: string
  message: string
}

/** Catalogue code → Azure status, error code and message. Every catalogue entry has one (a test checks). */
export const AZURE_ERRORS: Record<ErrorCode, AzureErrorShape> = {
  CC_ERR_CONTAINER_NOT_FOUND: { status: 404, code: 'ContainerNotFound', message: 'The specified container does not exist.' },
  CC_ERR_CONTAINER_EXISTS: { status: 409, code: 'ContainerAlreadyExists', message: 'The specified container already exists.' },
  CC_ERR_CONTAINER_BEING_DELETED: { status: 409, code: 'ContainerBeingDeleted', message: 'The specified container is being deleted. Try operation later.' },
  CC_ERR_CONTAINER_NOT_EMPTY: { status: 409, code: 'ContainerNotEmpty', message: 'The container is not empty.' },
  CC_ERR_OBJECT_NOT_FOUND: { status: 404, code: 'BlobNotFound', message: 'The specified blob does not exist.' },
  CC_ERR_OBJECT_EXISTS: { status: 409, code: 'BlobAlreadyExists', message: 'The specified blob already exists.' },
  CC_ERR_CONDITION_NOT_MET: { status: 412, code: 'ConditionNotMet', message: 'The condition specified using HTTP conditional header(s) is not met.' },
  CC_ERR_NOT_MODIFIED: { status: 304, code: 'ConditionNotMet', message: 'The condition specified using HTTP conditional header(s) is not met.' },
  CC_ERR_INVALID_RANGE: { status: 416, code: 'InvalidRange', message: 'The range specified is invalid for the current size of the resource.' },
  CC_ERR_MD5_MISMATCH: { status: 400, code: 'Md5Mismatch', message: 'The MD5 value specified in the request did not match with the MD5 value calculated by the server.' },
  CC_ERR_CRC64_MISMATCH: { status: 400, code: 'Crc64Mismatch', message: 'The CRC64 value specified in the request did not match with the CRC64 value calculated by the server.' },
  CC_ERR_CHECKSUM_MISMATCH: { status: 400, code: 'Md5Mismatch', message: 'The checksum specified in the request did not match the checksum calculated by the server.' },
  CC_ERR_INVALID_BLOCK_ID: { status: 400, code: 'InvalidBlockId', message: 'The specified block ID is invalid. The block ID must be Base64-encoded.' },
  CC_ERR_INVALID_BLOCK_LIST: { status: 400, code: 'InvalidBlockList', message: 'The specified block list is invalid.' },
  CC_ERR_BLOCK_COUNT_EXCEEDED: { status: 409, code: 'BlockCountExceedsLimit', message: 'The uncommitted block count cannot exceed the maximum limit of 100,000 blocks.' },
  CC_ERR_INVALID_WRITE_OFFSET: { status: 412, code: 'AppendPositionConditionNotMet', message: 'The append position condition specified was not met.' },
  CC_ERR_TOO_MANY_PARTS: { status: 409, code: 'BlockCountExceedsLimit', message: 'The committed block count cannot exceed the maximum limit of 50,000 blocks.' },
  CC_ERR_INSUFFICIENT_STORAGE: { status: 507, code: 'InsufficientStorage', message: 'The cache does not have enough free capacity for this write.' },
  CC_ERR_INCOMPLETE_BODY: { status: 400, code: 'InvalidInput', message: 'The request body is shorter than the declared Content-Length.' },
  CC_ERR_BODY_TOO_LARGE: { status: 413, code: 'RequestBodyTooLarge', message: 'The request body is too large and exceeds the maximum permissible limit.' },
  CC_ERR_INVALID_NAME: { status: 400, code: 'InvalidResourceName', message: 'The specifed resource name contains invalid characters.' },
  CC_ERR_INVALID_INPUT: { status: 400, code: 'InvalidInput', message: 'One of the request inputs is not valid.' },
  CC_ERR_COPY_SOURCE_NOT_FOUND: { status: 404, code: 'CannotVerifyCopySource', message: 'The specified blob does not exist.' },
  CC_ERR_SERVER_BUSY: { status: 503, code: 'ServerBusy', message: 'The server is busy.' },
  CC_ERR_UPSTREAM_UNAVAILABLE: { status: 503, code: 'ServerBusy', message: 'The upstream storage is unavailable. Please try again after some time.' },
  CC_ERR_PEER_UNAVAILABLE: { status: 503, code: 'ServerBusy', message: 'Not enough cluster peers are reachable. Please try again after some time.' },
  CC_ERR_PEER_AUTH: { status: 403, code: 'AuthenticationFailed', message: 'Server failed to authenticate the request.' },
  CC_ERR_CLIENT_ABORTED: { status: 400, code: 'InvalidInput', message: 'The client closed the connection before the request completed.' },
  CC_ERR_INTERNAL: { status: 500, code: 'InternalError', message: 'Server encountered an internal error. Please try again after some time.' }
}
