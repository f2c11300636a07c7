/**
 * Checking and describing the errors an SDK throws, given how to read the HTTP status and the
 * protocol's error code out of them (each suite knows its SDK's error shape).
 */
import { AssertionError } from 'node:assert'

export interface StatusAndCode {
  status: number | undefined
  code: string | undefined
}

export interface SdkErrorShape {
  /** The status and error code of a failed call. */
  errorOf(err: unknown): StatusAndCode
  /** The HTTP status of a call that succeeded, if the SDK's result carries it. */
  successStatus(result: unknown): number | undefined
}

export interface SdkErrorChecks<E> {
  /**
   * Awaits `op` and asserts it failed with HTTP `status` and, if given, the protocol's error code
   * `code` (as the SDK reports it); returns the error.
   */
  expectError(what: string, op: Promise<unknown> | (() => Promise<unknown>), status: number, code?: string): Promise<E>
  /** A one-line description of why a case failed, for the table and the JSON report. */
  describeError(err: unknown): string
}

/** The assertion and the description of failures for an SDK whose errors have this shape. */
export function sdkErrorChecks<E>(shape: SdkErrorShape): SdkErrorChecks<E> {
  return {
    expectError: (what, op, status, code) => expectSdkError<E>(shape, what, op, status, code),
    describeError: (err) => describeSdkError(shape.errorOf, err),
  }
}

/**
 * Awaits `op` and asserts it failed with HTTP `status` and, if given, error code `code`; returns
 * the error.
 */
async function expectSdkError<E>(
  shape: SdkErrorShape,
  what: string,
  op: Promise<unknown> | (() => Promise<unknown>),
  status: number,
  code?: string,
): Promise<E> {
  let result: unknown
  try {
    result = await (typeof op === 'function' ? op() : op)
  } catch (err) {
    const got = shape.errorOf(err)
    if (got.status !== status || (code !== undefined && got.code !== code)) {
      throw new AssertionError({
        message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got ${got.status ?? '-'} ${got.code ?? ''}`.trimEnd() +
          (got.status === undefined ? ` (${(err as Error)?.message ?? String(err)})` : ''),
      })
    }
    return err as E
  }
  throw new AssertionError({ message: `${what}: expected ${status}${code ? ` ${code}` : ''}, got success ${shape.successStatus(result) ?? ''}`.trimEnd() })
}

/** A one-line description of why a case failed, for the table and the JSON report. */
function describeSdkError(errorOf: SdkErrorShape['errorOf'], err: unknown): string {
  if (err instanceof AssertionError) return err.message.split('\n')[0] ?? 'assertion failed'
  const e = err as { name?: string, message?: string } | undefined
  const { status, code } = errorOf(err)
  const msg = (e?.message ?? String(err)).split('\n')[0] ?? ''
  if (status !== undefined) return `${status} ${code ?? ''}: ${msg}`.slice(0, 300)
  return `${e?.name ?? 'Error'}: ${msg}`.slice(0, 300)
}
