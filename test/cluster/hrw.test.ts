/**
 * Rendezvous ordering: the same everywhere, balanced, and a membership change
 * moves only the keys it must.
 */
import t from 'tap'
import { order, placementKey, top } from '../../src/cluster/hrw.js'

const nodes = (n: number, prefix = 'node-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`)
const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => placementKey('ckpt', `run-7/step-${Math.floor(i / 64)}/shard-${i % 64}.pt`))

function shuffled<T> (xs: readonly T[], seed: number): T[] {
  const out = [...xs]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    const j = s % (i + 1)
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}

t.test('placement key is container/name', async t => {
  t.equal(placementKey('c', 'a/b.pt'), 'c/a/b.pt')
})

t.test('deterministic, a permutation of the ids, independent of their input order', async t => {
  const ids = nodes(12, 'gpu-')
  let bad = 0
  for (const [i, key] of keys(2000).entries()) {
    const o = order(ids, key)
    if ([...o].sort().join() !== [...ids].sort().join()) bad++
    if (order(ids, key).join() !== o.join()) bad++
    if (order(shuffled(ids, i + 1), key).join() !== o.join()) bad++
  }
  t.equal(bad, 0, 'every id once, the same answer twice, whatever the input order')
  // Known answers pin the hash: every node of a cluster must compute the same orders, so a
  // change here moves every object of a running cluster.
  const five = nodes(5)
  t.same(order(five, 'ckpt/run-7/step-0/shard-0.pt'), ['node-3', 'node-4', 'node-2', 'node-0', 'node-1'])
  t.same(order(five, 'ckpt/run-7/step-0/shard-1.pt'), ['node-4', 'node-3', 'node-2', 'node-0', 'node-1'])
  t.same(order(five, 'c/x'), ['node-0', 'node-2', 'node-3', 'node-4', 'node-1'])
  t.same(order([], 'c/x'), [])
  t.same(top([], 'c/x', 2), [])
})

t.test('different keys get different orders', async t => {
  const ids = nodes(8)
  const firsts = new Set(keys(64).map(k => order(ids, k)[0]))
  t.equal(firsts.size, 8, 'every node is first for some of 64 keys')
  const orders = new Set(keys(1000).map(k => order(ids, k).join(',')))
  t.ok(orders.size > 900, `1000 keys give ${orders.size} distinct orders of 8 nodes`)
})

t.test('balance: 100k keys over 10 nodes, each first for 10% ± 1%, and second for 10% ± 1%', async t => {
  const ids = nodes(10)
  const first = new Map<string, number>()
  const second = new Map<string, number>()
  const ks = keys(100_000)
  for (const key of ks) {
    const [a, b] = top(ids, key, 2) as [string, string]
    first.set(a, (first.get(a) ?? 0) + 1)
    second.set(b, (second.get(b) ?? 0) + 1)
  }
  for (const id of ids) {
    const f = (first.get(id) ?? 0) / ks.length
    const s = (second.get(id) ?? 0) / ks.length
    t.ok(f > 0.09 && f < 0.11, `${id} first for ${(f * 100).toFixed(2)}%`)
    t.ok(s > 0.09 && s < 0.11, `${id} second for ${(s * 100).toFixed(2)}%`)
  }
})

t.test('similar node ids and keys are still balanced', async t => {
  // Ids differing in one character, keys differing in one character.
  const ids = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']
  const counts = new Map<string, number>()
  const n = 40_000
  for (let i = 0; i < n; i++) {
    const id = order(ids, `c/${i}`)[0] as string
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  for (const id of ids) {
    const share = (counts.get(id) ?? 0) / n
    t.ok(share > 0.235 && share < 0.265, `${id} first for ${(share * 100).toFixed(2)}%`)
  }
})

t.test('removing a node moves only the keys it was first for, spread over the others', async t => {
  const ids = nodes(10)
  const gone = 'node-3'
  const rest = ids.filter(id => id !== gone)
  const ks = keys(50_000)
  const moved = new Map<string, number>()
  let lost = 0
  let reordered = 0
  for (const key of ks) {
    const before = order(ids, key)
    const after = order(rest, key)
    if (after.join() !== before.filter(id => id !== gone).join()) reordered++
    if (before[0] === gone) {
      lost++
      const to = after[0] as string
      moved.set(to, (moved.get(to) ?? 0) + 1)
    }
  }
  t.equal(reordered, 0, 'every order is the old one without the removed node')
  t.ok(lost > 4500 && lost < 5500, `the removed node was first for ${lost} keys`)
  for (const id of rest) {
    const share = (moved.get(id) ?? 0) / lost
    t.ok(share > 1 / 9 - 0.025 && share < 1 / 9 + 0.025, `${id} takes ${(share * 100).toFixed(1)}% of them`)
  }
})

t.test('adding a node moves ~1/11 of the keys, all of them to the new node', async t => {
  const ids = nodes(10)
  const added = [...ids, 'node-new']
  const ks = keys(50_000)
  let moved = 0
  let elsewhere = 0
  for (const key of ks) {
    const a = top(ids, key, 1)[0]
    const b = top(added, key, 1)[0]
    if (a !== b) {
      moved++
      if (b !== 'node-new') elsewhere++
    }
  }
  t.equal(elsewhere, 0, 'no key moves between old nodes')
  const share = moved / ks.length
  t.ok(share > 1 / 11 - 0.01 && share < 1 / 11 + 0.01, `${(share * 100).toFixed(2)}% of keys move`)
})

t.test('top(k) is the prefix of order, for every k', async t => {
  const ids = nodes(9, 'n-')
  let bad = 0
  let checked = 0
  for (const key of keys(2000)) {
    const o = order(ids, key)
    for (let k = 0; k <= ids.length + 1; k++) {
      checked++
      if (top(ids, key, k).join() !== o.slice(0, k).join()) bad++
    }
  }
  t.equal(bad, 0, `top(k) equals order().slice(0, k) in ${checked} cases`)
  t.same(top(ids, 'c/x', -1), [])
})

t.test('duplicate weights fall back to the id, so the order stays total', async t => {
  // Duplicated ids have equal weights: they stay adjacent and the order is still deterministic.
  const ids = ['b', 'a', 'b', 'c']
  const o = order(ids, 'c/k')
  t.equal(o.length, 4)
  t.equal(o.indexOf('b') + 1, o.lastIndexOf('b'), 'equal weights are adjacent')
  t.same(order(['c', 'b', 'a', 'b'], 'c/k'), o)
})
