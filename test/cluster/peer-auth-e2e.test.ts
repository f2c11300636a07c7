/**
 * Peer authentication of a running cluster (DESIGN.md promise 8), from the outside: raw
 * `node:http` requests to a gateway's peer port. Unsigned requests, requests signed with another
 * secret, a signed request whose body was changed and a replayed signed request are refused with
 * 403 CC_ERR_PEER_AUTH, change nothing, and are logged; a request signed with the cluster secret
 * is served. The secret never appears in a log line. A chunk-signed replica body with one byte
 * changed is refused and stores nothing; the same body unchanged is stored.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import http from 'node:http'
import t from 'tap'
import { PeerSigner } from '../../src/cluster/auth.js'
import { CHUNK_SIZE } from '../../src/cluster/chunk-signing.js'
import { encodeWireMeta, H_META, objectPath } from '../../src/cluster/protocol.js'
import type { WireMeta } from '../../src/cluster/types.js'
import { startCluster } from '../helpers/cluster.js'
import { blobService, readAll } from '../helpers/tier-read.js'

const cluster = await startCluster({ nodes: 2 })
t.teardown(() => cluster.stop())
const port = cluster.peerPorts[0] as number

interface Answer { status: number, body: string, json: { code?: string, message?: string, id?: string } }

async function peerRequest (method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return await new Promise<Answer>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(body.length) }), ...headers }, agent: false, timeout: 10_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => {
        let json = {}
        try { json = JSON.parse(text) as Answer['json'] } catch {}
        resolve({ status: res.statusCode ?? 0, body: text, json })
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: no answer`)) })
    req.on('error', reject)
    req.end(body)
  })
}

/** A replica PUT of `data` as `container/name`, chunk-signed; `tamper` changes the framed bytes before they are sent. */
async function replicaPut (signer: PeerSigner, container: string, name: string, data: Buffer, tamper: (framed: Buffer) => void = () => {}): Promise<Answer> {
  const path = objectPath(container, name)
  const { headers, body } = signer.signStreaming('PUT', path, data.length)
  const parts: Buffer[] = []
  await pipeline(Readable.from([data]), body, new Writable({ write (c: Buffer, _e, cb) { parts.push(c); cb() } }))
  const framed = Buffer.concat(parts)
  tamper(framed)
  const now = Date.now()
  const meta: WireMeta = {
    container, name, size: data.length, etag: `0x8D${now}`, createdMs: now, lastModifiedMs: now,
    content: { contentType: 'application/octet-stream' }, metadata: {}, checksums: {}, fromBlocks: false, holders: ['node1', 'node0']
  }
  return await peerRequest('PUT', path, { ...headers, [H_META]: encodeWireMeta(meta), 'content-type': 'application/octet-stream' }, framed)
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const refusals = (): number => (cluster.nodes[0]?.output().match(/"msg":"peer request refused"/g) ?? []).length
/** Waits (at most 5 s) until `count` refusals are in node0's log. */
async function logged (count: number): Promise<void> {
  const deadline = Date.now() + 5000
  while (refusals() < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}
const containerExists = async (name: string): Promise<boolean> => await blobService(cluster.nodes[0]!).getContainerClient(name).exists()

t.test('unsigned, wrongly signed, tampered and replayed peer requests are refused and logged; a signed one is served', async (t) => {
  const good = new PeerSigner({ node: 'node1', secret: cluster.secret })
  const wrong = new PeerSigner({ node: 'node1', secret: 'not-the-cluster-secret-at-all' })
  const refusedBefore = refusals()

  const bare = await peerRequest('GET', '/v1/probe', {})
  t.equal(bare.status, 403, 'no authorization header: 403')
  t.equal(bare.json.code, 'CC_ERR_PEER_AUTH')
  t.notOk(bare.body.includes('node0'), 'an unsigned probe learns nothing about the node')

  const create = Buffer.from(JSON.stringify({ name: 'intruder', metadata: {} }))
  const forged = await peerRequest('POST', '/v1/rpc/createContainer', wrong.sign('POST', '/v1/rpc/createContainer', sha(create)), create)
  t.equal(forged.status, 403, 'signed with another secret: 403')
  t.equal(forged.json.code, 'CC_ERR_PEER_AUTH')
  t.equal(await containerExists('intruder'), false, 'the forged createContainer created nothing')

  // Signed for one body, sent with another.
  const signedFor = Buffer.from(JSON.stringify({ name: 'harmless', metadata: {} }))
  const tampered = await peerRequest('POST', '/v1/rpc/createContainer', good.sign('POST', '/v1/rpc/createContainer', sha(signedFor)), create)
  t.equal(tampered.status, 403, 'a body other than the signed one: 403')
  t.equal(tampered.json.code, 'CC_ERR_PEER_AUTH')
  t.equal(await containerExists('intruder'), false, 'the tampered createContainer created nothing')

  const probeHeaders = good.sign('GET', '/v1/probe')
  const probe = await peerRequest('GET', '/v1/probe', probeHeaders)
  t.equal(probe.status, 200, 'signed with the cluster secret: 200')
  t.equal(probe.json.id, 'node0', 'the probe names the node')

  const valid = Buffer.from(JSON.stringify({ name: 'allowed', metadata: {} }))
  const createHeaders = good.sign('POST', '/v1/rpc/createContainer', sha(valid))
  const created = await peerRequest('POST', '/v1/rpc/createContainer', createHeaders, valid)
  t.equal(created.status, 200, 'a signed createContainer: 200')
  t.equal(await containerExists('allowed'), true, 'and the container exists on the node')

  const replayed = await peerRequest('GET', '/v1/probe', probeHeaders)
  t.equal(replayed.status, 403, 'the same probe replayed: 403')
  t.equal(replayed.json.code, 'CC_ERR_PEER_AUTH')
  t.match(replayed.json.message, /replay/i, 'the answer says why')
  await blobService(cluster.nodes[0]!).getContainerClient('allowed').delete()
  const replayedCreate = await peerRequest('POST', '/v1/rpc/createContainer', createHeaders, valid)
  t.equal(replayedCreate.status, 403, 'the createContainer replayed: 403')
  t.equal(await containerExists('allowed'), false, 'the replay did not create the deleted container again')

  // Every refusal above is in the log, with its reason; the secret is in no line. (Log lines travel
  // through the child's stdout, which may arrive after the answers.)
  await logged(refusedBefore + 5)
  const out = cluster.nodes[0]!.output()
  t.equal(refusals() - refusedBefore, 5, 'five refusals logged')
  t.match(out, /"reason":"Peer request refused: missing authorization header"/)
  t.match(out, /"reason":"Peer request refused: signature does not match"/)
  t.match(out, /body does not match its signed digest/)
  t.match(out, /nonce already used/)
  for (const g of cluster.nodes) t.notOk(g.output().includes(cluster.secret), 'the cluster secret is never logged')

  // The cluster kept working meanwhile: both nodes still see each other.
  t.equal((await cluster.waitLive(1, 2)).cluster?.nodes.length, 2)
})

t.test('a chunk-signed replica body with one byte changed stores nothing; unchanged it is stored', async (t) => {
  const good = new PeerSigner({ node: 'node1', secret: cluster.secret })
  const c = blobService(cluster.nodes[0]!).getContainerClient('replicas')
  await c.createIfNotExists()
  const data = randomBytes(2 * CHUNK_SIZE + 100)
  const refusedBefore = refusals()
  const tampered = await replicaPut(good, 'replicas', 'shard', data, (framed) => { framed[CHUNK_SIZE + 36 + 4 + 7] ^= 1 })
  t.equal(tampered.status, 403, 'a changed byte in the second frame: 403')
  t.equal(tampered.json.code, 'CC_ERR_PEER_AUTH')
  await logged(refusedBefore + 1)
  t.equal(refusals() - refusedBefore, 1, 'and logged')
  t.match(cluster.nodes[0]!.output(), /frame does not match its signature/)
  t.equal(await c.getBlobClient('shard').exists(), false, 'nothing was stored')

  const stored = await replicaPut(good, 'replicas', 'shard', data)
  t.equal(stored.status, 201, 'the same body unchanged: 201')
  const back = await readAll((await c.getBlobClient('shard').download()).readableStreamBody)
  t.ok(back.equals(data), 'the copy reads back byte for byte')
})
