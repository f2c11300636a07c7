import pino from 'pino'
import t, { type Test } from 'tap'
import { Metrics } from '../../src/admin/metrics.js'
import { NO_CLUSTER_DRAIN_ERROR, createAdminServer, type AdminServer, type DrainProgressLine } from '../../src/admin/server.js'
import { drainBar, drainCommand } from '../../src/cli/drain.js'
import { statusCommand } from '../../src/cli/status.js'
import type { ClusterStatus, DrainHandle, DrainProgress } from '../../src/cluster/types.js'
import { CacheError } from '../../src/errors.js'
import type { StoreStats } from '../../src/store/local-store.js'
import { captureIo, ndjsonLines, runCli } from '../helpers/tier.js'


/**
 * A drain over a fixed list of objects that hands one over per `step()`, and tells the test
 * each time the server reads its progress (the server reads it for every line it sends).
 */
class StepDrain implements DrainHandle {
  readonly done: Promise<void>
  readonly #sizes: number[]
  readonly #startedMs = Date.now()
  #handed = 0
  #failed = 0
  #resolve!: () => void
  #reject!: (err: Error) => void
  #reads = 0
  #waiters: Array<{ at: number, resolve: () => void }> = []

  constructor (sizes: number[]) {
    this.#sizes = sizes
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    if (sizes.length === 0) this.#resolve()
  }

  get reads (): number { return this.#reads }

  progress (): DrainProgress {
    this.#reads++
    for (const w of this.#waiters.filter(w => w.at <= this.#reads)) w.resolve()
    this.#waiters = this.#waiters.filter(w => w.at > this.#reads)
    const handed = this.#sizes.slice(0, this.#handed)
    return {
      objects: this.#sizes.length,
      bytes: this.#sizes.reduce((a, b) => a + b, 0),
      handedObjects: handed.length,
      handedBytes: handed.reduce((a, b) => a + b, 0),
      failed: this.#failed,
      done: this.#handed === this.#sizes.length,
      startedMs: this.#startedMs
    }
  }

  /** Resolves once the server has read the progress `n` more times. */
  readsMore (n: number): Promise<void> {
    return new Promise(resolve => { this.#waiters.push({ at: this.#reads + n, resolve }) })
  }

  /** Hands the next object over; the drain is done after the last one. */
  step (): void {
    this.#handed++
    if (this.#handed === this.#sizes.length) this.#resolve()
  }

  failOnce (): void {
    this.#failed++
  }

  fail (message: string): void {
    this.#reject(new Error(message))
  }
}

/** The admin server's drain hook: one drain per node, created on the first call, like a node's. */
class DrainHook {
  sizes = [1024, 2048, 1024]
  calls = 0
  current: StepDrain | undefined
  throws: Error | undefined
  #started: Array<(d: StepDrain) => void> = []

  readonly drain = (): DrainHandle => {
    this.calls++
    if (this.throws !== undefined) throw this.throws
    if (this.current === undefined) {
      this.current = new StepDrain(this.sizes)
      for (const s of this.#started.splice(0)) s(this.current)
    }
    return this.current
  }

  /** The drain the next client starts. */
  started (): Promise<StepDrain> {
    return new Promise(resolve => { this.#started.push(resolve) })
  }
}

const STATS: StoreStats = { capacity: 2 * 1024 ** 4, used: 13 * 1024 ** 3, committed: 13 * 1024 ** 3, staged: 0, reserved: 0, objects: 352, containers: 3 }

const CLUSTER: ClusterStatus = {
  nodeId: 'gpu-2',
  replicas: 2,
  ack: 'all',
  draining: false,
  nodes: [
    { id: 'gpu-1', url: 'http://10.0.0.1:10102', live: true, draining: false, self: false },
    { id: 'gpu-2', url: 'http://10.0.0.2:10102', live: true, draining: false, self: true },
    { id: 'gpu-3-long', url: 'http://10.0.0.3:10102', live: true, draining: true, self: false },
    { id: 'gpu-4', url: 'http://10.0.0.4:10102', live: false, draining: false, self: false }
  ],
  refill: { pendingObjects: 5, copiedObjects: 120, copiedBytes: 1.5 * 1024 ** 3 }
}

async function startAdmin (t: Test, opts: { cluster?: boolean } = {}): Promise<{ url: string, port: number, hook: DrainHook, server: AdminServer }> {
  const hook = new DrainHook()
  const clustered = opts.cluster !== false
  const server = createAdminServer({
    metrics: new Metrics(),
    storeStats: () => STATS,
    ready: () => true,
    log: pino({ level: 'silent' }),
    flushIntervalMs: 20,
    ...(clustered ? { drain: hook.drain, cluster: () => CLUSTER } : {})
  })
  const port = await server.listen('127.0.0.1', 0)
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${port}`, port, hook, server }
}

t.test('POST /drain streams NDJSON progress until a last line with done', async t => {
  const { url, hook } = await startAdmin(t)
  const res = await fetch(`${url}/drain`, { method: 'POST' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/x-ndjson; charset=utf-8')
  t.equal(res.headers.get('cache-control'), 'no-store')
  const drain = hook.current!
  const seen: DrainProgressLine[] = []
  for await (const line of ndjsonLines<DrainProgressLine>(res)) {
    seen.push(line)
    // Each line the test reads moves the drain on by one object, until the last.
    if (!line.done && seen.length <= 3) drain.step()
  }
  t.equal(hook.calls, 1)
  t.ok(seen.length >= 4, `a line per step and a last one (${seen.length})`)
  t.match(seen[0], { objects: 3, bytes: 4096, handedObjects: 0, handedBytes: 0, failed: 0, done: false, rateBytesPerS: 0, etaS: null })
  t.type(seen[0]!.startedMs, 'number')
  const handed = seen.map(l => l.handedObjects)
  t.same(handed, [...handed].sort((a, b) => a - b), 'handed objects never go back')
  const moving = seen.find(l => !l.done && l.handedBytes > 0)
  t.ok(moving !== undefined && moving.rateBytesPerS > 0 && typeof moving.etaS === 'number', 'a rate and an ETA once bytes moved')
  const last = seen[seen.length - 1]!
  t.match(last, { objects: 3, bytes: 4096, handedObjects: 3, handedBytes: 4096, done: true, etaS: 0 })
  t.notOk('error' in last)
  t.equal(seen.filter(l => l.done).length, 1, 'one line says done, the last')

  // A drain already done answers its last line at once; the hook hands out the same drain.
  const again = await fetch(`${url}/drain`, { method: 'POST' })
  const replay: DrainProgressLine[] = []
  for await (const line of ndjsonLines<DrainProgressLine>(again)) replay.push(line)
  t.equal(replay.length, 1)
  t.match(replay[0], { handedObjects: 3, done: true })
  t.equal(hook.calls, 2)
})

t.test('POST /drain: a failing drain ends with its error; close() ends an open stream', async t => {
  const { url, hook } = await startAdmin(t)
  const res = await fetch(`${url}/drain`, { method: 'POST' })
  const drain = hook.current!
  const it = ndjsonLines<DrainProgressLine>(res)
  t.match((await it.next()).value, { done: false })
  drain.fail('no live peer has room for 2.00 GiB')
  let last: DrainProgressLine | undefined
  for await (const line of it) last = line
  t.match(last, { done: false, error: 'no live peer has room for 2.00 GiB' })

  const other = await startAdmin(t)
  const open = await fetch(`${other.url}/drain`, { method: 'POST' })
  const openLines = ndjsonLines<DrainProgressLine>(open)
  t.match((await openLines.next()).value, { done: false })
  const closing = other.server.close()
  const rest: DrainProgressLine[] = []
  for await (const line of openLines) rest.push(line)
  await closing
  t.match(rest[rest.length - 1], { done: false, error: 'the gateway is shutting down' })
  t.ok(hook.calls === 1 && other.hook.calls === 1)
})

t.test('POST /drain refusals: no cluster 409, parameters 400, wrong method 405, no peers 503', async t => {
  const single = await startAdmin(t, { cluster: false })
  const res = await fetch(`${single.url}/drain`, { method: 'POST' })
  t.equal(res.status, 409)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(await res.json(), { error: NO_CLUSTER_DRAIN_ERROR })

  const { url, hook } = await startAdmin(t)
  const param = await fetch(`${url}/drain?prefix=ckpt`, { method: 'POST' })
  t.equal(param.status, 400)
  t.same(await param.json(), { error: 'unknown parameter "prefix" (POST /drain takes none)' })
  const get = await fetch(`${url}/drain`)
  t.equal(get.status, 405)
  t.equal(get.headers.get('allow'), 'POST')
  await get.body?.cancel()
  t.equal(hook.calls, 0, 'no drain started by a refused request')

  hook.throws = new CacheError('CC_ERR_PEER_UNAVAILABLE', 'no other node is live to take the copies')
  const none = await fetch(`${url}/drain`, { method: 'POST' })
  t.equal(none.status, 503)
  t.same(await none.json(), { error: 'no other node is live to take the copies' })
})

t.test('GET /status carries the cluster on a clustered node only', async t => {
  const { url } = await startAdmin(t)
  const body = await (await fetch(`${url}/status`)).json() as Record<string, unknown>
  t.same(body.cluster, CLUSTER)
  t.equal(body.mode, 'cache-only')
  const single = await startAdmin(t, { cluster: false })
  const plain = await (await fetch(`${single.url}/status`)).json() as Record<string, unknown>
  t.same(Object.keys(plain).sort(), ['mode', 'store', 'writeback'])
})

t.test('drain --wait on a pipe: plain progress lines, a done line, exit 0', async t => {
  const { url, hook } = await startAdmin(t)
  const started = hook.started()
  const cli = runCli(['drain', '--wait', '--admin', url])
  const drain = await started
  await drain.readsMore(4)
  drain.failOnce()
  for (let i = 0; i < 2; i++) {
    drain.step()
    await drain.readsMore(4)
  }
  drain.step()
  const { code, stdout, stderr } = await cli
  t.equal(stderr, '')
  t.equal(code, 0)
  t.notMatch(stdout, '\r', 'no redraws off a terminal')
  const out = stdout.trimEnd().split('\n')
  t.equal(out[0], 'drain: 0/3 objects, 0 B/4.00 KiB, 0 B/s, ETA unknown')
  for (const line of out.slice(1, -1)) t.match(line, /^drain: [0-2]\/3 objects, .*, 1 failed \(retrying\)$/)
  t.match(out[out.length - 1], /^drain: done, 3 objects \(4\.00 KiB\) held by other nodes after \d+s$/)
})

t.test('drain without --wait: one line and exit 3 while going, 0 when done; errors exit 1', async t => {
  const { port, hook } = await startAdmin(t)
  const single = await startAdmin(t, { cluster: false })
  const failing = await startAdmin(t)
  const failingStarted = failing.hook.started()

  // Three commands at once, against three nodes: going then done; refused; failed.
  const [[going, done], refused, failed] = await Promise.all([
    (async () => {
      const going = await runCli(['drain', '--admin-port', String(port)])
      for (let i = 0; i < 3; i++) hook.current?.step()
      return [going, await runCli(['drain'], { env: { CKPTCACHE_ADMIN_PORT: String(port) } })] as const
    })(),
    runCli(['drain', '--wait', '--admin', single.url]),
    (async () => {
      const cli = runCli(['drain', '--wait', '--admin', failing.url])
      const drain = await failingStarted
      await drain.readsMore(2)
      drain.fail('peer gpu-3 refused the copy')
      return await cli
    })()
  ])

  t.equal(going.stderr, '')
  t.equal(going.code, 3)
  t.equal(going.stdout, 'drain: 0/3 objects, 0 B/4.00 KiB, 0 B/s, ETA unknown\n')
  t.equal(done.code, 0)
  t.match(done.stdout, /^drain: done, 3 objects \(4\.00 KiB\) held by other nodes after \d+s\n$/)
  t.equal(hook.calls, 2, 'both commands asked the same node')

  t.equal(refused.code, 1)
  t.equal(refused.stdout, '')
  t.equal(refused.stderr, `ckptcache: drain refused by ${single.url}: ${NO_CLUSTER_DRAIN_ERROR}\n`)

  t.equal(failed.code, 1)
  t.equal(failed.stderr, 'ckptcache: drain failed: peer gpu-3 refused the copy\n')
})

t.test('drain on a terminal redraws one bar in place', async t => {
  const { url, hook } = await startAdmin(t)
  hook.sizes = [1024 ** 2, 1024 ** 2, 1024 ** 2, 1024 ** 2]
  const io = captureIo({ isTTY: true, columns: 72 })
  const started = hook.started()
  const command = drainCommand(['--wait', '--admin', url], {}, io)
  const drain = await started
  await drain.readsMore(3)
  drain.step()
  await drain.readsMore(3)
  for (let i = 0; i < 3; i++) drain.step()
  t.equal(await command, 0)
  t.equal(io.err(), '')
  const frames = io.out().split('\r').filter(f => f !== '')
  t.ok(frames.length >= 3, `redrawn (${frames.length} frames)`)
  for (const f of frames.slice(0, -1)) {
    const visible = f.replace('\x1b[K', '')
    t.ok(visible.length < 72, `fits the terminal: ${visible}`)
    t.match(visible, /^\[[#-]+\] +\d+% \d\/4 objects, /)
  }
  t.match(frames.find(f => f.includes('1/4 objects')), /^\[#+-+\]  25% 1\/4 objects, 1\.00 MiB\/4\.00 MiB, /)
  t.match(frames[frames.length - 1], /^drain: done, 4 objects \(4\.00 MiB\) held by other nodes after \d+s\x1b\[K\n$/)

  const bar = drainBar({ objects: 4, bytes: 4096, handedObjects: 1, handedBytes: 1024, failed: 2, done: false, startedMs: 0, rateBytesPerS: 512, etaS: 6 }, 100)
  t.ok(bar.length < 100)
  t.match(bar, /^\[#+-+\]  25% 1\/4 objects, 1\.00 KiB\/4\.00 KiB, 512 B\/s, ETA 6s, 2 failed \(retrying\)$/)
})

t.test('drain usage errors exit 2', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['--prefix', 'x'], /^ckptcache: unknown flag --prefix for ckptcache drain \(flags: --wait, --admin, --admin-port\); see ckptcache --help\n$/],
    [['--admin', 'http://127.0.0.1:1', '--admin-port', '2'], /^ckptcache: give --admin URL or --admin-port PORT, not both\n$/],
    [['--admin-port', 'x'], /^ckptcache: invalid --admin-port "x": must be an integer 0-65535\n$/],
    [['--admin-port', '0'], /^ckptcache: --admin-port 0 is any free port: pass the port the gateway logged\n$/],
    [['--wait=yes'], /^ckptcache: --wait takes no value\n$/]
  ]
  for (const [args, message] of cases) {
    const io = captureIo()
    t.equal(await drainCommand(args, {}, io), 2, String(message))
    t.equal(io.out(), '')
    t.match(io.err(), message)
  }
  const spawned = await runCli(['drain', ...cases[0]![0]])
  t.equal(spawned.code, 2)
  t.match(spawned.stderr, cases[0]![1])
})

t.test('status shows the cluster: node, replicas, ack, refill and each node; --json carries it', async t => {
  const { url, port } = await startAdmin(t)
  const human = await runCli(['status', '--admin', url])
  t.equal(human.stderr, '')
  t.equal(human.code, 0)
  t.equal(human.stdout, [
    'mode:    cache-only (no upstream)',
    'store:   13.0 GiB used of 2.00 TiB, 352 objects in 3 containers',
    'cluster: node gpu-2, 2 replicas, ack all',
    'refill:  5 objects pending, 120 objects (1.50 GiB) copied',
    'nodes:   3 live of 4',
    '  gpu-1       live      http://10.0.0.1:10102',
    '  gpu-2       live      http://10.0.0.2:10102  (this node)',
    '  gpu-3-long  draining  http://10.0.0.3:10102',
    '  gpu-4       down      http://10.0.0.4:10102',
    ''
  ].join('\n'))

  const io = captureIo()
  t.equal(await statusCommand(['--json', '--admin-port', String(port)], {}, io), 0)
  t.same((JSON.parse(io.out()) as { cluster: unknown }).cluster, CLUSTER)

  CLUSTER.draining = true
  t.teardown(() => { CLUSTER.draining = false })
  const draining = captureIo()
  t.equal(await statusCommand(['--admin', url], {}, draining), 0)
  t.match(draining.out(), /^cluster: node gpu-2 \(draining\), 2 replicas, ack all$/m)
})
