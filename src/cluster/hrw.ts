/**
 * Rendezvous (highest random weight) hashing: every node gets a weight per
 * key, and the key's order is the nodes by falling weight. Removing a node
 * only moves the keys it was first for; adding one only moves keys to it,
 * about 1/N of them. Pure: no I/O, no clock, the same answer on every node.
 *
 * The weight of (node, key) is a 53-bit mix of a 64-bit hash of the node id
 * and one of the key, in 32-bit `Math.imul` arithmetic: one string hash per
 * key, a cached one per node, and a few multiplies per pair. Changing the
 * hash functions changes the placement of every object in a running
 * cluster: every node of a cluster must run the same version of this file.
 */

/** The key an object is placed by. */
export function placementKey (container: string, name: string): string {
  return `${container}/${name}`
}

/** All of `nodeIds`, highest weight for `key` first; ties (vanishingly rare) by id. Duplicates are kept. */
export function order (nodeIds: readonly string[], key: string): string[] {
  const kh = hashString(key)
  const ranked = nodeIds.map(id => ({ id, w: weight(nodeHash(id), kh) }))
  ranked.sort(compare)
  return ranked.map(r => r.id)
}

/** The first `k` of `order(nodeIds, key)`, in one pass over the nodes (O(N·k), k is small). */
export function top (nodeIds: readonly string[], key: string, k: number): string[] {
  const n = nodeIds.length
  if (k <= 0 || n === 0) return []
  if (k >= n) return order(nodeIds, key)
  const kh = hashString(key)
  // The best k so far, best first: insertion into a k-slot array.
  const best: Ranked[] = []
  for (const id of nodeIds) {
    const cand: Ranked = { id, w: weight(nodeHash(id), kh) }
    if (best.length === k && compare(cand, best[k - 1] as Ranked) >= 0) continue
    let i = best.length === k ? k - 1 : best.length
    while (i > 0 && compare(cand, best[i - 1] as Ranked) < 0) {
      best[i] = best[i - 1] as Ranked
      i--
    }
    best[i] = cand
  }
  return best.map(r => r.id)
}

interface Ranked { id: string, w: number }

/** Higher weight first, then the smaller id: a total order, identical everywhere. */
function compare (a: Ranked, b: Ranked): number {
  if (a.w !== b.w) return b.w - a.w
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Two 32-bit lanes of a 64-bit hash. */
type Hash64 = readonly [number, number]

/** Per-node hashes; node ids are few, the bound only guards against a caller passing keys. */
const NODE_CACHE_MAX = 4096
const nodeCache = new Map<string, Hash64>()

function nodeHash (id: string): Hash64 {
  let h = nodeCache.get(id)
  if (h === undefined) {
    h = hashString(id)
    if (nodeCache.size >= NODE_CACHE_MAX) nodeCache.delete(nodeCache.keys().next().value as string)
    nodeCache.set(id, h)
  }
  return h
}

/** The pair's 53-bit weight: the two hashes xored, then mixed across both lanes. */
function weight (node: Hash64, key: Hash64): number {
  let a = node[0] ^ key[0]
  let b = node[1] ^ key[1]
  a = (a + b) | 0
  b = (b + a) | 0
  a = fmix32(a)
  b = fmix32(b ^ 0x5bd1e995)
  a = (a + b) | 0
  b = (b + a) | 0
  return (a >>> 0) * 0x200000 + (b >>> 11)
}

const C1 = 0xcc9e2d51
const C2 = 0x1b873593
const C3 = 0x85ebca6b

/** A 64-bit (two-lane) MurmurHash3-style hash of the string's UTF-16 code units, two per round. */
function hashString (s: string): Hash64 {
  const n = s.length
  let h1 = 0x9747b28c
  let h2 = 0x38495ab5
  let i = 0
  for (; i + 1 < n; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h1 ^= k
    h1 = (h1 << 13) | (h1 >>> 19)
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0
    h2 ^= Math.imul(k ^ (k >>> 16), C3)
    h2 = (h2 << 17) | (h2 >>> 15)
    h2 = (Math.imul(h2, 5) + 0x561ccd1b) | 0
  }
  if (i < n) {
    let k = s.charCodeAt(i)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h1 ^= k
    h2 ^= Math.imul(k ^ (k >>> 16), C3)
  }
  h1 ^= n
  h2 ^= n
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  h1 = fmix32(h1)
  h2 = fmix32(h2)
  h1 = (h1 + h2) | 0
  h2 = (h2 + h1) | 0
  return [h1, h2]
}

/** MurmurHash3's finalizer: every input bit flips each output bit with probability ~1/2. */
function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}
