/**
 * Shared vocabulary of the S3 conformance suite: what a case is, what a result is, and the
 * assertions cases use to check status codes and S3 error codes the way a client sees them.
 */
import { AssertionError } from 'node:assert'
import type { S3Client } from '@aws-sdk/client-s3'
import type { S3Endpoint } from './endpoint.js'

/** The clients the suite drives, in the order of the table's columns. */
export const CLIENTS = ['js', 'python', 'awscli', 's3cmd', 'rclone'] as const
export type ClientName = typeof CLIENTS[number]

/** `pass`, `fail`; `skip` (could not run here); `xfail`/`xpass`: listed as expected to fail. */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'xfail' | 'xpass'

export interface CaseResult {
  client: ClientName
  operation: string
  status: CaseStatus
  ms: number
  error?: string
}

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

export interface JsCase {
  operation: string
  /** Default 60 s. */
  timeoutMs?: number
  run(ctx: JsContext): Promise<void>
}

/** Thrown by a case that cannot run against this endpoint or on this machine. */
export class SkipCase extends Error {
  override name = 'SkipCase'
}

/** Id used in expected-failure lists and filters: `js:get/range-416`. */
export function caseId(client: ClientName, operation: string): string {
  return `${client}:${operation}`
}

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
export function s3ErrorOf(err: unknown): { status: number | undefined, code: string | undefined } {
  const e = err as S3ErrorLike
  const status = e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode
  const code = e?.Code ?? (e?.name && e.name !== 'UnknownError' && e.name !== 'Error' ? e.name : undefined)
  return { status, code }
}

/**
 * Awaits `op` and asserts it failed with HTTP `status` and, if given, S3 error code `code` (the
 * `<Code>` of the error body).
 */
export async function expectS3Error(
  what: string,
  op: Promise<unknown> | (() => Promise<unknown>),
  status: number,
  code?: string,
): Promise<S3ErrorLike> {
  let result: unknown
  try {
    result = await (typeof op === 'function' ? op() : op)
  } catch (err) {
    const got = s3ErrorOf(err)
    if (got.status !== status || (code !== undefined && got.code !== code)) {
      throw new AssertionError({
        message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got ${got.status ?? '-'} ${got.code ?? ''}`.trimEnd() +
          (got.status === undefined ? ` (${(err as Error)?.message ?? String(err)})` : ''),
      })
    }
    return err as S3ErrorLike
  }
  const okStatus = (result as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
  throw new AssertionError({ message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got success ${okStatus ?? ''}`.trimEnd() })
}

/** A one-line description of why a case failed, for the table and the JSON report. */
export function describeError(err: unknown): string {
  if (err instanceof AssertionError) return err.message.split('\n')[0] ?? 'assertion failed'
  const e = err as S3ErrorLike & { name?: string }
  const { status, code } = s3ErrorOf(err)
  const msg = (e?.message ?? String(err)).split('\n')[0] ?? ''
  if (status !== undefined) return `${status} ${code ?? ''}: ${msg}`.slice(0, 300)
  return `${e?.name ?? 'Error'}: ${msg}`.slice(0, 300)
}

/** Rejects after `ms` (the operation itself keeps running; the run's buckets are deleted anyway). */
export async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
