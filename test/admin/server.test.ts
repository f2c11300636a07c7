import { Writable } from 'node:stream'
import pino from 'pino'
import t, { type Test } from 'tap'
import { Metrics, createNodeMetrics } from '../../src/admin/metrics.js'
import { createAdminServer, type AdminServer } from '../../src/admin/server.js'
import type { FlushProgressLine } from '../../src/admin/progress.js'
import type { StoreStats } from '../../src/store/local-store.js'
import type { FlushHandle, FlushProgress, Writeback, WritebackStatus } from '../../src/upstream/types.js'
import { ndjsonLines } from '../helpers/tier.js'

/**
 * A stand-in for the writeback queue (the real one needs an upstream): its flushes move only
 * when the test says so.
 */
class FakeFlush implements FlushHandle {
  readonly done: Promise<void>
  readonly #p: FlushProgress
  #resolve!: () => void
  #reject!: (err: Error) => void

  constructor (objects: number, bytes: number) {
    this.#p = { objects, bytes, cleanObjects: 0, cleanBytes: 0, done: objects === 0, startedMs: Date.now() }
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    if (objects === 0) this.#resolve()
  }

  progress (): FlushProgress {
    return { ...this.#p }
  }

  advance (objects: number, bytes: number): void {
    this.#p.cleanObjects += objects
    this.#p.cleanBytes += bytes
  }

  complete (): void {
    Object.assign(this.#p, { cleanObjects: this.#p.objects, cleanBytes: this.#p.bytes, done: true })
    this.#resolve()
  }

  fail (message: string): void {
    this.#reject(new Error(message))
  }
}

class FakeWriteback implements Writeback {
  readonly calls: Array<{ container?: string, prefix?: string }> = []
  next = { objects: 2, bytes: 3000 }
  flushes: FakeFlush[] = []
  readonly state: WritebackStatus = {
    mode: 'writeback',
    dirtyObjects: 2,
    dirtyBytes: 3000,
    dirtyLimit: 1 << 30,
    oldestDirtyAgeMs: 4200,
    queued: 1,
    uploading: 1,
    pendingDeletes: 0,
    uploadedObjects: 7,
    uploadedBytes: 70_000,
    failedAttempts: 1,
    lastError: 'upstream unavailable'
  }

  status (): WritebackStatus { return { ...this.state } }
  admit (): void {}
  async whenClean (): Promise<void> {}
  deletePending (): boolean { return false }
  async cleaned (): Promise<boolean> { return false }
  async close (): Promise<void> {}
  flush (container?: string, prefix?: string): FlushHandle {
    this.calls.push({ container, prefix })
    const f = new FakeFlush(this.next.objects, this.next.bytes)
    this.flushes.push(f)
    return f
  }
}

const STATS: StoreStats = { capacity: 10_000_000, used: 123_456, committed: 120_000, staged: 3456, reserved: 0, objects: 42, containers: 3 }

/** A logger whose lines the test can wait for. */
function testLogger (): { log: pino.Logger, waitFor: (msg: string) => Promise<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  const dest = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>)
      for (const w of [...waiters]) w()
      cb()
    }
  })
  const waitFor = (msg: string): Promise<Record<string, unknown>> => new Promise(resolve => {
    const check = (): boolean => {
      const found = lines.find(l => l.msg === msg)
      if (found === undefined) return false
      waiters.splice(waiters.indexOf(check), 1)
      resolve(found)
      return true
    }
    waiters.push(check)
    check()
  })
  return { log: pino({ level: 'debug' }, dest), waitFor }
}

interface Started {
  url: string
  server: AdminServer
  metrics: Metrics
  writeback: FakeWriteback | undefined
  ready: { value: boolean }
  waitForLog: (msg: string) => Promise<Record<string, unknown>>
}

async function start (t: Test, opts: { cacheOnly?: boolean } = {}): Promise<Started> {
  const metrics = new Metrics()
  const writeback = opts.cacheOnly === true ? undefined : new FakeWriteback()
  const ready = { value: false }
  const { log, waitFor } = testLogger()
  const server = createAdminServer({ metrics, writeback, storeStats: () => STATS, ready: () => ready.value, log, flushIntervalMs: 20 })
  const port = await server.listen('127.0.0.1', 0)
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${port}`, server, metrics, writeback, ready, waitForLog: waitFor }
}

t.test('GET /metrics: text format 0.0.4 with HELP/TYPE, store gauges, labelled counters, escaped values', async t => {
  const { url, metrics } = await start(t)
  const node = createNodeMetrics(metrics)
  node.upstreamRequests.inc({ operation: 'PutBlock', class: 'data' }, 3)
  node.upstreamRequests.inc({ operation: 'weird "op"\\\n', class: 'metadata' })
  node.evictions.inc()

  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const text = await res.text()
  t.ok(text.endsWith('\n'), 'ends with a newline')

  t.match(text, '# HELP ckptcache_store_capacity_bytes Capacity of the local store in bytes.\n# TYPE ckptcache_store_capacity_bytes gauge\nckptcache_store_capacity_bytes 10000000\n')
  t.match(text, '# TYPE ckptcache_store_used_bytes gauge\nckptcache_store_used_bytes 123456\n')
  t.match(text, '# TYPE ckptcache_store_objects gauge\nckptcache_store_objects 42\n')
  t.match(text, '# TYPE ckptcache_upstream_requests_total counter\n')
  t.match(text, 'ckptcache_upstream_requests_total{operation="PutBlock",class="data"} 3\n')
  t.match(text, 'ckptcache_upstream_requests_total{operation="weird \\"op\\"\\\\\\n",class="metadata"} 1\n', 'quote, backslash and newline escaped')
  t.match(text, 'ckptcache_evictions_total 1\n')

  // Every sample line follows its metric's HELP and TYPE and parses as a sample.
  const described = new Set<string>()
  for (const line of text.trimEnd().split('\n')) {
    const help = /^# HELP (\w+) \S/.exec(line)
    const type = /^# TYPE (\w+) (counter|gauge)$/.exec(line)
    if (help !== null) { described.add(`help:${help[1]}`); continue }
    if (type !== null) {
      t.ok(described.has(`help:${type[1]}`), `HELP before TYPE for ${type[1]}`)
      described.add(`type:${type[1]}`)
      continue
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_]\w*="(\\.|[^"\\\n])*",?)*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?)$/.exec(line)
    t.ok(sample !== null, `sample line parses: ${line}`)
    if (sample !== null) t.ok(described.has(`type:${sample[1]}`), `TYPE before samples of ${sample[1]}`)
  }

  // Gauges are read at scrape time.
  STATS.objects = 43
  t.teardown(() => { STATS.objects = 42 })
  t.match(await (await fetch(`${url}/metrics`)).text(), 'ckptcache_store_objects 43\n')
})

t.test('GET /healthz and /readyz', async t => {
  const { url, ready } = await start(t)
  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200)
  t.equal(await health.text(), 'ok\n')
  const notReady = await fetch(`${url}/readyz`)
  t.equal(notReady.status, 503)
  t.equal(await notReady.text(), 'not ready\n')
  ready.value = true
  const isReady = await fetch(`${url}/readyz`)
  t.equal(isReady.status, 200)
  t.equal(await isReady.text(), 'ready\n')
})

t.test('GET /status: mode, store stats and writeback status as JSON', async t => {
  const { url, writeback } = await start(t)
  const res = await fetch(`${url}/status`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(await res.json(), { mode: 'writeback', store: STATS, writeback: writeback!.state })

  const co = await start(t, { cacheOnly: true })
  t.same(await (await fetch(`${co.url}/status`)).json(), { mode: 'cache-only', store: STATS, writeback: null })
})

t.test('POST /flush streams NDJSON progress until a last line with done', async t => {
  const { url, writeback } = await start(t)
  writeback!.next = { objects: 4, bytes: 4000 }
  const res = await fetch(`${url}/flush?prefix=ckpt/step-100/`, { method: 'POST' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/x-ndjson; charset=utf-8')
  t.same(writeback!.calls, [{ container: 'ckpt', prefix: 'step-100/' }])
  const flush = writeback!.flushes[0]

  const got: FlushProgressLine[] = []
  let advanced = false
  for await (const line of ndjsonLines<FlushProgressLine>(res)) {
    got.push(line)
    if (got.length === 1) {
      t.match(line, { objects: 4, bytes: 4000, cleanObjects: 0, cleanBytes: 0, done: false, etaS: null })
      t.type(line.startedMs, 'number')
      flush.advance(1, 1000)
      advanced = true
    } else if (advanced && line.cleanObjects === 1 && got.filter(l => l.cleanObjects === 1).length === 1) {
      t.ok(line.rateBytesPerS > 0, 'a rate once bytes moved')
      t.type(line.etaS, 'number')
      t.ok(line.etaS! > 0, 'time left')
      flush.complete()
    }
  }
  const last = got[got.length - 1]
  t.match(last, { done: true, cleanObjects: 4, cleanBytes: 4000, etaS: 0 })
  t.equal(last.error, undefined)
  t.equal(got.filter(l => l.done).length, 1, 'one done line, the last')
})

t.test('POST /flush: target forms, and an empty flush answers done at once', async t => {
  const { url, writeback } = await start(t)
  writeback!.next = { objects: 0, bytes: 0 }
  for (const q of ['', '?prefix=', '?prefix=ckpt', '?prefix=ckpt/', '?prefix=my.bucket/a/b%20c']) {
    const res = await fetch(`${url}/flush${q}`, { method: 'POST' })
    t.equal(res.status, 200, q)
    const body = await res.text()
    const all = body.trimEnd().split('\n').map(l => JSON.parse(l) as FlushProgressLine)
    t.equal(all.length, 1, `${q}: only the done line`)
    t.match(all[0], { done: true, objects: 0 })
  }
  t.same(writeback!.calls, [
    { container: undefined, prefix: undefined },
    { container: undefined, prefix: undefined },
    { container: 'ckpt', prefix: undefined },
    { container: 'ckpt', prefix: undefined },
    { container: 'my.bucket', prefix: 'a/b c' }
  ])
})

t.test('POST /flush: a failing flush ends with its error', async t => {
  const { url, writeback } = await start(t)
  const res = await fetch(`${url}/flush?prefix=ckpt`, { method: 'POST' })
  const got: FlushProgressLine[] = []
  for await (const line of ndjsonLines<FlushProgressLine>(res)) {
    got.push(line)
    if (got.length === 1) writeback!.flushes[0].fail('upstream unavailable after 8 retries')
  }
  t.match(got[got.length - 1], { done: false, error: 'upstream unavailable after 8 retries' })
})

t.test('POST /flush: a client that leaves stops the stream', async t => {
  const { url, waitForLog } = await start(t)
  const ac = new AbortController()
  const res = await fetch(`${url}/flush?prefix=ckpt/x`, { method: 'POST', signal: ac.signal })
  const it = ndjsonLines<FlushProgressLine>(res)
  t.match((await it.next()).value, { done: false })
  ac.abort()
  // Lines already received may still come out of the buffer; then the body fails.
  await t.rejects((async () => { for await (const line of it) t.equal(line.done, false) })())
  const logged = await waitForLog('flush progress stream closed by the client')
  t.match(logged, { container: 'ckpt', prefix: 'x' })
})

t.test('close() ends an open flush stream with a last line', async t => {
  const { url, server } = await start(t)
  const res = await fetch(`${url}/flush`, { method: 'POST' })
  const it = ndjsonLines<FlushProgressLine>(res)
  t.match((await it.next()).value, { done: false })
  const closing = server.close()
  const rest: FlushProgressLine[] = []
  for await (const line of it) rest.push(line)
  await closing
  t.match(rest[rest.length - 1], { done: false, error: 'the gateway is shutting down' })
  await t.rejects(fetch(`${url}/healthz`), 'no longer listening')
})

t.test('POST /flush in cache-only mode is 409', async t => {
  const { url } = await start(t, { cacheOnly: true })
  const res = await fetch(`${url}/flush?prefix=ckpt`, { method: 'POST' })
  t.equal(res.status, 409)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(await res.json(), { error: 'cache-only mode has no upstream to flush to' })
})

t.test('bad input 400, unknown path 404, wrong method 405', async t => {
  const { url, writeback } = await start(t)
  for (const q of ['?prefix=Bad_Name', '?prefix=/step-1', '?prefix=ab', '?container=ckpt', '?prefix=ckpt&prefix=other', `?prefix=ckpt/${'x'.repeat(1100)}`, '?prefix=ckpt/a%00b']) {
    const res = await fetch(`${url}/flush${q}`, { method: 'POST' })
    t.equal(res.status, 400, q)
    const body = await res.json() as { error: string }
    t.type(body.error, 'string', q)
    t.not(body.error, '', q)
  }
  t.same(writeback!.calls, [], 'no flush started by bad input')

  const missing = await fetch(`${url}/nope`)
  t.equal(missing.status, 404)
  t.match(await missing.json(), { error: /no such endpoint \/nope/ })

  const getFlush = await fetch(`${url}/flush`)
  t.equal(getFlush.status, 405)
  t.equal(getFlush.headers.get('allow'), 'POST')
  const postMetrics = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' })
  t.equal(postMetrics.status, 405)
  t.equal(postMetrics.headers.get('allow'), 'GET')
  t.match(await postMetrics.json(), { error: '/metrics takes GET, not POST' })
})
