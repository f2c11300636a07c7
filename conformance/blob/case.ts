/**
 * Shared vocabulary of the Blob conformance suite: what a case is, what a result is, and the
 * assertions cases use to check status codes and error codes the way a client sees them.
 */
import type { BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import type { CaseResult as SharedCaseResult } from '../shared/case-result.js'
import type { CaseDefinition } from '../shared/run-case.js'
import { sdkErrorChecks, type StatusAndCode } from '../shared/sdk-error.js'

export { mapLimit } from '../shared/map-limit.js'
export { SkipCase } from '../shared/run-case.js'

export type ClientName = 'js' | 'python'

export type CaseResult = SharedCaseResult<ClientName>

/** What every JS case gets: clients for the endpoint under test and its own container. */
export interface JsContext {
  service: BlobServiceClient
  /** The run's container (unique per run, deleted at the end). */
  container: ContainerClient
  /** Shared key of the connection string, if it has one (SAS and wrong-key cases need it). */
  credential: StorageSharedKeyCredential | undefined
  account: string
  /** Unique per run; extra containers a case creates must start with it (they are cleaned up). */
  runId: string
  /** Blob-name prefix reserved for the running case: `js/<operation>/`. */
  prefix: string
}

/** A JS case; its time limit defaults to 60 s. */
export type JsCase = CaseDefinition<JsContext>

export interface RestErrorLike {
  statusCode?: number
  code?: string
  details?: { errorCode?: string }
  message?: string
  response?: { headers: { get(name: string): string | undefined } }
}

/** The status and Azure error code of a failed SDK call (error code from header or XML body). */
export function restErrorOf(err: unknown): StatusAndCode {
  const e = err as RestErrorLike
  return { status: e?.statusCode, code: e?.details?.errorCode ?? e?.code }
}

/**
 * `expectRestError(what, op, status, code?)`: asserts `op` failed with that status and Azure error
 * code (as the SDK reports it: `x-ms-error-code`, or the XML `<Code>` for bodies).
 */
export const { expectError: expectRestError, describeError } = sdkErrorChecks<RestErrorLike>({
  errorOf: restErrorOf,
  successStatus: (result) => (result as { _response?: { status?: number } } | undefined)?._response?.status,
})

/**
 * Metadata with lowercased keys. In Node the SDK reads response headers from
 * `IncomingMessage.headers`, which lowercases names, so header-borne metadata can only be compared
 * case-insensitively; the listing XML and the Python client see the server's spelling.
 */
export function lowerKeys(m: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
}
