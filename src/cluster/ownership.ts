/**
 * Writeback ownership (DESIGN.md, promise 4): each dirty version is uploaded by the first live
 * holder of its rendezvous order. The others keep their copy dirty (never evicted) until the
 * owner's clean notice arrives, and take over when the owner leaves their view. A commit marker
 * additionally waits until no live node holds a dirty object of its directory committed before it.
 */
import type { ObjectMeta } from '../core/types.js'
import { directoryOf } from '../upstream/markers.js'
import type { UploadGate } from '../upstream/types.js'
import type { ClusterLog, ClusterObjects } from './cluster-objects.js'
import { errText } from './cluster-objects.js'
import type { Placement } from './placement.js'

/** Clocks of different nodes differ a little: objects modified up to this long after a marker still hold it back. */
export const MARKER_CLOCK_ALLOWANCE_MS = 5000

/** How long a version without a holder list waits for its placement before this node takes it. */
const UNPLACED_GRACE_MS = 30_000

/** A version deferred this long makes its node ask the owner whether it still holds it. */
const OWNER_CHECK_AFTER_MS = 30_000

export class OwnershipGate implements UploadGate {
  readonly #placement: Placement
  readonly #objects: ClusterObjects
  readonly #log: ClusterLog
  /** How soon a marker not ready yet, or a version still being placed, is looked at again. */
  readonly recheckMs: number
  /** Versions deferred to another owner: since when, and whether that owner turned out not to hold them. */
  readonly #deferred = new Map<string, { sinceMs: number, etag: string, orphaned: boolean, checking: boolean }>()
  readonly #viewListeners: Array<() => void> = []

  /** Marks a version clean here when its owner turns out to have uploaded it (a lost notice); set once the writeback exists. */
  cleaned: ((container: string, name: string, etag: string, upstreamEtag: string) => Promise<boolean>) | undefined

  constructor (opts: { placement: Placement, objects: ClusterObjects, log: ClusterLog, recheckMs: number }) {
    this.#placement = opts.placement
    this.#objects = opts.objects
    this.#log = opts.log
    this.recheckMs = opts.recheckMs
  }

  waitMs (meta: ObjectMeta): number {
    const self = this.#placement.selfId
    // A version committed here whose copies are still being placed: who owns it is not known yet.
    // (One never placed — the node stopped in between — is this node's after a while.)
    if (meta.holders === undefined && Date.now() - meta.lastModifiedMs < UNPLACED_GRACE_MS) return this.recheckMs
    const holders = meta.holders === undefined ? [self] : meta.holders.includes(self) ? meta.holders : [...meta.holders, self]
    const owner = this.#placement.owner(meta.container, meta.name, holders)
    const key = meta.container + '/' + meta.name
    if (owner === undefined || owner === self) {
      this.#deferred.delete(key)
      return 0
    }
    let d = this.#deferred.get(key)
    if (d === undefined || d.etag !== meta.etag) {
      d = { sinceMs: Date.now(), etag: meta.etag, orphaned: false, checking: false }
      this.#deferred.set(key, d)
    }
    if (d.orphaned) return 0
    if (d.checking || Date.now() - d.sinceMs < OWNER_CHECK_AFTER_MS) return OWNER_CHECK_AFTER_MS
    // Deferred for long without a clean notice: ask the owner, and look again soon for its answer.
    this.#checkOwner(meta, owner, d)
    return this.recheckMs
  }

  onViewChange (fn: () => void): void {
    this.#viewListeners.push(fn)
  }

  /** The membership view changed (a node down, up, draining): deferred versions are looked at again. */
  viewChanged (): void {
    for (const fn of this.#viewListeners) fn()
  }

  async markerReady (meta: ObjectMeta, signal: AbortSignal): Promise<boolean> {
    const dir = directoryOf(meta.name)
    const peers = this.#placement.peers()
    try {
      const counts = await Promise.all(peers.map(async (node) => (await this.#objects.rpc(node, 'dirty', {
        container: meta.container, dir, except: meta.name, beforeMs: meta.lastModifiedMs + MARKER_CLOCK_ALLOWANCE_MS
      }, signal)).count))
      return counts.every((c) => c === 0)
    } catch (err) {
      this.#log.warn({ err: errText(err), container: meta.container, name: meta.name }, 'cluster: could not ask every node whether a marker\'s directory is clean; waiting')
      return false
    }
  }

  uploaded (meta: ObjectMeta, upstreamEtag: string, md5: string): void {
    this.#deferred.delete(meta.container + '/' + meta.name)
    for (const id of meta.holders ?? []) {
      const node = this.#placement.node(id)
      if (id === this.#placement.selfId || node === undefined || !this.#placement.isLive(id)) continue
      this.#objects.rpc(node, 'clean', { container: meta.container, name: meta.name, etag: meta.etag, upstreamEtag, md5 }).catch((err) => {
        // That holder keeps its copy dirty and asks the owner later (or uploads it itself when the owner goes).
        this.#log.warn({ err: errText(err), node: id, container: meta.container, name: meta.name }, 'cluster: a clean notice did not arrive')
      })
    }
  }

  /** The owner of a version deferred for long: does it still hold it? If not, this node uploads it. */
  #checkOwner (meta: ObjectMeta, owner: string, d: { orphaned: boolean, checking: boolean, sinceMs: number }): void {
    const node = this.#placement.node(owner)
    if (node === undefined) return
    d.checking = true
    this.#objects.rpc(node, 'head', { container: meta.container, name: meta.name }).then(async (res) => {
      d.sinceMs = Date.now()
      if (res.meta?.etag !== meta.etag) d.orphaned = true
      else if (res.meta.dirty !== true && res.meta.upstreamEtag !== undefined) await this.cleaned?.(meta.container, meta.name, meta.etag, res.meta.upstreamEtag)
    }, () => { d.sinceMs = Date.now() }).finally(() => { d.checking = false })
  }

  /** Forgets a name (uploaded here, cleaned by its owner, dropped). */
  forget (container: string, name: string): void {
    this.#deferred.delete(container + '/' + name)
  }
}
