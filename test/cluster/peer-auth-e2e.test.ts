/**
 * Peer authentication of a running cluster (DESIGN.md promise 8), from the outside: raw
 * `node:http` requests to a gateway's peer port. Unsigned requests, requests signed with another
 * secret, a signed request whose body was changed and a replayed signed request are refused with
 * 403 CC_ERR_PEER_AUTH, change nothing, and are logged; a request signed with the cluster secret
 * is served. The secret never appears in a log line.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import t from 'tap'
import { PeerSigner } from '../../src/cluster/auth.js'
import { startCluster } from '../helpers/cluster.js'
import { blobService } from '../helpers/tier-read.js'

const cluster = await startCluster({ nodes: 2 })
t.teardown(() => cluster.stop())
const port = cluster.peerPorts[0] as number

interface Answer { status: number, body: string, json: { code?: string, message?: string, id?: string } }

async function peerRequest (method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return await new Promise<Answer>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(body.length) }) }, agent: false, timeout: 10_000 }, (res) => {
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

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const refusals = (): number => (cluster.nodes[0]?.output().match(/"msg":"peer request refused"/g) ?? []).length
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

  // Every refusal above is in the log, with its reason; the secret is in no line.
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
