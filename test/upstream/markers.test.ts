/**
 * Commit markers: basename globs, directories, the per-directory order that holds markers back
 * until what was committed before them in their directory is upstream, and the heap under it.
 */
import t from 'tap'
import { DEFAULT_MARKER_PATTERNS, DirectoryOrder, baseNameOf, directoryOf, globToRegExp, markerMatcher } from '../../src/upstream/markers.js'
import { MinHeap } from '../../src/upstream/min-heap.js'

t.test('default patterns: DCP .metadata, _SUCCESS, *.complete, matched on the basename', async (t) => {
  const isMarker = markerMatcher(DEFAULT_MARKER_PATTERNS)
  t.ok(isMarker('.metadata'))
  t.ok(isMarker('ckpt/step-100/.metadata'))
  t.ok(isMarker('out/_SUCCESS'))
  t.ok(isMarker('ckpt/step-100.complete'))
  t.ok(isMarker('a/b/.complete'), '* matches an empty run')
  t.notOk(isMarker('ckpt/step-100/__0_0.distcp'))
  t.notOk(isMarker('ckpt/.metadata.bak'), 'whole-basename match')
  t.notOk(isMarker('ckpt/x.metadata'))
  t.notOk(isMarker('ckpt/_SUCCESS/part-0'), 'a directory named like a marker is not one')
  t.notOk(isMarker('ckpt/step.complete/x'))
})

t.test('globs: * and ? only, everything else literal', async (t) => {
  t.ok(globToRegExp('step-??.done').test('step-01.done'))
  t.notOk(globToRegExp('step-??.done').test('step-1.done'))
  t.ok(globToRegExp('a.b').test('a.b'))
  t.notOk(globToRegExp('a.b').test('axb'), '. is literal')
  t.ok(globToRegExp('[x](y)+$^{}|\\').test('[x](y)+$^{}|\\'), 'regex characters are literal')
  t.ok(globToRegExp('*').test('anything'))
  t.notOk(globToRegExp('*').test('a/b'), '* does not cross /')
  t.ok(globToRegExp('é?').test('éü'), '? is one character, not one code unit')
  t.notOk(markerMatcher([])('.metadata'), 'no patterns: no markers')
  t.ok(markerMatcher(['*.ready', 'DONE'])('x/y/DONE'))
})

t.test('directory and basename of a name', async (t) => {
  t.equal(directoryOf('a/b/c'), 'a/b/')
  t.equal(directoryOf('c'), '')
  t.equal(directoryOf('a/'), 'a/')
  t.equal(baseNameOf('a/b/c'), 'c')
  t.equal(baseNameOf('c'), 'c')
})

interface Item { dir: string, id: string }

t.test('DirectoryOrder: a marker waits for earlier blockers of its own directory only', async (t) => {
  const order = new DirectoryOrder<Item>((i) => i.dir)
  const shard0 = { dir: 'c/ckpt/', id: 's0' }
  const shard1 = { dir: 'c/ckpt/', id: 's1' }
  const deeper = { dir: 'c/ckpt/sub/', id: 'deep' }
  const other = { dir: 'd/ckpt/', id: 'other container' }
  const meta = { dir: 'c/ckpt/', id: '.metadata' }
  const late = { dir: 'c/ckpt/', id: 'written after the marker' }
  order.block(shard0, 1)
  order.block(shard1, 2)
  order.block(deeper, 3)
  order.block(other, 0)
  order.block(meta, 4)
  order.block(late, 5)
  t.ok(order.blocked(meta, 4))
  order.park(meta, 4)
  t.ok(order.isParked(meta))
  order.unblock(shard0)
  t.same(order.release('c/ckpt/'), [], 'shard 1 still dirty')
  order.unblock(shard1)
  t.same(order.release('c/ckpt/'), [meta], 'the deeper directory, the other container and later writes do not hold it back')
  t.notOk(order.isParked(meta))
  t.notOk(order.blocked(meta, 4))
  t.ok(order.blocked(late, 5), 'the marker still blocks what came after it until it is upstream')
})

t.test('DirectoryOrder: a blocker that moves to a later seq releases markers before it', async (t) => {
  const order = new DirectoryOrder<Item>((i) => i.dir)
  const a = { dir: 'x/', id: 'a' }
  const m = { dir: 'x/', id: 'm' }
  order.block(a, 1)
  order.block(m, 5)
  order.park(m, 5)
  t.same(order.release('x/'), [])
  order.block(a, 7) // a's older version is upstream; its newer one was committed after the marker
  t.same(order.release('x/'), [m])
})

t.test('DirectoryOrder: markers go in their own order, and an unparked marker is not released', async (t) => {
  const order = new DirectoryOrder<Item>((i) => i.dir)
  const s = { dir: 'x/', id: 's' }
  const m1 = { dir: 'x/', id: 'm1' }
  const m2 = { dir: 'x/', id: 'm2' }
  const m3 = { dir: 'x/', id: 'm3' }
  order.block(s, 1)
  order.block(m1, 2)
  order.block(m2, 3)
  order.block(m3, 4)
  order.park(m1, 2)
  order.park(m2, 3)
  order.park(m3, 4)
  order.unpark(m3)
  order.unblock(s)
  t.same(order.release('x/'), [m1], 'm2 waits for m1, which is released but not yet upstream')
  order.unblock(m1)
  t.same(order.release('x/'), [m2])
  t.same(order.release('x/'), [])
  t.equal(order.parkedCount, 0)
})

t.test('MinHeap: order, key changes, removal from the middle', async (t) => {
  const h = new MinHeap<string>()
  const keys: Record<string, number> = {}
  for (let i = 0; i < 200; i++) {
    const v = `v${i}`
    keys[v] = (i * 7919) % 211
    h.set(v, keys[v] as number)
  }
  for (let i = 0; i < 200; i += 3) {
    h.delete(`v${i}`)
    delete keys[`v${i}`]
  }
  for (let i = 1; i < 200; i += 5) {
    if (keys[`v${i}`] === undefined) continue
    keys[`v${i}`] = 500 - i
    h.set(`v${i}`, 500 - i)
  }
  t.equal(h.size, Object.keys(keys).length)
  const out: number[] = []
  for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(keys[v] as number)
  t.same(out, Object.values(keys).sort((a, b) => a - b))
  t.equal(h.size, 0)
  t.notOk(h.delete('v1'))

  const g = new MinHeap<string>()
  g.set('a', 1)
  g.set('b', 3)
  g.set('c', 2)
  t.equal(g.minKeyExcept('a'), 2)
  t.equal(g.minKeyExcept('b'), 1)
  g.delete('c')
  t.equal(g.minKeyExcept('a'), 3)
  g.delete('b')
  t.equal(g.minKeyExcept('a'), undefined)
})
