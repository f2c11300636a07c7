/**
 * Shared vocabulary of the S3 conformance suite: what a case is, what a result is, and the
 * assertions cases use to check status codes and S3 error codes the way a client sees them.
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { CaseResult as SharedCaseResult } from '../shared/case-result.js'
import type { CaseDefinition } from '../shared/run-case.js'
import { sdkErrorChecks, type StatusAndCode } from '../shared/sdk-error.js'
import type { S3Endpoint } from './endpoint.js'

export { SkipCase } from '../shared/run-case.js'

/** The clients the suite drives, in the order of the table's columns. */
export const CLIENTS = ['js', 'python', 'awscli', 's3cmd', 'rclone'] as const
export type ClientName = typeof CLIENTS[number]

export type CaseResult = SharedCaseResult<ClientName>

/** What every JS case gets: a client for the endpoint under test and the run's bucket. */
export interface JsContext {
  endpoint: S3Endpoint
  /** A client with the endpoint's credentials and the SDK's default settings (one attempt per call). */
  s3: S3Client
  /** Another client for the same endpoint, e.g. with other credentials; destroyed after the case. */
  client(credentials?: { accessKeyId: string, secretAccessKey: string }): S3Client
  /** The run's bucket (unique per run, emptied and deleted at the end). */
  bucket: string
  /** Unique per run; extra buckets a case creates must start with it (they are cleaned up). */
  runId: string
  /** Key prefix reserved for the running case: `js/<operation>/`. */
  prefix: string
}

/** A JS case; its time limit defaults to 60 s. */
export type JsCase = CaseDefinition<JsContext>

/** What the SDK's S3ServiceException carries that the suite looks at. */
export interface S3ErrorLike {
  name?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
  $response?: { statusCode?: number, headers?: Record<string, string> }
}

/**
 * The status and S3 error code of a failed SDK call. For answers without a body (HEAD, 304) the
 * SDK has no code and names the error after the status (`NotFound`, `NotModified`): those are
 * reported as no code.
 */
export function s3ErrorOf(err: unknown): StatusAndCode {
  const e = err as S3ErrorLike
  const status = e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode
  const code = e?.Code ?? (e?.name && e.name !== 'UnknownError' && e.name !== 'Error' ? e.name : undefined)
  return { status, code }
}

/** `expectS3Error(what, op, status, code?)`: asserts `op` failed with that status and S3 error code (the `<Code>` of the error body). */
export const { expectError: expectS3Error, describeError } = sdkErrorChecks<S3ErrorLike>({
  errorOf: s3ErrorOf,
  successStatus: (result) => (result as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode,
})
