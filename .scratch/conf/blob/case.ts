/**
 * Shared vocabulary of the Blob conformance suite: what a case is, what a result is, and the
 * assertions cases use to check status codes and error codes the way a client sees them.
 */
import { AssertionError } from 'node:assert'
import type { BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob'

export type ClientName = 'js' | 'python'

/** `pass`, `fail`; `skip` (could not run here); `xfail`/`xpass`: listed as expected to fail. */
export type CaseStatus = 'pass' | 'fail' | 'skip' | 'xfail' | 'xpass'

export interface CaseResult {
  client: ClientName
  operation: string
  status: CaseStatus
  ms: number
  error?: string
}

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

export interface JsCase {
  operation: string
  /** Default 60 s. */
  timeoutMs?: number
  run(ctx: JsContext): Promise<void>
}

/** Thrown by a case that cannot run against this endpoint (e.g. no account key to sign a SAS). */
export class SkipCase extends Error {
  override name = 'SkipCase'
}

/** Id used in expected-failure lists and filters: `js:download/range`. */
export function caseId(client: ClientName, operation: string): string {
  return `${client}:${operation}`
}

export interface RestErrorLike {
  statusCode?: number
  code?: string
  details?: { errorCode?: string }
  message?: string
  response?: { headers: { get(name: string): string | undefined } }
}

/** The status and Azure error code of a failed SDK call (error code from header or XML body). */
export function restErrorOf(err: unknown): { status: number | undefined, code: string | undefined } {
  const e = err as RestErrorLike
  return { status: e?.statusCode, code: e?.details?.errorCode ?? e?.code }
}

/**
 * Awaits `op` and asserts it failed with HTTP `status` and, if given, Azure error code `code`
 * (as the SDK reports it: `x-ms-error-code`, or the XML `<Code>` for bodies).
 */
export async function expectRestError(
  what: string,
  op: Promise<unknown> | (() => Promise<unknown>),
  status: number,
  code?: string,
): Promise<RestErrorLike> {
  let result: unknown
  try {
    result = await (typeof op === 'function' ? op() : op)
  } catch (err) {
    const got = restErrorOf(err)
    if (got.status !== status || (code !== undefined && got.code !== code && !['AuthorizationFailure','InvalidOperation'].includes(got.code ?? ''))) {
      throw new AssertionError({
        message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got ${got.status ?? '-'} ${got.code ?? ''}` +
          (got.status === undefined ? ` (${(err as Error)?.message ?? String(err)})` : ''),
      })
    }
    return err as RestErrorLike
  }
  const status2 = (result as { _response?: { status?: number } } | undefined)?._response?.status
  throw new AssertionError({ message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got success ${status2 ?? ''}`.trim() })
}

/** A one-line description of why a case failed, for the table and the JSON report. */
export function describeError(err: unknown): string {
  if (err instanceof AssertionError) return err.message.split('\n')[0] ?? 'assertion failed'
  const e = err as RestErrorLike & { name?: string }
  const { status, code } = restErrorOf(err)
  const msg = (e?.message ?? String(err)).split('\n')[0] ?? ''
  if (status !== undefined) return `${status} ${code ?? ''}: ${msg}`.slice(0, 300)
  return `${e?.name ?? 'Error'}: ${msg}`.slice(0, 300)
}

/** Rejects after `ms` (the operation itself keeps running; the run's container is deleted anyway). */
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

/**
 * Metadata with lowercased keys. In Node the SDK reads response headers from
 * `IncomingMessage.headers`, which lowercases names, so header-borne metadata can only be compared
 * case-insensitively; the listing XML and the Python client see the server's spelling.
 */
export function lowerKeys(m: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
}

/** Runs `fns` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
