import { CacheError, isCacheError } from '../errors.js'
import type { LocalStore } from '../store/local-store.js'
import type { ObjectCluster } from './cluster-port.js'
import { checkWriteConditions } from './conditions.js'
import { upstreamMeta } from './tier-listing.js'
import type { ObjectTier } from './tier-port.js'
import type { Conditions, ContainerMeta, UserMetadata } from './types.js'

/**
 * Container semantics shared by the Blob and S3 front ends: create, get, list, metadata and
 * delete, kept in step with the other nodes of a cluster and with the cloud tier's upstream, and
 * the adoption of a container the cache does not know but a peer or the upstream holds.
 */
export class ContainerService {
  readonly #store: LocalStore
  readonly #tier: ObjectTier | undefined
  readonly #cluster: ObjectCluster | undefined

  constructor (store: LocalStore, opts: { tier?: ObjectTier | undefined, cluster?: ObjectCluster | undefined } = {}) {
    this.#store = store
    this.#tier = opts.tier
    this.#cluster = opts.cluster
  }

  /** Create Container / CreateBucket; in a cluster the other live nodes create it too. */
  async create (name: string, metadata: UserMetadata): Promise<ContainerMeta> {
    const cluster = this.#cluster
    if (cluster === undefined) return await this.#store.createContainer(name, metadata)
    // Created on another node while this one was away: it exists.
    if (this.#store.getContainer(name) === undefined && await this.#adoptFromPeers(name)) throw new CacheError('CC_ERR_CONTAINER_EXISTS')
    const meta = await this.#store.createContainer(name, metadata)
    await cluster.containerCreated(meta)
    return meta
  }

  /** The cached container; never asks peers or the upstream. */
  get (name: string): ContainerMeta {
    const c = this.#store.getContainer(name)
    if (c === undefined) throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    return c
  }

  /** Like `get`, after adopting a container a peer or the upstream holds (see `adopt`). */
  async resolve (name: string, signal?: AbortSignal): Promise<ContainerMeta> {
    await this.adopt(name, signal)
    return this.get(name)
  }

  list (prefix?: string): ContainerMeta[] {
    return this.#store.listContainers(prefix)
  }

  setMetadata (name: string, metadata: UserMetadata, conditions?: Conditions): Promise<ContainerMeta> {
    return this.#store.setContainerMetadata(name, metadata, (c) => checkWriteConditions(c, conditions))
  }

  /**
   * Delete Container / DeleteBucket. With a cloud tier the container's objects are removed from
   * the upstream too (else they would stay there and the container would be adopted again on its
   * next use): the cached container goes first (which cancels its pending uploads), then every
   * upstream blob the listing shows, each If-Match its listed etag. A failure there (the upstream
   * unreachable) fails the request after the local delete; a retry finishes the upstream part.
   */
  async delete (name: string, conditions?: Conditions, requireEmpty = false): Promise<void> {
    const tier = this.#tier
    const cluster = this.#cluster
    if (cluster !== undefined) {
      await this.adopt(name)
      // S3 DeleteBucket: objects other nodes hold count too.
      if (requireEmpty && (await cluster.list(name, { maxResults: 1 }, { entries: [] })).entries.length > 0) throw new CacheError('CC_ERR_CONTAINER_NOT_EMPTY')
    }
    if (tier === undefined) {
      await this.#store.deleteContainer(name, { precheck: (c) => checkWriteConditions(c, conditions), requireEmpty })
      await cluster?.containerDeleted(name)
      return
    }
    await this.adopt(name)
    if (requireEmpty) {
      // S3 DeleteBucket: objects only the upstream holds count too.
      const probe = await tier.listUpstream(name, { maxResults: 10 })
      if (probe.entries.some((e) => e.kind === 'prefix' || !tier.writeback.deletePending(name, e.name))) throw new CacheError('CC_ERR_CONTAINER_NOT_EMPTY')
    }
    await this.#store.deleteContainer(name, { precheck: (c) => checkWriteConditions(c, conditions), requireEmpty })
    await cluster?.containerDeleted(name)
    let startAfter: string | undefined
    for (;;) {
      const page = await tier.listUpstream(name, { maxResults: 1000, ...(startAfter === undefined ? {} : { startAfter }) })
      for (const e of page.entries) {
        if (e.kind === 'object') await tier.readThrough.deleteUpstream(upstreamMeta(name, e.name, e.props))
      }
      const last = page.entries[page.entries.length - 1]
      if (!page.truncated || last === undefined) break
      startAfter = last.name
    }
  }

  /**
   * A container the cache does not know but the upstream holds blobs of (a wiped or new node
   * restoring a checkpoint) is created locally on first use.
   */
  async adopt (container: string, signal?: AbortSignal): Promise<void> {
    const tier = this.#tier
    if (this.#store.getContainer(container) !== undefined) return
    if (await this.#adoptFromPeers(container, signal)) return
    if (tier === undefined) return
    const probe = await tier.listUpstream(container, { maxResults: 1, ...(signal === undefined ? {} : { signal }) })
    if (probe.entries.length === 0) throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    try {
      await this.#store.createContainer(container, {})
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_CONTAINER_EXISTS')) throw err
    }
  }

  /** A container another node knows is created here with its metadata. True when one was found. */
  async #adoptFromPeers (container: string, signal?: AbortSignal): Promise<boolean> {
    const known = await this.#cluster?.findContainer(container, signal)
    if (known === undefined) return false
    try {
      await this.#store.createContainer(container, known.metadata)
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_CONTAINER_EXISTS')) throw err
    }
    return true
  }
}
