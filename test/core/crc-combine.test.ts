import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { COMBINABLE_CRCS, crcCombine, crcCombineValue, isCombinableCrc } from '../../src/core/checksum/crc-combine.js'
import { Crc64 } from '../../src/core/checksum/crc64.js'
import { createS3Hasher, s3Checksum } from '../../src/core/checksum/s3-checksums.js'

const crc = (algorithm: (typeof COMBINABLE_CRCS)[number], data: Uint8Array): Buffer => {
  const h = createS3Hasher(algorithm)
  h.update(data)
  return h.digest()
}

t.test('crc(A‖B) from crc(A), crc(B), |B| equals the CRC of the concatenation, for random splits', async (t) => {
  for (const algorithm of COMBINABLE_CRCS) {
    let checked = 0
    for (let round = 0; round < 300; round++) {
      // Mostly small lengths (every bit of the length's binary expansion gets exercised), some large.
      const total = round < 250 ? randomInt(0, 2048) : randomInt(0, 3 * 1024 * 1024)
      const data = randomBytes(total)
      const cut = round % 10 === 0 ? 0 : round % 10 === 1 ? total : randomInt(0, total + 1)
      const a = data.subarray(0, cut)
      const b = data.subarray(cut)
      const combined = crcCombine(algorithm, crc(algorithm, a), crc(algorithm, b), b.length)
      if (!combined.equals(crc(algorithm, data))) {
        t.fail(`${algorithm}: |A|=${a.length} |B|=${b.length}`)
        return
      }
      checked++
    }
    t.equal(checked, 300, `${algorithm}: 300 random splits, lengths 0 to 3 MiB, including empty A and empty B`)
  }
})

t.test('a chain of combines equals the CRC of the whole (appends)', async (t) => {
  for (const algorithm of COMBINABLE_CRCS) {
    const pieces = Array.from({ length: 40 }, (_, i) => randomBytes(i % 7 === 0 ? 0 : randomInt(1, 70_000)))
    let whole = crc(algorithm, Buffer.alloc(0))
    for (const p of pieces) whole = crcCombine(algorithm, whole, crc(algorithm, p), p.length)
    t.same(whole, crc(algorithm, Buffer.concat(pieces)), algorithm)
  }
})

t.test('long zero runs: the shift is computed, not iterated', async (t) => {
  const zeros = Buffer.alloc(64 * 1024 * 1024)
  const head = Buffer.from('checkpoint shard 0')
  for (const algorithm of COMBINABLE_CRCS) {
    const [crcHead, crcZeros] = [crc(algorithm, head), crc(algorithm, zeros)]
    crcCombine(algorithm, crcHead, crcZeros, 1) // builds the table of powers
    const started = process.hrtime.bigint()
    const combined = crcCombine(algorithm, crcHead, crcZeros, zeros.length)
    const micros = Number(process.hrtime.bigint() - started) / 1000
    t.same(combined, crc(algorithm, Buffer.concat([head, zeros])), `${algorithm}: 18 B + 64 MiB of zeros`)
    t.comment(`${algorithm}: one combine over 64 MiB took ${micros.toFixed(0)} µs`)
  }
  // Lengths beyond what a test can hash: combining is associative, which holds only if the
  // shift by 8·(|B|+|C|) bits equals the shift by 8·|B| then by 8·|C| (terabyte lengths).
  for (const algorithm of COMBINABLE_CRCS) {
    const value = (): bigint => BigInt('0x' + randomBytes(algorithm === 'crc64nvme' ? 8 : 4).toString('hex'))
    const [a, b, c] = [value(), value(), value()]
    const nb = 5n * 1024n ** 4n + 12345n
    const nc = 3n * 1024n ** 3n + 7n
    const left = crcCombineValue(algorithm, crcCombineValue(algorithm, a, b, nb), c, nc)
    const right = crcCombineValue(algorithm, a, crcCombineValue(algorithm, b, c, nc), nb + nc)
    t.equal(left, right, `${algorithm}: associative over a 5 TiB and a 3 GiB piece`)
  }
  t.throws(() => crcCombineValue('crc32', 0n, 0n, -1), RangeError)
})

t.test('known vector: "1234" + "56789" gives the check value', async (t) => {
  const expected = { crc32: 'y/Q5Jg==', crc32c: '4waSgw==', crc64nvme: 'rosUhgp5mIg=' }
  for (const algorithm of COMBINABLE_CRCS) {
    const v = crcCombine(algorithm, crc(algorithm, Buffer.from('1234')), crc(algorithm, Buffer.from('56789')), 5)
    t.equal(v.toString('base64'), expected[algorithm], algorithm)
    t.equal(v.toString('base64'), s3Checksum(algorithm, Buffer.from('123456789')))
  }
})

t.test('Azure CRC64 (little-endian bytes) combines as CRC-64/NVME', async (t) => {
  const a = randomBytes(1000)
  const b = randomBytes(777)
  const azure = (d: Buffer): Buffer => { const c = new Crc64(); c.update(d); return c.digest() }
  const combined = crcCombine('crc64nvme', azure(a).reverse(), azure(b).reverse(), b.length).reverse()
  t.same(combined, azure(Buffer.concat([a, b])))
})

t.test('isCombinableCrc', async (t) => {
  t.ok(isCombinableCrc('crc32'))
  t.ok(isCombinableCrc('crc64nvme'))
  t.notOk(isCombinableCrc('sha256'))
  t.notOk(isCombinableCrc('md5'))
  t.throws(() => crcCombine('crc32', Buffer.alloc(8), Buffer.alloc(4), 1), RangeError, 'wrong byte length')
})
