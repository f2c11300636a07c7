import net from 'node:net'
import pino from 'pino'
import t, { type Test } from 'tap'
import { Metrics } from '../src/admin/metrics.js'
import { formatBytes, formatDuration, progressBar, type FlushProgressLine } from '../src/admin/progress.js'
import { createAdminServer } from '../src/admin/server.js'
import { flushCommand } from '../src/cli/flush.js'
import { statusCommand } from '../src/cli/status.js'
import type { StoreStats } from '../src/store/local-store.js'
import type { FlushHandle, FlushProgress, Writeback, WritebackStatus } from '../src/upstream/types.js'
import { captureIo, runCli } from './helpers/tier.js'


/** A flush that moves only when the test says so, and tells the test each time the server reads it. */
class FakeFlush implements FlushHandle {
  readonly done: Promise<void>
  readonly #p: FlushProgress
  #resolve!: () => void
  #reject!: (err: Error) => void
  #reads = 0
  #waiters: Array<{ at: number, resolve: () => void }> = []

  constructor (objects: number, bytes: number) {
    this.#p = { objects, bytes, cleanObjects: 0, cleanBytes: 0, done: objects === 0, startedMs: Date.now() }
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    if (objects === 0) this.#resolve()
  }

  get reads (): number { return this.#reads }

  progress (): FlushProgress {
    this.#reads++
    for (const w of this.#waiters.filter(w => w.at <= this.#reads)) w.resolve()
    this.#waiters = this.#waiters.filter(w => w.at > this.#reads)
    return { ...this.#p }
  }

  /** Resolves once the server has read the progress `n` more times (it reads it for every line). */
  readsMore (n: number): Promise<void> {
    return new Promise(resolve => { this.#waiters.push({ at: this.#reads + n, resolve }) })
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
  next = { objects: 3, bytes: 3072 }
  readonly calls: Array<{ container?: string, prefix?: string }> = []
  #started: Array<(f: FakeFlush) => void> = []
  readonly state: WritebackStatus = {
    mode: 'writeback',
    dirtyObjects: 12,
    dirtyBytes: 1.5 * 1024 ** 3,
    dirtyLimit: 100 * 1024 ** 3,
    oldestDirtyAgeMs: 192_000,
    queued: 2,
    uploading: 1,
    pendingDeletes: 4,
    uploadedObjects: 340,
    uploadedBytes: 12.5 * 1024 ** 3,
    failedAttempts: 2,
    lastError: 'Put Block: 503 ServerBusy'
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
    for (const s of this.#started.splice(0)) s(f)
    return f
  }

  /** The next flush a client starts. */
  started (): Promise<FakeFlush> {
    return new Promise(resolve => { this.#started.push(resolve) })
  }
}

const STATS: StoreStats = { capacity: 2 * 1024 ** 4, used: 13 * 1024 ** 3, committed: 13 * 1024 ** 3, staged: 0, reserved: 0, objects: 352, containers: 3 }

async function startAdmin (t: Test, opts: { cacheOnly?: boolean } = {}): Promise<{ url: string, port: number, writeback: FakeWriteback }> {
  const writeback = new FakeWriteback()
  const server = createAdminServer({
    metrics: new Metrics(),
    writeback: opts.cacheOnly === true ? undefined : writeback,
    storeStats: () => STATS,
    ready: () => true,
    log: pino({ level: 'silent' }),
    flushIntervalMs: 20
  })
  const port = await server.listen('127.0.0.1', 0)
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${port}`, port, writeback }
}

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as net.AddressInfo).port
  await new Promise(resolve => srv.close(resolve))
  return port
}

t.test('flush --wait on a pipe: plain progress lines, a done line, exit 0', async t => {
  const { url, writeback } = await startAdmin(t)
  const started = writeback.started()
  const cli = runCli(['flush', '--prefix', 'ckpt/step-1/', '--wait', '--admin', url])
  const flush = await started
  const t0 = Date.now()
  await flush.readsMore(4)
  for (let i = 0; i < 2; i++) {
    flush.advance(1, 1024)
    await flush.readsMore(6)
  }
  const sent = flush.reads
  flush.complete()
  const elapsed = Date.now() - t0
  const { code, stdout, stderr } = await cli
  t.equal(stderr, '')
  t.equal(code, 0)
  t.same(writeback.calls, [{ container: 'ckpt', prefix: 'step-1/' }])
  t.notMatch(stdout, '\r', 'no redraws off a terminal')
  const lines = stdout.trimEnd().split('\n')
  t.equal(lines[0], 'flush ckpt/step-1/: 0/3 objects, 0 B/3.00 KiB, 0 B/s, ETA unknown')
  t.match(lines[lines.length - 1], /^flush ckpt\/step-1\/: done, 3 objects \(3\.00 KiB\) clean upstream after \d+s$/)
  for (const line of lines.slice(1, -1)) t.match(line, /^flush ckpt\/step-1\/: \d\/3 objects, /)
  // The server sent a line every 20 ms; the command prints one per 2 s at most.
  t.ok(sent / 2 >= 8, `the server sent many lines (${sent / 2})`)
  // (one line of slack for a command that falls behind on a loaded machine)
  t.ok(lines.length - 1 <= 2 + Math.ceil(elapsed / 2000), `${lines.length - 1} progress lines in ${elapsed} ms`)
})

t.test('flush without --wait: one line, exit 3 while going, 0 when already done', async t => {
  const { url, writeback } = await startAdmin(t)
  writeback.next = { objects: 2, bytes: 5 * 1024 ** 2 }
  const going = await runCli(['flush', '--prefix', 'ckpt', '--admin', url])
  t.equal(going.stderr, '')
  t.equal(going.code, 3)
  t.equal(going.stdout, 'flush ckpt: 0/2 objects, 0 B/5.00 MiB, 0 B/s, ETA unknown\n')

  writeback.next = { objects: 0, bytes: 0 }
  const done = await runCli(['flush', '--admin', url])
  t.equal(done.code, 0)
  t.equal(done.stdout, 'flush everything: done, nothing was dirty\n')
  t.same(writeback.calls, [{ container: 'ckpt', prefix: undefined }, { container: undefined, prefix: undefined }])
})

t.test('flush --wait: a failed flush exits 1 with its error', async t => {
  const { url, writeback } = await startAdmin(t)
  const started = writeback.started()
  const cli = runCli(['flush', '--wait', '--admin', url])
  const flush = await started
  await flush.readsMore(2)
  flush.fail('upstream unavailable after 8 retries')
  const { code, stderr } = await cli
  t.equal(code, 1)
  t.equal(stderr, 'ckptcache: flush of everything failed: upstream unavailable after 8 retries\n')
})

t.test('flush in cache-only mode exits 1 with the reason', async t => {
  const { url } = await startAdmin(t, { cacheOnly: true })
  const { code, stdout, stderr } = await runCli(['flush', '--wait', '--admin', url])
  t.equal(code, 1)
  t.equal(stdout, '')
  t.equal(stderr, `ckptcache: flush of everything refused by ${url}: cache-only mode has no upstream to flush to\n`)
})

t.test('an unreachable admin API exits 1 naming the URL and --admin', async t => {
  const port = await closedPort()
  const [flush, status] = await Promise.all([
    runCli(['flush', '--wait', '--admin', `http://127.0.0.1:${port}`]),
    runCli(['status'], { env: { CKPTCACHE_ADMIN_PORT: String(port) } })
  ])
  for (const r of [flush, status]) {
    t.equal(r.code, 1)
    t.equal(r.stdout, '')
    t.match(r.stderr, `ckptcache: cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED)`)
    t.match(r.stderr, '--admin URL')
  }
})

t.test('usage errors exit 2 naming the flag', async t => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['flush', '--bogus'], {}, /^ckptcache: unknown flag --bogus for ckptcache flush \(flags: --prefix, --wait, --admin\); see ckptcache --help\n$/],
    [['flush', '--prefix'], {}, /^ckptcache: --prefix needs a value\n$/],
    [['flush', '--wait=yes'], {}, /^ckptcache: --wait takes no value\n$/],
    [['flush', '--prefix', 'Bad_Name'], {}, /^ckptcache: invalid --prefix "Bad_Name": invalid container "Bad_Name"/],
    [['status', '--wait'], {}, /^ckptcache: unknown flag --wait for ckptcache status/],
    [['status', '--admin', 'ftp://127.0.0.1:1'], {}, /^ckptcache: invalid --admin "ftp:\/\/127.0.0.1:1": must be an http:\/\/ or https:\/\/ URL\n$/],
    [['status', 'extra'], {}, /^ckptcache: unexpected argument "extra" for ckptcache status/],
    [['status', '--json', '--json'], {}, /^ckptcache: --json given more than once\n$/],
    [['status'], { CKPTCACHE_ADMIN_PORT: 'x' }, /^ckptcache: invalid CKPTCACHE_ADMIN_PORT "x": must be an integer 0-65535\n$/],
    [['status'], { CKPTCACHE_ADMIN_PORT: '0' }, /^ckptcache: CKPTCACHE_ADMIN_PORT is 0 \(any free port\): pass the port the gateway logged with --admin URL\n$/]
  ]
  // Each case in process (the command modules); two through the real CLI for the exit status.
  for (const [[command, ...args], env, message] of cases) {
    const io = captureIo()
    const code = command === 'flush' ? await flushCommand(args, env, io) : await statusCommand(args, env, io)
    t.equal(code, 2, String(message))
    t.equal(io.out(), '')
    t.match(io.err(), message)
  }
  const spawned = await Promise.all([runCli(cases[0][0]), runCli(cases[5][0])])
  spawned.forEach((r, i) => {
    t.equal(r.code, 2)
    t.equal(r.stdout, '')
    t.match(r.stderr, cases[i * 5][2])
  })
})

t.test('status: readable summary; --json the raw answer; the port from the environment', async t => {
  const { url, port, writeback } = await startAdmin(t)
  const human = await runCli(['status'], { env: { CKPTCACHE_ADMIN_PORT: String(port) } })
  t.equal(human.stderr, '')
  t.equal(human.code, 0)
  t.equal(human.stdout, [
    'mode:            writeback',
    'store:           13.0 GiB used of 2.00 TiB, 352 objects in 3 containers',
    'dirty:           12 objects, 1.50 GiB (limit 100 GiB)',
    'oldest dirty:    3m 12s ago',
    'uploads:         2 queued, 1 in progress',
    'pending deletes: 4',
    'uploaded:        340 objects, 12.5 GiB',
    'failed attempts: 2',
    'last error:      Put Block: 503 ServerBusy',
    ''
  ].join('\n'))

  const json = await runCli(['status', '--json', '--admin', url])
  t.equal(json.code, 0)
  t.same(JSON.parse(json.stdout), { mode: 'writeback', store: STATS, writeback: writeback.state })

  const co = await startAdmin(t, { cacheOnly: true })
  const cacheOnly = await runCli(['status', '--admin', co.url.replace('http://', '')])
  t.equal(cacheOnly.code, 0)
  t.equal(cacheOnly.stdout, 'mode:  cache-only (no upstream)\nstore: 13.0 GiB used of 2.00 TiB, 352 objects in 3 containers\n')
})

t.test('flush --wait on a terminal redraws one bar in place', async t => {
  const { url, writeback } = await startAdmin(t)
  writeback.next = { objects: 4, bytes: 4 * 1024 ** 2 }
  const io = captureIo({ isTTY: true, columns: 72 })
  const started = writeback.started()
  const command = flushCommand(['--wait', '--admin', url], {}, io)
  const flush = await started
  await flush.readsMore(4)
  flush.advance(1, 1024 ** 2)
  await flush.readsMore(4)
  flush.complete()
  t.equal(await command, 0)
  t.equal(io.err(), '')
  const out = io.out()
  t.ok(out.startsWith('\r[----'), 'starts with an empty bar')
  t.ok(out.endsWith('\n'), 'the last line ends')
  const frames = out.split('\r').filter(f => f !== '')
  t.ok(frames.length >= 3, `redrawn (${frames.length} frames)`)
  for (const f of frames.slice(0, -1)) {
    const visible = f.replace('\x1b[K', '')
    t.ok(visible.length < 72, `fits the terminal: ${visible}`)
    t.match(visible, /^\[[#-]+\] +\d+% \d\/4 objects, /)
  }
  t.match(frames.find(f => f.includes('1/4 objects')), /^\[#+-+\]  25% 1\/4 objects, 1\.00 MiB\/4\.00 MiB, /)
  t.match(frames[frames.length - 1], /^flush everything: done, 4 objects \(4\.00 MiB\) clean upstream after \d+s\x1b\[K\n$/)
})

t.test('progress rendering', async t => {
  t.equal(formatBytes(0), '0 B')
  t.equal(formatBytes(1023), '1023 B')
  t.equal(formatBytes(1536), '1.50 KiB')
  t.equal(formatBytes(1024 ** 2 - 1), '1.00 MiB', 'rounding carries into the next unit')
  t.equal(formatBytes(412 * 1024 ** 3), '412 GiB')
  t.equal(formatDuration(45), '45s')
  t.equal(formatDuration(192), '3m 12s')
  t.equal(formatDuration(7500), '2h 05m')
  t.equal(formatDuration(3 * 86_400 + 4 * 3600), '3d 4h')
  const p: FlushProgressLine = { objects: 10, bytes: 1000, cleanObjects: 5, cleanBytes: 500, done: false, startedMs: 0, rateBytesPerS: 100, etaS: 5 }
  const wide = progressBar(p, 200)
  t.equal(wide, `[${'#'.repeat(20)}${'-'.repeat(20)}]  50% 5/10 objects, 500 B/1000 B, 100 B/s, ETA 5s`)
  const narrow = progressBar(p, 50)
  t.ok(narrow.length < 50, 'narrow terminal: shorter than the width')
  t.ok(narrow.startsWith(' 50% 5/10 objects'), 'no room for a bar: percent and text')
})
