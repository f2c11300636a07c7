/**
 * The writeback queue over a real tiered store and a recording upstream (uploads held open,
 * failures injected, aborts after a commit): commit order and concurrency, one upload per name,
 * markers last, deletes (durable records, aborts, If-Match), retries and the pause while the
 * upstream is down, the dirty limit, writethrough waiters, flush, status and metrics, close and
 * restart. The Azurite-backed cases are in writeback-azurite.test.ts.
 */
import t from 'tap'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CacheError, isCacheError } from '../../src/errors.js'
import { afterQueueWatcher, C, del, fixture, openStore, put, unavailable } from './writeback-fixture.js'

t.test('uploads start in commit order, at most `concurrency` at once, with the request the upstream needs', async (t) => {
  const f = await fixture(t)
  const names = ['m/3', 'a/1', 'z/9', 'b/2', 'y/8', 'c/0', 'x/7', 'd/5']
  const metas = []
  for (const n of names) metas.push(await put(f.store, n, `data of ${n}`))
  // Rewritten: the store still lists it first, but its commit sequence is now the last.
  metas[0] = await put(f.store, 'm/3', 'data of m/3')
  const q = f.queue({ concurrency: 2 })
  await q.start() // everything was dirty before: the start-up scan queues it by seq
  await q.flush().done
  t.same(f.upstream.uploads().map((c) => c.name), [...names.slice(1), 'm/3'])
  t.equal(f.upstream.maxInFlight, 2)
  for (const m of metas) {
    const blob = f.upstream.blobs.get(m.name)
    t.equal(blob?.data.toString(), `data of ${m.name}`)
    t.equal(blob?.version, m.etag, 'version is the local etag')
    t.same(blob?.req.ref, { container: C, blob: m.name })
    t.same(blob?.req.content, { contentType: 'application/octet-stream' })
    t.same(blob?.req.metadata, { step: '1' })
    const now = f.store.head(C, m.name)
    t.equal(now?.dirty, undefined, 'clean after the upload')
    t.equal(now?.upstreamEtag, blob?.etag)
  }
  t.match(q.status(), { dirtyObjects: 0, dirtyBytes: 0, queued: 0, uploading: 0, uploadedObjects: 8, failedAttempts: 0 })
})

t.test('one upload per name; a version committed during an upload waits for it, then goes; older never overwrites newer', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  const gate = f.upstream.hold('x')
  const v1 = await put(f.store, 'x', 'one')
  await gate.reached
  const v2 = await put(f.store, 'x', 'two')
  const v3 = await put(f.store, 'x', 'three')
  t.equal(q.status().queued, 1, 'one record per name: v3 replaced v2')
  t.equal(q.status().dirtyBytes, 5, 'dirty bytes are the current version\'s')
  t.equal(f.upstream.uploads('x').length, 1, 'no second upload of x while one is in flight')
  gate.release()
  await q.flush().done
  t.same(f.upstream.uploads('x').map((c) => c.version), [v1.etag, v3.etag], 'v2 was replaced before its turn')
  t.not(v2.etag, v3.etag)
  t.equal(f.upstream.blobs.get('x')?.data.toString(), 'three')
  t.equal(f.store.head(C, 'x')?.upstreamEtag, f.upstream.blobs.get('x')?.etag)
  t.equal(f.upstream.maxInFlight, 1)
})

t.test('a version replaced while queued is never uploaded; a deleted container\'s objects are dropped', async (t) => {
  const f = await fixture(t)
  await put(f.store, 'x', 'old')
  const v2 = await put(f.store, 'x', 'new')
  await f.store.createContainer('gone', {})
  await put(f.store, 'a', 'in gone', 'gone')
  const q = f.queue()
  await f.store.deleteContainer('gone') // tells no watcher: the queue finds out at upload time
  await q.start()
  await q.flush().done
  t.same(f.upstream.uploads().map((c) => [c.name, c.version]), [['x', v2.etag]])
  t.match(q.status(), { dirtyObjects: 0, dirtyBytes: 0, queued: 0 })
})

t.test('commit markers go after every earlier object of their directory, and block nothing else', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ concurrency: 8 })
  const held = f.upstream.hold('ckpt/__1_0.distcp')
  const deep = f.upstream.hold('ckpt/sub/deep')
  const late = f.upstream.hold('ckpt/late')
  await put(f.store, 'ckpt/__0_0.distcp', 'shard 0')
  await put(f.store, 'ckpt/__1_0.distcp', 'shard 1')
  await put(f.store, 'ckpt/sub/deep', 'deeper directory')
  await put(f.store, 'ckpt/.metadata', 'index')
  await put(f.store, 'ckpt/late', 'written after the marker')
  await put(f.store, 'other/_SUCCESS', 'a marker of another directory')
  await put(f.store, 'ckpt-2/__0_0.distcp', 'another checkpoint')
  await q.start()
  await Promise.all([held.reached, deep.reached, late.reached])
  await f.upstream.call((c) => c.name === 'other/_SUCCESS')
  await f.upstream.call((c) => c.name === 'ckpt-2/__0_0.distcp')
  await f.upstream.call((c) => c.name === 'ckpt/__0_0.distcp')
  t.equal(f.upstream.uploads('ckpt/.metadata').length, 0, 'the marker waits for shard 1')
  t.equal(q.status().queued, 1)
  held.release()
  await f.upstream.call((c) => c.name === 'ckpt/.metadata')
  t.ok(f.upstream.inFlight >= 2, 'the deeper directory and the later object are still uploading: they do not hold the marker')
  deep.release()
  late.release()
  await q.flush().done
  const order = f.upstream.committed
  t.ok(order.indexOf('ckpt/.metadata') > order.indexOf('ckpt/__0_0.distcp'))
  t.ok(order.indexOf('ckpt/.metadata') > order.indexOf('ckpt/__1_0.distcp'))
})

t.test('a marker waits for a failing shard, and for a shard rewritten before its first upload', async (t) => {
  const f = await fixture(t)
  let failures = 0
  f.upstream.fail = (op, name) => op === 'upload' && name === 'd/s1' && failures++ < 2 ? new CacheError('CC_ERR_INTERNAL', 'injected') : undefined
  const q = f.queue({ concurrency: 1 })
  await put(f.store, 'd/s0', 'v1')
  await put(f.store, 'd/s1', 'fails twice')
  await put(f.store, 'd/_SUCCESS', '')
  await put(f.store, 'd/s0', 'v2 after the marker') // s0's first version never goes up: the marker waits for v2
  await q.start()
  await q.flush().done
  const order = f.upstream.committed
  t.same(order.slice(-1), ['d/_SUCCESS'], 'the marker went last')
  t.equal(failures, 3)
  t.equal(q.status().failedAttempts, 2)
})

t.test('two markers rewritten in turn do not wait for each other for ever', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ concurrency: 1 })
  await put(f.store, 'd/.metadata', 'm1')
  await put(f.store, 'd/_SUCCESS', 's1')
  await put(f.store, 'd/.metadata', 'm2')
  await q.start()
  await q.flush().done
  t.same(f.upstream.committed, ['d/_SUCCESS', 'd/.metadata'])
  t.equal(f.upstream.blobs.get('d/.metadata')?.data.toString(), 'm2')
})

t.test('delete of a dirty object nobody uploaded: no upstream call, no record', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ concurrency: 1 })
  await q.start()
  const gate = f.upstream.hold('busy')
  await put(f.store, 'busy', 'keeps the only slot')
  await gate.reached
  await put(f.store, 'x', 'soon gone')
  t.equal(q.status().queued, 1)
  await del(f.store, 'x')
  t.notOk(q.deletePending(C, 'x'))
  t.match(q.status(), { dirtyObjects: 1, queued: 0 })
  gate.release()
  await q.flush().done
  t.same(f.upstream.calls.filter((c) => c.name === 'x'), [])
  t.same(await readdir(join(f.dir, 'deletes')), [])
  t.match(q.status(), { dirtyObjects: 0, dirtyBytes: 0, queued: 0, pendingDeletes: 0 })
})

t.test('delete of a clean object deletes it upstream with If-Match its etag', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  await put(f.store, 'x', 'clean soon')
  await q.flush().done
  const etag = f.upstream.blobs.get('x')?.etag
  t.ok(etag)
  const seen = afterQueueWatcher(f, q)
  f.upstream.fail = (op) => op === 'delete' ? unavailable() : undefined
  await del(f.store, 'x')
  t.same(seen, [{ name: 'x', pending: true, files: 1 }], 'recorded durably before the local delete went ahead')
  const fl = q.flush(C, '')
  t.match(fl.progress(), { objects: 1, bytes: 0, cleanObjects: 0, done: false }, 'a flush counts the pending delete')
  await f.upstream.call((c) => c.op === 'delete')
  f.upstream.fail = undefined
  await fl.done
  t.match(fl.progress(), { objects: 1, cleanObjects: 1, done: true })
  const deletes = f.upstream.calls.filter((c) => c.op === 'delete')
  t.ok(deletes.length >= 2, 'retried after the upstream came back')
  t.ok(deletes.every((c) => c.name === 'x' && c.ifMatch === etag), 'If-Match the uploaded version')
  t.notOk(f.upstream.blobs.has('x'))
  t.notOk(q.deletePending(C, 'x'))
  t.same(await readdir(join(f.dir, 'deletes')), [])
  t.equal(f.metrics.registry.render().match(/^ckptcache_writeback_deletes_total (\d+)$/m)?.[1], '1')
})

t.test('an eviction changes nothing upstream', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  const m = await put(f.store, 'x', 'clean, then evicted')
  await q.flush().done
  t.ok(await f.store.evict(C, 'x', m.etag))
  t.equal(f.store.head(C, 'x'), undefined)
  t.notOk(q.deletePending(C, 'x'))
  await q.flush().done
  t.same(f.upstream.calls.map((c) => c.op), ['upload'])
  t.equal(f.upstream.blobs.get('x')?.data.toString(), 'clean, then evicted')
  t.same(await readdir(join(f.dir, 'deletes')), [])
})

t.test('delete of a queued object whose older version is upstream deletes that version', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ concurrency: 1 })
  await q.start()
  await put(f.store, 'x', 'v1')
  await q.flush().done
  const etag = f.upstream.blobs.get('x')?.etag
  const gate = f.upstream.hold('busy')
  await put(f.store, 'busy', 'keeps the only slot')
  await gate.reached
  await put(f.store, 'x', 'v2, never uploaded')
  await del(f.store, 'x')
  gate.release()
  await q.flush().done
  t.same(f.upstream.calls.filter((c) => c.name === 'x').map((c) => [c.op, c.ifMatch]), [['upload', undefined], ['delete', etag]])
  t.notOk(f.upstream.blobs.has('x'))
})

t.test('delete during an upload: aborted, recorded before the delete returns, deleted upstream unconditionally', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  await put(f.store, 'x', 'v1')
  await q.flush().done
  const e1 = f.upstream.blobs.get('x')?.etag
  const gate = f.upstream.hold('x', true) // the upload of v2 commits upstream, then is still "in flight"
  await put(f.store, 'x', 'v2 may have reached the upstream')
  await gate.reached
  t.not(f.upstream.blobs.get('x')?.etag, e1)
  const seen = afterQueueWatcher(f, q)
  await del(f.store, 'x')
  t.same(seen, [{ name: 'x', pending: true, files: 1 }], 'recorded durably before the local delete went ahead')
  await q.flush().done
  const deletes = f.upstream.calls.filter((c) => c.op === 'delete')
  t.equal(deletes.length, 1)
  t.equal(deletes[0]?.ifMatch, undefined, 'not If-Match v1: the etag of what the aborted upload committed is unknown')
  t.notOk(f.upstream.blobs.has('x'), 'nothing left upstream')
  t.equal(q.status().failedAttempts, 0, 'an abort is no failure')
  t.equal(f.store.head(C, 'x'), undefined)
})

t.test('cluster: a copy dropped because the name was deleted on another node', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()

  // Already sending: it runs on, and the blob it committed is deleted If-Match its etag.
  const gate = f.upstream.hold('sent', true)
  const sent = await put(f.store, 'sent', 'reached the upstream before the delete elsewhere')
  await gate.reached
  const committed = f.upstream.blobs.get('sent')?.etag
  t.ok(await f.store.dropCopy(C, 'sent', sent.etag, { deleted: true }))
  gate.release()
  await q.flush().done
  t.same(f.upstream.calls.filter((c) => c.name === 'sent').map((c) => [c.op, c.ifMatch]), [['upload', undefined], ['delete', committed]])
  t.notOk(f.upstream.blobs.has('sent'), 'the blob committed after the delete is gone')
  t.notOk(q.deletePending(C, 'sent'))
  t.same(await readdir(join(f.dir, 'deletes')), [], 'its record is gone once done')

  // A newer blob (another node's upload) replaced it before the delete ran: left alone.
  const g2 = f.upstream.hold('newer', true)
  const v = await put(f.store, 'newer', 'v1')
  await g2.reached
  const mine = f.upstream.blobs.get('newer')
  t.ok(mine)
  f.upstream.blobs.set('newer', { ...(mine as NonNullable<typeof mine>), data: Buffer.from('v2 from another node'), etag: '0x8DFFFF' })
  t.ok(await f.store.dropCopy(C, 'newer', v.etag, { deleted: true }))
  g2.release()
  await q.flush().done
  t.same(f.upstream.calls.filter((c) => c.op === 'delete' && c.name === 'newer').map((c) => c.ifMatch), [mine?.etag])
  t.equal(f.upstream.blobs.get('newer')?.data.toString(), 'v2 from another node', 'a newer blob is not deleted')

  // Dropped for any other reason (a newer version elsewhere, a copy handed away): aborted, nothing deleted.
  const g3 = f.upstream.hold('moved')
  const m = await put(f.store, 'moved', 'held elsewhere too')
  await g3.reached
  t.ok(await f.store.dropCopy(C, 'moved', m.etag))
  await q.flush().done
  t.notOk(f.upstream.blobs.has('moved'), 'aborted before it committed')
  t.notOk(f.upstream.calls.some((c) => c.op === 'delete' && c.name === 'moved'))
  t.equal(q.status().failedAttempts, 0, 'neither is a failure')
})

t.test('a rewrite after a delete replaces the blob; the record waits for it and goes', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  await put(f.store, 'x', 'v1')
  await q.flush().done
  f.upstream.fail = (op) => op === 'delete' ? unavailable() : undefined // keep the record pending
  await del(f.store, 'x')
  await f.upstream.call((c) => c.op === 'delete')
  f.upstream.fail = undefined
  await put(f.store, 'x', 'v2')
  await q.flush().done
  t.equal(f.upstream.blobs.get('x')?.data.toString(), 'v2')
  t.notOk(q.deletePending(C, 'x'))
  t.equal(f.store.head(C, 'x')?.upstreamEtag, f.upstream.blobs.get('x')?.etag)
})

t.test('a delete that cannot be recorded is refused and the object stays queued', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  await put(f.store, 'x', 'v1')
  await q.flush().done
  const gate = f.upstream.hold('x')
  await put(f.store, 'x', 'v2 dirty')
  await gate.reached
  await rm(join(f.dir, 'deletes'), { recursive: true })
  await writeFile(join(f.dir, 'deletes'), 'not a directory')
  await t.rejects(del(f.store, 'x'), { code: 'CC_ERR_INTERNAL' })
  t.equal(f.store.head(C, 'x')?.size, 8, 'the object is still there')
  await rm(join(f.dir, 'deletes'))
  await mkdir(join(f.dir, 'deletes'))
  await q.flush().done
  t.equal(f.upstream.blobs.get('x')?.data.toString(), 'v2 dirty', 'still uploaded')
  t.notOk(q.deletePending(C, 'x'))
})

t.test('a failed upload stays dirty and is retried with growing backoff until it succeeds', async (t) => {
  const f = await fixture(t)
  let failures = 0
  f.upstream.fail = (op) => op === 'upload' && failures++ < 3 ? new CacheError('CC_ERR_INTERNAL', `injected failure ${failures}`) : undefined
  const q = f.queue({ retryDelayMs: { base: 40, max: 1000 } })
  await q.start()
  await put(f.store, 'x', 'eventually')
  await f.upstream.call((c) => c.op === 'upload' && f.upstream.uploads('x').length === 2)
  t.match(q.status(), { dirtyObjects: 1, lastError: /^c\/x: injected failure/ })
  t.ok(q.status().failedAttempts >= 1)
  t.equal(f.store.head(C, 'x')?.dirty, true, 'still dirty')
  await q.flush().done
  const at = f.upstream.uploads('x').map((c) => c.atMs)
  t.equal(at.length, 4)
  // equal jitter: the n-th retry waits between half and all of base × 2^(n-1)
  t.ok((at[1] as number) - (at[0] as number) >= 20 - 2)
  t.ok((at[2] as number) - (at[1] as number) >= 40 - 2)
  t.ok((at[3] as number) - (at[2] as number) >= 80 - 2)
  const st = q.status()
  t.match(st, { dirtyObjects: 0, failedAttempts: 3, uploadedObjects: 1 })
  t.equal(st.lastError, undefined, 'no object\'s last attempt failed any more')
  const text = f.metrics.registry.render()
  t.match(text, /ckptcache_writeback_uploads_total\{result="failed"\} 3/)
  t.match(text, /ckptcache_writeback_uploads_total\{result="ok"\} 1/)
})

t.test('while the upstream is unavailable the queue pauses: one probe at a time, then everything drains', async (t) => {
  const f = await fixture(t)
  let down = true
  const attempts: Array<{ at: number, inFlight: number }> = []
  f.upstream.fail = () => {
    if (!down) return undefined
    attempts.push({ at: performance.now(), inFlight: f.upstream.inFlight })
    return unavailable()
  }
  const q = f.queue({ concurrency: 4, retryDelayMs: { base: 10, max: 40 } })
  await q.start()
  for (let i = 0; i < 12; i++) await put(f.store, `o/${i}`, `object ${i}`)
  await f.upstream.call(() => attempts.length >= 12)
  // The first failures may overlap (uploads already in flight); after them, probes go one by one,
  // each after a backoff of at least half the base delay.
  const probes = attempts.slice(4)
  t.ok(probes.every((a) => a.inFlight === 1), 'one probe at a time')
  for (let i = 1; i < probes.length; i++) {
    const gap = (probes[i] as { at: number }).at - (probes[i - 1] as { at: number }).at
    t.ok(gap >= 4, `probe ${i} waited ${gap.toFixed(1)} ms`)
  }
  t.equal(q.status().dirtyObjects, 12)
  await t.rejects(q.whenClean(C, 'o/0', f.store.head(C, 'o/0')?.etag as string), { code: 'CC_ERR_UPSTREAM_UNAVAILABLE' }, 'writethrough fails fast while it is down')
  down = false
  await q.flush().done
  t.equal(f.upstream.committed.length, 12)
  t.equal(q.status().lastError, undefined)
})

t.test('dirty limit: admits until the limit, then SERVER_BUSY with Retry-After; anything when nothing is dirty', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ dirtyLimit: 1000, concurrency: 1 })
  await put(f.store, 'before-start', Buffer.alloc(300))
  await q.start()
  t.equal(q.status().dirtyBytes, 300, 'counted by the start-up scan')
  await q.flush().done
  t.doesNotThrow(() => q.admit(5000), 'nothing dirty: even an object past the limit')
  const held = f.upstream.hold('a')
  await put(f.store, 'a', Buffer.alloc(600))
  await held.reached
  await put(f.store, 'b', Buffer.alloc(200))
  t.equal(q.status().dirtyBytes, 800)
  t.doesNotThrow(() => q.admit(200))
  let err: unknown
  try { q.admit(201) } catch (e) { err = e }
  t.ok(isCacheError(err, 'CC_ERR_SERVER_BUSY'))
  const busy = err as CacheError
  t.match(busy.message, /800 bytes are waiting for writeback.*201 more.*dirty limit of 1000 bytes/)
  t.ok(Number(busy.detail.retryAfter) >= 1 && Number(busy.detail.retryAfter) <= 5, `retryAfter ${busy.detail.retryAfter}`)
  await put(f.store, 'b', Buffer.alloc(50))
  t.equal(q.status().dirtyBytes, 650, 'a replaced dirty version no longer counts')
  held.release()
  await q.flush().done
  t.equal(q.status().dirtyBytes, 0)
  t.doesNotThrow(() => q.admit(5000))
  t.match(f.metrics.registry.render(), /ckptcache_dirty_limit_bytes 1000/)
})

t.test('writethrough: whenClean resolves on upload, replacement or delete, rejects with the first failure', async (t) => {
  const f = await fixture(t)
  let fail = true
  f.upstream.fail = (op, name) => op === 'upload' && name === 'bad' && fail ? new CacheError('CC_ERR_INTERNAL', 'injected: bad request') : undefined
  const q = f.queue({ mode: 'writethrough' })
  await q.start()
  const a = await put(f.store, 'a', 'fine')
  await q.whenClean(C, 'a', a.etag)
  t.ok(f.upstream.blobs.has('a'))
  t.equal(f.store.head(C, 'a')?.dirty, undefined)
  await q.whenClean(C, 'a', a.etag) // already clean: at once

  const bad = await put(f.store, 'bad', 'refused once')
  await t.rejects(q.whenClean(C, 'bad', bad.etag), { message: 'injected: bad request' })
  t.equal(f.store.head(C, 'bad')?.dirty, true, 'still queued')
  fail = false
  await q.flush().done
  t.ok(f.upstream.blobs.has('bad'), 'retried in the background')

  const gate = f.upstream.hold('r')
  const r1 = await put(f.store, 'r', 'v1')
  await gate.reached
  const w1 = q.whenClean(C, 'r', r1.etag)
  const r2 = await put(f.store, 'r', 'v2')
  await w1 // replaced
  const w2 = q.whenClean(C, 'r', r2.etag)
  await del(f.store, 'r')
  await w2 // deleted
  gate.release()
  await q.flush().done
  t.notOk(f.upstream.blobs.has('r'))
  t.equal(q.status().mode, 'writethrough')
})

t.test('flush: progress under a prefix; done only once a newer version of a counted name is uploaded too', async (t) => {
  const f = await fixture(t)
  const q = f.queue()
  await q.start()
  const gx = f.upstream.hold('p/x')
  await put(f.store, 'p/x', 'v1')
  const y = await put(f.store, 'p/y', '12345')
  await put(f.store, 'q/z', 'outside the prefix')
  await gx.reached
  await q.whenClean(C, 'p/y', y.etag)
  const gx2 = f.upstream.hold('p/x')
  const fl = q.flush(C, 'p/')
  const p0 = fl.progress()
  t.match(p0, { objects: 1, bytes: 2, done: false }, 'only what is dirty under the prefix now (p/y is clean)')
  await put(f.store, 'p/x', 'v2 written during the flush')
  gx.release()
  await gx2.reached
  t.equal(fl.progress().done, false, 'v1 is up, but v2 is not')
  gx2.release()
  await fl.done
  t.equal(f.upstream.blobs.get('p/x')?.data.toString(), 'v2 written during the flush')
  t.match(fl.progress(), { objects: 1, cleanObjects: 1, cleanBytes: 2, done: true })
  const all = q.flush()
  await all.done
  t.ok(f.upstream.blobs.has('q/z'))
  const none = q.flush(C, 'nothing/')
  t.match(none.progress(), { objects: 0, done: true })
  await none.done
})

t.test('status and metrics', async (t) => {
  const f = await fixture(t)
  const q = f.queue({ concurrency: 1, dirtyLimit: 4096 })
  await q.start()
  const gate = f.upstream.hold('a')
  await put(f.store, 'a', Buffer.alloc(100))
  await gate.reached
  await put(f.store, 'b', Buffer.alloc(10))
  await put(f.store, 'd/.metadata', Buffer.alloc(1))
  const st = q.status()
  t.match(st, { mode: 'writeback', dirtyObjects: 3, dirtyBytes: 111, dirtyLimit: 4096, queued: 2, uploading: 1, pendingDeletes: 0, uploadedObjects: 0 })
  t.ok(st.oldestDirtyAgeMs >= 0)
  const text = f.metrics.registry.render()
  for (const [name, value] of [
    ['ckptcache_dirty_bytes', '111'], ['ckptcache_dirty_objects', '3'], ['ckptcache_dirty_limit_bytes', '4096'],
    ['ckptcache_writeback_queue_depth', '2'], ['ckptcache_writeback_uploading', '1'], ['ckptcache_writeback_pending_deletes', '0']
  ]) t.match(text, new RegExp(`^${name} ${value}$`, 'm'), name)
  t.match(text, /^ckptcache_oldest_dirty_age_seconds \d+(\.\d+)?$/m)
  gate.release()
  await q.flush().done
  t.match(q.status(), { dirtyObjects: 0, dirtyBytes: 0, queued: 0, uploading: 0, uploadedObjects: 3, uploadedBytes: 111, oldestDirtyAgeMs: 0 })
  t.match(f.metrics.registry.render(), /^ckptcache_writeback_uploaded_bytes_total 111$/m)
})

t.test('close aborts uploads in flight; a restart (store reopened) resumes every dirty object and every recorded delete', async (t) => {
  const root = t.testdir()
  const f = await fixture(t, root)
  const q = f.queue()
  await q.start()
  await put(f.store, 'gone', 'uploaded, then deleted while the upstream refuses deletes')
  await q.flush().done
  // Not "unavailable": that would pause the queue and the upload below would not start.
  f.upstream.fail = (op) => op === 'delete' ? new CacheError('CC_ERR_INTERNAL', 'injected: delete refused') : undefined
  await del(f.store, 'gone')
  await f.upstream.call((c) => c.op === 'delete')
  const gate = f.upstream.hold('a')
  await put(f.store, 'a', 'in flight at close')
  await put(f.store, 'b', 'queued at close')
  await gate.reached
  const fl = q.flush()
  await q.close()
  await t.rejects(fl.done, { code: 'CC_ERR_SERVER_BUSY' })
  t.notOk(f.upstream.blobs.has('a'), 'the upload in flight was aborted')
  t.equal(f.upstream.committed.length, 1)
  await f.store.close()

  // A new process: the store rebuilt from disk, the queue from the store and its delete records.
  const store = await openStore(join(root, 'store'))
  t.teardown(() => store.close())
  t.equal(store.head(C, 'a')?.dirty, true)
  f.upstream.fail = undefined
  const { WritebackQueue } = await import('../../src/upstream/writeback.js')
  const { identity, silentLog } = await import('./writeback-fixture.js')
  const q2 = new WritebackQueue({
    store, upstream: f.upstream, layout: identity, dir: f.dir, mode: 'writeback', dirtyLimit: 1 << 30, concurrency: 4,
    markerPatterns: [], metrics: f.metrics, log: silentLog, retryDelayMs: { base: 10, max: 20 }
  })
  t.teardown(() => q2.close())
  await q2.start()
  t.match(q2.status(), { dirtyObjects: 2, pendingDeletes: 1 })
  t.ok(q2.deletePending(C, 'gone'))
  await q2.flush().done
  t.equal(f.upstream.blobs.get('a')?.data.toString(), 'in flight at close')
  t.equal(f.upstream.blobs.get('b')?.data.toString(), 'queued at close')
  t.notOk(f.upstream.blobs.has('gone'))
  t.equal(store.head(C, 'a')?.dirty, undefined)
  t.same(await readdir(join(f.dir, 'deletes')), [])
})
