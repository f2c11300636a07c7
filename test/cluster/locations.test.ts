import t from 'tap'
import { Locations } from '../../src/cluster/locations.js'

const item = (etag: string, lastModifiedMs: number) => ({ container: 'c', name: 'n', etag, lastModifiedMs })

t.test('a returning copy is current, stale or unknown by what the home holds or recorded', async (t) => {
  const loc = new Locations()
  t.equal(loc.verdict(item('v1', 10), undefined), 'unknown', 'nothing known: keep it')
  t.equal(loc.verdict(item('v1', 10), { etag: 'v1', lastModifiedMs: 10 }), 'current', 'the home holds the same version')
  t.equal(loc.verdict(item('v1', 10), { etag: 'v2', lastModifiedMs: 20 }), 'stale', 'the home holds a newer version')
  t.equal(loc.verdict(item('v3', 30), { etag: 'v2', lastModifiedMs: 20 }), 'unknown', 'the home holds an older version: it cannot judge')
  loc.record('c', 'n', { etag: 'v2', lastModifiedMs: 20, holders: ['a', 'b'] })
  t.equal(loc.verdict(item('v1', 10), undefined), 'stale', 'a newer version recorded')
  t.equal(loc.verdict(item('v2', 20), undefined), 'current', 'the recorded version')
})

t.test('deletes are remembered for returning nodes; a later write clears them', async (t) => {
  const loc = new Locations()
  loc.record('c', 'n', { etag: 'v1', lastModifiedMs: 10, holders: ['a'] })
  loc.deleted('c', 'n', 10)
  t.equal(loc.get('c', 'n'), undefined, 'the location record goes with the delete')
  t.equal(loc.verdict(item('v1', 10), undefined), 'stale', 'a copy of the deleted version is stale')
  loc.record('c', 'n', { etag: 'v2', lastModifiedMs: 50, holders: ['b'] })
  t.equal(loc.verdict(item('v2', 50), undefined), 'current', 'the new version is current again')
})

t.test('records: an older version never replaces a newer one; the same version merges holders', async (t) => {
  const loc = new Locations()
  t.equal(loc.record('c', 'n', { etag: 'v2', lastModifiedMs: 20, holders: ['a'] }), undefined)
  t.equal(loc.record('c', 'n', { etag: 'v1', lastModifiedMs: 10, holders: ['b'] }), undefined, 'older: ignored')
  t.same(loc.get('c', 'n'), { etag: 'v2', lastModifiedMs: 20, holders: ['a'] })
  loc.record('c', 'n', { etag: 'v2', lastModifiedMs: 20, holders: ['c'] })
  t.same(loc.get('c', 'n')?.holders, ['a', 'c'], 'holders of the same version merge')
  const replaced = loc.record('c', 'n', { etag: 'v3', lastModifiedMs: 30, holders: ['d'] })
  t.same(replaced, { etag: 'v2', lastModifiedMs: 20, holders: ['a', 'c'] }, 'a newer version returns the record it replaced')
})

t.test('bounded: the least recently used records go first', async (t) => {
  const loc = new Locations({ maxRecords: 2 })
  loc.record('c', 'a', { etag: 'x', lastModifiedMs: 1, holders: [] })
  loc.record('c', 'b', { etag: 'x', lastModifiedMs: 1, holders: [] })
  loc.record('c', 'c', { etag: 'x', lastModifiedMs: 1, holders: [] })
  t.equal(loc.get('c', 'a'), undefined)
  t.ok(loc.get('c', 'c'))
})
