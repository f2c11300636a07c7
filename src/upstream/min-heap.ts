/**
 * A binary min-heap of distinct values with numeric keys, where a value's key
 * can change and any value can be removed in O(log n). The writeback queue
 * orders uploads by commit sequence and retries by due time with it, and keeps
 * exactly one node per queued object (no stale duplicates to skip or grow).
 */
interface Node<T> {
  value: T
  key: number
  index: number
}

export class MinHeap<T> {
  readonly #nodes: Array<Node<T>> = []
  readonly #byValue = new Map<T, Node<T>>()

  get size (): number {
    return this.#nodes.length
  }

  has (value: T): boolean {
    return this.#byValue.has(value)
  }

  /** Inserts `value` with `key`, or moves it to `key` when it is already in. */
  set (value: T, key: number): void {
    const node = this.#byValue.get(value)
    if (node === undefined) {
      const added: Node<T> = { value, key, index: this.#nodes.length }
      this.#nodes.push(added)
      this.#byValue.set(value, added)
      this.#up(added.index)
      return
    }
    const old = node.key
    node.key = key
    if (key < old) this.#up(node.index)
    else this.#down(node.index)
  }

  /** Removes `value`; false when it was not in. */
  delete (value: T): boolean {
    const node = this.#byValue.get(value)
    if (node === undefined) return false
    this.#byValue.delete(value)
    const last = this.#nodes.pop() as Node<T>
    if (last !== node) {
      last.index = node.index
      this.#nodes[node.index] = last
      this.#up(last.index)
      this.#down(last.index)
    }
    return true
  }

  peek (): T | undefined {
    return this.#nodes[0]?.value
  }

  peekKey (): number | undefined {
    return this.#nodes[0]?.key
  }

  /** The smallest key of a value other than `except` (the root, or the smaller child of the root). */
  minKeyExcept (except: T): number | undefined {
    const root = this.#nodes[0]
    if (root === undefined) return undefined
    if (root.value !== except) return root.key
    const a = this.#nodes[1]?.key
    const b = this.#nodes[2]?.key
    if (a === undefined) return b
    if (b === undefined) return a
    return Math.min(a, b)
  }

  pop (): T | undefined {
    const root = this.#nodes[0]
    if (root === undefined) return undefined
    this.delete(root.value)
    return root.value
  }

  values (): IterableIterator<T> {
    return this.#byValue.keys()
  }

  #up (i: number): void {
    const nodes = this.#nodes
    const node = nodes[i] as Node<T>
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = nodes[p] as Node<T>
      if (parent.key <= node.key) break
      nodes[i] = parent
      parent.index = i
      i = p
    }
    nodes[i] = node
    node.index = i
  }

  #down (i: number): void {
    const nodes = this.#nodes
    const n = nodes.length
    const node = nodes[i] as Node<T>
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && (nodes[r] as Node<T>).key < (nodes[l] as Node<T>).key ? r : l
      const child = nodes[c] as Node<T>
      if (child.key >= node.key) break
      nodes[i] = child
      child.index = i
      i = c
    }
    nodes[i] = node
    node.index = i
  }
}
