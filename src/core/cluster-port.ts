/**
 * The cluster as the object core sees it (DESIGN.md, Placement): where the other copies of a
 * version go, versions other nodes hold, cluster-wide listings and deletes, containers known
 * elsewhere. Implemented by `src/cluster/`; absent on a node without peers.
 */
import type { Readable } from 'node:stream'
import type { StoreListPage } from '../store/local-store.js'
import type { ListQuery } from '../store/sorted-names.js'
import type { ByteRange, ContainerMeta, ObjectMeta } from './types.js'

export interface ObjectCluster {
  /**
   * After a local commit of `meta`: `replicas - 1` more copies on the first other nodes of its
   * order (and the home told where it lives). With ack=all this resolves when they are durable
   * (CC_ERR_PEER_UNAVAILABLE when too few nodes took a copy); with ack=local at once.
   */
  placed (meta: ObjectMeta): Promise<void>
  /** A version this node does not hold: asks the home, then the next nodes of the order (O(replicas) requests). */
  lookup (container: string, name: string, signal?: AbortSignal): Promise<ObjectMeta | undefined>
  /** Streams a version `lookup` found (`origin: 'peer'`), from its holder or another one. */
  read (meta: ObjectMeta, range?: ByteRange, signal?: AbortSignal): Readable
  /** The local page merged with every other live node's page of the same query (one request per node). */
  list (container: string, query: ListQuery, local: StoreListPage, signal?: AbortSignal): Promise<StoreListPage>
  /** A client deleted `meta` here: the other copies are dropped and the home remembers the delete. */
  deleted (meta: ObjectMeta): Promise<void>
  /** A client delete of a version only peers hold (`origin: 'peer'`): carried out by its holder. */
  deleteRemote (meta: ObjectMeta): Promise<void>
  /** A container created here: the other live nodes create it too (best effort; others adopt it on use). */
  containerCreated (meta: ContainerMeta): Promise<void>
  /** A container another live node knows (created while this node was away). */
  findContainer (name: string, signal?: AbortSignal): Promise<ContainerMeta | undefined>
  /** A container deleted here: the other live nodes drop theirs with every copy in it. */
  containerDeleted (name: string): Promise<void>
}
