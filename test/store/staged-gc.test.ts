/**
 * Expiry of staged blocks (FsStore.collectStagedBlocks) racing a Put Block List of the same
 * name: the commit takes the blocks into the object, and the collection, which saw them staged
 * before it got the object's lock, must then leave them (they are the object's data now) and
 * keep the staged byte count right.
 */
import { Readable } from 'node:stream'
import t from 'tap'
import { FsStore } from '../../src/store/fs-store.js'
import { readAll } from '../helpers/tier-read.js'

const C = 'c'
const DAY = 86_400_000

async function stage (store: FsStore, name: string, id: string, data: Buffer): Promise<void> {
  const ing = await store.ingest({ body: Readable.from([data]), expectedSize: data.length, maxSize: data.length })
  await store.stageBlock(C, name, id, ing)
}

t.test('a collection that saw blocks staged before a commit took them leaves the committed object whole', async (t) => {
  const store = new FsStore({ root: t.testdir(), capacity: 1 << 30, eviction: 'reject', stagedBlockMaxAgeMs: DAY })
  await store.open()
  t.teardown(() => store.close())
  await store.createContainer(C, {})
  const a = Buffer.alloc(64 * 1024, 1)
  const b = Buffer.alloc(64 * 1024, 2)
  await stage(store, 'x', 'YQ==', a)
  await stage(store, 'x', 'Yg==', b)
  await stage(store, 'y', 'YQ==', Buffer.from('expired and never committed'))
  const stagedBefore = store.stats().staged

  // The commit holds x's lock; the collection (a day later: every block has expired) starts while it does.
  const commit = store.commitBlocks(C, 'x', [{ id: 'YQ==', source: 'uncommitted' }, { id: 'Yg==', source: 'uncommitted' }],
    { content: { contentType: 'application/octet-stream' }, metadata: {}, checksums: {} }, () => {})
  const collected = store.collectStagedBlocks(Date.now() + 2 * DAY)
  const meta = await commit
  t.equal(await collected, 1, 'only y\'s expired block was collected')
  t.equal(store.stats().staged, 0, `no staged bytes left (was ${stagedBefore}), none subtracted twice`)
  const body = await readAll(store.openRead(meta))
  t.ok(body.equals(Buffer.concat([a, b])), 'the committed object reads back whole')
})
