/**
 * Placement as a pure function of this node's view (DESIGN.md, Placement): the rendezvous order
 * of live nodes per object, the home, where a write's other copies go, and the writeback owner.
 * Cost per call is O(live nodes) hashing (O(holders) for the owner), never a peer request.
 */
import { placementKey, top } from './hrw.js'
import type { Membership, NodeInfo } from './types.js'

export class Placement {
  readonly #m: Membership
  readonly replicas: number

  constructor (membership: Membership, replicas: number) {
    this.#m = membership
    this.replicas = replicas
  }

  get selfId (): string {
    return this.#m.self.id
  }

  get selfDraining (): boolean {
    return this.#m.self.draining === true
  }

  /** Live nodes that take new copies: draining ones hand data away, so they take none. */
  #placeable (): string[] {
    const ids: string[] = []
    for (const n of this.#m.live()) if (n.draining !== true) ids.push(n.id)
    return ids
  }

  /** The first `k` live nodes (draining ones included, they are still readable) of the object's rendezvous order. */
  readOrder (container: string, name: string, k: number): NodeInfo[] {
    const ids = this.#m.live().map((n) => n.id)
    return top(ids, placementKey(container, name), k).map((id) => this.node(id)).filter((n): n is NodeInfo => n !== undefined)
  }

  /** The first placeable node of the order: it always holds a copy or knows where the object lives. */
  home (container: string, name: string): NodeInfo | undefined {
    const [id] = top(this.#placeable(), placementKey(container, name), 1)
    return id === undefined ? undefined : this.#m.node(id)
  }

  /**
   * Where `count` more copies of a version go: the first placeable nodes of its order that are
   * not in `exclude` (the writer, nodes that failed). In order, so the home comes first.
   */
  targets (container: string, name: string, exclude: ReadonlySet<string>, count: number): NodeInfo[] {
    if (count <= 0) return []
    const ids = this.#placeable().filter((id) => !exclude.has(id))
    return top(ids, placementKey(container, name), count).map((id) => this.#m.node(id)).filter((n): n is NodeInfo => n !== undefined)
  }

  /**
   * The writeback owner of a version held by `holders`: the first of its order among the live,
   * non-draining holders (this node counts as live). Undefined when none is.
   */
  owner (container: string, name: string, holders: readonly string[]): string | undefined {
    const live = holders.filter((id) => {
      if (id === this.#m.self.id) return this.#m.self.draining !== true
      const n = this.#m.node(id)
      return n !== undefined && this.#m.isLive(id) && n.draining !== true
    })
    return top(live, placementKey(container, name), 1)[0]
  }

  isLive (id: string): boolean {
    return id === this.#m.self.id || this.#m.isLive(id)
  }

  node (id: string): NodeInfo | undefined {
    return id === this.#m.self.id ? this.#m.self : this.#m.node(id)
  }

  /** Live peers (not this node). */
  peers (): NodeInfo[] {
    return this.#m.live().filter((n) => n.id !== this.#m.self.id)
  }
}
