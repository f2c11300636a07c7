/**
 * Builds a node's cluster layer from its settings: node id, peer client, membership, placement,
 * the object-core side (ClusterObjects), the writeback ownership gate, repair, and — once the
 * writeback exists — the peer server. Loaded only by a node with peers.
 */
import { randomUUID } from 'node:crypto'
import type { Metrics } from '../admin/metrics.js'
import type { Config } from '../config/schema.js'
import type { LocalStore } from '../store/local-store.js'
import type { Writeback } from '../upstream/types.js'
import { ClusterObjects } from './cluster-objects.js'
import { createClusterMetrics } from './cluster-metrics.js'
import { Locations } from './locations.js'
import { createMembership, type MembershipLog } from './membership.js'
import { loadNodeId } from './node-id.js'
import { OwnershipGate } from './ownership.js'
import { createPeerClient } from './peer-client.js'
import { LocalPeerHandler } from './peer-handler.js'
import { createPeerServer, type PeerServer } from './peer-server.js'
import { createPeerSources, peerUrl } from './peer-sources.js'
import { Placement } from './placement.js'
import { Repair } from './repair.js'
import type { ClusterStatus, DrainHandle } from './types.js'

export interface RunningCluster {
  readonly nodeId: string
  readonly objects: ClusterObjects
  readonly gate: OwnershipGate
  /** Listens on the peer port and starts probing; `writeback` with a cloud tier. Resolves with the peer port. */
  start (writeback: Writeback | undefined): Promise<number>
  status (): ClusterStatus
  drain (): DrainHandle
  close (): Promise<void>
}

export async function createCluster (config: Config, store: LocalStore, registry: Metrics, log: MembershipLog): Promise<RunningCluster> {
  const secret = config.clusterSecret
  if (secret === undefined) throw new Error('a node with peers needs a cluster secret')
  const nodeId = await loadNodeId(config.dataDir, config.nodeId, log)
  const bootId = randomUUID()
  const metrics = createClusterMetrics(registry)
  const client = createPeerClient({ self: nodeId, secret })
  const selfUrl = peerUrl(`${config.peerHost.includes(':') ? `[${config.peerHost}]` : config.peerHost}:${config.peerPort}`)
  const membership = createMembership({
    self: { id: nodeId, url: selfUrl },
    sources: createPeerSources({
      peers: config.peers,
      ...(config.peersFile === undefined ? {} : { peersFile: config.peersFile }),
      ...(config.peersDns === undefined ? {} : { peersDns: config.peersDns }),
      onError: (err, source) => log.warn({ err: err.message, source }, 'cluster: peer source failed; keeping its last list')
    }),
    probe: async (url, opts) => await client.probe(url, opts),
    probeIntervalMs: config.probeIntervalMs,
    probeTimeoutMs: config.probeTimeoutMs,
    bootId,
    log
  })
  const placement = new Placement(membership, config.replicas)
  const locations = new Locations()
  let repair: Repair | undefined
  const objects = new ClusterObjects({
    placement,
    client,
    store,
    locations,
    ack: config.ack,
    peerTimeoutMs: Math.max(500, Math.floor(config.probeTimeoutMs / 2)),
    metrics,
    log,
    underReplicated: (meta) => repair?.underReplicated(meta),
    keepCopies: config.peerReadCache && config.mode !== 'cache-only'
  })
  const gate = new OwnershipGate({ placement, objects, log, recheckMs: Math.max(200, config.probeIntervalMs) })
  // Ownership moves with the view: versions waiting for another holder are looked at again at once.
  membership.onChange((ev) => { if (ev.type !== 'rejoined') gate.viewChanged() })
  repair = new Repair({
    store, membership, placement, objects,
    tiered: config.mode !== 'cache-only',
    refillGraceMs: config.refillGraceMs,
    refillRate: config.refillRate,
    metrics,
    log
  })
  // The home drops the copies of a version it replaced on the nodes that held it.
  store.watch((ev) => {
    if (ev.type === 'commit') objects.committed(ev.meta, ev.previous)
  })
  registry.gauge('ckptcache_cluster_live_nodes', 'Nodes live in this node\'s view, this one included.', () => membership.live().length)
  registry.gauge('ckptcache_cluster_repair_pending', 'Objects waiting for a copy (refill, drain).', () => repair?.pending ?? 0)
  let server: PeerServer | undefined

  return {
    nodeId,
    objects,
    gate,
    async start (writeback) {
      if (writeback !== undefined) gate.cleaned = async (c, n, etag, upstreamEtag) => await writeback.cleaned(c, n, etag, upstreamEtag)
      const handler = new LocalPeerHandler({
        bootId, store, membership, placement, locations, objects, metrics, log,
        ...(writeback === undefined ? {} : { writeback }),
        reconciling: () => repair?.reconciling === true,
        onCleaned: (c, n) => { gate.forget(c, n) }
      })
      membership.start()
      await membership.ready()
      log.info({ nodeId, live: membership.live().map((n) => n.id) }, 'cluster: first probe round done')
      // After a restart this node's copies may be stale: each object's home says which before the
      // peer API opens (until then the peers see this node down and read elsewhere).
      if (store.stats().objects > 0) {
        await repair?.reconcile().catch((err) => { log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cluster: start-up reconcile failed; serving the local copies as they are') })
      }
      server = createPeerServer({ handler, secret, replayWindowMs: config.replayWindowMs, log })
      const port = await server.listen(config.peerHost, config.peerPort)
      repair?.start()
      repair?.scanLater()
      return port
    },
    status () {
      const live = new Set(membership.live().map((n) => n.id))
      const nodes = [membership.self, ...membership.known().filter((n) => n.id !== nodeId)].map((n) => ({
        id: n.id, url: n.url, live: n.id === nodeId || live.has(n.id), draining: n.draining === true, self: n.id === nodeId
      }))
      return {
        nodeId,
        replicas: config.replicas,
        ack: config.ack,
        draining: membership.self.draining === true,
        nodes,
        refill: { pendingObjects: repair?.pending ?? 0, copiedObjects: repair?.copiedObjects ?? 0, copiedBytes: repair?.copiedBytes ?? 0 }
      }
    },
    drain () {
      return (repair as Repair).drain()
    },
    async close () {
      await repair?.close()
      await membership.close()
      await server?.close()
      await client.close()
    }
  }
}
