/**
 * Appends (S3 Express `x-amz-write-offset-bytes`) in the object core and the local store: the
 * bytes, reads across extents, the offset and part-limit checks under the lock, concurrent
 * appends, capacity, checksums, readers of the previous version, restart, and kill -9 of a
 * gateway in the middle of appends.
 */
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ObjectService } from '../../src/core/object-service.js'
import { MAX_OBJECT_PUT, type AppendObjectInput, type ExpectedChecksums } from '../../src/core/object-inputs.js'
import { Crc64 } from '../../src/core/checksum/crc64.js'
import { s3Checksum, type S3ChecksumAlgorithm } from '../../src/core/checksum/s3-checksums.js'
import type { ObjectMeta } from '../../src/core/types.js'
import { isCacheError, type ErrorCode } from '../../src/errors.js'
import { FsStore, type FsStoreOptions } from '../../src/store/fs-store.js'
import { startGateway } from '../helpers/gateway.js'
import { signedS3Request as s3Request } from '../helpers/sigv4.js'

const MiB = 1024 * 1024

interface Fixture {
  root: string
  store: FsStore
  service: ObjectService
}

async function openStore (root: string, opts: Partial<FsStoreOptions> = {}): Promise<Fixture> {
  const store = new FsStore({ root, capacity: 1024 * MiB, eviction: 'reject', stagedBlockMaxAgeMs: 3600_000, ...opts })
  await store.open()
  return { root, store, service: new ObjectService(store) }
}

async function fixture (t: Test, opts: Partial<FsStoreOptions> = {}): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'ckptcache-append-'))
  const f = await openStore(root, opts)
  await f.service.createContainer('logs--use1-az4--x-s3', {})
  t.teardown(async () => {
    await f.store.close()
    await rm(root, { recursive: true, force: true })
  })
  return f
}

const C = 'logs--use1-az4--x-s3'

function append (f: Fixture, name: string, offset: number, data: Buffer, extra: Partial<AppendObjectInput> = {}): ReturnType<ObjectService['appendObject']> {
  return f.service.appendObject({
    container: C, name, offset, body: Readable.from(data.length === 0 ? [] : [data]), size: data.length,
    content: { contentType: 'text/plain' }, metadata: { origin: 'first' }, ...extra
  })
}

async function read (f: Fixture, meta: ObjectMeta, range?: { start: number, end: number }): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of f.service.read(meta, range).body as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks)
}

async function current (f: Fixture, name: string): Promise<Buffer> {
  return read(f, f.service.head(C, name))
}

async function rejectsCode (t: Test, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p
    t.fail(`${what}: expected ${code}`)
  } catch (err) {
    t.ok(isCacheError(err, code), `${what}: ${code}${isCacheError(err) ? '' : ` (got ${String(err)})`}`)
  }
}

async function tmpFiles (root: string): Promise<string[]> {
  return readdir(join(root, 'tmp'))
}

const expectAdditional = (algorithm: S3ChecksumAlgorithm, data: Buffer): ExpectedChecksums => {
  const value = Buffer.from(s3Checksum(algorithm, data), 'base64')
  return { additional: { algorithm, value: () => value } }
}

t.test('appends build the object; each is a new version; reads and ranges cross extent boundaries', async (t) => {
  const f = await fixture(t)
  const pieces = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('defgh'), Buffer.from('ijkl'), randomBytes(300 * 1024 + 7)]
  let offset = 0
  const etags = new Set<string>()
  let last: ObjectMeta | undefined
  for (const [i, p] of pieces.entries()) {
    const { meta } = await append(f, 'log', offset, p)
    offset += p.length
    t.equal(meta.size, offset, `append ${i}: size`)
    t.equal(meta.parts, i + 1, `append ${i}: parts`)
    t.equal(meta.extents.length, i + 1, `append ${i}: one more extent, none copied`)
    if (last !== undefined) {
      t.same(meta.extents.slice(0, -1), last.extents, `append ${i}: the previous extents are shared`)
      t.ok(meta.lastModifiedMs >= last.lastModifiedMs)
    }
    etags.add(meta.etag)
    last = meta
  }
  t.equal(etags.size, pieces.length, 'every append made a new etag')
  const whole = Buffer.concat(pieces)
  t.same(await current(f, 'log'), whole, 'whole object = the appended pieces in order')
  // Every range of the first 12 bytes (extents 3, 0, 5, 4 bytes), and ranges into the large extent.
  const meta = f.service.head(C, 'log')
  let ranges = 0
  for (let start = 0; start < 12; start++) {
    for (let end = start; end < 14; end++) {
      if (!(await read(f, meta, { start, end })).equals(whole.subarray(start, end + 1))) t.fail(`range ${start}-${end}`)
      ranges++
    }
  }
  t.pass(`${ranges} ranges across extent boundaries read back exactly`)
  t.same(await read(f, meta, { start: 10, end: whole.length - 1 }), whole.subarray(10))
  t.same(await read(f, meta, { start: 11, end: 12 }), whole.subarray(11, 13), 'last byte of one extent, first of the next')
  t.same(meta.content, { contentType: 'text/plain' }, 'content headers of the first write kept')
  t.same(meta.metadata, { origin: 'first' })
})

t.test('an existing object keeps its content headers and metadata; an append that creates one sets them', async (t) => {
  const f = await fixture(t)
  await f.service.putObject({ container: C, name: 'o', body: Readable.from([Buffer.from('0123')]), size: 4, content: { contentType: 'application/x-ckpt', cacheControl: 'no-cache' }, metadata: { step: '100' } })
  const { meta } = await append(f, 'o', 4, Buffer.from('4567'), { content: { contentType: 'text/evil' }, metadata: { step: 'overwritten' } })
  t.same(meta.content, { contentType: 'application/x-ckpt', cacheControl: 'no-cache' }, 'content headers kept, Content-MD5 dropped')
  t.same(meta.metadata, { step: '100' })
  t.equal(meta.createdMs, f.service.head(C, 'o').createdMs)
  const { meta: created } = await append(f, 'fresh', 0, Buffer.from('x'), { content: { contentType: 'text/csv' }, metadata: { a: 'b' } })
  t.same(created.content, { contentType: 'text/csv' })
  t.same(created.metadata, { a: 'b' })
  t.equal(created.parts, 1)
})

t.test('InvalidWriteOffset: the offset must be the current size; nothing is stored, nothing left behind', async (t) => {
  const f = await fixture(t)
  await rejectsCode(t, append(f, 'missing', 5, Buffer.from('x')), 'CC_ERR_INVALID_WRITE_OFFSET', 'offset > 0 on a missing object')
  t.equal(f.store.head(C, 'missing'), undefined)
  await append(f, 'o', 0, Buffer.from('hello'))
  for (const offset of [0, 4, 6, 1e12]) {
    await rejectsCode(t, append(f, 'o', offset, Buffer.from('!')), 'CC_ERR_INVALID_WRITE_OFFSET', `offset ${offset} on a 5-byte object`)
  }
  t.same(await current(f, 'o'), Buffer.from('hello'))
  // One append carries at most what one PutObject may (refused before the body is read).
  await rejectsCode(t, f.service.appendObject({ container: C, name: 'o', offset: 5, body: Readable.from([]), size: MAX_OBJECT_PUT + 1, content: {}, metadata: {} }),
    'CC_ERR_BODY_TOO_LARGE', 'an append larger than a PutObject')
  const s = f.store.stats()
  t.equal(s.reserved, 0, 'no reservation left')
  t.equal(s.committed, 5)
  t.same(await tmpFiles(f.root), [], 'no temp file left')
})

t.test('the offset is checked under the lock: of concurrent appends at one offset, exactly one wins', async (t) => {
  const f = await fixture(t)
  const base = randomBytes(1000)
  await append(f, 'race', 0, base)
  const bodies = Array.from({ length: 8 }, () => randomBytes(256 * 1024 + 3))
  // All pass the fast check before their bodies are read; the commit decides.
  const results = await Promise.allSettled(bodies.map((b) => append(f, 'race', base.length, b)))
  const won = results.flatMap((r, i) => r.status === 'fulfilled' ? [i] : [])
  t.equal(won.length, 1, 'one append committed')
  for (const r of results) if (r.status === 'rejected') t.ok(isCacheError(r.reason, 'CC_ERR_INVALID_WRITE_OFFSET'), 'the others: InvalidWriteOffset')
  t.same(await current(f, 'race'), Buffer.concat([base, bodies[won[0] as number] as Buffer]), 'content: base + the winner, whole')
  t.equal(f.store.stats().reserved, 0)
  t.equal(f.store.stats().committed, base.length + 256 * 1024 + 3)
  t.same(await tmpFiles(f.root), [])

  // Appends that each read the size first and retry serialise into one object with every piece once.
  const pieces = Array.from({ length: 12 }, (_, i) => Buffer.from(`line ${String(i).padStart(2, '0')}\n`))
  await Promise.all(pieces.map(async (p) => {
    for (;;) {
      try {
        await append(f, 'log', f.store.head(C, 'log')?.size ?? 0, p)
        return
      } catch (err) {
        if (!isCacheError(err, 'CC_ERR_INVALID_WRITE_OFFSET')) throw err
      }
    }
  }))
  const lines = (await current(f, 'log')).toString().split('\n').filter((l) => l !== '').sort()
  t.same(lines, pieces.map((p) => p.toString().trim()), 'every line appended exactly once')
})

t.test('TooManyParts: appends and multipart parts count; a copy starts again at one part', async (t) => {
  const f = await fixture(t, { maxParts: 5 })
  // An object committed from 3 blocks (multipart parts) has 3 parts.
  for (const id of ['p1', 'p2', 'p3']) {
    await f.service.stageBlock({ container: C, name: 'mp', blockId: id, body: Readable.from([Buffer.from(id)]), size: 2 })
  }
  await f.service.commitBlocks({ container: C, name: 'mp', blocks: ['p1', 'p2', 'p3'].map((id) => ({ id, source: 'uncommitted' as const })), content: {}, metadata: {} })
  await append(f, 'mp', 6, Buffer.from('a4'))
  const { meta } = await append(f, 'mp', 8, Buffer.from('a5'))
  t.equal(meta.parts, 5)
  t.equal(meta.fromBlocks, false, 'no longer a pure block list')
  await rejectsCode(t, append(f, 'mp', 10, Buffer.from('a6')), 'CC_ERR_TOO_MANY_PARTS', 'sixth part')
  t.same(await current(f, 'mp'), Buffer.from('p1p2p3a4a5'), 'unchanged')
  t.equal(f.store.stats().reserved, 0)
  // The limit is checked at commit too (not only before the body is read).
  await append(f, 'single', 0, Buffer.from('1'))
  for (let i = 2; i <= 5; i++) await append(f, 'single', i - 1, Buffer.from(String(i)))
  await rejectsCode(t, f.store.appendObject(C, 'single', await f.store.ingest({ body: Readable.from([Buffer.from('6')]), expectedSize: 1, maxSize: 1 }),
    { offset: 5, write: () => ({ content: {}, metadata: {}, checksums: {} }) }, () => {}), 'CC_ERR_TOO_MANY_PARTS', 'store: sixth append')
  t.same(await tmpFiles(f.root), [])
  t.equal(f.store.stats().reserved, 0)
  // CopyObject resets the count, for an appended source and for a multipart source.
  for (const source of ['mp', 'single']) {
    const copy = await f.service.copyObject({ source: f.service.head(C, source), container: C, name: `${source}-copy` })
    t.equal(copy.parts === undefined ? 1 : copy.parts, 1, `copy of ${source}: one part`)
    await append(f, `${source}-copy`, copy.size, Buffer.from('+'))
    t.equal(f.service.head(C, `${source}-copy`).parts, 2)
  }
  // A whole-object overwrite starts again too.
  await f.service.putObject({ container: C, name: 'single', body: Readable.from([Buffer.from('new')]), size: 3, content: {}, metadata: {} })
  t.equal((await append(f, 'single', 3, Buffer.from('!'))).meta.parts, 2)
})

t.test('capacity: only the appended bytes are reserved and charged', async (t) => {
  const f = await fixture(t, { capacity: 10 * MiB })
  await append(f, 'big', 0, Buffer.alloc(6 * MiB, 1))
  t.equal(f.store.stats().committed, 6 * MiB)
  await append(f, 'big', 6 * MiB, Buffer.alloc(3 * MiB, 2))
  t.equal(f.store.stats().committed, 9 * MiB, 'charged 3 MiB, not a 9 MiB copy')
  await rejectsCode(t, append(f, 'big', 9 * MiB, Buffer.alloc(2 * MiB, 3)), 'CC_ERR_INSUFFICIENT_STORAGE', 'append past the capacity')
  t.equal(f.store.stats().committed, 9 * MiB)
  t.equal(f.store.stats().reserved, 0)
  t.equal(f.service.head(C, 'big').size, 9 * MiB, 'object unchanged')
  await f.service.deleteObject(C, 'big')
  t.equal(f.store.stats().committed, 0, 'a delete frees every extent')
})

t.test('checksums: the part is verified before commit; whole-object CRCs are combined, digests dropped', async (t) => {
  const f = await fixture(t)
  const a = randomBytes(70_000)
  const b = randomBytes(33_333)
  const c = randomBytes(1)
  // Created with a CRC32 and a Content-MD5.
  const md5 = createHash('md5').update(a).digest()
  const { meta: m1 } = await append(f, 'crc', 0, a, { expect: { ...expectAdditional('crc32', a), md5 } })
  t.equal(m1.checksums.crc32, s3Checksum('crc32', a))
  t.equal(m1.content.contentMd5, md5.toString('base64'), 'Content-MD5 of an object an append creates')
  // A wrong checksum on the part: refused, nothing stored, nothing left behind.
  const wrong = { additional: { algorithm: 'crc32' as const, value: () => Buffer.from(s3Checksum('crc32', c), 'base64') } }
  await rejectsCode(t, append(f, 'crc', a.length, b, { expect: wrong }), 'CC_ERR_CHECKSUM_MISMATCH', 'bad CRC32 on the part')
  await rejectsCode(t, append(f, 'crc', a.length, b, { expect: { md5 } }), 'CC_ERR_MD5_MISMATCH', 'bad Content-MD5 on the part')
  t.same(await current(f, 'crc'), a)
  t.same(await tmpFiles(f.root), [])
  t.equal(f.store.stats().reserved, 0)
  // The client sends the part's CRC32: the whole-object CRC32 is combined.
  const { meta: m2, checksums } = await append(f, 'crc', a.length, b, { expect: expectAdditional('crc32', b) })
  t.equal(checksums.additional?.value.toString('base64'), s3Checksum('crc32', b), 'the answer carries the part checksum')
  t.equal(m2.checksums.crc32, s3Checksum('crc32', Buffer.concat([a, b])), 'stored: CRC32 of the whole object')
  t.equal(m2.checksums.checksumType, 'FULL_OBJECT')
  t.equal(m2.checksums.md5, undefined, 'MD5 dropped')
  t.equal(m2.content.contentMd5, undefined, 'Content-MD5 dropped')
  // No checksum sent: the store computes the CRC it carries.
  const { meta: m3 } = await append(f, 'crc', a.length + b.length, c)
  t.equal(m3.checksums.crc32, s3Checksum('crc32', Buffer.concat([a, b, c])), 'carried across an append without a checksum')
  // Another CRC sent on an object whose earlier bytes have none of that kind: only the carried one stays.
  const { meta: m4 } = await append(f, 'crc', m3.size, b, { expect: expectAdditional('crc32c', b) })
  t.equal(m4.checksums.crc32c, undefined, 'no whole-object CRC32C: the earlier bytes had none')
  t.equal(m4.checksums.crc32, s3Checksum('crc32', Buffer.concat([a, b, c, b])))

  // CRC-64/NVME and SHA-256.
  await append(f, 'nvme', 0, a, { expect: expectAdditional('crc64nvme', a) })
  const { meta: n2 } = await append(f, 'nvme', a.length, b, { expect: expectAdditional('sha256', b) })
  t.equal(n2.checksums.crc64nvme, s3Checksum('crc64nvme', Buffer.concat([a, b])))
  t.equal(n2.checksums.sha256, undefined, 'a SHA-256 of the part is not one of the object')
  await append(f, 'sha', 0, a, { expect: expectAdditional('sha256', a) })
  const { meta: s2 } = await append(f, 'sha', a.length, b, { expect: expectAdditional('crc32c', b) })
  t.same(s2.checksums, {}, 'SHA-256 of the object dropped; no CRC32C known for the earlier bytes')

  // An empty object: its CRC is known (0), so the first append's CRC is the object's.
  await append(f, 'empty', 0, Buffer.alloc(0))
  const { meta: e2 } = await append(f, 'empty', 0, b, { expect: expectAdditional('crc32c', b) })
  t.equal(e2.checksums.crc32c, s3Checksum('crc32c', b))

  // Azure's CRC64 (x-ms-content-crc64, little-endian) is CRC-64/NVME: carried too.
  const azure = (d: Buffer): Buffer => { const h = new Crc64(); h.update(d); return h.digest() }
  await f.service.putObject({ container: C, name: 'blob', body: Readable.from([a]), size: a.length, content: {}, metadata: {}, expect: { crc64: azure(a) } })
  const { meta: z2 } = await append(f, 'blob', a.length, b)
  t.equal(z2.checksums.crc64, azure(Buffer.concat([a, b])).toString('base64'), 'Azure CRC64 of the whole object')
})

t.test('conditions apply as for PutObject, under the lock', async (t) => {
  const f = await fixture(t)
  const { meta } = await append(f, 'o', 0, Buffer.from('v1'))
  await rejectsCode(t, append(f, 'o', 2, Buffer.from('x'), { conditions: { ifMatch: ['0xNOPE'] } }), 'CC_ERR_CONDITION_NOT_MET', 'If-Match another etag')
  await rejectsCode(t, append(f, 'o', 2, Buffer.from('x'), { conditions: { ifNoneMatch: ['*'] } }), 'CC_ERR_OBJECT_EXISTS', 'If-None-Match: *')
  const { meta: m2 } = await append(f, 'o', 2, Buffer.from('v2'), { conditions: { ifMatch: [meta.etag] } })
  t.not(m2.etag, meta.etag)
  await rejectsCode(t, append(f, 'o', 4, Buffer.from('x'), { conditions: { ifMatch: [meta.etag] } }), 'CC_ERR_CONDITION_NOT_MET', 'If-Match the previous version')
  t.same(await current(f, 'o'), Buffer.from('v1v2'))
  await rejectsCode(t, append(f, 'n', 0, Buffer.from('x'), { conditions: { ifMatch: ['*'] } }), 'CC_ERR_CONDITION_NOT_MET', 'If-Match on a missing object')
  t.ok((await append(f, 'n', 0, Buffer.from('x'), { conditions: { ifNoneMatch: ['*'] } })).meta, 'If-None-Match: * creates')
})

t.test('a reader of the previous version keeps reading it, across an append and an overwrite', async (t) => {
  const f = await fixture(t)
  const v1 = randomBytes(3 * MiB)
  await append(f, 'o', 0, v1)
  const old = f.service.read(f.service.head(C, 'o')).body
  const chunks: Buffer[] = []
  const first = await new Promise<Buffer>((resolve) => old.once('data', resolve))
  chunks.push(first)
  old.pause()
  await append(f, 'o', v1.length, randomBytes(1000))
  await f.service.putObject({ container: C, name: 'o', body: Readable.from([Buffer.from('replaced')]), size: 8, content: {}, metadata: {} })
  for await (const c of old as AsyncIterable<Buffer>) chunks.push(c)
  t.same(Buffer.concat(chunks), v1, 'the old version, whole')
  t.same(await current(f, 'o'), Buffer.from('replaced'))
})

t.test('restart: the index rebuild accepts appended (multi-extent) objects; appends continue', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ckptcache-append-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  let f = await openStore(root)
  await f.service.createContainer(C, {})
  const pieces = [randomBytes(10), randomBytes(200_000), randomBytes(1)]
  let offset = 0
  for (const p of pieces) {
    await append(f, 'o', offset, p, { expect: expectAdditional('crc32c', p) })
    offset += p.length
  }
  const before = f.service.head(C, 'o')
  await f.store.close()
  f = await openStore(root)
  const after = f.service.head(C, 'o')
  t.same(after, before, 'same metadata after the rebuild (extents, parts, checksums, etag)')
  t.same(await current(f, 'o'), Buffer.concat(pieces))
  t.equal(f.store.stats().committed, offset)
  const { meta } = await append(f, 'o', offset, Buffer.from('more'))
  t.equal(meta.parts, 4)
  t.equal(meta.checksums.crc32c, s3Checksum('crc32c', Buffer.concat([...pieces, Buffer.from('more')])))
  t.same(await tmpFiles(root), [])
  await f.store.close()
})

// ---- kill -9 of a gateway during appends -------------------------------------------------

t.test('kill -9 during appends: the object is the old version or the new one, whole; no temp file after restart', async (t) => {
  let gw = await startGateway()
  const dataDir = gw.dataDir
  t.teardown(async () => { await gw.stop() })
  t.equal((await s3Request(gw, 'PUT', `/${C}`, { 'content-length': '0' })).status, 200, 'directory bucket created')
  let content = randomBytes(1000)
  t.equal((await s3Request(gw, 'PUT', `/${C}/shard`, { 'content-length': '1000', 'x-amz-write-offset-bytes': '0' }, content)).status, 200)
  // How long one append takes here, to spread the kills from before its body arrives to after its answer.
  const started = Date.now()
  const first = randomBytes(2 * MiB)
  t.equal((await s3Request(gw, 'PUT', `/${C}/shard`, { 'content-length': String(first.length), 'x-amz-write-offset-bytes': '1000' }, first)).status, 200)
  content = Buffer.concat([content, first])
  const took = Date.now() - started
  const outcomes = { old: 0, new: 0 }
  const rounds = 8
  for (let round = 0; round < rounds; round++) {
    const piece = randomBytes(2 * MiB + round)
    // Acknowledged (or not) append of a whole body, killed at a different moment each round.
    const put = s3Request(gw, 'PUT', `/${C}/shard`, { 'content-length': String(piece.length), 'x-amz-write-offset-bytes': String(content.length) }, piece)
      .then((r) => r.status === 200 ? 'acked' : `status ${r.status}`, () => 'failed')
    await new Promise((resolve) => setTimeout(resolve, Math.round(took * 1.5 * round / (rounds - 1))))
    await gw.kill('SIGKILL')
    const result = await put
    gw = await startGateway({ dataDir })
    const got = await s3Request(gw, 'GET', `/${C}/shard`, {})
    t.equal(got.status, 200)
    const next = Buffer.concat([content, piece])
    const isOld = got.body.equals(content)
    const isNew = got.body.equals(next)
    t.ok(isOld || isNew, `round ${round}: one whole version (${got.body.length} bytes)`)
    if (result === 'acked') t.ok(isNew, `round ${round}: an acknowledged append survived`)
    if (isNew) {
      outcomes.new++
      content = next
    } else {
      outcomes.old++
    }
    t.same(await readdir(join(dataDir, 'tmp')), [], `round ${round}: no temp files after restart`)
  }
  // The restarted gateway appends at the surviving size.
  const tail = Buffer.from('tail')
  const r = await s3Request(gw, 'PUT', `/${C}/shard`, { 'content-length': '4', 'x-amz-write-offset-bytes': String(content.length) }, tail)
  t.equal(r.status, 200)
  t.equal(r.headers['x-amz-object-size'], String(content.length + 4))
  t.same((await s3Request(gw, 'GET', `/${C}/shard`, {})).body, Buffer.concat([content, tail]))
  t.comment(`one append took ${took} ms; outcomes over ${rounds} rounds: ${JSON.stringify(outcomes)}`)
})
