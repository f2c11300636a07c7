import t from 'tap'
import { DirtyNames } from '../../src/upstream/dirty-names.js'
import type { ObjectMeta } from '../../src/core/types.js'

function meta (name: string, seq: number): ObjectMeta {
  return { container: 'c', name, size: 10, etag: `e-${name}-${seq}`, createdMs: 0, lastModifiedMs: 0, content: {}, metadata: {}, checksums: {}, extents: [], fromBlocks: false, dirty: true, seq }
}

t.test('deferred versions wait for their time or a view change; failed retries keep their backoff', async (t) => {
  const names = new DirtyNames(() => false, () => {})
  names.track(meta('a', 1))
  names.track(meta('b', 2))
  names.track(meta('c', 3))
  const a = names.popReady()
  const b = names.popReady()
  const c = names.popReady()
  t.equal(names.popReady(), undefined, 'all three popped')
  const later = Date.now() + 60_000
  names.defer(a!, later)
  names.defer(b!, later)
  names.enqueueRetry(c!, later)
  t.equal(a!.where, 'deferred')
  t.equal(names.nextRetryAt(), later, 'deferred versions are due at their time like retries')
  names.releaseDue(Date.now())
  t.equal(names.popReady(), undefined, 'nothing due yet')
  names.releaseDeferred()
  t.same([names.popReady()?.name, names.popReady()?.name, names.popReady()], ['a', 'b', undefined], 'a view change releases the deferred ones, in upload order')
  t.equal(c!.where, 'retry', 'a failed upload keeps its backoff')
  names.releaseDue(later)
  t.equal(names.popReady()?.name, 'c', 'and goes when it is due')
  names.defer(a!, later)
  names.releaseDue(later)
  t.equal(names.popReady()?.name, 'a', 'a deferred version also goes when its time comes')
  names.releaseDeferred()
  t.equal(names.popReady(), undefined, 'released once only')
})
