/**
 * Durable delete records: written before the local delete goes ahead, one per name, read back
 * after a restart, temp files and unreadable records left out, removal guarded against a newer
 * record of the same name.
 */
import t from 'tap'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Tombstones, recordFileName } from '../../src/upstream/tombstones.js'

t.test('records survive a restart, one per name, named by a hash', async (t) => {
  const dir = t.testdir()
  const a = new Tombstones(dir)
  t.same(await a.open(), [])
  await a.write({ container: 'c', name: '../../etc/passwd', etag: 'e1', ifMatch: 'u1', createdMs: 5 })
  await a.write({ container: 'c', name: 'x/y', etag: 'e2', createdMs: 6 })
  await a.write({ container: 'c', name: 'x/y', etag: 'e3', ifMatch: 'u3', createdMs: 7 })
  const files = (await readdir(join(dir, 'deletes'))).sort()
  t.same(files, [recordFileName('c', '../../etc/passwd'), recordFileName('c', 'x/y')].sort())
  t.match(files[0], /^[0-9a-f]{64}\.json$/)
  t.same(await readdir(join(dir, 'tmp')), [], 'no temp file left')

  const b = new Tombstones(dir)
  const recs = (await b.open()).sort((x, y) => x.etag.localeCompare(y.etag))
  t.same(recs, [
    { container: 'c', name: '../../etc/passwd', etag: 'e1', ifMatch: 'u1', createdMs: 5 },
    { container: 'c', name: 'x/y', etag: 'e3', ifMatch: 'u3', createdMs: 7 }
  ], 'the later record of a name replaced the earlier one')
  t.notOk('ifMatch' in (await (async () => {
    await b.write({ container: 'd', name: 'n', etag: 'e4', createdMs: 8 })
    return JSON.parse(await readFile(join(dir, 'deletes', recordFileName('d', 'n')), 'utf8')) as object
  })()), 'an unconditional record has no ifMatch')
})

t.test('open removes temp files and skips unreadable or misnamed records', async (t) => {
  const dir = t.testdir({ deletes: {}, tmp: { 'w-123': 'half a record' } })
  await writeFile(join(dir, 'deletes', 'garbage.json'), '{not json')
  await writeFile(join(dir, 'deletes', recordFileName('c', 'other')), JSON.stringify({ container: 'c', name: 'n', etag: 'e', createdMs: 1 }))
  await writeFile(join(dir, 'deletes', recordFileName('c', 'n')), JSON.stringify({ container: 'c', name: 'n', etag: 'e', createdMs: 1 }))
  const bad: string[] = []
  const recs = await new Tombstones(dir).open((file) => bad.push(file))
  t.same(recs, [{ container: 'c', name: 'n', etag: 'e', createdMs: 1 }])
  t.same(bad.sort(), ['garbage.json', recordFileName('c', 'other')].sort())
  t.same(await readdir(join(dir, 'tmp')), [])
})

t.test('remove is durable, tolerates a missing record, and keeps a record its guard says is newer', async (t) => {
  const dir = t.testdir()
  const ts = new Tombstones(dir)
  await ts.open()
  await ts.write({ container: 'c', name: 'n', etag: 'e', createdMs: 1 })
  await ts.remove('c', 'n', () => false)
  t.equal((await readdir(join(dir, 'deletes'))).length, 1, 'the guard kept it')
  await ts.remove('c', 'n')
  t.same(await readdir(join(dir, 'deletes')), [])
  await ts.remove('c', 'n')
  t.same(await new Tombstones(dir).open(), [])
})

t.test('a write and a remove of one name are serialized: the write that comes last wins', async (t) => {
  const dir = t.testdir()
  const ts = new Tombstones(dir)
  await ts.open()
  await ts.write({ container: 'c', name: 'n', etag: 'e1', createdMs: 1 })
  let wanted = true
  const removal = ts.remove('c', 'n', () => wanted)
  const rewrite = (async () => {
    wanted = false
    await ts.write({ container: 'c', name: 'n', etag: 'e2', createdMs: 2 })
  })()
  await Promise.all([removal, rewrite])
  t.same((await new Tombstones(dir).open()).map((r) => r.etag), ['e2'])
})
