/**
 * The peer API on the wire: a real peer server and a real peer client over
 * 127.0.0.1, with a small in-memory handler behind the server. RPC and probe
 * round trips, a 32 MiB object written and read back, ranges, error mapping
 * both ways, routes, and aborts reaching the other side (a reader that leaves
 * destroys the server's stream; a writer that leaves aborts the handler's
 * signal and errors its body).
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import { CacheError, isCacheError, type ErrorCode } from '../../src/errors.js'
import { EMPTY_SHA256, PeerSigner, sha256Hex } from '../../src/cluster/auth.js'
import { createPeerClient } from '../../src/cluster/peer-client.js'
import { createPeerServer } from '../../src/cluster/peer-server.js'
import { decodeWireMeta, errorFromAnswer, objectPath, RPC_METHODS, rpcPath } from '../../src/cluster/protocol.js'
import type { ByteRange } from '../../src/core/types.js'
import type { NodeInfo, PeerClient, PeerHandler, ProbeInfo, RpcMethod, WireMeta } from '../../src/cluster/types.js'

const SECRET = 'wire-test-secret-0123456789'
const MiB = 1024 * 1024

interface LogLine { level: 'warn' | 'error', obj: Record<string, unknown>, msg: string }

/** The rpc results the handler answers, one per method. */
const RESULTS: Record<RpcMethod, unknown> = {
  head: { holders: ['n2', 'n3'] },
  delete: { deleted: true },
  locate: {},
  clean: { cleaned: true },
  checksums: { updated: true },
  list: { entries: [{ kind: 'prefix', name: 'a/' }], truncated: true },
  dirty: { count: 3 },
  check: { verdicts: ['current', 'stale', 'unknown'] },
  createContainer: {},
  getContainer: { container: { name: 'c', etag: 'e', createdMs: 1, lastModifiedMs: 2, metadata: { k: 'v' } } },
  deleteContainer: {},
  listContainers: { containers: [] }
}

/** Arguments each rpc is called with. */
const ARGS: Record<RpcMethod, unknown> = {
  head: { container: 'c', name: 'dir/ü x' },
  delete: { container: 'c', name: 'n', etag: 'e1', mode: 'drop' },
  locate: { container: 'c', name: 'n', etag: 'e1', lastModifiedMs: 5, holders: ['n1'] },
  clean: { container: 'c', name: 'n', etag: 'e1', upstreamEtag: 'u1', md5: 'bWQ1' },
  checksums: { container: 'c', name: 'dir/ü x', etag: 'e1', md5: '1B2M2Y8AsgTpgAmY7PhCfg==' },
  list: { container: 'c', query: { prefix: 'a', delimiter: '/', startAfter: 'a0', maxResults: 10 } },
  dirty: { container: 'c', dir: 'ckpt/', except: 'ckpt/.metadata', beforeMs: 99 },
  check: { items: [{ container: 'c', name: 'n', etag: 'e', lastModifiedMs: 1 }] },
  createContainer: { name: 'c', metadata: { a: 'b' } },
  getContainer: { name: 'c' },
  deleteContainer: { name: 'c' },
  listContainers: { prefix: 'p' }
}

class MemoryHandler implements PeerHandler {
  readonly objects = new Map<string, { meta: WireMeta, data: Buffer }>()
  readonly calls: Array<{ method: string, args: unknown }> = []
  /** Thrown by every rpc when set. */
  fail: unknown
  /** Replaces the body of reads when set. */
  readBody: ((data: Buffer, range?: ByteRange) => Readable) | undefined
  /** Called with each write's body and signal when set (instead of storing). */
  onWrite: ((meta: WireMeta, body: Readable, signal: AbortSignal) => Promise<void>) | undefined
  /** Each write's outcome. */
  readonly writes: Array<{ meta: WireMeta, error?: unknown }> = []
  /** A promise rpcs wait on when set (for timeouts). */
  hang: Promise<void> | undefined

  probe (): ProbeInfo { return { id: 'n2', bootId: 'boot-1', draining: false } }

  async #rpc (method: RpcMethod, args: unknown): Promise<never> {
    this.calls.push({ method, args })
    if (this.hang !== undefined) await this.hang
    if (this.fail !== undefined) throw this.fail
    return structuredClone(RESULTS[method]) as never
  }

  head (a: unknown): Promise<never> { return this.#rpc('head', a) }
  delete (a: unknown): Promise<never> { return this.#rpc('delete', a) }
  locate (a: unknown): Promise<never> { return this.#rpc('locate', a) }
  clean (a: unknown): Promise<never> { return this.#rpc('clean', a) }
  checksums (a: unknown): Promise<never> { return this.#rpc('checksums', a) }
  list (a: unknown): Promise<never> { return this.#rpc('list', a) }
  dirty (a: unknown): Promise<never> { return this.#rpc('dirty', a) }
  check (a: unknown): Promise<never> { return this.#rpc('check', a) }
  createContainer (a: unknown): Promise<never> { return this.#rpc('createContainer', a) }
  getContainer (a: unknown): Promise<never> { return this.#rpc('getContainer', a) }
  deleteContainer (a: unknown): Promise<never> { return this.#rpc('deleteContainer', a) }
  listContainers (a: unknown): Promise<never> { return this.#rpc('listContainers', a) }

  read (a: { container: string, name: string, range?: ByteRange, etag?: string }): { meta: WireMeta, range?: ByteRange, body: Readable } {
    const o = this.objects.get(`${a.container}/${a.name}`)
    if (o === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    if (a.etag !== undefined && a.etag !== o.meta.etag) throw new CacheError('CC_ERR_CONDITION_NOT_MET', `Another version (${o.meta.etag}) is here`)
    let range: ByteRange | undefined
    if (a.range !== undefined) {
      if (a.range.start >= o.meta.size) throw new CacheError('CC_ERR_INVALID_RANGE', undefined, { detail: { size: o.meta.size } })
      range = { start: a.range.start, end: Math.min(a.range.end, o.meta.size - 1) }
    }
    const bytes = range === undefined ? o.data : o.data.subarray(range.start, range.end + 1)
    const body = this.readBody?.(o.data, range) ?? Readable.from(chunked(bytes, MiB), { objectMode: false })
    return range === undefined ? { meta: o.meta, body } : { meta: o.meta, range, body }
  }

  async write (meta: WireMeta, body: Readable, signal: AbortSignal): Promise<void> {
    if (this.onWrite !== undefined) return await this.onWrite(meta, body, signal)
    const chunks: Buffer[] = []
    try {
      for await (const c of body as AsyncIterable<Buffer>) chunks.push(c)
    } catch (error) {
      this.writes.push({ meta, error })
      throw error
    }
    this.writes.push({ meta })
    this.objects.set(`${meta.container}/${meta.name}`, { meta, data: Buffer.concat(chunks) })
  }
}

function * chunked (b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, Math.min(b.length, i + size))
  if (b.length === 0) return
}

interface Fixture {
  handler: MemoryHandler
  client: PeerClient
  node: NodeInfo
  port: number
  logs: LogLine[]
}

async function fixture (t: Test, clientOpts: { timeoutMs?: number } = {}): Promise<Fixture> {
  const handler = new MemoryHandler()
  const logs: LogLine[] = []
  const log = {
    warn (obj: object, msg: string) { logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) },
    error (obj: object, msg: string) { logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) }
  }
  const server = createPeerServer({ handler, secret: SECRET, replayWindowMs: 60_000, log, closeGraceMs: 500 })
  const port = await server.listen('127.0.0.1', 0)
  const client = createPeerClient({ self: 'n1', secret: SECRET, ...clientOpts })
  t.teardown(async () => {
    await client.close()
    await server.close()
  })
  return { handler, client, node: { id: 'n2', url: `http://127.0.0.1:${port}` }, port, logs }
}

function wireMeta (container: string, name: string, size: number, extra: Partial<WireMeta> = {}): WireMeta {
  return {
    container,
    name,
    size,
    etag: `etag-${name}-${size}`,
    createdMs: 1_700_000_000_000,
    lastModifiedMs: 1_700_000_000_001,
    content: { contentType: 'application/octet-stream', contentMd5: 'AAAA' },
    metadata: { Step: '100', rank: '3' },
    checksums: { crc64: 'crc', crc32c: 'c32c', checksumType: 'FULL_OBJECT' },
    fromBlocks: true,
    parts: 4,
    dirty: true,
    upstreamEtag: 'up-1',
    holders: ['n1', 'n2'],
    ...extra
  }
}

async function collect (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks)
}

function source (data: Buffer): { open (): Readable, opened: number } {
  const s = {
    opened: 0,
    open (): Readable {
      s.opened++
      return Readable.from(chunked(data, 4 * MiB), { objectMode: false })
    }
  }
  return s
}

/** A signed request over plain node:http; answers status, headers and body. */
async function signedRequest (port: number, method: string, path: string, opts: { body?: Buffer, headers?: Record<string, string> } = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  const signer = new PeerSigner({ node: 'n1', secret: SECRET })
  const headers = { ...signer.sign(method, path, opts.body === undefined ? EMPTY_SHA256 : sha256Hex(opts.body)), ...opts.headers }
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, res => {
      collect(res).then(body => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) }, reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

async function rejectsWith (t: Test, p: Promise<unknown>, code: ErrorCode, msg: string): Promise<CacheError> {
  try {
    await p
  } catch (err) {
    t.ok(isCacheError(err), `${msg}: a CacheError`)
    t.equal((err as CacheError).code, code, msg)
    return err as CacheError
  }
  t.fail(`${msg}: resolved`)
  return new CacheError('CC_ERR_INTERNAL')
}

t.test('probe and every rpc round trip with their arguments and results', async t => {
  const f = await fixture(t)
  t.same(await f.client.probe(f.node.url), { id: 'n2', bootId: 'boot-1', draining: false })
  t.same(RPC_METHODS.slice().sort(), Object.keys(ARGS).sort(), 'every PeerRpc method is routed')
  for (const m of RPC_METHODS) {
    const result = await f.client.rpc(f.node, m, ARGS[m] as never)
    t.same(result, RESULTS[m], `${m}: result`)
    t.same(f.handler.calls.at(-1), { method: m, args: ARGS[m] }, `${m}: reached the handler with its argument`)
  }
  t.equal(f.handler.calls.length, RPC_METHODS.length)
  t.same(f.logs, [], 'nothing logged')
  f.handler.probe = () => ({ id: 7 }) as never
  await rejectsWith(t, f.client.probe(f.node.url), 'CC_ERR_PEER_UNAVAILABLE', 'an answer that is not a probe')
})

t.test('a 32 MiB object is written and read back byte for byte, with its meta', async t => {
  const f = await fixture(t)
  const data = randomBytes(32 * MiB)
  const meta = wireMeta('ckpt', 'step-100/rank 3/shard?#%.bin', data.length)
  const src = source(data)
  await f.client.write(f.node, meta, src)
  t.equal(src.opened, 1, 'the source is read once (its chunks are signed as they go)')
  t.same(f.handler.writes, [{ meta }], 'the handler got the meta as sent and a body that ended')
  t.ok(f.handler.objects.get(`ckpt/${meta.name}`)?.data.equals(data), 'stored bytes equal')

  const r = await f.client.read(f.node, { container: 'ckpt', name: meta.name })
  t.same(r.meta, meta, 'meta read back')
  t.equal(r.range, undefined)
  t.ok((await collect(r.body)).equals(data), 'bytes read back equal')

  const v = await f.client.read(f.node, { container: 'ckpt', name: meta.name, etag: meta.etag, range: { start: 5, end: 9 } })
  t.ok((await collect(v.body)).equals(data.subarray(5, 10)), 'a read of the exact version')

  // An empty object round trips too.
  const empty = wireMeta('ckpt', 'empty', 0)
  await f.client.write(f.node, empty, source(Buffer.alloc(0)))
  const e = await f.client.read(f.node, { container: 'ckpt', name: 'empty' })
  t.equal((await collect(e.body)).length, 0)
  t.equal(e.meta.size, 0)
})

t.test('ranges answer 206 with content-range; past the end clamps; past the size is CC_ERR_INVALID_RANGE', async t => {
  const f = await fixture(t)
  const data = randomBytes(3 * MiB + 17)
  const meta = wireMeta('c', 'obj', data.length)
  await f.client.write(f.node, meta, source(data))

  const r = await f.client.read(f.node, { container: 'c', name: 'obj', range: { start: 10, end: 2 * MiB } })
  t.same(r.range, { start: 10, end: 2 * MiB })
  t.ok((await collect(r.body)).equals(data.subarray(10, 2 * MiB + 1)))

  const tail = await f.client.read(f.node, { container: 'c', name: 'obj', range: { start: data.length - 5, end: data.length + 100 } })
  t.same(tail.range, { start: data.length - 5, end: data.length - 1 })
  t.ok((await collect(tail.body)).equals(data.subarray(data.length - 5)))

  const err = await rejectsWith(t, f.client.read(f.node, { container: 'c', name: 'obj', range: { start: data.length, end: data.length + 1 } }), 'CC_ERR_INVALID_RANGE', 'range past the size')
  t.same(err.detail, { size: data.length }, 'the detail travels')

  const raw = await signedRequest(f.port, 'GET', objectPath('c', 'obj'), { headers: { range: 'bytes=0-99' } })
  t.equal(raw.status, 206)
  t.equal(raw.headers['content-range'], `bytes 0-99/${data.length}`)
  t.equal(raw.headers['content-length'], '100')
  t.same(decodeWireMeta(raw.headers['x-ckpt-meta'] as string), meta)
  t.ok(raw.body.equals(data.subarray(0, 100)))

  const bad = await signedRequest(f.port, 'GET', objectPath('c', 'obj'), { headers: { range: 'bytes=5-' } })
  t.equal(bad.status, 400, 'an open range is not part of the peer API')
})

t.test('errors map to statuses and back to the same CacheError', async t => {
  const f = await fixture(t)
  const cases: Array<[ErrorCode, number]> = [
    ['CC_ERR_OBJECT_NOT_FOUND', 404], ['CC_ERR_CONTAINER_NOT_FOUND', 404], ['CC_ERR_CONDITION_NOT_MET', 412],
    ['CC_ERR_INVALID_RANGE', 416], ['CC_ERR_SERVER_BUSY', 503], ['CC_ERR_PEER_UNAVAILABLE', 503],
    ['CC_ERR_UPSTREAM_UNAVAILABLE', 503], ['CC_ERR_INVALID_INPUT', 400], ['CC_ERR_INVALID_NAME', 400],
    ['CC_ERR_INSUFFICIENT_STORAGE', 507], ['CC_ERR_CONTAINER_EXISTS', 409], ['CC_ERR_OBJECT_EXISTS', 409],
    ['CC_ERR_MD5_MISMATCH', 500]
  ]
  const args = Buffer.from(JSON.stringify(ARGS.head))
  for (const [code, status] of cases) {
    f.handler.fail = new CacheError(code, `message of ${code}`, { detail: { retryAfter: 7, size: 'x' } })
    const err = await rejectsWith(t, f.client.rpc(f.node, 'head', ARGS.head as never), code, code)
    t.equal(err.message, `message of ${code}`)
    t.same(err.detail, { retryAfter: 7, size: 'x' })
    const raw = await signedRequest(f.port, 'POST', rpcPath('head'), { body: args })
    t.equal(raw.status, status, `${code} is ${status}`)
    t.same(JSON.parse(raw.body.toString()), { code, message: `message of ${code}`, detail: { retryAfter: 7, size: 'x' } })
    t.equal(raw.headers['retry-after'], code === 'CC_ERR_SERVER_BUSY' ? '7' : undefined, `${code}: retry-after`)
  }
  t.equal(f.logs.filter(l => l.level === 'error').length, 2, 'the 500 (a catalogue code without a peer status) is logged')

  f.logs.length = 0
  f.handler.fail = new Error('disk /secret/path exploded')
  const err = await rejectsWith(t, f.client.rpc(f.node, 'head', ARGS.head as never), 'CC_ERR_INTERNAL', 'a plain error')
  t.notMatch(err.message, /secret/, 'nothing of the cause leaks')
  t.equal(f.logs.length, 1)
  t.equal(f.logs[0]?.level, 'error')
  t.equal((f.logs[0]?.obj.err as Error).message, 'disk /secret/path exploded', 'the cause is logged')

  // The client side of the map: unknown codes and bodies that are not errors.
  t.equal(errorFromAnswer(500, '{"code":"CC_ERR_FROM_THE_FUTURE","message":"m"}').code, 'CC_ERR_INTERNAL')
  t.equal(errorFromAnswer(404, 'not json').code, 'CC_ERR_OBJECT_NOT_FOUND')
  t.equal(errorFromAnswer(503, '').code, 'CC_ERR_PEER_UNAVAILABLE')
  t.equal(errorFromAnswer(502, '<html>').code, 'CC_ERR_INTERNAL')

  f.handler.fail = undefined
  await rejectsWith(t, f.client.read(f.node, { container: 'c', name: 'missing' }), 'CC_ERR_OBJECT_NOT_FOUND', 'read of a missing object')
  await f.client.write(f.node, wireMeta('c', 'v', 3), source(Buffer.from('abc')))
  await rejectsWith(t, f.client.read(f.node, { container: 'c', name: 'v', etag: 'another' }), 'CC_ERR_CONDITION_NOT_MET', 'read of another version')
})

t.test('replica writes refused before their body is read, and sources of the wrong length', async t => {
  t.setTimeout(20_000)
  const f = await fixture(t)
  let body: Readable | undefined
  f.handler.onWrite = async (_meta, b) => {
    body = b
    throw new CacheError('CC_ERR_INSUFFICIENT_STORAGE', 'No room for 8 MiB', { detail: { free: 5 } })
  }
  const data = Buffer.alloc(8 * MiB, 9)
  const err = await rejectsWith(t, f.client.write(f.node, wireMeta('c', 'full', data.length), source(data)), 'CC_ERR_INSUFFICIENT_STORAGE', 'the refusal reaches the writer')
  t.same(err.detail, { free: 5 })
  if (body !== undefined && !body.destroyed) await new Promise(resolve => body?.once('close', resolve))
  t.ok(body?.destroyed, 'the unread body is cleaned up once the connection closes')

  f.handler.onWrite = undefined
  const short = { open: () => Readable.from([Buffer.alloc(10)]) }
  await rejectsWith(t, f.client.write(f.node, wireMeta('c', 'short', 11), short), 'CC_ERR_INTERNAL', 'a source shorter than its meta')
  t.same(f.handler.writes, [], 'nothing was sent')
  await f.client.write(f.node, wireMeta('c', 'ok', 10), short)
  t.equal(f.handler.objects.get('c/ok')?.data.length, 10, 'the next write goes through')
})

t.test('unreachable peers, timeouts and cancelled calls', async t => {
  const f = await fixture(t, { timeoutMs: 300 })
  // A port that was just free: nothing listens on it.
  const dead = await (async () => {
    const s = createPeerServer({ handler: f.handler, secret: SECRET, replayWindowMs: 1000, log: { warn () {}, error () {} } })
    const port = await s.listen('127.0.0.1', 0)
    await s.close()
    return `http://127.0.0.1:${port}`
  })()
  const refused = await rejectsWith(t, f.client.probe(dead), 'CC_ERR_PEER_UNAVAILABLE', 'connection refused')
  t.match(refused.message, dead, 'the message names the peer')
  await rejectsWith(t, f.client.rpc({ id: 'x', url: dead }, 'head', ARGS.head as never), 'CC_ERR_PEER_UNAVAILABLE', 'rpc to a dead peer')
  await rejectsWith(t, f.client.read({ id: 'x', url: dead }, { container: 'c', name: 'n' }), 'CC_ERR_PEER_UNAVAILABLE', 'read from a dead peer')
  await rejectsWith(t, f.client.write({ id: 'x', url: dead }, wireMeta('c', 'n', 1), source(Buffer.from('x'))), 'CC_ERR_PEER_UNAVAILABLE', 'write to a dead peer')

  let release = (): void => {}
  f.handler.hang = new Promise(resolve => { release = resolve })
  t.teardown(() => { release() })
  const slow = await rejectsWith(t, f.client.rpc(f.node, 'head', ARGS.head as never), 'CC_ERR_PEER_UNAVAILABLE', 'an rpc past the default timeout')
  t.match(slow.message, f.node.url)
  await rejectsWith(t, f.client.rpc(f.node, 'head', ARGS.head as never, { timeoutMs: 100 }), 'CC_ERR_PEER_UNAVAILABLE', 'an rpc past its own timeout')

  const ac = new AbortController()
  const p = f.client.rpc(f.node, 'dirty', ARGS.dirty as never, { signal: ac.signal, timeoutMs: 5000 })
  ac.abort()
  await rejectsWith(t, p, 'CC_ERR_CLIENT_ABORTED', 'a cancelled rpc')
  release()
  f.handler.hang = undefined
  t.same(await f.client.rpc(f.node, 'dirty', ARGS.dirty as never), RESULTS.dirty, 'the client works on after')

  await f.client.close()
  await rejectsWith(t, f.client.probe(f.node.url), 'CC_ERR_PEER_UNAVAILABLE', 'a closed client')
})

t.test('routes: unknown paths 404, wrong methods 405, bad object paths 400', async t => {
  const f = await fixture(t)
  const nope = await signedRequest(f.port, 'GET', '/v1/nope')
  t.equal(nope.status, 404)
  t.equal(JSON.parse(nope.body.toString()).code, 'CC_ERR_INVALID_INPUT')
  t.equal((await signedRequest(f.port, 'POST', '/v1/rpc/notAMethod', { body: Buffer.from('{}') })).status, 404)
  const del = await signedRequest(f.port, 'DELETE', objectPath('c', 'n'))
  t.equal(del.status, 405)
  t.equal(del.headers.allow, 'GET,PUT')
  t.equal((await signedRequest(f.port, 'GET', rpcPath('head'))).status, 405)
  t.equal((await signedRequest(f.port, 'POST', '/v1/probe')).status, 405)
  t.equal((await signedRequest(f.port, 'GET', '/v1/o/c/%E0%A4%A')).status, 400, 'bad percent-encoding')
  t.equal((await signedRequest(f.port, 'GET', '/v1/o/c/a/b')).status, 400, 'three segments')
  t.equal((await signedRequest(f.port, 'POST', rpcPath('head'), { body: Buffer.from('[1]') })).status, 400, 'an argument that is not an object')
  t.equal((await signedRequest(f.port, 'POST', rpcPath('head'), { body: Buffer.from('{') })).status, 400, 'an argument that is not JSON')
  t.equal(f.handler.calls.length, 0, 'the handler saw none of them')

  const data = Buffer.from('0123456789')
  const meta = wireMeta('c', 'n', data.length)
  const wrongName = await signedRequest(f.port, 'PUT', objectPath('c', 'other'), {
    body: data, headers: { 'x-ckpt-meta': Buffer.from(JSON.stringify(meta)).toString('base64url') }
  })
  t.equal(wrongName.status, 400, 'meta naming another object than the path')
  const badMeta = await signedRequest(f.port, 'PUT', objectPath('c', 'n'), {
    body: data, headers: { 'x-ckpt-meta': Buffer.from(JSON.stringify({ ...meta, size: '10' })).toString('base64url') }
  })
  t.equal(badMeta.status, 400, 'meta of the wrong shape')
  t.match(JSON.parse(badMeta.body.toString()).message, /size/)
  t.equal(f.handler.writes.length, 0)
})

t.test('a reader that aborts mid-body destroys the server-side stream', async t => {
  t.setTimeout(20_000)
  const f = await fixture(t)
  // Reads produce bytes on demand for as long as they are wanted.
  let served: Readable | undefined
  f.handler.objects.set('c/endless', { meta: wireMeta('c', 'endless', 1024 * MiB), data: Buffer.alloc(0) })
  f.handler.readBody = () => {
    const chunk = Buffer.alloc(64 * 1024, 1)
    served = new Readable({ read () { this.push(chunk) } })
    return served
  }
  const ac = new AbortController()
  const r = await f.client.read(f.node, { container: 'c', name: 'endless', signal: ac.signal })
  const first = await new Promise<Buffer>(resolve => r.body.once('data', resolve))
  t.ok(first.length > 0, 'bytes arrive')
  t.ok(served !== undefined && !served.destroyed, 'the server-side stream is open')
  let destroyedWith: unknown
  served?.on('error', err => { destroyedWith = err })
  const closed = new Promise(resolve => served?.once('close', resolve))
  r.body.on('error', () => {})
  ac.abort()
  await closed
  t.ok(served?.destroyed, 'the server-side stream is destroyed once the reader left')
  t.equal((destroyedWith as { code?: string } | undefined)?.code, 'ERR_STREAM_PREMATURE_CLOSE')
})

t.test('a writer that leaves mid-body aborts the handler signal and errors its body', async t => {
  t.setTimeout(20_000)
  const f = await fixture(t)
  const seen: { bytes: number, error?: unknown, aborted?: boolean } = { bytes: 0 }
  let started = (): void => {}
  const startedP = new Promise<void>(resolve => { started = resolve })
  let errored = (): void => {}
  const erroredP = new Promise<void>(resolve => { errored = resolve })
  f.handler.onWrite = async (_meta, body, signal) => {
    try {
      for await (const c of body as AsyncIterable<Buffer>) {
        seen.bytes += c.length
        started()
      }
    } catch (err) {
      seen.error = err
      seen.aborted = signal.aborted
      errored()
      throw err
    }
    throw new Error('the body ended')
  }
  const size = 128 * MiB
  const chunk = Buffer.alloc(MiB, 7)
  const endless = { open: () => Readable.from((function * () { for (let i = 0; i < size / MiB; i++) yield chunk })(), { objectMode: false }) }
  const ac = new AbortController()
  const p = f.client.write(f.node, wireMeta('c', 'w', size), endless, { signal: ac.signal })
  await startedP
  ac.abort()
  await rejectsWith(t, p, 'CC_ERR_CLIENT_ABORTED', 'the cancelled write')
  await erroredP
  t.ok(seen.error !== undefined, 'the handler body errored instead of ending')
  t.ok(seen.aborted, 'the handler signal aborted')
  t.ok(seen.bytes > 0 && seen.bytes < size, 'part of the body had arrived')
})
