/**
 * What this node answers on the peer API (PeerHandler), over its local store: copies written by
 * other nodes, reads of local copies, location records and deletes as the home, clean notices
 * from the writeback owner, MD5s the writer computed after the acknowledgement, local listings,
 * and verdicts for returning nodes.
 */
import type { Readable } from 'node:stream'
import { MAX_OBJECT_PUT } from '../core/object-inputs.js'
import type { ByteRange, ContainerMeta, ObjectMeta } from '../core/types.js'
import { CacheError, isCacheError } from '../errors.js'
import type { LocalStore } from '../store/local-store.js'
import { directoryOf } from '../upstream/markers.js'
import type { Writeback } from '../upstream/types.js'
import type { ClusterLog, ClusterObjects } from './cluster-objects.js'
import type { ClusterMetrics } from './cluster-metrics.js'
import type { Locations } from './locations.js'
import type { Placement } from './placement.js'
import { isBase64Md5 } from './protocol.js'
import type { CheckItem, CheckVerdict, Membership, PeerHandler, ProbeInfo, RpcArgs, RpcResult, WireListEntry, WireMeta } from './types.js'
import { copyWrite, toWire } from './wire-meta.js'

export interface PeerHandlerOptions {
  /** This process's boot id (probes tell it, so peers notice a restart). */
  bootId: string
  store: LocalStore
  membership: Membership
  placement: Placement
  locations: Locations
  objects: ClusterObjects
  writeback?: Writeback
  /** True while this node reconciles its copies after being away: it then serves none of them to peers. */
  reconciling?: () => boolean
  /** Told when a version is cleaned by its owner's notice. */
  onCleaned?: (container: string, name: string) => void
  metrics: ClusterMetrics
  log: ClusterLog
}

const LIST_MAX = 5000

export class LocalPeerHandler implements PeerHandler {
  readonly #o: PeerHandlerOptions

  constructor (opts: PeerHandlerOptions) {
    this.#o = opts
  }

  probe (): ProbeInfo {
    this.#count('probe')
    return { id: this.#o.membership.self.id, bootId: this.#o.bootId, draining: this.#o.membership.self.draining === true }
  }

  async head (a: RpcArgs<'head'>): Promise<RpcResult<'head'>> {
    this.#count('head')
    const meta = this.#held(a.container, a.name)
    if (meta !== undefined) return { meta: toWire(meta) }
    const rec = this.#o.locations.get(a.container, a.name)
    return rec === undefined ? {} : { holders: rec.holders }
  }

  read (a: { container: string, name: string, range?: ByteRange, etag?: string }): { meta: WireMeta, range?: ByteRange, body: Readable } {
    this.#count('read')
    const meta = this.#held(a.container, a.name)
    if (meta === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    if (a.etag !== undefined && a.etag !== meta.etag) throw new CacheError('CC_ERR_CONDITION_NOT_MET')
    const range = a.range
    if (range !== undefined && (range.start < 0 || range.end < range.start || range.end >= meta.size)) {
      throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: meta.size } })
    }
    const body = this.#o.store.openRead(meta, range)
    body.once('end', () => { this.#o.metrics.bytes.inc({ direction: 'sent' }, range === undefined ? meta.size : range.end - range.start + 1) })
    return range === undefined ? { meta: toWire(meta), body } : { meta: toWire(meta), range, body }
  }

  /** A copy of a version another node wrote (placement, refill, drain). Idempotent; an older version than the one held is refused. */
  async write (meta: WireMeta, body: Readable, signal: AbortSignal): Promise<void> {
    this.#count('write')
    const { store } = this.#o
    await this.#ensureContainer(meta.container, {})
    const current = store.head(meta.container, meta.name)
    if (current?.etag === meta.etag) {
      body.resume()
      if (meta.holders !== undefined) await store.setHolders(meta.container, meta.name, meta.etag, meta.holders)
      // The sender may know the version's MD5 (computed after its commit) when this copy does not.
      if (meta.checksums.md5 !== undefined && current.checksums.md5 === undefined) await store.addChecksums(meta.container, meta.name, meta.etag, { md5: meta.checksums.md5 })
      this.#asHome(meta)
      return
    }
    refuseOlder(current, meta)
    if (meta.dirty === true) this.#o.writeback?.admit(meta.size)
    const data = await store.ingest({ body, expectedSize: meta.size, maxSize: Math.max(meta.size, MAX_OBJECT_PUT), signal })
    this.#o.metrics.bytes.inc({ direction: 'received' }, meta.size)
    await store.commitObject(meta.container, meta.name, data, copyWrite(meta), (cur) => { refuseOlder(cur, meta) })
    this.#asHome(meta)
  }

  async delete (a: RpcArgs<'delete'>): Promise<RpcResult<'delete'>> {
    this.#count('delete')
    const { store, placement, locations } = this.#o
    if (a.mode === 'deleted' && placement.home(a.container, a.name)?.id === placement.selfId) {
      locations.deleted(a.container, a.name, store.head(a.container, a.name)?.lastModifiedMs ?? Date.now())
    }
    if (store.getContainer(a.container) === undefined) return { deleted: false }
    if (a.mode !== 'client') return { deleted: await store.dropCopy(a.container, a.name, a.etag, { deleted: a.mode === 'deleted' }) !== undefined }
    let deleted: ObjectMeta
    try {
      deleted = await store.deleteObject(a.container, a.name, (cur) => {
        if (cur === undefined || (a.etag !== undefined && cur.etag !== a.etag)) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
      })
    } catch (err) {
      if (isCacheError(err, 'CC_ERR_OBJECT_NOT_FOUND')) return { deleted: false }
      throw err
    }
    await this.#o.objects.deleted(deleted)
    return { deleted: true }
  }

  async locate (a: RpcArgs<'locate'>): Promise<RpcResult<'locate'>> {
    this.#count('locate')
    const { store } = this.#o
    const current = store.getContainer(a.container) === undefined ? undefined : store.head(a.container, a.name)
    if (current?.etag === a.etag) await store.setHolders(a.container, a.name, a.etag, a.holders)
    this.#asHome({ container: a.container, name: a.name, etag: a.etag, lastModifiedMs: a.lastModifiedMs, holders: a.holders })
    return {}
  }

  async clean (a: RpcArgs<'clean'>): Promise<RpcResult<'clean'>> {
    this.#count('clean')
    const wb = this.#o.writeback
    if (wb === undefined || this.#o.store.getContainer(a.container) === undefined) return { cleaned: false }
    const cleaned = await wb.cleaned(a.container, a.name, a.etag, a.upstreamEtag, a.md5)
    if (cleaned) this.#o.onCleaned?.(a.container, a.name)
    return { cleaned }
  }

  /** The writer's background MD5 of a version held here: recorded once, etag-guarded; another MD5 already held is kept. */
  async checksums (a: RpcArgs<'checksums'>): Promise<RpcResult<'checksums'>> {
    this.#count('checksums')
    const { store } = this.#o
    if (typeof a.container !== 'string' || typeof a.name !== 'string' || typeof a.etag !== 'string' || !isBase64Md5(a.md5)) {
      throw new CacheError('CC_ERR_INVALID_INPUT', 'checksums takes a container, name and etag (strings) and an md5 (base64 of 16 bytes)')
    }
    const current = store.getContainer(a.container) === undefined ? undefined : store.head(a.container, a.name)
    if (current === undefined || current.etag !== a.etag) return { updated: false }
    if (current.checksums.md5 !== undefined) return { updated: current.checksums.md5 === a.md5 }
    return { updated: await store.addChecksums(a.container, a.name, a.etag, { md5: a.md5 }) }
  }

  async list (a: RpcArgs<'list'>): Promise<RpcResult<'list'>> {
    this.#count('list')
    const { store } = this.#o
    if (store.getContainer(a.container) === undefined) return { entries: [], truncated: false }
    const q = a.query
    const page = store.list(a.container, {
      ...(q.prefix === undefined ? {} : { prefix: q.prefix }),
      ...(q.delimiter === undefined ? {} : { delimiter: q.delimiter }),
      ...(q.startAfter === undefined ? {} : { startAfter: q.startAfter }),
      maxResults: Math.max(1, Math.min(LIST_MAX, q.maxResults))
    })
    const entries: WireListEntry[] = page.entries.map((e) => e.kind === 'prefix' ? e : { kind: 'object', meta: toWire(e.meta) })
    return { entries, truncated: page.next !== undefined }
  }

  async dirty (a: RpcArgs<'dirty'>): Promise<RpcResult<'dirty'>> {
    this.#count('dirty')
    const { store } = this.#o
    if (store.getContainer(a.container) === undefined) return { count: 0 }
    let count = 0
    let startAfter: string | undefined
    for (;;) {
      const page = store.list(a.container, { prefix: a.dir, delimiter: '/', maxResults: LIST_MAX, ...(startAfter === undefined ? {} : { startAfter }) })
      for (const e of page.entries) {
        if (e.kind !== 'object') continue
        const m = e.meta
        if (m.dirty === true && m.name !== a.except && directoryOf(m.name) === a.dir && m.lastModifiedMs <= a.beforeMs) count++
      }
      const last = page.entries[page.entries.length - 1]
      if (page.next === undefined || last === undefined) return { count }
      startAfter = last.kind === 'prefix' ? last.name + '\uffff' : last.meta.name
    }
  }

  async check (a: RpcArgs<'check'>): Promise<RpcResult<'check'>> {
    this.#count('check')
    const { store, locations } = this.#o
    const verdicts: CheckVerdict[] = a.items.map((item: CheckItem) => {
      const held = store.getContainer(item.container) === undefined ? undefined : store.head(item.container, item.name)
      return locations.verdict(item, held)
    })
    return { verdicts }
  }

  async createContainer (a: RpcArgs<'createContainer'>): Promise<RpcResult<'createContainer'>> {
    this.#count('createContainer')
    await this.#ensureContainer(a.name, a.metadata)
    return {}
  }

  async getContainer (a: RpcArgs<'getContainer'>): Promise<RpcResult<'getContainer'>> {
    this.#count('getContainer')
    const c = this.#o.store.getContainer(a.name)
    return c === undefined ? {} : { container: c }
  }

  async deleteContainer (a: RpcArgs<'deleteContainer'>): Promise<RpcResult<'deleteContainer'>> {
    this.#count('deleteContainer')
    try {
      await this.#o.store.deleteContainer(a.name)
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_CONTAINER_NOT_FOUND')) throw err
    }
    return {}
  }

  async listContainers (a: RpcArgs<'listContainers'>): Promise<RpcResult<'listContainers'>> {
    this.#count('listContainers')
    const containers: ContainerMeta[] = this.#o.store.listContainers(a.prefix)
    return { containers }
  }

  // ---- internals ------------------------------------------------------------

  /** The local copy peers may read (none while reconciling: it may be stale). */
  #held (container: string, name: string): ObjectMeta | undefined {
    if (this.#o.reconciling?.() === true || this.#o.store.getContainer(container) === undefined) return undefined
    return this.#o.store.head(container, name)
  }

  async #ensureContainer (name: string, metadata: Record<string, string>): Promise<void> {
    if (this.#o.store.getContainer(name) !== undefined) return
    try {
      await this.#o.store.createContainer(name, metadata)
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_CONTAINER_EXISTS')) throw err
    }
  }

  /**
   * As the home of the object: remember where the new version lives, and drop the copies of the
   * version its record replaced on nodes that hold no copy of the new one. (The home's own
   * previous copy's holders are dropped by `ClusterObjects.committed`.)
   */
  #asHome (v: { container: string, name: string, etag: string, lastModifiedMs: number, holders?: string[] }): void {
    const { placement, locations } = this.#o
    if (placement.home(v.container, v.name)?.id !== placement.selfId) return
    const holders = v.holders ?? []
    const replaced = locations.record(v.container, v.name, { etag: v.etag, lastModifiedMs: v.lastModifiedMs, holders })
    if (replaced !== undefined && replaced.etag !== v.etag) this.#o.objects.dropStale(v.container, v.name, replaced.etag, replaced.holders.filter((id) => !holders.includes(id)))
  }

  #count (op: string): void {
    this.#o.metrics.handled.inc({ op })
  }
}

/** A copy older than the version held is refused (a late copy must not replace a newer write). */
function refuseOlder (current: ObjectMeta | undefined, meta: WireMeta): void {
  if (current !== undefined && current.etag !== meta.etag && current.lastModifiedMs > meta.lastModifiedMs) {
    throw new CacheError('CC_ERR_CONDITION_NOT_MET', `a newer version of ${meta.container}/${meta.name} is held here`)
  }
}
