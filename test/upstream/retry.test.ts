/**
 * The upstream retry loop and rate cap, on their own: the backoff schedule
 * (full jitter under an exponential ceiling with a cap), which errors are
 * retried, what is thrown after the attempts or on abort, and the token
 * bucket's pace.
 */
import t from 'tap'
import { isCacheError } from '../../src/errors.js'
import {
  DEFAULT_RETRY_OPTIONS, TokenBucket, backoffCeilingMs, backoffDelayMs, isTransientError, withRetry
} from '../../src/upstream/retry.js'

const fast = { attempts: 4, baseMs: 1, capMs: 2 }

function restError (statusCode: number | undefined, code?: string, message = 'failed'): Error {
  return Object.assign(new Error(message), { name: 'RestError', statusCode, code, details: code === undefined ? undefined : { errorCode: code } })
}

t.test('backoff: exponential ceiling capped, full jitter below it', async (t) => {
  const opts = { attempts: 8, baseMs: 200, capMs: 30_000 }
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => backoffCeilingMs(n, opts)), [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000])
  t.equal(backoffDelayMs(3, opts, () => 0), 0, 'jitter can reach zero')
  t.equal(backoffDelayMs(3, opts, () => 0.999999), 799, 'and stays below the ceiling')
  t.equal(backoffDelayMs(20, opts, () => 0.5), 15_000, 'late retries are capped')
  for (let i = 0; i < 200; i++) {
    const d = backoffDelayMs(4, opts)
    if (d < 0 || d >= 1600) t.fail(`delay ${d} outside [0, 1600)`)
  }
  t.same(DEFAULT_RETRY_OPTIONS, { attempts: 8, baseMs: 200, capMs: 30_000 })
})

t.test('transient: throttling, server errors, Azure busy codes, network errors; not other 4xx', async (t) => {
  for (const s of [429, 500, 502, 503, 504]) t.ok(isTransientError(restError(s)), `${s}`)
  for (const c of ['ServerBusy', 'OperationTimedOut', 'InternalError']) t.ok(isTransientError(restError(undefined, c)), c)
  for (const c of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'REQUEST_SEND_ERROR']) t.ok(isTransientError(restError(undefined, c)), c)
  t.ok(isTransientError(new Error('socket hang up')), 'socket hang up')
  t.ok(isTransientError(Object.assign(new Error('wrapped'), { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) })), 'a network error as cause')
  for (const s of [400, 403, 404, 409, 412, 416]) t.notOk(isTransientError(restError(s, 'Whatever')), `${s} is not retried`)
  t.notOk(isTransientError(restError(400, 'InternalError')), 'a 4xx status wins over its code')
  t.notOk(isTransientError(Object.assign(new Error('aborted'), { name: 'AbortError' })), 'an abort is not retried')
  t.notOk(isTransientError('ECONNRESET'), 'a string is not an error')
})

t.test('withRetry: succeeds after transient failures, counting retries', async (t) => {
  const seen: number[] = []
  const retries: Array<[number, number]> = []
  const result = await withRetry(async (n) => {
    seen.push(n)
    if (n < 3) throw restError(503, 'ServerBusy')
    return 'ok'
  }, { ...fast, operation: 'PutBlob', onRetry: (_err, retry, delay) => retries.push([retry, delay]) })
  t.equal(result, 'ok')
  t.same(seen, [1, 2, 3])
  t.same(retries.map(([r]) => r), [1, 2])
  t.ok(retries.every(([r, d]) => d >= 0 && d <= backoffCeilingMs(r, fast)), 'each wait within its ceiling')
})

t.test('withRetry: after the attempts, CC_ERR_UPSTREAM_UNAVAILABLE with the last error as cause', async (t) => {
  let calls = 0
  const last = restError(500, 'InternalError', 'boom 4')
  const err = await withRetry(async () => {
    calls++
    throw calls === 4 ? last : restError(500, 'InternalError')
  }, { ...fast, operation: 'GetBlob' }).catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_UPSTREAM_UNAVAILABLE'), 'unavailable')
  t.equal((err as Error).cause, last)
  t.match((err as Error).message, /GetBlob failed after 4 attempts: 500 InternalError boom 4/)
  t.equal(calls, 4)
})

t.test('withRetry: a non-transient error is thrown at once, as it is', async (t) => {
  let calls = 0
  const forbidden = restError(403, 'AuthorizationFailure')
  await t.rejects(withRetry(async () => { calls++; throw forbidden }, { ...fast, operation: 'PutBlob' }), forbidden)
  t.equal(calls, 1)
})

t.test('withRetry: an abort stops the waiting at once', async (t) => {
  const ac = new AbortController()
  let calls = 0
  const started = Date.now()
  const run = withRetry(async () => {
    calls++
    if (calls === 1) setImmediate(() => ac.abort(new Error('client left')))
    throw restError(503, 'ServerBusy')
  }, { attempts: 10, baseMs: 60_000, capMs: 60_000, operation: 'PutBlock', signal: ac.signal, random: () => 0.99 })
  const err = await run.catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_CLIENT_ABORTED'), 'cancelled')
  t.equal(calls, 1, 'no attempt after the abort')
  t.ok(Date.now() - started < 5_000, 'did not sit out the 59 s wait')
  const pre = new AbortController()
  pre.abort()
  let ran = false
  await t.rejects(withRetry(async () => { ran = true }, { ...fast, operation: 'x', signal: pre.signal }), { code: 'CC_ERR_CLIENT_ABORTED' })
  t.notOk(ran, 'an aborted signal runs nothing')
})

t.test('token bucket: the burst goes at once, then requests are paced at the rate, in order', async (t) => {
  const bucket = new TokenBucket(50, 5)
  const started = performance.now()
  const order: number[] = []
  await Promise.all(Array.from({ length: 5 }, async (_, i) => { await bucket.take(); order.push(i) }))
  t.ok(performance.now() - started < 50, 'the burst was not paced')
  const pacedStart = performance.now()
  await Promise.all(Array.from({ length: 25 }, async (_, i) => { await bucket.take(); order.push(5 + i) }))
  const elapsed = performance.now() - pacedStart
  // 25 more tokens at 50/s take 500 ms; timers may fire a little early, never much.
  t.ok(elapsed >= 470, `25 tokens at 50/s took ${elapsed.toFixed(0)} ms`)
  t.same(order, Array.from({ length: 30 }, (_, i) => i), 'FIFO')
  t.equal(bucket.waiting, 0)
})

t.test('token bucket: an aborted waiter leaves the queue; rate 0 means no cap', async (t) => {
  const bucket = new TokenBucket(2, 1)
  await bucket.take()
  const ac = new AbortController()
  const waiting = bucket.take(ac.signal)
  const behind = bucket.take()
  t.equal(bucket.waiting, 2)
  ac.abort()
  await t.rejects(waiting, { code: 'CC_ERR_CLIENT_ABORTED' })
  t.equal(bucket.waiting, 1, 'the aborted waiter left')
  await behind
  const free = new TokenBucket(0)
  const started = performance.now()
  for (let i = 0; i < 1000; i++) await free.take()
  t.ok(performance.now() - started < 200, 'no pacing without a cap')
})
