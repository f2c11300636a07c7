/**
 * Chunk-signed replica bodies (src/cluster/chunk-signing.ts) through the real signer and
 * verifier (auth.ts): round trips of sizes around the chunk size, fed to the verifier in random
 * pieces; a body that is tampered with, cut short, extended, reordered or signed with another
 * seed never passes on a byte it has not verified; a source of the wrong size fails the signer.
 */
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t, { type Test } from 'tap'
import { PeerSigner, PeerVerifier } from '../../src/cluster/auth.js'
import { CHUNK_SIZE, framedLength, STREAMING_PAYLOAD } from '../../src/cluster/chunk-signing.js'
import { H_CONTENT_SHA256 } from '../../src/cluster/protocol.js'
import { isCacheError } from '../../src/errors.js'

const secret = 'a cluster secret of some length'
const signer = new PeerSigner({ node: 'node0', secret })
const verifier = new PeerVerifier({ secret, replayWindowMs: 60_000 })

/**
 * Signs `data` (fed in pieces of random sizes up to `maxPiece`) as a `size`-byte body: the
 * headers, the framed bytes, and the request signature the verifier got from the headers.
 */
async function sign (data: Buffer, maxPiece = 300_000, size = data.length): Promise<{ headers: Record<string, string>, framed: Buffer, signature: Buffer }> {
  const { headers, body } = signer.signStreaming('PUT', '/v1/o/c/n', size)
  const out: Buffer[] = []
  await pipeline(Readable.from(split(data, maxPiece)), body, sink(out))
  const v = verifier.verify('PUT', '/v1/o/c/n', headers)
  if (!v.ok) throw new Error(v.reason)
  return { headers, framed: Buffer.concat(out), signature: v.signature }
}

/** Verifies `framed` as a `size`-byte body of the request signed `signature`: what reached the consumer, and the error if any. */
async function verify (signature: Buffer, framed: Buffer, size: number, maxPiece = 250_000): Promise<{ passed: Buffer, err?: unknown }> {
  const out: Buffer[] = []
  try {
    await pipeline(Readable.from(split(framed, maxPiece)), verifier.chunkVerifier(signature, size), sink(out))
    return { passed: Buffer.concat(out) }
  } catch (err) {
    return { passed: Buffer.concat(out), err }
  }
}

function split (b: Buffer, maxPiece: number): Buffer[] {
  const pieces: Buffer[] = []
  for (let at = 0; at < b.length;) {
    const n = Math.min(b.length - at, 1 + Math.floor(Math.random() * maxPiece))
    pieces.push(b.subarray(at, at + n))
    at += n
  }
  return pieces
}

function sink (out: Buffer[]): Writable {
  return new Writable({ write (chunk: Buffer, _e, cb) { out.push(chunk); cb() } })
}

t.test('round trips of sizes around the chunk size, in random pieces both ways', async (t) => {
  for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]) {
    const data = randomBytes(size)
    const { headers, framed, signature } = await sign(data)
    t.equal(headers[H_CONTENT_SHA256], STREAMING_PAYLOAD, 'the request signs the streaming marker')
    t.equal(framed.length, framedLength(size), `${size}: framedLength is the bytes on the wire`)
    const { passed, err } = await verify(signature, framed, size)
    t.equal(err, undefined, `${size}: verifies`)
    t.ok(passed.equals(data), `${size}: the bytes passed on are the signed ones`)
  }
})

/** Asserts a refusal with nothing passed on beyond `verifiedUpTo` bytes of `data`. */
function refused (t: Test, r: { passed: Buffer, err?: unknown }, data: Buffer, verifiedUpTo: number, what: string): void {
  t.ok(isCacheError(r.err, 'CC_ERR_PEER_AUTH'), `${what}: refused (${String((r.err as Error | undefined)?.message)})`)
  t.ok(r.passed.length <= verifiedUpTo && r.passed.equals(data.subarray(0, r.passed.length)), `${what}: only verified bytes were passed on (${r.passed.length})`)
}

t.test('anything but the signed body is refused before its bytes are passed on', async (t) => {
  const size = 3 * CHUNK_SIZE + 5
  const data = randomBytes(size)
  const { framed, signature } = await sign(data)
  const frame = CHUNK_SIZE + 36

  const flipped = Buffer.from(framed)
  flipped[frame + 4 + 1000] ^= 1 // a payload byte of the second frame
  refused(t, await verify(signature, flipped, size), data, CHUNK_SIZE, 'a payload byte changed')

  const badTag = Buffer.from(framed)
  badTag[frame - 1] ^= 1 // the first frame's tag
  refused(t, await verify(signature, badTag, size), data, 0, 'a tag changed')

  const swapped = Buffer.concat([framed.subarray(frame, 2 * frame), framed.subarray(0, frame), framed.subarray(2 * frame)])
  refused(t, await verify(signature, swapped, size), data, 0, 'two frames swapped')

  const cut = framed.subarray(0, framed.length - 36) // without the end frame
  refused(t, await verify(signature, cut, size), data, size, 'the end frame missing')

  const midway = framed.subarray(0, 2 * frame + 10)
  refused(t, await verify(signature, midway, size), data, 2 * CHUNK_SIZE, 'cut in a frame')

  const extended = Buffer.concat([framed, Buffer.from('more')])
  refused(t, await verify(signature, extended, size), data, size, 'bytes after the end frame')

  const long = Buffer.from(framed)
  long.writeUInt32BE(CHUNK_SIZE + 1, 0)
  refused(t, await verify(signature, long, size), data, 0, 'a frame longer than a chunk')

  // A body signed for another request (another seed) does not verify under this one's headers.
  const other = await sign(data)
  refused(t, await verify(signature, other.framed, size), data, 0, 'another request\'s body')

  // The same body declared one byte shorter: its last data frame has the wrong length.
  refused(t, await verify(signature, framed, size - 1), data, 3 * CHUNK_SIZE, 'a size other than the signed one')
})

t.test('the signer fails a source of another size than declared', async (t) => {
  await t.rejects(sign(randomBytes(10), 4, 11), { code: 'CC_ERR_INTERNAL', message: /yielded 10 bytes, its size is 11/ })
  await t.rejects(sign(randomBytes(12), 4, 11), { code: 'CC_ERR_INTERNAL', message: /more than its size 11/ })
})
