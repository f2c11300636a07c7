/** The cluster's counters on /metrics: peer requests made and served, bytes across peers, re-replication. */
import type { Counter, Metrics } from '../admin/metrics.js'

export interface ClusterMetrics {
  /** Peer requests this node made, by operation (write, read, head, list, …). */
  requests: Counter
  /** Peer requests this node served, by operation. */
  handled: Counter
  /** Object bytes sent to and received from peers. */
  bytes: Counter
  /** The node's served-bytes counter (`source=peer`: bytes a client read from a peer's copy). */
  served: Counter
  /** Copies made by re-replication (refill, drain) and their bytes. */
  repairs: Counter
  repairBytes: Counter
}

export function createClusterMetrics (registry: Metrics): ClusterMetrics {
  return {
    requests: registry.counter('ckptcache_peer_requests_total', 'Peer requests this node made, by operation.', ['op']),
    handled: registry.counter('ckptcache_peer_requests_served_total', 'Peer requests this node served, by operation.', ['op']),
    bytes: registry.counter('ckptcache_peer_bytes_total', 'Object bytes sent to or received from peers.', ['direction']),
    served: registry.counter('ckptcache_served_bytes_total', 'Object bytes served to clients, by where they came from (local, peer, upstream).', ['source']),
    repairs: registry.counter('ckptcache_cluster_repairs_total', 'Copies made to restore the configured replica count (refill after a node loss, drain).', ['reason']),
    repairBytes: registry.counter('ckptcache_cluster_repair_bytes_total', 'Bytes copied by refill and drain.', ['reason'])
  }
}
