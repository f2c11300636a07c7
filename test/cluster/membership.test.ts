/**
 * Membership against real peers: `node:http` servers on 127.0.0.1 answering
 * `GET /v1/probe`, probed over real sockets. Discovery, down and up again,
 * moves, draining, the peers file and DNS sources, a stalled event loop,
 * bounded probing and close. Intervals are tens of milliseconds.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createMembership, type MembershipLog, type MembershipOptions, type ProbeFn, type ProbingMembership } from '../../src/cluster/membership.js'
import { createPeerSources, parsePeersFile, peerUrl } from '../../src/cluster/peer-sources.js'
import type { MembershipEvent, ProbeInfo } from '../../src/cluster/types.js'
import { CacheError, isCacheError } from '../../src/errors.js'

// Wide enough that a loaded 2-core machine (event-loop lag of tens of ms) does not drop a probe.
const INTERVAL = 60
const TIMEOUT = 900
const REFRESH = 90

const quiet: MembershipLog = { debug () {}, info () {}, warn () {}, error () {} }

/** The test's stand-in for the signed peer client: a plain fetch of the probe endpoint. */
const fetchProbe: ProbeFn = async (url, { signal }) => {
  const res = await fetch(`${url}/v1/probe`, signal === undefined ? {} : { signal })
  if (res.status !== 200) throw new Error(`probe answered ${res.status}`)
  return await res.json() as ProbeInfo
}

interface FakePeer {
  id: string
  bootId: string
  draining: boolean
  /** Requests never answered while set. */
  hang: boolean
  /** Answer this instead of the probe info. */
  body?: unknown
  delayMs: number
  requests: number
  inFlight: number
  aborted: number
  port: number
  url: string
  addr: string
  close (): Promise<void>
}

async function startPeer (t: Test, id: string, opts: { port?: number, shared?: { inFlight: number, max: number } } = {}): Promise<FakePeer> {
  let server: Server | undefined
  const peer: FakePeer = {
    id,
    bootId: randomUUID(),
    draining: false,
    hang: false,
    delayMs: 0,
    requests: 0,
    inFlight: 0,
    aborted: 0,
    port: 0,
    url: '',
    addr: '',
    async close () {
      if (server?.listening !== true) return
      const s = server
      s.closeAllConnections()
      await new Promise<void>(resolve => s.close(() => resolve()))
    }
  }
  server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/v1/probe') {
      res.statusCode = 404
      res.end()
      return
    }
    peer.requests++
    peer.inFlight++
    if (opts.shared !== undefined) opts.shared.max = Math.max(opts.shared.max, ++opts.shared.inFlight)
    res.on('close', () => {
      peer.inFlight--
      if (opts.shared !== undefined) opts.shared.inFlight--
      if (!res.writableFinished) peer.aborted++
    })
    if (peer.hang) return
    const send = (): void => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(peer.body ?? { id: peer.id, bootId: peer.bootId, draining: peer.draining }))
    }
    if (peer.delayMs > 0) setTimeout(send, peer.delayMs)
    else send()
  })
  const s = server
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  peer.port = (s.address() as { port: number }).port
  peer.addr = `127.0.0.1:${peer.port}`
  peer.url = `http://${peer.addr}`
  t.teardown(() => peer.close())
  return peer
}

interface Watch {
  events: MembershipEvent[]
  /** The first event from index `from` on (default: the next one) that matches. */
  waitFor (what: string, match: (ev: MembershipEvent) => boolean, opts?: { from?: number, ms?: number }): Promise<MembershipEvent>
}

function watch (m: ProbingMembership): Watch {
  const events: MembershipEvent[] = []
  const waiters = new Set<{ from: number, match: (ev: MembershipEvent) => boolean, resolve: (ev: MembershipEvent) => void }>()
  m.onChange(ev => {
    events.push(ev)
    for (const w of waiters) {
      if (events.length - 1 >= w.from && w.match(ev)) {
        waiters.delete(w)
        w.resolve(ev)
      }
    }
  })
  return {
    events,
    waitFor (what, match, opts = {}) {
      const from = opts.from ?? events.length
      const hit = events.slice(from).find(match)
      if (hit !== undefined) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const w = { from, match, resolve: (ev: MembershipEvent) => { clearTimeout(timer); resolve(ev) } }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new Error(`no ${what} within ${opts.ms ?? 6000} ms; events: ${JSON.stringify(events)}`))
        }, opts.ms ?? 6000)
        waiters.add(w)
      })
    }
  }
}

const isUp = (id: string) => (ev: MembershipEvent) => ev.type === 'up' && ev.node.id === id
const isDown = (id: string) => (ev: MembershipEvent) => ev.type === 'down' && ev.node.id === id

async function until (what: string, cond: () => boolean, ms = 6000): Promise<void> {
  const deadline = performance.now() + ms
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

function member (t: Test, opts: Partial<MembershipOptions> & Pick<MembershipOptions, 'sources'>): ProbingMembership {
  const m = createMembership({
    self: { id: 'self', url: 'http://127.0.0.1:1' },
    probe: fetchProbe,
    probeIntervalMs: INTERVAL,
    probeTimeoutMs: TIMEOUT,
    refreshMs: REFRESH,
    log: quiet,
    ...opts
  })
  t.teardown(() => m.close())
  return m
}

const ids = (m: ProbingMembership): string[] => m.live().map(n => n.id)

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-membership-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function failure (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

// The first fetch of a process loads and compiles its client (longer than a probe timeout here).
t.before(async () => {
  const server = createServer((_req, res) => { res.end('{}') })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  await (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)).text()
  server.closeAllConnections()
  await new Promise<void>(resolve => server.close(() => resolve()))
})

t.test('peer sources: static entries validated, normalized, deduplicated and sorted', async t => {
  const s = createPeerSources({ peers: ['10.0.0.2:7000', 'Node-B.example:7000', '[FD00:0::1]:7000', '10.0.0.2:7000'] })
  t.same(await s.resolve(), ['http://10.0.0.2:7000', 'http://[fd00::1]:7000', 'http://node-b.example:7000'])
  t.equal(peerUrl('[::ffff:127.0.0.1]:80'), 'http://[::ffff:7f00:1]:80')
  for (const bad of ['10.0.0.2', '10.0.0.2:0', '10.0.0.2:65536', 'fd00::1:7000', 'http://10.0.0.2:7000', 'a b:1', '[10.0.0.2]:7000', ':7000']) {
    const err = failure(() => createPeerSources({ peers: [bad] }))
    t.ok(isCacheError(err, 'CC_ERR_INVALID_INPUT'), `${bad} refused`)
    t.match((err as Error).message, /^invalid peer: ".*"/, (err as Error).message)
  }
  const dnsErr = failure(() => createPeerSources({ peers: [], peersDns: '10.0.0.1:7000' }))
  t.ok(isCacheError(dnsErr, 'CC_ERR_INVALID_INPUT'))
  t.match((dnsErr as Error).message, /invalid peers DNS "10.0.0.1:7000": .*not a DNS name/)
  t.throws(() => createPeerSources({ peers: [], peersDns: 'svc.local' }), /must be NAME:PORT/)
})

t.test('peer sources: the file is re-read every time, comments ignored; a bad or missing file keeps the last good list and is reported once', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'peers')
  const errors: CacheError[] = []
  const s = createPeerSources({ peers: ['127.0.0.9:1'], peersFile: file, onError: err => { errors.push(err) } })
  t.same(await s.resolve(), ['http://127.0.0.9:1'], 'a missing file is no entries')
  t.equal(errors.length, 1)
  t.match(errors[0]?.message, /cannot read the peers file .*ENOENT/)
  t.same(await s.resolve(), ['http://127.0.0.9:1'])
  t.equal(errors.length, 1, 'the same failure is reported once')
  await writeFile(file, '# the training nodes\n\n127.0.0.3:7000\n  127.0.0.2:7000   # rack 2\r\n127.0.0.9:1\n')
  t.same(await s.resolve(), ['http://127.0.0.2:7000', 'http://127.0.0.3:7000', 'http://127.0.0.9:1'])
  await writeFile(file, '127.0.0.3:7000\n127.0.0.4\n')
  t.same(await s.resolve(), ['http://127.0.0.2:7000', 'http://127.0.0.3:7000', 'http://127.0.0.9:1'], 'a bad line keeps the last good list')
  t.equal(errors.length, 2)
  t.match(errors[1]?.message, /peers file .*peers line 2: "127.0.0.4" is not host:port/)
  await s.resolve()
  t.equal(errors.length, 2, 'reported once')
  await rm(file)
  t.same(await s.resolve(), ['http://127.0.0.2:7000', 'http://127.0.0.3:7000', 'http://127.0.0.9:1'], 'a removed file keeps the last good list')
  t.equal(errors.length, 3)
  await writeFile(file, '127.0.0.5:7000\n')
  t.same(await s.resolve(), ['http://127.0.0.5:7000', 'http://127.0.0.9:1'])
  await rm(file)
  await s.resolve()
  t.equal(errors.length, 4, 'a failure after a good read is reported again')
  t.throws(() => parsePeersFile('127.0.0.1:1\n\n# x\n[::1]:99999\n', 'f'), /^peers file f line 4: /)
})

t.test('peer sources: DNS names are resolved every time; a failure keeps the last good list', async t => {
  const answers: Array<Array<{ address: string, family: number }> | Error> = [
    [{ address: '10.1.0.2', family: 4 }, { address: 'fd00::2', family: 6 }, { address: 'fe80::1%eth0', family: 6 }],
    new Error('getaddrinfo EAI_AGAIN ckpt.svc'),
    [{ address: '10.1.0.3', family: 4 }]
  ]
  const asked: string[] = []
  const errors: CacheError[] = []
  const s = createPeerSources({
    peers: [],
    peersDns: 'ckpt.svc:7000',
    onError: err => { errors.push(err) },
    lookup: async (name) => {
      asked.push(name)
      const a = answers.shift()
      if (a instanceof Error || a === undefined) throw a ?? new Error('no more answers')
      return a
    }
  })
  t.same(await s.resolve(), ['http://10.1.0.2:7000', 'http://[fd00::2]:7000'])
  t.same(await s.resolve(), ['http://10.1.0.2:7000', 'http://[fd00::2]:7000'], 'kept')
  t.equal(errors.length, 1)
  t.ok(isCacheError(errors[0], 'CC_ERR_PEER_UNAVAILABLE'))
  t.match(errors[0]?.message, /cannot resolve the peers DNS name ckpt.svc: getaddrinfo EAI_AGAIN/)
  t.same(await s.resolve(), ['http://10.1.0.3:7000'])
  t.same(asked, ['ckpt.svc', 'ckpt.svc', 'ckpt.svc'])
})

t.test('discovery: every listed peer is probed and named by its answer; its own address is skipped', async t => {
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  const me = await startPeer(t, 'self')
  const m = member(t, { sources: createPeerSources({ peers: [c.addr, me.addr, b.addr] }) })
  const w = watch(m)
  t.same(ids(m), ['self'], 'only this node before the first round')
  m.start()
  await m.ready()
  t.same(ids(m), ['self', 'node-b', 'node-c'], 'the first round is answered when ready resolves')
  t.same(w.events.map(e => e.type === 'up' ? e.node.id : e.type).sort(), ['node-b', 'node-c'])
  t.same(m.node('node-b'), { id: 'node-b', url: b.url, draining: false })
  t.same(m.node('self'), { id: 'self', url: 'http://127.0.0.1:1', draining: false })
  t.equal(m.node('node-x'), undefined)
  t.ok(m.isLive('node-c') && m.isLive('self') && !m.isLive('node-x'))
  t.ok(Object.isFrozen(m.live()), 'the view is immutable')
  const before = b.requests
  await until('five more probes of node-b', () => b.requests >= before + 5)
  t.equal(me.requests, 1, 'the address answering with our own id was probed once')
  t.equal(w.events.length, 2, 'no events while nothing changes')
})

t.test('a closed peer goes down within the probe timeout plus an interval; restarted on the same port it is up again', async t => {
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  const m = member(t, { sources: createPeerSources({ peers: [b.addr, c.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  const closedAt = performance.now()
  await c.close()
  const ev = await w.waitFor('node-c down', isDown('node-c'))
  const took = performance.now() - closedAt
  t.same(ev, { type: 'down', node: { id: 'node-c', url: c.url, draining: false } })
  t.ok(took >= TIMEOUT - INTERVAL * 1.1 - 5, `not before its last answer is ${TIMEOUT} ms old (${took.toFixed(0)} ms)`)
  t.ok(took <= TIMEOUT + INTERVAL * 1.1 + 250, `down ${took.toFixed(0)} ms after it closed (bound ${TIMEOUT} + ${INTERVAL} ms, 250 ms slack)`)
  t.same(ids(m), ['self', 'node-b'])
  t.notOk(m.isLive('node-c'))
  t.same(m.node('node-c'), { id: 'node-c', url: c.url, draining: false }, 'a down node is still known while its address is listed')
  t.same(m.known().map(n => n.id).sort(), ['node-b', 'node-c', 'self'])
  const from = w.events.length
  const again = await startPeer(t, 'node-c', { port: c.port })
  await w.waitFor('node-c up', isUp('node-c'), { from })
  t.same(ids(m), ['self', 'node-b', 'node-c'])
  t.equal(m.node('node-c')?.url, again.url)
  t.notOk(w.events.some(isDown('node-b')), 'the other peer never went down')
})

t.test('a peer that restarts between two probes is down then up (a new boot id)', async t => {
  const b = await startPeer(t, 'node-b')
  const m = member(t, { sources: createPeerSources({ peers: [b.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  const from = w.events.length
  b.bootId = randomUUID()
  await w.waitFor('node-b up again', isUp('node-b'), { from })
  t.same(w.events.slice(from).map(e => e.type), ['down', 'up'])
  t.ok(m.isLive('node-b'))
})

t.test('restarted on a new port (the peers file follows): down at the old address, up at the new one', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'peers')
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  await writeFile(file, `${b.addr}\n${c.addr}\n`)
  const m = member(t, { sources: createPeerSources({ peers: [], peersFile: file }) })
  const w = watch(m)
  m.start()
  await m.ready()
  t.same(ids(m), ['self', 'node-b', 'node-c'])
  await b.close()
  const moved = await startPeer(t, 'node-b')
  await writeFile(file, `# node-b moved\n${c.addr}\n${moved.addr}\n`)
  const down = await w.waitFor('node-b down', isDown('node-b'))
  t.equal(down.type === 'down' && down.node.url, b.url, 'down at the old address')
  const up = await w.waitFor('node-b up', isUp('node-b'))
  t.equal(up.type === 'up' && up.node.url, moved.url, 'up at the new address')
  t.equal(m.node('node-b')?.url, moved.url)
  t.same(ids(m), ['self', 'node-b', 'node-c'])
})

t.test('the same id answering at a second address keeps its url until the first stops answering', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'peers')
  const b1 = await startPeer(t, 'node-b')
  const b2 = await startPeer(t, 'node-b')
  b2.bootId = b1.bootId
  await writeFile(file, `${b1.addr}\n`)
  const m = member(t, { sources: createPeerSources({ peers: [], peersFile: file }) })
  const w = watch(m)
  m.start()
  await m.ready()
  await writeFile(file, `${b1.addr}\n${b2.addr}\n`)
  await until('the second address probed a few times', () => b2.requests >= 3)
  t.equal(m.node('node-b')?.url, b1.url, 'both answer: the url stays')
  t.equal(w.events.length, 1, 'no events')
  await b1.close()
  const ev = await w.waitFor('node-b at its second address', isUp('node-b'), { from: 1 })
  t.equal(ev.type === 'up' && ev.node.url, b2.url)
  t.notOk(w.events.some(isDown('node-b')), 'it never went down')
})

t.test('another node at a known address: the new one is up, the old one goes down', async t => {
  const x = await startPeer(t, 'node-e')
  const m = member(t, { sources: createPeerSources({ peers: [x.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  t.same(ids(m), ['self', 'node-e'])
  x.id = 'node-f'
  await w.waitFor('node-f up', isUp('node-f'))
  await w.waitFor('node-e down', isDown('node-e'))
  t.same(ids(m), ['self', 'node-f'])
  t.equal(m.node('node-e'), undefined, 'the old node is forgotten: its address is someone else\'s')
})

t.test('draining follows the probe answer; setDraining changes this node', async t => {
  const b = await startPeer(t, 'node-b')
  const m = member(t, { sources: createPeerSources({ peers: [b.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  b.draining = true
  const ev = await w.waitFor('node-b draining', e => isUp('node-b')(e) && e.type === 'up' && e.node.draining === true)
  t.same(ev, { type: 'up', node: { id: 'node-b', url: b.url, draining: true } })
  t.equal(m.live().find(n => n.id === 'node-b')?.draining, true, 'still live, draining')
  b.draining = false
  await w.waitFor('node-b not draining', e => e.type === 'up' && e.node.id === 'node-b' && e.node.draining === false)
  t.equal(m.node('node-b')?.draining, false)
  t.equal(m.self.draining, false)
  m.setDraining(true)
  t.equal(m.self.draining, true)
  t.equal(m.live()[0]?.draining, true)
  t.equal(m.node('self')?.draining, true)
  m.setDraining(false)
  t.equal(m.self.draining, false)
})

t.test('the peers file is re-read: new peers are found, removed ones forgotten (down if they were up)', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'peers')
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  await writeFile(file, `${b.addr}\n`)
  const errors: CacheError[] = []
  const m = member(t, { sources: createPeerSources({ peers: [], peersFile: file, onError: err => { errors.push(err) } }) })
  const w = watch(m)
  m.start()
  await m.ready()
  t.same(ids(m), ['self', 'node-b'])
  await writeFile(file, `${b.addr}\n${c.addr}\n`)
  await w.waitFor('node-c found', isUp('node-c'))
  t.same(ids(m), ['self', 'node-b', 'node-c'])
  await writeFile(file, `${c.addr}\n`)
  await until('node-b forgotten', () => m.node('node-b') === undefined)
  // Down when forgotten — or already before, when its probes ran late on a loaded machine.
  t.same(w.events.filter(isDown('node-b')).at(-1), { type: 'down', node: { id: 'node-b', url: b.url, draining: false } }, 'node-b went down')
  const before = b.requests
  await rm(file)
  await until('the missing file reported', () => errors.length > 0)
  const probed = c.requests
  await until('node-c probed after the file went away, over more than one refresh', () => c.requests >= probed + 4)
  t.ok(errors.length === 1 && /ENOENT/.test(errors[0]?.message ?? ''), 'the missing file is reported once')
  t.same(ids(m), ['self', 'node-c'], 'the last good list is kept')
  t.equal(b.requests, before, 'the removed address is not probed any more')
})

t.test('DNS source: localhost:<port> is probed at the addresses it resolves to', async t => {
  const b = await startPeer(t, 'node-b')
  const m = member(t, { sources: createPeerSources({ peers: [], peersDns: `localhost:${b.port}` }) })
  m.start()
  await m.ready()
  t.same(ids(m), ['self', 'node-b'])
  t.equal(m.node('node-b')?.url, `http://127.0.0.1:${b.port}`)
})

t.test('a stalled event loop: rejoined once, everyone probed again, nobody marked down', async t => {
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  c.delayMs = 10
  const m = member(t, { sources: createPeerSources({ peers: [b.addr, c.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  const from = w.events.length
  const stop = performance.now() + TIMEOUT * 2
  while (performance.now() < stop) {
    // This process is away (as under SIGSTOP): no timer fires, no socket is read.
  }
  const before = { b: b.requests, c: c.requests }
  await w.waitFor('rejoined', e => e.type === 'rejoined', { from })
  await until('both peers probed after the stall', () => b.requests > before.b + 2 && c.requests > before.c + 2)
  t.same(w.events.slice(from), [{ type: 'rejoined' }], 'one rejoined, no down or up')
  t.same(ids(m), ['self', 'node-b', 'node-c'])
})

t.test('a peer that does not answer is down after the timeout even though its probes hang', async t => {
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  const m = member(t, { sources: createPeerSources({ peers: [b.addr, c.addr] }) })
  const w = watch(m)
  m.start()
  await m.ready()
  c.hang = true
  await w.waitFor('node-c down', isDown('node-c'))
  t.ok(c.aborted >= 1, 'the hanging probes were cut off at the probe timeout')
  t.ok(c.inFlight <= 1, 'one probe in flight at a time per address')
  t.ok(m.isLive('node-b'))
})

t.test('answers that are not probe answers do not make a node live', async t => {
  const b = await startPeer(t, 'node-b')
  b.body = { id: '../bad id', bootId: 'x', draining: false }
  const c = await startPeer(t, 'node-c')
  c.body = { id: 'node-c' }
  const m = member(t, { sources: createPeerSources({ peers: [b.addr, c.addr] }) })
  m.start()
  await m.ready()
  t.same(ids(m), ['self'])
  b.body = undefined
  const w = watch(m)
  await w.waitFor('node-b up', isUp('node-b'), { from: 0 })
})

t.test('probes are bounded in flight; ready waits for the slow first round', async t => {
  const shared = { inFlight: 0, max: 0 }
  const peers = await Promise.all(Array.from({ length: 6 }, (_, i) => startPeer(t, `node-${i}`, { shared })))
  for (const p of peers) p.delayMs = 30
  const m = member(t, { sources: createPeerSources({ peers: peers.map(p => p.addr) }), maxInFlight: 2 })
  const started = performance.now()
  m.start()
  await m.ready()
  t.equal(ids(m).length, 7, 'every peer answered in the first round')
  t.ok(performance.now() - started >= 3 * 30 - 5, 'six 30 ms probes two at a time take at least three times 30 ms')
  await until('a few more rounds', () => peers.every(p => p.requests >= 3))
  t.equal(shared.max, 2, 'never more than two probes in flight')
})

t.test('ready resolves with no peers, and when the sources fail', async t => {
  const m = member(t, { sources: createPeerSources({ peers: [] }) })
  m.start()
  await m.ready()
  t.same(ids(m), ['self'])
  let calls = 0
  const failing = member(t, { sources: { resolve: async () => { calls++; throw new Error('no peers today') } } })
  failing.start()
  await failing.ready()
  t.same(ids(failing), ['self'])
  await until('the sources asked again', () => calls >= 2)
})

t.test('close aborts probes in flight and ends the events', async t => {
  const b = await startPeer(t, 'node-b')
  const c = await startPeer(t, 'node-c')
  const m = member(t, { sources: createPeerSources({ peers: [b.addr, c.addr] }), probeTimeoutMs: 5000 })
  const w = watch(m)
  m.start()
  await m.ready()
  c.hang = true
  await until('a hanging probe of node-c', () => c.inFlight === 1)
  const closing = performance.now()
  await m.close()
  t.ok(performance.now() - closing < 1000, 'close does not wait for the probe timeout')
  await until('the hanging request aborted', () => c.aborted === 1 && c.inFlight === 0)
  const count = b.requests
  const events = w.events.length
  await new Promise(resolve => setTimeout(resolve, INTERVAL * 4))
  t.equal(b.requests, count, 'no probes after close')
  t.equal(w.events.length, events, 'no events after close')
  await m.ready()
})
