/**
 * This node's view of the cluster (DESIGN.md, Placement): every interval it
 * probes every peer address its sources name; the answer says which node
 * lives there. A node is up after a successful probe and down once it has
 * gone `probeTimeoutMs` without one. No consensus: each node has its own
 * view, and readers tolerate views that differ for a moment.
 *
 * Events: `up` when a node becomes live, and again when a live node's url or
 * draining flag changes (a view rebuilt on every event follows both); `down`
 * when it stops being live (also when it restarted in between: a new boot id
 * is a `down` then an `up`); `rejoined` when this node itself was away (its
 * timer fired more than `probeTimeoutMs` late: SIGSTOP, a starved event loop),
 * after which everyone is probed at once.
 */
import { performance } from 'node:perf_hooks'
import { CacheError } from '../errors.js'
import { isValidNodeId } from './node-id.js'
import type { Membership, MembershipEvent, NodeInfo, ProbeInfo } from './types.js'
import type { Log } from '../log.js'

/** What membership logs through (a pino or fastify logger fits). */
export type MembershipLog = Log

export type ProbeFn = (url: string, opts: { timeoutMs: number, signal?: AbortSignal }) => Promise<ProbeInfo>

export interface MembershipOptions {
  self: NodeInfo
  /** Peer API base URLs to probe, resolved again every `refreshMs`. */
  sources: { resolve (): Promise<string[]> }
  /** `GET /v1/probe` of a peer; must settle soon after `signal` aborts. */
  probe: ProbeFn
  probeIntervalMs: number
  /** A node with no successful probe for this long is down; one probe waits at most half of it. */
  probeTimeoutMs: number
  /** How often the sources are resolved again; default 5 s. */
  refreshMs?: number
  /** This process's boot id: another process answering with this node's id is then reported. */
  bootId?: string
  /** Probes in flight at most; default 64. */
  maxInFlight?: number
  log: MembershipLog
}

export interface ProbingMembership extends Membership {
  /** Resolves the sources and starts probing. */
  start (): void
  /** Every node this view knows, live or not (for status pages). */
  known (): NodeInfo[]
}

const DEFAULT_REFRESH_MS = 5000
const DEFAULT_MAX_IN_FLIGHT = 64
/** Rounds start every interval ±10%, so the nodes of a cluster do not probe in lockstep. */
const JITTER = 0.1

interface Address {
  url: string
  /** Answered with this node's own id: never probed again while listed. */
  self: boolean
  /** Id of the last answer, and whether the last probe succeeded with it. */
  lastId?: string
  lastOk: boolean
  inFlight?: AbortController
  queued: boolean
}

interface Peer {
  id: string
  url: string
  bootId: string
  draining: boolean
  up: boolean
  lastOkAt: number
  /** First failed probe since the last success; down needs one (a late round is not a failure). */
  failedSince?: number
  info: NodeInfo
}

export function createMembership (opts: MembershipOptions): ProbingMembership {
  const { probeIntervalMs: interval, probeTimeoutMs: timeout, log } = opts
  const refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS
  const maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
  const perProbeMs = Math.max(1, Math.floor(timeout / 2))
  const selfUrl = opts.self.url.toLowerCase()
  let self: NodeInfo = Object.freeze({ ...opts.self, draining: opts.self.draining === true })

  const addrs = new Map<string, Address>()
  const peers = new Map<string, Peer>()
  /** url → id of the node that last answered there. */
  const byUrl = new Map<string, string>()
  const listeners: Array<(ev: MembershipEvent) => void> = []
  const queue: Address[] = []
  const settling = new Set<Promise<void>>()
  let liveView: readonly NodeInfo[] = []
  let started = false
  let closed = false
  let epoch = 0
  let timer: NodeJS.Timeout | undefined
  let dueAt = 0
  let nextRefreshAt = 0
  let refreshing = false
  /** Addresses of the first round still unanswered; undefined once ready. */
  let firstRound: Set<Address> | undefined
  let markReady!: () => void
  const readyPromise = new Promise<void>(resolve => { markReady = resolve })
  const duplicateReported = new Set<string>()

  rebuild()

  function rebuild (): void {
    const up = [...peers.values()].filter(p => p.up).map(p => p.info).sort((a, b) => (a.id < b.id ? -1 : 1))
    liveView = Object.freeze([self, ...up])
  }

  function emit (ev: MembershipEvent): void {
    for (const fn of listeners) {
      try {
        fn(ev)
      } catch (err) {
        log.error({ err, event: ev.type }, 'membership listener failed')
      }
    }
  }

  function snapshot (p: Peer): NodeInfo {
    return Object.freeze({ id: p.id, url: p.url, draining: p.draining })
  }

  /** Live now (or still live with a new url or draining flag): the view changes either way. */
  function setUp (p: Peer): void {
    const was = p.up
    p.up = true
    p.info = snapshot(p)
    rebuild()
    log.info({ node: p.id, url: p.url, draining: p.draining }, was ? 'peer changed' : 'peer up')
    emit({ type: 'up', node: p.info })
  }

  function setDown (p: Peer, why: string): void {
    p.up = false
    rebuild()
    log.warn({ node: p.id, url: p.url, why }, 'peer down')
    emit({ type: 'down', node: p.info })
  }

  /** A down node whose address is gone, or answers for someone else now, is forgotten. */
  function pruneIfGone (p: Peer): void {
    if (p.up) return
    const a = addrs.get(p.url)
    if (a !== undefined && a.lastId === p.id) return
    peers.delete(p.id)
    if (byUrl.get(p.url) === p.id) byUrl.delete(p.url)
  }

  function checkDown (p: Peer, now: number): void {
    if (p.up && p.failedSince !== undefined && now - p.lastOkAt >= timeout) {
      setDown(p, `no successful probe for ${Math.round(now - p.lastOkAt)} ms`)
    }
    pruneIfGone(p)
  }

  function failPeerAt (url: string, now: number): void {
    const id = byUrl.get(url)
    const p = id === undefined ? undefined : peers.get(id)
    if (p === undefined || p.url !== url) return
    p.failedSince ??= now
    checkDown(p, now)
  }

  function onAnswer (a: Address, info: ProbeInfo, now: number): void {
    if (info.id === self.id) {
      if (!a.self) log.debug({ url: a.url }, 'this node answers at this peer address: not probed again')
      if (opts.bootId !== undefined && info.bootId !== opts.bootId && !duplicateReported.has(a.url)) {
        duplicateReported.add(a.url)
        log.error({ url: a.url, nodeId: self.id }, 'another process answers with this node\'s id: every node needs its own id')
      }
      failPeerAt(a.url, now)
      a.self = true
      a.lastId = info.id
      a.lastOk = true
      return
    }
    const previous = byUrl.get(a.url)
    if (previous !== undefined && previous !== info.id) {
      // Someone else lives at this address now: the node that was here is not answering here.
      const old = peers.get(previous)
      if (old !== undefined && old.url === a.url) {
        old.failedSince ??= now
        checkDown(old, now)
      }
    }
    a.lastId = info.id
    a.lastOk = true
    let p = peers.get(info.id)
    if (p === undefined) {
      p = { id: info.id, url: a.url, bootId: info.bootId, draining: info.draining, up: false, lastOkAt: now, info: self }
      p.info = snapshot(p)
      peers.set(p.id, p)
      byUrl.set(a.url, p.id)
      setUp(p)
      return
    }
    let changed = false
    if (p.url !== a.url) {
      const current = addrs.get(p.url)
      if (current === undefined || !current.lastOk || current.lastId !== p.id) {
        // Moved (a restart on a new address): this address is the node's now.
        if (byUrl.get(p.url) === p.id) byUrl.delete(p.url)
        log.info({ node: p.id, from: p.url, to: a.url }, 'peer moved')
        p.url = a.url
        changed = true
      }
    }
    if (p.url === a.url) byUrl.set(a.url, p.id)
    p.lastOkAt = now
    p.failedSince = undefined
    if (p.up && p.bootId !== info.bootId) setDown(p, 'restarted')
    p.bootId = info.bootId
    if (p.draining !== info.draining) {
      p.draining = info.draining
      changed = true
    }
    if (!p.up || changed) setUp(p)
  }

  function onFailure (a: Address, err: unknown, now: number): void {
    a.lastOk = false
    log.debug({ url: a.url, err }, 'probe failed')
    failPeerAt(a.url, now)
  }

  async function runProbe (url: string, ctl: AbortController): Promise<ProbeInfo> {
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const stop = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new CacheError('CC_ERR_PEER_UNAVAILABLE', `probe of ${url} timed out after ${perProbeMs} ms`))
        ctl.abort()
      }, perProbeMs)
      onAbort = () => reject(new CacheError('CC_ERR_PEER_UNAVAILABLE', `probe of ${url} cancelled`))
      ctl.signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      const info = await Promise.race([opts.probe(url, { timeoutMs: perProbeMs, signal: ctl.signal }), stop])
      if (!isProbeInfo(info)) throw new CacheError('CC_ERR_PEER_UNAVAILABLE', `probe of ${url} answered something that is not a probe answer`)
      return info
    } finally {
      clearTimeout(timer)
      ctl.signal.removeEventListener('abort', onAbort as () => void)
    }
  }

  function launch (a: Address): void {
    const ctl = new AbortController()
    const ep = epoch
    a.inFlight = ctl
    const done = runProbe(a.url, ctl).then(
      info => {
        if (closed || ep !== epoch || addrs.get(a.url) !== a) return
        onAnswer(a, info, performance.now())
      },
      err => {
        if (closed || checkStall(performance.now()) || ep !== epoch || addrs.get(a.url) !== a) return
        onFailure(a, err, performance.now())
      }
    ).finally(() => {
      settling.delete(done)
      if (a.inFlight === ctl) a.inFlight = undefined
      if (firstRound?.delete(a) === true) checkReady()
      pump()
    })
    settling.add(done)
  }

  function pump (): void {
    while (!closed && settling.size < maxInFlight && queue.length > 0) {
      const a = queue.shift() as Address
      a.queued = false
      if (addrs.get(a.url) !== a || a.self || a.inFlight !== undefined) {
        if (firstRound?.delete(a) === true) checkReady()
        continue
      }
      launch(a)
    }
  }

  function enqueue (a: Address): void {
    if (a.self || a.queued || a.inFlight !== undefined) return
    a.queued = true
    queue.push(a)
  }

  function round (): void {
    for (const a of addrs.values()) enqueue(a)
    pump()
  }

  function checkReady (): void {
    if (firstRound !== undefined && firstRound.size === 0) {
      firstRound = undefined
      markReady()
    }
  }

  /** True (and handled) when this node was away: the next round was due more than the probe timeout ago. */
  function checkStall (now: number): boolean {
    if (!started || closed || now - dueAt <= timeout) return false
    log.warn({ lateMs: Math.round(now - dueAt) }, 'this node was away longer than the probe timeout: probing everyone again')
    epoch++
    for (const a of addrs.values()) {
      a.inFlight?.abort()
      a.inFlight = undefined
      a.queued = false
    }
    queue.length = 0
    for (const p of peers.values()) p.failedSince = undefined
    schedule(now)
    emit({ type: 'rejoined' })
    round()
    return true
  }

  function schedule (now: number): void {
    clearTimeout(timer)
    const delay = interval * (1 - JITTER + Math.random() * 2 * JITTER)
    dueAt = now + delay
    timer = setTimeout(tick, delay)
  }

  function tick (): void {
    if (closed) return
    const now = performance.now()
    if (checkStall(now)) return
    schedule(now)
    if (now >= nextRefreshAt) void refresh()
    for (const p of peers.values()) checkDown(p, now)
    round()
  }

  async function refresh (): Promise<void> {
    if (refreshing) return
    refreshing = true
    nextRefreshAt = performance.now() + refreshMs
    let urls: string[]
    try {
      urls = await opts.sources.resolve()
    } catch (err) {
      log.warn({ err }, 'resolving the peer addresses failed: probing the last known ones')
      return
    } finally {
      refreshing = false
    }
    if (closed) return
    apply(urls)
  }

  function apply (urls: string[]): void {
    const wanted = new Set(urls.filter(u => u.toLowerCase() !== selfUrl))
    for (const [url, a] of addrs) {
      if (!wanted.has(url)) forget(url, a)
    }
    for (const url of wanted) {
      if (addrs.has(url)) continue
      const a: Address = { url, self: false, lastOk: false, queued: false }
      addrs.set(url, a)
      if (started) enqueue(a)
    }
    pump()
  }

  function forget (url: string, a: Address): void {
    addrs.delete(url)
    a.inFlight?.abort()
    if (firstRound?.delete(a) === true) checkReady()
    const id = byUrl.get(url)
    byUrl.delete(url)
    const p = id === undefined ? undefined : peers.get(id)
    if (p === undefined || p.url !== url) return
    const elsewhere = [...addrs.values()].find(o => o.lastOk && o.lastId === p.id)
    if (elsewhere !== undefined) {
      p.url = elsewhere.url
      byUrl.set(elsewhere.url, p.id)
      if (p.up) setUp(p)
      else p.info = snapshot(p)
      return
    }
    if (p.up) setDown(p, 'its address is no longer listed')
    peers.delete(p.id)
  }

  return {
    get self () { return self },
    /** A frozen array, the same one until the view changes. */
    live: () => liveView as NodeInfo[],
    isLive: (id) => id === self.id || peers.get(id)?.up === true,
    node: (id) => (id === self.id ? self : peers.get(id)?.info),
    known: () => [self, ...[...peers.values()].map(p => p.info)],
    onChange (fn) { listeners.push(fn) },
    ready: () => readyPromise,
    setDraining (draining) {
      if (self.draining === draining) return
      self = Object.freeze({ ...self, draining })
      rebuild()
    },
    start () {
      if (started || closed) return
      started = true
      schedule(performance.now())
      void (async () => {
        await refresh()
        if (closed) return
        // Probes of these addresses may already be in flight (the refresh starts them).
        firstRound = new Set(addrs.values())
        round()
        checkReady()
      })()
    },
    async close () {
      if (closed) return
      closed = true
      clearTimeout(timer)
      queue.length = 0
      for (const a of addrs.values()) a.inFlight?.abort()
      await Promise.allSettled([...settling])
      listeners.length = 0
      markReady()
    }
  }
}

function isProbeInfo (v: unknown): v is ProbeInfo {
  const o = v as ProbeInfo
  return typeof o === 'object' && o !== null && typeof o.id === 'string' && isValidNodeId(o.id) &&
    typeof o.bootId === 'string' && o.bootId.length <= 256 && typeof o.draining === 'boolean'
}
