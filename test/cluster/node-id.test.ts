/**
 * The node id: generated once and kept in the data dir, a configured one wins,
 * bad ids fail with a message that says what is wrong.
 */
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isValidNodeId, loadNodeId, type NodeIdLog } from '../../src/cluster/node-id.js'
import { isCacheError } from '../../src/errors.js'

async function dataDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-node-id-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function failure (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

function recordingLog (): { warns: string[], infos: string[], log: NodeIdLog } {
  const warns: string[] = []
  const infos: string[] = []
  return { warns, infos, log: { warn: (_o, m) => { warns.push(m) }, info: (_o, m) => { infos.push(m) } } }
}

t.test('valid ids', async t => {
  for (const ok of ['a', 'n-0123456789ab', 'gpu-node-17.rack3', 'A_b.c-d', '9', 'x'.repeat(64)]) t.ok(isValidNodeId(ok), ok)
  for (const bad of ['', '-a', '.a', '_a', 'a b', 'a/b', 'a:b', 'é', 'x'.repeat(65), 'a\n']) t.notOk(isValidNodeId(bad), JSON.stringify(bad))
})

t.test('a new id is generated once, recorded, and kept across restarts', async t => {
  const dir = await dataDir(t)
  const { log, infos } = recordingLog()
  const id = await loadNodeId(dir, undefined, log)
  t.match(id, /^n-[0-9a-f]{12}$/)
  t.equal(infos.length, 1, 'the new id is logged')
  t.equal(await readFile(join(dir, 'node-id'), 'utf8'), `${id}\n`)
  t.same((await readdir(dir)).sort(), ['node-id'], 'no temp file left behind')
  t.equal(await loadNodeId(dir), id, 'the recorded id is used next time')
  const other = await dataDir(t)
  t.not(await loadNodeId(other), id, 'another data dir gets another id')
})

t.test('the data dir is created when missing', async t => {
  const dir = join(await dataDir(t), 'deep', 'er')
  const id = await loadNodeId(dir)
  t.equal((await readFile(join(dir, 'node-id'), 'utf8')).trim(), id)
})

t.test('a configured id wins and is recorded; replacing a different one warns', async t => {
  const dir = await dataDir(t)
  const first = await loadNodeId(dir)
  const { log, warns } = recordingLog()
  t.equal(await loadNodeId(dir, 'gpu-17', log), 'gpu-17')
  t.equal(warns.length, 1, 'one warning')
  t.match(warns[0], /replaces/)
  t.equal((await readFile(join(dir, 'node-id'), 'utf8')).trim(), 'gpu-17')
  t.not(first, 'gpu-17')
  const again = recordingLog()
  t.equal(await loadNodeId(dir, 'gpu-17', again.log), 'gpu-17')
  t.equal(again.warns.length, 0, 'no warning when the configured id is the recorded one')
  t.equal(await loadNodeId(dir), 'gpu-17', 'kept when no longer configured')
})

t.test('a recorded id with surrounding whitespace is read trimmed', async t => {
  const dir = await dataDir(t)
  await writeFile(join(dir, 'node-id'), '  gpu-3 \n\n')
  t.equal(await loadNodeId(dir), 'gpu-3')
})

t.test('bad ids are errors that name the id and the rule', async t => {
  const dir = await dataDir(t)
  const bad = await failure(loadNodeId(dir, 'bad id'))
  t.ok(isCacheError(bad, 'CC_ERR_INVALID_INPUT'))
  t.match((bad as Error).message, /^invalid node id "bad id": a node id is 1-64 characters of A-Z a-z 0-9 \. _ -/)
  t.same(await readdir(dir), [], 'nothing recorded')
  await writeFile(join(dir, 'node-id'), 'no/slashes\n')
  const recorded = await failure(loadNodeId(dir))
  t.ok(isCacheError(recorded, 'CC_ERR_INVALID_INPUT'))
  t.ok((recorded as Error).message.startsWith(`invalid node id "no/slashes" recorded in ${join(dir, 'node-id')}:`), (recorded as Error).message)
  await writeFile(join(dir, 'node-id'), '')
  await t.rejects(loadNodeId(dir), /invalid node id ""/, 'an empty file is not an id')
  const { log, warns } = recordingLog()
  t.equal(await loadNodeId(dir, 'fixed-1', log), 'fixed-1', 'a configured id replaces a bad recorded one')
  t.equal(warns.length, 1)
  t.equal(await loadNodeId(dir), 'fixed-1')
})

t.test('an unreadable record is an error, not a new id', async t => {
  const dir = await dataDir(t)
  await mkdir(join(dir, 'node-id'))
  const err = await failure(loadNodeId(dir))
  t.ok(isCacheError(err, 'CC_ERR_INTERNAL'))
  t.match((err as Error).message, /^cannot read the node id from .*node-id: EISDIR/)
  t.same(await readdir(join(dir, 'node-id')), [], 'nothing written')
})
