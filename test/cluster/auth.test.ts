/**
 * Peer request authentication: the signer and verifier on their own (dates,
 * nonces, tampering, the bounded nonce memory), then a real peer server and
 * client on 127.0.0.1 refusing what is not signed with the cluster secret —
 * a missing signature, another secret, a tampered path or body, a stale date,
 * a replayed request — each refusal answered 403 CC_ERR_PEER_AUTH and logged
 * without the secret or the signature.
 */
import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import { CacheError, isCacheError, type ErrorCode } from '../../src/errors.js'
import { EMPTY_SHA256, PeerSigner, PeerVerifier, sha256Hex, type SignedHeaders } from '../../src/cluster/auth.js'
import { createPeerClient } from '../../src/cluster/peer-client.js'
import { createPeerServer } from '../../src/cluster/peer-server.js'
import { encodeWireMeta, objectPath, PROBE_PATH, rpcPath } from '../../src/cluster/protocol.js'
import type { NodeInfo, PeerHandler, WireMeta } from '../../src/cluster/types.js'

const SECRET = 'the-cluster-secret-4f1c2b'
const WINDOW = 60_000

t.test('signer and verifier without HTTP', async t => {
  let now = 1_700_000_000_000
  const clock = (): number => now
  const signer = new PeerSigner({ node: 'node-a', secret: SECRET, now: clock })
  const verifier = new PeerVerifier({ secret: SECRET, replayWindowMs: WINDOW, now: clock })
  const body = sha256Hex('{"a":1}')

  const h = signer.sign('POST', '/v1/rpc/head?x=1', body)
  t.match(h['x-ckpt-nonce'], /^[0-9a-f]{32}$/)
  t.equal(h['x-ckpt-date'], String(now))
  t.equal(h['x-ckpt-content-sha256'], body)
  t.match(h.authorization, /^CKPT-HMAC-SHA256 [0-9a-f]{64}$/)
  const ok = verifier.verify('POST', '/v1/rpc/head?x=1', h)
  t.match(ok, { ok: true, node: 'node-a', contentSha256: body })
  t.equal(ok.ok && ok.signature.toString('hex'), h.authorization.split(' ')[1], 'the request signature, which chunk signatures chain from')
  t.match(verifier.verify('POST', '/v1/rpc/head?x=1', h), { ok: false, reason: /replayed/ }, 'the same request again')

  const refusedFor = (headers: Record<string, string | undefined>, method = 'POST', target = '/v1/rpc/head'): string => {
    const r = verifier.verify(method, target, headers)
    return r.ok ? 'accepted' : r.reason
  }
  const fresh = (): SignedHeaders => signer.sign('POST', '/v1/rpc/head', body)
  t.equal(refusedFor(fresh()), 'accepted')
  t.match(refusedFor(fresh(), 'PUT'), /signature/, 'another method')
  t.match(refusedFor(fresh(), 'POST', '/v1/rpc/head?'), /signature/, 'another target')
  t.match(refusedFor({ ...fresh(), 'x-ckpt-content-sha256': EMPTY_SHA256 }), /signature/, 'another body digest')
  t.match(refusedFor({ ...fresh(), 'x-ckpt-node': 'node-b' }), /signature/, 'another sender')
  t.match(refusedFor({ ...fresh(), 'x-ckpt-date': String(now + 1) }), /signature/, 'another date')
  t.match(refusedFor({ ...fresh(), authorization: undefined }), /missing authorization/)
  t.match(refusedFor({ ...fresh(), authorization: 'Bearer x' }), /malformed authorization/)
  t.match(refusedFor({ ...fresh(), 'x-ckpt-nonce': 'short' }), /x-ckpt-nonce/)
  t.match(refusedFor({ ...fresh(), 'x-ckpt-date': 'yesterday' }), /x-ckpt-date/)
  t.match(refusedFor({ ...fresh(), 'x-ckpt-node': undefined }), /x-ckpt-node/)
  t.match(refusedFor({ ...fresh(), 'x-ckpt-content-sha256': 'abc' }), /x-ckpt-content-sha256/)
  const other = new PeerSigner({ node: 'node-a', secret: 'another-secret', now: clock })
  t.match(refusedFor(other.sign('POST', '/v1/rpc/head', body)), /signature/, 'another secret')

  // Dates: within the window either way, not past it.
  const at = (ms: number): SignedHeaders => new PeerSigner({ node: 'node-a', secret: SECRET, now: () => ms }).sign('GET', '/v1/probe')
  t.equal(refusedFor(at(now - WINDOW), 'GET', '/v1/probe'), 'accepted', 'a window old')
  t.equal(refusedFor(at(now + WINDOW), 'GET', '/v1/probe'), 'accepted', 'a window ahead')
  t.match(refusedFor(at(now - WINDOW - 1), 'GET', '/v1/probe'), /replay window/, 'older')
  t.match(refusedFor(at(now + WINDOW + 1), 'GET', '/v1/probe'), /replay window/, 'further ahead')

  // Nonces are forgotten once their request's date is out of the window.
  const kept = verifier.nonces
  t.ok(kept > 0)
  now += 3 * WINDOW
  t.equal(refusedFor(fresh()), 'accepted')
  t.equal(verifier.nonces, 1, 'expired nonces pruned')
})

t.test('the nonce memory is bounded: past it requests are refused as busy, not remembered', async t => {
  let now = 1_000_000
  const signer = new PeerSigner({ node: 'a', secret: SECRET, now: () => now })
  const verifier = new PeerVerifier({ secret: SECRET, replayWindowMs: 1000, maxNonces: 3, now: () => now })
  for (let i = 0; i < 3; i++) t.equal(verifier.verify('GET', '/v1/probe', signer.sign('GET', '/v1/probe')).ok, true)
  const r = verifier.verify('GET', '/v1/probe', signer.sign('GET', '/v1/probe'))
  t.match(r, { ok: false, busy: true })
  t.equal(verifier.nonces, 3)
  const unsigned = verifier.verify('GET', '/v1/probe', { ...signer.sign('GET', '/v1/probe'), authorization: `CKPT-HMAC-SHA256 ${'0'.repeat(64)}` })
  t.match(unsigned, { ok: false, reason: /signature/ }, 'a bad signature is refused as such, not as busy')
  now += 2001
  t.equal(verifier.verify('GET', '/v1/probe', signer.sign('GET', '/v1/probe')).ok, true, 'room again once the window passed')
})

// ---- over HTTP ---------------------------------------------------------------

interface LogLine { level: string, obj: Record<string, unknown>, msg: string }

class RecordingHandler {
  calls: string[] = []
  stored = new Map<string, Buffer>()
  bodyErrors: unknown[] = []
  probe (): { id: string, bootId: string, draining: boolean } {
    this.calls.push('probe')
    return { id: 'b', bootId: 'boot', draining: false }
  }

  async head (a: unknown): Promise<{ holders: string[] }> {
    this.calls.push(`head ${JSON.stringify(a)}`)
    return { holders: [] }
  }

  read (a: { container: string, name: string }): { meta: WireMeta, body: Readable } {
    this.calls.push(`read ${a.container}/${a.name}`)
    const data = this.stored.get(`${a.container}/${a.name}`)
    if (data === undefined) throw new CacheError('CC_ERR_OBJECT_NOT_FOUND')
    return { meta: meta(a.container, a.name, data.length), body: Readable.from([data]) }
  }

  async write (m: WireMeta, body: Readable): Promise<void> {
    this.calls.push(`write ${m.container}/${m.name}`)
    const chunks: Buffer[] = []
    try {
      for await (const c of body as AsyncIterable<Buffer>) chunks.push(c)
    } catch (err) {
      this.bodyErrors.push(err)
      throw err
    }
    this.stored.set(`${m.container}/${m.name}`, Buffer.concat(chunks))
  }
}

function meta (container: string, name: string, size: number): WireMeta {
  return { container, name, size, etag: 'e1', createdMs: 1, lastModifiedMs: 2, content: {}, metadata: {}, checksums: {}, fromBlocks: false }
}

interface Fixture { handler: RecordingHandler, port: number, node: NodeInfo, logs: LogLine[] }

async function fixture (t: Test, maxNonces?: number): Promise<Fixture> {
  const handler = new RecordingHandler()
  const logs: LogLine[] = []
  const log = {
    warn (obj: object, msg: string) { logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) },
    error (obj: object, msg: string) { logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) }
  }
  const server = createPeerServer({ handler: handler as unknown as PeerHandler, secret: SECRET, replayWindowMs: WINDOW, log, closeGraceMs: 500, maxNonces })
  const port = await server.listen('127.0.0.1', 0)
  t.teardown(() => server.close())
  return { handler, port, node: { id: 'b', url: `http://127.0.0.1:${port}` }, logs }
}

interface Answer { status: number, body: Buffer }

async function send (port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Checks a 403 CC_ERR_PEER_AUTH answer and the one warn line it logged (reason, never secret or signature). */
function refused (t: Test, f: Fixture, a: Answer, reason: RegExp, path: string, signature?: string): void {
  t.equal(a.status, 403)
  t.equal(JSON.parse(a.body.toString()).code, 'CC_ERR_PEER_AUTH')
  t.equal(f.logs.length, 1, 'one log line')
  const line = f.logs.pop() as LogLine
  t.equal(line.level, 'warn')
  t.equal(line.obj.path, path)
  t.equal(line.obj.remote, '127.0.0.1')
  t.match(line.obj.reason, reason)
  const text = JSON.stringify(line)
  t.notOk(text.includes(SECRET), 'the secret is not logged')
  if (signature !== undefined) t.notOk(text.includes(signature), 'the signature is not logged')
}

async function rejectsWith (t: Test, p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  t.ok(isCacheError(err, code), `rejects with ${code}`)
}

t.test('requests without a valid signature are refused 403 and logged', async t => {
  const f = await fixture(t)
  const signer = new PeerSigner({ node: 'a', secret: SECRET })

  // A good one first, so the refusals below are refusals of what changed.
  t.equal((await send(f.port, 'GET', PROBE_PATH, signer.sign('GET', PROBE_PATH))).status, 200)
  t.same(f.handler.calls, ['probe'])
  f.handler.calls.length = 0

  refused(t, f, await send(f.port, 'GET', PROBE_PATH, {}), /missing authorization/, PROBE_PATH)
  const { authorization: _a, ...unsignedHeaders } = signer.sign('GET', PROBE_PATH)
  refused(t, f, await send(f.port, 'GET', PROBE_PATH, unsignedHeaders), /missing authorization/, PROBE_PATH)

  // Another secret, through the real client.
  const intruder = createPeerClient({ self: 'a', secret: 'not-the-secret' })
  t.teardown(() => intruder.close())
  await rejectsWith(t, intruder.rpc(f.node, 'head', { container: 'c', name: 'n' }), 'CC_ERR_PEER_AUTH')
  t.match(f.logs.pop()?.obj.reason, /signature does not match/)
  await rejectsWith(t, intruder.probe(f.node.url), 'CC_ERR_PEER_AUTH')
  t.match(f.logs.pop()?.obj.reason, /signature does not match/)
  // A replica write of several MiB refused before its body is read still answers the refusal.
  const big = Buffer.alloc(8 * 1024 * 1024, 3)
  await rejectsWith(t, intruder.write(f.node, meta('c', 'big', big.length), { open: () => Readable.from([big]) }), 'CC_ERR_PEER_AUTH')
  t.match(f.logs.pop()?.obj.reason, /signature does not match/)

  // A path other than the signed one.
  const signedFor = signer.sign('GET', objectPath('c', 'a'))
  refused(t, f, await send(f.port, 'GET', objectPath('c', 'b'), signedFor), /signature does not match/, objectPath('c', 'b'), signedFor.authorization.split(' ')[1])

  // A date outside the replay window.
  const stale = new PeerSigner({ node: 'a', secret: SECRET, now: () => Date.now() - 2 * WINDOW }).sign('GET', PROBE_PATH)
  refused(t, f, await send(f.port, 'GET', PROBE_PATH, stale), /outside the replay window/, PROBE_PATH)
  const ahead = new PeerSigner({ node: 'a', secret: SECRET, now: () => Date.now() + 2 * WINDOW }).sign('GET', PROBE_PATH)
  refused(t, f, await send(f.port, 'GET', PROBE_PATH, ahead), /outside the replay window/, PROBE_PATH)

  t.same(f.handler.calls, [], 'the handler saw none of them')
})

t.test('the exact same signed request sent twice: the second is refused', async t => {
  const f = await fixture(t)
  const body = Buffer.from(JSON.stringify({ container: 'c', name: 'n' }))
  const headers = new PeerSigner({ node: 'a', secret: SECRET }).sign('POST', rpcPath('head'), sha256Hex(body))
  const first = await send(f.port, 'POST', rpcPath('head'), headers, body)
  t.equal(first.status, 200)
  t.same(JSON.parse(first.body.toString()), { holders: [] })
  refused(t, f, await send(f.port, 'POST', rpcPath('head'), headers, body), /replayed/, rpcPath('head'), headers.authorization.split(' ')[1])
  t.same(f.handler.calls, ['head {"container":"c","name":"n"}'], 'the handler ran once')
})

t.test('a tampered body: an rpc is refused before parsing, a replica body errors and nothing is stored', async t => {
  const f = await fixture(t)
  const signer = new PeerSigner({ node: 'a', secret: SECRET })

  const signedArgs = Buffer.from('{"container":"c","name":"n"}')
  const sentArgs = Buffer.from('{"container":"c","name":"x"}')
  refused(t, f, await send(f.port, 'POST', rpcPath('head'), signer.sign('POST', rpcPath('head'), sha256Hex(signedArgs)), sentArgs), /body does not match/, rpcPath('head'))
  t.same(f.handler.calls, [], 'the rpc never reached the handler')

  const path = objectPath('c', 'shard')
  const signedBody = Buffer.alloc(3 * 1024 * 1024, 1)
  const sentBody = Buffer.from(signedBody)
  sentBody[sentBody.length - 1] = 2
  const headers = {
    ...signer.sign('PUT', path, sha256Hex(signedBody)),
    'content-length': String(sentBody.length),
    'x-ckpt-meta': encodeWireMeta(meta('c', 'shard', sentBody.length))
  }
  refused(t, f, await send(f.port, 'PUT', path, headers, sentBody), /does not match its signed digest/, path)
  t.same(f.handler.calls, ['write c/shard'], 'the handler got the body')
  t.equal(f.handler.bodyErrors.length, 1, 'and its body errored instead of ending')
  t.ok(isCacheError(f.handler.bodyErrors[0], 'CC_ERR_PEER_AUTH'))
  t.equal(f.handler.stored.size, 0, 'nothing stored')

  // The same bytes, signed as sent, go through (the client computes the digest from its source).
  const client = createPeerClient({ self: 'a', secret: SECRET })
  t.teardown(() => client.close())
  await client.write(f.node, meta('c', 'shard', sentBody.length), { open: () => Readable.from([sentBody]) })
  t.ok(f.handler.stored.get('c/shard')?.equals(sentBody))
  t.same(f.logs, [])
})

t.test('a server out of nonce memory answers 503 with Retry-After, and the client sees CC_ERR_SERVER_BUSY', async t => {
  const f = await fixture(t, 2)
  const client = createPeerClient({ self: 'a', secret: SECRET })
  t.teardown(() => client.close())
  await client.probe(f.node.url)
  await client.probe(f.node.url)
  await rejectsWith(t, client.probe(f.node.url), 'CC_ERR_SERVER_BUSY')
  const signer = new PeerSigner({ node: 'a', secret: SECRET })
  const raw = await new Promise<{ status: number, retryAfter?: string }>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: f.port, path: PROBE_PATH, headers: signer.sign('GET', PROBE_PATH), agent: false }, res => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] })
    }).on('error', reject).end()
  })
  t.same(raw, { status: 503, retryAfter: '1' })
  t.equal(f.logs.length, 2, 'each refusal logged')
  t.match(f.logs[0], { level: 'warn', obj: { reason: /nonces within the replay window/ } })
  t.same(f.handler.calls, ['probe', 'probe'])
})
