/**
 * The cluster side of the object core (ObjectCluster): where a version's other copies go, reads
 * of versions other nodes hold, cluster-wide listings, deletes and containers. Every put, get and
 * head costs a bounded number of peer requests whatever the cluster size (replicas - 1 copies,
 * the home told where the object lives, a read asks at most replicas + 1 nodes); listings and
 * container lookups ask every live node.
 */
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ObjectCluster } from '../core/cluster-port.js'
import { mergeNodePages } from '../core/cluster-listing.js'
import { exclusiveStart } from '../core/tier-listing.js'
import type { ByteRange, ContainerMeta, ObjectMeta } from '../core/types.js'
import { CacheError } from '../errors.js'
import type { LocalStore, StoreListPage } from '../store/local-store.js'
import type { ListQuery } from '../store/sorted-names.js'
import type { ClusterMetrics } from './cluster-metrics.js'
import type { Locations } from './locations.js'
import type { Placement } from './placement.js'
import type { NodeInfo, PeerClient, PeerRpc, RpcArgs, RpcResult, WireMeta } from './types.js'
import { copyWrite, fromWire, toWire } from './wire-meta.js'
import type { Log } from '../log.js'

/** How often a copy in flight checks that its target is still live. */
const WATCH_MS = 200

export type ClusterLog = Pick<Log, 'info' | 'warn'>

export interface ClusterObjectsOptions {
  placement: Placement
  client: PeerClient
  store: LocalStore
  locations: Locations
  ack: 'all' | 'local'
  /** How long a lookup or the start of a read waits for one peer before asking the next. */
  peerTimeoutMs: number
  metrics: ClusterMetrics
  log: ClusterLog
  /** A version that has fewer copies than configured (a failed or background placement): the repair loop takes it. */
  underReplicated: (meta: ObjectMeta) => void
  /**
   * Keep a clean local copy of an object read whole from a peer (`--peer-read-cache`). Only
   * versions already clean in the upstream are kept: revalidation against the upstream etag
   * then keeps them current, like any read-through copy.
   */
  keepCopies: boolean
}

export class ClusterObjects implements ObjectCluster {
  readonly #o: ClusterObjectsOptions

  constructor (opts: ClusterObjectsOptions) {
    this.#o = opts
  }

  // ---- writes ---------------------------------------------------------------

  async placed (meta: ObjectMeta): Promise<void> {
    // A draining node is going away: its new writes get their full count of copies elsewhere.
    const placing = this.place(meta, new Set(), this.#o.placement.replicas + (this.#o.placement.selfDraining ? 1 : 0))
    if (this.#o.ack === 'all') {
      await placing
      return
    }
    placing.catch((err) => {
      this.#o.log.warn({ err: errText(err), container: meta.container, name: meta.name }, 'cluster: background copy failed; the repair loop retries it')
      this.#o.underReplicated(meta)
    })
  }

  /**
   * Copies `meta` (held here) to the first placeable nodes of its order that do not hold it,
   * until it has `replicas` holders, trying further nodes when one fails; records the holders
   * here and on every holder, and tells the home where it lives when the home holds no copy.
   * Throws CC_ERR_PEER_UNAVAILABLE when too few nodes took a copy.
   */
  async place (meta: ObjectMeta, liveHolders: ReadonlySet<string>, total = this.#o.placement.replicas): Promise<string[]> {
    const { placement, store } = this.#o
    const self = placement.selfId
    const holders = [self, ...[...liveHolders].filter((id) => id !== self)]
    const tried = new Set(holders)
    let lastErr: unknown
    let partial = false
    while (holders.length < total) {
      const targets = placement.targets(meta.container, meta.name, tried, total - holders.length)
      if (targets.length === 0) break
      for (const t of targets) tried.add(t.id)
      const wire: WireMeta = { ...toWire(meta), holders: [...holders, ...targets.map((t) => t.id)] }
      const results = await Promise.allSettled(targets.map((t) => this.#write(t, wire, meta)))
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') holders.push((targets[i] as NodeInfo).id)
        else {
          partial = true
          lastErr = r.reason
          this.#o.log.warn({ err: errText(r.reason), node: (targets[i] as NodeInfo).id, container: meta.container, name: meta.name }, 'cluster: a copy failed; trying the next node of the order')
        }
      })
    }
    // Recorded even when alone: the writeback owner is decided once the holders are known.
    if (meta.holders?.join() !== holders.join()) await store.setHolders(meta.container, meta.name, meta.etag, holders)
    const final = { ...meta, holders }
    // Holders that received a list naming a node that failed, and holders from before, learn the final one.
    const fixes = holders.filter((id) => id !== self && (partial || liveHolders.has(id)))
    const home = placement.home(meta.container, meta.name)
    if (home !== undefined && home.id !== self && !holders.includes(home.id)) fixes.push(home.id)
    await Promise.allSettled(fixes.map(async (id) => await this.#locate(id, final)))
    // The copies carry the meta read when the placement began: an MD5 this node computed since
    // (Md5Backfill) follows them, or they would never answer Content-MD5.
    const now = store.head(meta.container, meta.name)
    if (meta.checksums.md5 === undefined && now?.etag === meta.etag && now.checksums.md5 !== undefined) {
      this.#sendMd5(final, now.checksums.md5, holders.filter((id) => id !== self && !liveHolders.has(id)))
    }
    if (holders.length < total) {
      throw new CacheError('CC_ERR_PEER_UNAVAILABLE',
        `${holders.length} of ${total} copies of ${meta.container}/${meta.name} are durable: ${lastErr === undefined ? 'not enough live nodes' : errText(lastErr)}`,
        { detail: { retryAfter: 1 } })
    }
    return holders
  }

  /**
   * This node computed the MD5 of `meta` (held here, a Put Blob sent without one) after the
   * acknowledgement: the version's other live holders record it too instead of hashing again.
   * Best effort, in the background; a holder that misses it computes its own after a restart.
   */
  md5Computed (meta: ObjectMeta, md5: string): void {
    this.#sendMd5(meta, md5, (meta.holders ?? []).filter((id) => id !== this.#o.placement.selfId))
  }

  #sendMd5 (meta: ObjectMeta, md5: string, ids: readonly string[]): void {
    for (const id of ids) {
      const node = this.#o.placement.node(id)
      if (node === undefined || !this.#o.placement.isLive(id)) continue
      this.rpc(node, 'checksums', { container: meta.container, name: meta.name, etag: meta.etag, md5 }).catch((err) => {
        this.#o.log.warn({ err: errText(err), node: id, container: meta.container, name: meta.name }, 'cluster: a copy did not get the computed Content-MD5')
      })
    }
  }

  /** Drain: copies until `others` nodes besides this one hold `meta` (this node, draining, no longer owns it). */
  async handOff (meta: ObjectMeta, liveHolders: readonly string[], others: number): Promise<void> {
    await this.place(meta, new Set(liveHolders), others + 1)
  }

  /** One copy; given up as soon as the target leaves this node's view (a stopped node never answers). */
  async #write (node: NodeInfo, wire: WireMeta, meta: ObjectMeta): Promise<void> {
    this.#o.metrics.requests.inc({ op: 'write' })
    const ac = new AbortController()
    const watch = setInterval(() => {
      if (!this.#o.placement.isLive(node.id)) ac.abort(new CacheError('CC_ERR_PEER_UNAVAILABLE', `peer ${node.id} went down during a copy`))
    }, WATCH_MS)
    try {
      await this.#o.client.write(node, wire, { open: () => this.#o.store.openRead(meta) }, { signal: ac.signal })
    } finally {
      clearInterval(watch)
    }
    this.#o.metrics.bytes.inc({ direction: 'sent' }, meta.size)
  }

  async #locate (id: string, meta: ObjectMeta): Promise<void> {
    const node = this.#o.placement.node(id)
    if (node === undefined) return
    await this.rpc(node, 'locate', { container: meta.container, name: meta.name, etag: meta.etag, lastModifiedMs: meta.lastModifiedMs, holders: meta.holders ?? [] })
  }

  /**
   * A store commit on this node replaced `previous`. As the object's home, this node drops the
   * copies of the replaced version on the other nodes that held it (etag-conditional, so a copy
   * of the new version is never touched): a stale copy is then never served or uploaded. Best
   * effort, in the background; a missed one is dropped when its holder reconciles.
   */
  committed (meta: ObjectMeta, previous: ObjectMeta | undefined): void {
    if (previous === undefined || previous.etag === meta.etag || previous.holders === undefined) return
    if (this.#o.placement.home(meta.container, meta.name)?.id !== this.#o.placement.selfId) return
    this.dropStale(meta.container, meta.name, previous.etag, previous.holders.filter((id) => !(meta.holders ?? []).includes(id)))
  }

  /** Drops version `etag` of a name on `ids` (not this node), in the background. */
  dropStale (container: string, name: string, etag: string, ids: readonly string[]): void {
    for (const id of ids) {
      const node = this.#o.placement.node(id)
      if (id === this.#o.placement.selfId || node === undefined || !this.#o.placement.isLive(id)) continue
      this.rpc(node, 'delete', { container, name, etag, mode: 'drop' }).catch((err) => {
        this.#o.log.warn({ err: errText(err), node: id, container, name }, 'cluster: could not drop a replaced copy')
      })
    }
  }

  // ---- reads ----------------------------------------------------------------

  async lookup (container: string, name: string, signal?: AbortSignal): Promise<ObjectMeta | undefined> {
    const { placement, locations } = this.#o
    const self = placement.selfId
    const limit = placement.replicas + 1
    const order = placement.readOrder(container, name, limit + 1)
    const queue: NodeInfo[] = []
    // This node may be the home and know where the object lives.
    for (const id of locations.get(container, name)?.holders ?? []) pushLive(queue, placement, id, self)
    for (const n of order.slice(0, limit)) if (n.id !== self) queue.push(n)
    const asked = new Set<string>()
    while (queue.length > 0 && asked.size < limit + placement.replicas) {
      const node = queue.shift() as NodeInfo
      if (asked.has(node.id)) continue
      asked.add(node.id)
      let res
      try {
        res = await this.rpc(node, 'head', { container, name }, signal)
      } catch (err) {
        if (signal?.aborted === true) throw err
        continue
      }
      if (res.meta !== undefined) return fromWire(res.meta, node.id)
      // The home holds no copy but knows who does: ask them next.
      for (const id of (res.holders ?? []).reverse()) if (!asked.has(id)) pushLive(queue, placement, id, self, true)
    }
    return undefined
  }

  read (meta: ObjectMeta, range?: ByteRange, signal?: AbortSignal): Readable {
    const { metrics } = this.#o
    // Counted as they pass (a 'data' listener would start the stream before its reader is there).
    const out = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        metrics.bytes.inc({ direction: 'received' }, chunk.length)
        metrics.served.inc({ source: 'peer' }, chunk.length)
        cb(null, chunk)
      }
    })
    const candidates = [...new Set([meta.peer, ...(meta.holders ?? [])])]
      .filter((id): id is string => id !== undefined && id !== this.#o.placement.selfId && this.#o.placement.isLive(id))
    void (async () => {
      let lastErr: unknown = new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      for (const id of candidates) {
        const node = this.#o.placement.node(id)
        if (node === undefined) continue
        let body: Readable
        try {
          body = await this.#open(node, meta, range, signal)
        } catch (err) {
          lastErr = err
          if (signal?.aborted === true || out.destroyed) break
          continue
        }
        if (this.#o.keepCopies && range === undefined && meta.dirty !== true && meta.upstreamEtag !== undefined) this.#keep(meta, body)
        try {
          await pipeline(body, out)
        } catch (err) {
          out.destroy(err as Error)
        }
        return
      }
      out.destroy(lastErr as Error)
    })()
    return out
  }

  /** Tees a whole-object read from a peer into a clean local copy; any failure just leaves none. */
  #keep (meta: ObjectMeta, body: Readable): void {
    const side = new PassThrough()
    body.pipe(side)
    body.once('close', () => { if (!body.readableEnded) side.destroy(new CacheError('CC_ERR_CLIENT_ABORTED')) })
    const { store } = this.#o
    void (async () => {
      const data = await store.ingest({ body: side, expectedSize: meta.size, maxSize: meta.size })
      await store.commitObject(meta.container, meta.name, data, copyWrite(toWire(meta), true), (cur) => { if (cur !== undefined) throw new CacheError('CC_ERR_OBJECT_EXISTS') })
    })().catch((err) => {
      body.unpipe(side)
      side.resume()
      this.#o.log.warn({ err: errText(err), container: meta.container, name: meta.name }, 'cluster: no local copy kept of a peer read')
    })
  }

  /** Starts a read at one holder; waits at most the peer timeout for its answer. */
  async #open (node: NodeInfo, meta: ObjectMeta, range: ByteRange | undefined, signal: AbortSignal | undefined): Promise<Readable> {
    const ac = new AbortController()
    const onAbort = (): void => { ac.abort(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => { ac.abort(new CacheError('CC_ERR_PEER_UNAVAILABLE', `peer ${node.id} did not answer in time`)) }, this.#o.peerTimeoutMs)
    this.#o.metrics.requests.inc({ op: 'read' })
    try {
      const res = await this.#o.client.read(node, { container: meta.container, name: meta.name, etag: meta.etag, signal: ac.signal, ...(range === undefined ? {} : { range }) })
      res.body.once('close', () => { signal?.removeEventListener('abort', onAbort) })
      return res.body
    } catch (err) {
      signal?.removeEventListener('abort', onAbort)
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  async list (container: string, query: ListQuery, local: StoreListPage, signal?: AbortSignal): Promise<StoreListPage> {
    const startAfter = exclusiveStart(query)
    const wq = {
      ...(query.prefix === undefined ? {} : { prefix: query.prefix }),
      ...(query.delimiter === undefined || query.delimiter === '' ? {} : { delimiter: query.delimiter }),
      ...(startAfter === undefined ? {} : { startAfter }),
      maxResults: query.maxResults
    }
    const pages = await Promise.all(this.#o.placement.peers().map(async (node): Promise<StoreListPage> => {
      try {
        const page = await this.rpc(node, 'list', { container, query: wq }, signal)
        const entries = page.entries.map((e) => e.kind === 'prefix' ? e : { kind: 'object' as const, meta: fromWire(e.meta, node.id) })
        return page.truncated ? { entries, next: '' } : { entries }
      } catch (err) {
        if (signal?.aborted === true) throw err
        // Its copies have replicas on other nodes; a listing does not fail for one node.
        this.#o.log.warn({ err: errText(err), node: node.id, container }, 'cluster: a node did not answer a listing')
        return { entries: [] }
      }
    }))
    return mergeNodePages(query.maxResults, [local, ...pages])
  }

  // ---- deletes --------------------------------------------------------------

  async deleted (meta: ObjectMeta): Promise<void> {
    const { placement, locations } = this.#o
    const self = placement.selfId
    const home = placement.home(meta.container, meta.name)
    if (home === undefined || home.id === self) locations.deleted(meta.container, meta.name, meta.lastModifiedMs)
    const targets = new Set([...(meta.holders ?? []), ...(locations.get(meta.container, meta.name)?.holders ?? [])])
    if (home !== undefined) targets.add(home.id)
    targets.delete(self)
    await Promise.allSettled([...targets].map(async (id) => {
      const node = placement.node(id)
      if (node === undefined || !placement.isLive(id)) return
      await this.rpc(node, 'delete', { container: meta.container, name: meta.name, etag: meta.etag, mode: 'deleted' })
    }))
  }

  async deleteRemote (meta: ObjectMeta): Promise<void> {
    const ids = [...new Set([meta.peer, ...(meta.holders ?? [])])].filter((id): id is string => id !== undefined && id !== this.#o.placement.selfId)
    let lastErr: unknown = new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    for (const id of ids) {
      const node = this.#o.placement.node(id)
      if (node === undefined || !this.#o.placement.isLive(id)) continue
      try {
        const res = await this.rpc(node, 'delete', { container: meta.container, name: meta.name, etag: meta.etag, mode: 'client' })
        if (res.deleted) return
      } catch (err) {
        lastErr = err
      }
    }
    throw lastErr
  }

  // ---- containers -----------------------------------------------------------

  async containerCreated (meta: ContainerMeta): Promise<void> {
    await this.#everyPeer('createContainer', { name: meta.name, metadata: meta.metadata })
  }

  async findContainer (name: string, signal?: AbortSignal): Promise<ContainerMeta | undefined> {
    const found = await Promise.all(this.#o.placement.peers().map(async (node) => {
      try {
        return (await this.rpc(node, 'getContainer', { name }, signal)).container
      } catch {
        return undefined
      }
    }))
    return found.find((c) => c !== undefined)
  }

  async containerDeleted (name: string): Promise<void> {
    await this.#everyPeer('deleteContainer', { name })
  }

  async #everyPeer (method: 'createContainer' | 'deleteContainer', args: { name: string, metadata?: Record<string, string> }): Promise<void> {
    await Promise.all(this.#o.placement.peers().map(async (node) => {
      try {
        if (method === 'createContainer') await this.rpc(node, method, { name: args.name, metadata: args.metadata ?? {} })
        else await this.rpc(node, method, { name: args.name })
      } catch (err) {
        this.#o.log.warn({ err: errText(err), node: node.id, container: args.name }, `cluster: ${method} did not reach a node; it catches up on use`)
      }
    }))
  }

  // ---- helpers --------------------------------------------------------------

  /** One counted peer call, bounded by the peer timeout. */
  async rpc<M extends keyof PeerRpc> (node: NodeInfo, method: M, args: RpcArgs<M>, signal?: AbortSignal): Promise<RpcResult<M>> {
    this.#o.metrics.requests.inc({ op: method })
    return await this.#o.client.rpc(node, method, args, { timeoutMs: this.#o.peerTimeoutMs, ...(signal === undefined ? {} : { signal }) })
  }
}

function pushLive (queue: NodeInfo[], placement: Placement, id: string, self: string, front = false): void {
  if (id === self || !placement.isLive(id)) return
  const node = placement.node(id)
  if (node === undefined) return
  if (front) queue.unshift(node)
  else queue.push(node)
}

export const errText = (err: unknown): string => err instanceof Error ? err.message : String(err)
