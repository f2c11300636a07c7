import { CacheError } from '../errors.js'
import type { ContainerMeta, ObjectMeta } from '../core/types.js'
import type { Capacity } from './capacity.js'
import type { ListedEntry, StoreListPage } from './local-store.js'
import { SortedNames, type ListQuery } from './sorted-names.js'

/** A container in memory: its record and its current objects, by name and in name order. */
export interface ContainerState {
  meta: ContainerMeta
  names: SortedNames
  objects: Map<string, ObjectMeta>
}

/**
 * The store's in-memory index: the containers, their current objects by name (and in name order,
 * for listing) and every object by hash, with the committed bytes charged to the capacity.
 * Synchronous and free of I/O: it holds what the last commits (or the start-up scan) made current.
 */
export class StoreIndex {
  readonly #capacity: Capacity
  readonly #containers = new Map<string, ContainerState>()
  readonly #byHash = new Map<string, ObjectMeta>()

  constructor (capacity: Capacity) {
    this.#capacity = capacity
  }

  get containerCount (): number {
    return this.#containers.size
  }

  get objectCount (): number {
    return this.#byHash.size
  }

  /** Adds a container with no objects. */
  addContainer (meta: ContainerMeta): void {
    this.#containers.set(meta.name, { meta, names: new SortedNames(), objects: new Map() })
  }

  /** Forgets a container; its objects stay indexed by hash until each is uninstalled. */
  removeContainer (name: string): void {
    this.#containers.delete(name)
  }

  findContainer (name: string): ContainerState | undefined {
    return this.#containers.get(name)
  }

  /** The container, or CC_ERR_CONTAINER_NOT_FOUND. */
  container (name: string): ContainerState {
    const state = this.#containers.get(name)
    if (state === undefined) throw new CacheError('CC_ERR_CONTAINER_NOT_FOUND')
    return state
  }

  /** Sorted by name. */
  listContainers (prefix: string): ContainerMeta[] {
    const out: ContainerMeta[] = []
    for (const c of this.#containers.values()) if (c.meta.name.startsWith(prefix)) out.push(c.meta)
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** The current version of a name, if any (undefined too when the container does not exist). */
  head (container: string, name: string): ObjectMeta | undefined {
    return this.#containers.get(container)?.objects.get(name)
  }

  byHash (hash: string): ObjectMeta | undefined {
    return this.#byHash.get(hash)
  }

  objects (): IterableIterator<ObjectMeta> {
    return this.#byHash.values()
  }

  list (container: string, query: ListQuery): StoreListPage {
    const state = this.container(container)
    const page = state.names.list(query)
    const entries: ListedEntry[] = []
    for (const e of page.entries) {
      if (e.kind === 'prefix') {
        entries.push(e)
      } else {
        const meta = state.objects.get(e.name)
        if (meta !== undefined) entries.push({ kind: 'object', meta })
      }
    }
    return page.next === undefined ? { entries } : { entries, next: page.next }
  }

  /** Makes `meta` the current version of its name (nothing, when its container is gone). */
  install (hash: string, meta: ObjectMeta): void {
    const state = this.#containers.get(meta.container)
    if (state === undefined) return
    const old = state.objects.get(meta.name)
    state.objects.set(meta.name, meta)
    if (old === undefined) state.names.add(meta.name)
    this.#byHash.set(hash, meta)
    this.#capacity.setObject(hash, old?.size, meta.size)
  }

  /** Forgets `meta`, where it is still the indexed version. */
  uninstall (hash: string, meta: ObjectMeta): void {
    const state = this.#containers.get(meta.container)
    if (state !== undefined && state.objects.get(meta.name) === meta) {
      state.objects.delete(meta.name)
      state.names.delete(meta.name)
    }
    if (this.#byHash.get(hash) === meta) {
      this.#byHash.delete(hash)
      this.#capacity.setObject(hash, meta.size, undefined)
    }
  }
}
