/**
 * Keeping copies where they belong when membership changes (DESIGN.md, Placement):
 * - refill: a node down past the grace period lost its copies; for each object it held, the
 *   first live holder of the object's order copies it to the next nodes of the order until it has
 *   `replicas` holders again, at a bounded byte rate so training traffic keeps priority;
 * - return: a node that restarts or was away (stopped, partitioned) asks each object's home
 *   whether its copy is current (batched) and drops stale ones; its other copies serve again at once;
 * - a node coming up is told where the objects it is home for live, when it holds no copy;
 * - drain: before maintenance, this node's dirty data and sole copies are copied to peers and it
 *   stops taking copies or uploads.
 */
import type { ObjectMeta } from '../core/types.js'
import { isCacheError } from '../errors.js'
import type { LocalStore } from '../store/local-store.js'
import type { ClusterLog, ClusterObjects } from './cluster-objects.js'
import { errText } from './cluster-objects.js'
import type { ClusterMetrics } from './cluster-metrics.js'
import type { Placement } from './placement.js'
import type { CheckItem, DrainHandle, DrainProgress, Membership, NodeInfo } from './types.js'
import { Timers } from '../timers.js'

export interface RepairOptions {
  store: LocalStore
  membership: Membership
  placement: Placement
  objects: ClusterObjects
  /** Whether clean copies are also in the upstream (cloud modes): then only sole copies matter to a drain. */
  tiered: boolean
  refillGraceMs: number
  /** Bytes per second the repair copies at most. */
  refillRate: number
  metrics: ClusterMetrics
  log: ClusterLog
}

const CHECK_BATCH = 500
const CONCURRENCY = 2

type Job = { meta: ObjectMeta, reason: 'refill' | 'drain' }

export class Repair {
  readonly #o: RepairOptions
  /** Objects waiting for a copy, by `container/name` (one job per name). */
  readonly #queue = new Map<string, Job>()
  readonly #timers = new Timers()
  #active = 0
  #nextFreeMs = 0
  #closed = false
  #drain: DrainRun | undefined
  copiedObjects = 0
  copiedBytes = 0

  constructor (opts: RepairOptions) {
    this.#o = opts
  }

  start (): void {
    this.#o.membership.onChange((ev) => {
      if (this.#closed) return
      if (ev.type === 'down') this.#timers.later(() => { if (!this.#o.placement.isLive(ev.node.id)) this.refillScan() }, this.#o.refillGraceMs)
      else if (ev.type === 'up') this.#announce(ev.node)
      else this.reconcile().catch((err) => this.#o.log.warn({ err: errText(err) }, 'cluster: reconcile failed'))
    })
  }

  get pending (): number {
    return this.#queue.size
  }

  /** A refill scan after the grace period (at start: nodes that are slow to come up are not lost). */
  scanLater (): void {
    this.#timers.later(() => { this.refillScan() }, this.#o.refillGraceMs)
  }

  /** A version with fewer holders than configured (a failed background copy). */
  underReplicated (meta: ObjectMeta): void {
    this.#enqueue({ meta, reason: 'refill' })
  }

  /** Every local object that lost holders and whose first live holder this node is. */
  refillScan (): void {
    const { placement } = this.#o
    let found = 0
    for (const meta of this.#o.store.objects()) {
      const live = liveHolders(meta, placement)
      if (live.length >= placement.replicas) continue
      if (placement.owner(meta.container, meta.name, live) !== placement.selfId) continue
      this.#enqueue({ meta, reason: 'refill' })
      found++
    }
    if (found > 0) this.#o.log.info({ objects: found }, 'cluster: re-replicating objects that lost a copy')
  }

  /**
   * This node may hold stale copies (it restarted, or was away): each object's home says which
   * are current — for an object this node is the home of, the next node of the order, which was
   * its home while this node was away. Stale copies are dropped; the rest serve as they are.
   * While it runs, the peer handler answers that it holds nothing (see `reconciling`).
   */
  async reconcile (): Promise<void> {
    this.reconciling = true
    try {
      await this.#reconcile()
    } finally {
      this.reconciling = false
    }
  }

  /** True while a reconcile runs: this node's copies may be stale, so peers are not served from them. */
  reconciling = false

  async #reconcile (): Promise<void> {
    const { placement, store } = this.#o
    const byHome = new Map<string, CheckItem[]>()
    const self = new Set([placement.selfId])
    for (const meta of store.objects()) {
      const [home] = placement.targets(meta.container, meta.name, self, 1)
      if (home === undefined) continue
      let items = byHome.get(home.id)
      if (items === undefined) byHome.set(home.id, items = [])
      items.push({ container: meta.container, name: meta.name, etag: meta.etag, lastModifiedMs: meta.lastModifiedMs })
    }
    let dropped = 0
    let kept = 0
    for (const [id, items] of byHome) {
      const node = placement.node(id)
      if (node === undefined) continue
      for (let i = 0; i < items.length && !this.#closed; i += CHECK_BATCH) {
        const batch = items.slice(i, i + CHECK_BATCH)
        let verdicts
        try {
          verdicts = (await this.#o.objects.rpc(node, 'check', { items: batch })).verdicts
        } catch (err) {
          // That home is unreachable now: its objects' copies stay (a later return reconciles them).
          this.#o.log.warn({ err: errText(err), node: id }, 'cluster: a home did not answer a reconcile check')
          break
        }
        for (let j = 0; j < batch.length; j++) {
          const item = batch[j] as CheckItem
          if (verdicts[j] === 'stale') {
            if (await store.dropCopy(item.container, item.name, item.etag) !== undefined) dropped++
          } else kept++
        }
      }
    }
    this.#o.log.info({ kept, dropped }, 'cluster: reconciled local copies with their homes')
  }

  /** Starts (or joins) a drain of this node. */
  drain (): DrainHandle {
    if (this.#drain !== undefined && !this.#drain.progress().done) return this.#drain
    this.#o.membership.setDraining(true)
    const run = new DrainRun()
    this.#drain = run
    for (const meta of this.#o.store.objects()) {
      if (this.#needsHandOff(meta)) {
        run.add(meta)
        this.#enqueue({ meta, reason: 'drain' })
      }
    }
    run.check()
    return run
  }

  get draining (): boolean {
    return this.#o.membership.self.draining === true
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#timers.close()
    this.#queue.clear()
  }

  // ---- internals ------------------------------------------------------------

  /** How many copies on other nodes `meta` needs before this node may go. */
  #othersNeeded (meta: ObjectMeta): number {
    // A clean object of a cloud mode is in the upstream: one copy elsewhere keeps the cache warm.
    if (this.#o.tiered && meta.dirty !== true) return 1
    return this.#o.placement.replicas
  }

  #needsHandOff (meta: ObjectMeta): boolean {
    const others = liveHolders(meta, this.#o.placement).filter((id) => id !== this.#o.placement.selfId)
    if (this.#o.tiered && meta.dirty !== true && others.length > 0) return false
    return others.length < this.#othersNeeded(meta)
  }

  #enqueue (job: Job): void {
    if (this.#closed) return
    const key = job.meta.container + '/' + job.meta.name
    const queued = this.#queue.get(key)
    if (queued?.reason === 'drain') return
    this.#queue.set(key, job)
    this.#pump()
  }

  #pump (): void {
    while (!this.#closed && this.#active < CONCURRENCY && this.#queue.size > 0) {
      const [key, job] = this.#queue.entries().next().value as [string, Job]
      this.#queue.delete(key)
      this.#active++
      void this.#run(job).finally(() => {
        this.#active--
        this.#pump()
      })
    }
  }

  async #run (job: Job): Promise<void> {
    const { store, placement, objects } = this.#o
    const meta = store.head(job.meta.container, job.meta.name)
    // Replaced or deleted meanwhile: the new version was placed by its own write.
    if (meta === undefined || meta.etag !== job.meta.etag) {
      this.#drain?.settle(job.meta, true)
      return
    }
    await this.#paced(meta.size)
    const live = liveHolders(meta, placement)
    try {
      if (job.reason === 'drain') await objects.handOff(meta, live, this.#othersNeeded(meta))
      else await objects.place(meta, new Set(live))
      this.copiedObjects++
      this.copiedBytes += meta.size
      this.#o.metrics.repairs.inc({ reason: job.reason })
      this.#o.metrics.repairBytes.inc({ reason: job.reason }, meta.size)
      this.#drain?.settle(meta, true)
    } catch (err) {
      this.#o.log.warn({ err: errText(err), container: meta.container, name: meta.name, reason: job.reason }, 'cluster: a repair copy failed; retrying later')
      this.#drain?.settle(meta, false)
      if (!isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND')) this.#timers.later(() => { this.#enqueue(job) }, 1000)
    }
  }

  /** Waits until `bytes` more fit the repair's byte rate. */
  async #paced (bytes: number): Promise<void> {
    const now = Date.now()
    const start = Math.max(now, this.#nextFreeMs)
    this.#nextFreeMs = start + (bytes / Math.max(1, this.#o.refillRate)) * 1000
    if (start > now) await new Promise<void>((resolve) => { this.#timers.later(resolve, start - now) })
  }

  /** A node came up: where the objects it is home for live, when it holds no copy of them (one request per object). */
  #announce (node: NodeInfo): void {
    const { placement, store, objects } = this.#o
    const metas: ObjectMeta[] = []
    for (const meta of store.objects()) {
      if (meta.holders === undefined || meta.holders.includes(node.id)) continue
      if (placement.home(meta.container, meta.name)?.id !== node.id) continue
      if (placement.owner(meta.container, meta.name, liveHolders(meta, placement)) !== placement.selfId) continue
      metas.push(meta)
    }
    void (async () => {
      for (const meta of metas) {
        if (this.#closed) return
        await objects.rpc(node, 'locate', { container: meta.container, name: meta.name, etag: meta.etag, lastModifiedMs: meta.lastModifiedMs, holders: meta.holders ?? [] }).catch(() => {})
      }
    })()
  }
}

/** The holders of a version that are live in this node's view (this node when it holds it). */
function liveHolders (meta: ObjectMeta, placement: Placement): string[] {
  const ids = meta.holders ?? [placement.selfId]
  return ids.filter((id) => placement.isLive(id))
}

/** One drain's progress. */
class DrainRun implements DrainHandle {
  readonly #items = new Map<string, number>()
  readonly #failing = new Set<string>()
  readonly #started = Date.now()
  #objects = 0
  #bytes = 0
  #handedObjects = 0
  #handedBytes = 0
  #resolve!: () => void
  readonly done: Promise<void>

  constructor () {
    this.done = new Promise((resolve) => { this.#resolve = resolve })
  }

  add (meta: ObjectMeta): void {
    this.#items.set(meta.container + '/' + meta.name, meta.size)
    this.#objects++
    this.#bytes += meta.size
  }

  settle (meta: ObjectMeta, ok: boolean): void {
    const key = meta.container + '/' + meta.name
    const size = this.#items.get(key)
    if (size === undefined) return
    if (!ok) {
      this.#failing.add(key)
      return
    }
    this.#failing.delete(key)
    this.#items.delete(key)
    this.#handedObjects++
    this.#handedBytes += size
    this.check()
  }

  check (): void {
    if (this.#items.size === 0) this.#resolve()
  }

  progress (): DrainProgress {
    return {
      objects: this.#objects,
      bytes: this.#bytes,
      handedObjects: this.#handedObjects,
      handedBytes: this.#handedBytes,
      failed: this.#failing.size,
      done: this.#items.size === 0,
      startedMs: this.#started
    }
  }
}
