import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { StorageCRC64Calculator } from '@azure/storage-common' // Azure's own (WASM) CRC64, shipped with @azure/storage-blob
import t from 'tap'
import { Crc64, combine, crc64 } from '../../src/core/checksum/crc64.js'
import { Md5WorkerPool, createMd5Hasher, md5Inline, type Md5Hasher } from '../../src/core/checksum/md5.js'
import { isCacheError } from '../../src/errors.js'

const u64 = (digest: Buffer): bigint => digest.readBigUInt64LE(0)
const le = (value: bigint): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(value)
  return b
}
const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

t.test('crc64: Azure SDK vectors', async (t) => {
  // azure-sdk-for-java StorageCrc64CalculatorTests.testCompute (initial 0)
  const strings: Array<[string, bigint]> = [
    ['', 0n],
    ['Hello World!', 208604604655264165n],
    ['123456789!@#$%^&*()', 2153758901452455624n],
    ['This is a test where the data is longer than 64 characters so that we can test that code path.', 2736107658526394369n],
  ]
  for (const [text, expected] of strings) t.equal(u64(crc64(Buffer.from(text))), expected, JSON.stringify(text))

  // testComputeWithBinaryData: "initial" is the CRC of data already hashed
  const binary: Array<[bigint, string, bigint]> = [
    [0n, 'C8E11B40D793D1526018', 3386042136331673945n],
    [208604604655264165n, 'C8E11B40D793D1526018', 4570059697646401418n],
    [2153758901452455624n, 'C8E11B40D793D1526018', 13366433516720813220n],
    [12345n, 'C8E11B40D793D1526018', 5139183895903464380n],
    [0n, 'AABBCCDDEEFF', 13410969003359324163n],
    [208604604655264165n, 'AABBCCDDEEFF', 7077292804802198544n],
    [2153758901452455624n, 'AABBCCDDEEFF', 7845171950889742163n],
    [12345n, 'AABBCCDDEEFF', 1250888331951523569n],
  ]
  for (const [initial, hex, expected] of binary) {
    t.equal(u64(new Crc64(le(initial)).update(Buffer.from(hex, 'hex')).digest()), expected, `${initial} + ${hex}`)
  }
  // …which is the same as hashing the concatenation
  t.equal(u64(crc64(Buffer.concat([Buffer.from('Hello World!'), Buffer.from('C8E11B40D793D1526018', 'hex')]))), 4570059697646401418n)

  // CRC-64/NVME catalogue check value, and the header form (base64 of the little-endian bytes)
  t.equal(crc64(Buffer.from('123456789')).toString('hex'), '8898790a86148bae')
  t.equal(u64(crc64(Buffer.from('123456789'))), 0xAE8B14860A799888n)
  t.equal(crc64(Buffer.from('123456789')).toString('base64'), 'iJh5CoYUi64=')
  t.equal(crc64(new Uint8Array(0)).toString('base64'), 'AAAAAAAAAAA=')
})

t.test('crc64: equals @azure/storage-common on random data, any length and alignment', async (t) => {
  await StorageCRC64Calculator.init()
  const data = randomBytes(300_000)
  const cases: Array<[number, number]> = []
  for (let len = 0; len <= 40; len++) cases.push([len % 8, len])
  for (let i = 0; i < 20; i++) cases.push([i % 8, 1 + Math.floor(Math.random() * 299_000)])
  for (const [offset, len] of cases) {
    const slice = data.subarray(offset, offset + len)
    const azure = Buffer.from(new StorageCRC64Calculator().final(slice, slice.length))
    if (!crc64(slice).equals(azure)) t.fail(`offset ${offset} length ${len}: ${crc64(slice).toString('hex')} != ${azure.toString('hex')}`)
  }
  t.pass(`${cases.length} slices agree`)
})

t.test('crc64: incremental updates equal one-shot', async (t) => {
  const data = randomBytes(1 << 20)
  const whole = crc64(data)
  for (let round = 0; round < 20; round++) {
    const hash = new Crc64()
    let offset = 0
    while (offset < data.length) {
      const n = Math.min(data.length - offset, Math.floor(Math.random() ** 3 * 70_000))
      hash.update(data.subarray(offset, offset + n))
      offset += n
    }
    t.same(hash.digest(), whole, `round ${round}`)
  }
  const bytewise = new Crc64()
  for (let i = 0; i < 5000; i++) bytewise.update(data.subarray(i, i + 1))
  t.same(bytewise.digest(), crc64(data.subarray(0, 5000)), 'one byte at a time')

  const hash = new Crc64().update(data.subarray(0, 1000))
  t.same(hash.digest(), crc64(data.subarray(0, 1000)), 'digest() does not finalize…')
  t.same(hash.update(data.subarray(1000, 3000)).digest(), crc64(data.subarray(0, 3000)), '…updates may follow')
  t.throws(() => new Crc64(Buffer.alloc(7)), RangeError)
})

t.test('crc64: combine', async (t) => {
  // azure-sdk-for-java StorageCrc64CalculatorTests.testConcat (crc1, size1, crc2, size2, expected)
  const vectors = [
    '0, 0, 0, 0, 0',
    '17360427831495520774, 949533, 13068224794440996385, 99043, 2942932174470096852',
    '11788770130477425887, 505156, 11825964890373840515, 543420, 11679439596881108042',
    '3295333047304801182, 732633, 15304759627474960884, 315943, 31840984168952505',
    '16590039424904606984, 550299, 6063316096266934453, 498277, 4430932446378441680',
    '4505532069077416052, 852279, 4910763717047934640, 196297, 15119506491662968913',
    '390777554329396866, 834642, 2639871931800812330, 213934, 11705441749781302341',
    '3373070654000205532, 282713, 998330282635826126, 765863, 9830625244855600085',
    '2124306943908111903, 737293, 11017351202683543503, 311283, 8163771928713973931',
    '15994440356403990005, 85861, 13803536430055425947, 962715, 1941624554903785510',
    '3705122932895036835, 444701, 17573219681510991482, 603875, 4421337306620606216',
  ]
  for (const line of vectors) {
    const [crc1, , crc2, size2, expected] = line.split(', ')
    t.equal(u64(combine(le(BigInt(crc1!)), le(BigInt(crc2!)), Number(size2))), BigInt(expected!), line)
  }
  const data = randomBytes(200_000)
  for (const cut of [0, 1, 7, 8, 99_999, 200_000]) {
    const a = data.subarray(0, cut)
    const b = data.subarray(cut)
    t.same(combine(crc64(a), crc64(b), b.length), crc64(data), `cut at ${cut}`)
  }
  t.throws(() => combine(Buffer.alloc(8), Buffer.alloc(8), -1), RangeError)
})

const RFC1321: Array<[string, string]> = [
  ['', 'd41d8cd98f00b204e9800998ecf8427e'],
  ['a', '0cc175b9c0f1b6a831c399e269772661'],
  ['abc', '900150983cd24fb0d6963f7d28e17f72'],
  ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
  ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
  ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
  ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
]

/** Feeds `data` in random-sized chunks from one reused buffer (scribbled over after each update), honouring backpressure. */
async function feed (hasher: Md5Hasher, data: Buffer, maxChunk = 100_000): Promise<void> {
  const scratch = Buffer.alloc(maxChunk)
  let offset = 0
  while (offset < data.length) {
    const n = Math.min(data.length - offset, 1 + Math.floor(Math.random() * maxChunk))
    data.copy(scratch, 0, offset, offset + n)
    const more = hasher.update(scratch.subarray(0, n))
    scratch.fill(0xA5, 0, n)
    offset += n
    if (!more) await hasher.ready()
  }
}

t.test('md5: RFC 1321 vectors, inline and on the worker', async (t) => {
  const viaWorker = new Md5WorkerPool({ workers: 1, inlineBelow: 0 })
  t.teardown(async () => await viaWorker.close())
  for (const [text, expected] of RFC1321) {
    const inline = createMd5Hasher()
    inline.update(Buffer.from(text))
    t.equal((await inline.digest()).toString('hex'), expected, `inline ${JSON.stringify(text)}`)

    const worker = viaWorker.createHasher()
    for (const byte of Buffer.from(text)) worker.update(Buffer.of(byte))
    t.equal((await worker.digest()).toString('hex'), expected, `worker ${JSON.stringify(text)}`)
    t.equal(md5Inline(Buffer.from(text)).toString('hex'), expected)
  }
  t.equal(viaWorker.workerCount, 1, 'tiny bodies used the worker when inlineBelow is 0')

  const empty = createMd5Hasher()
  t.equal((await empty.digest()).toString('hex'), 'd41d8cd98f00b204e9800998ecf8427e', 'no update at all')
  t.equal((await createMd5Hasher().digest()).length, 16)
})

t.test('md5: 10 MiB of random data equals crypto, chunks reused by the caller', async (t) => {
  const pool = new Md5WorkerPool({ workers: 2 })
  t.teardown(async () => await pool.close())
  const data = randomBytes(10 * 1024 * 1024)
  const hasher = pool.createHasher()
  await feed(hasher, data)
  t.equal((await hasher.digest()).toString('hex'), md5(data))
  t.equal(pool.workerCount, 1)
  t.equal(hasher.pendingBytes, 0)
  t.throws(() => hasher.update(Buffer.of(1)), { code: 'CC_ERR_INTERNAL' }, 'no update after digest')
  await t.rejects(hasher.digest(), { code: 'CC_ERR_INTERNAL' }, 'no second digest')
})

t.test('md5: backpressure bounds pending bytes', async (t) => {
  const pool = new Md5WorkerPool({ workers: 1, batchBytes: 64 * 1024 })
  t.teardown(async () => await pool.close())
  const hasher = pool.createHasher({ highWaterMark: 256 * 1024 })
  const data = randomBytes(8 * 1024 * 1024)
  const chunk = 48 * 1024
  let refused = 0
  let maxPending = 0
  for (let offset = 0; offset < data.length; offset += chunk) {
    const more = hasher.update(data.subarray(offset, offset + chunk))
    maxPending = Math.max(maxPending, hasher.pendingBytes)
    if (!more) {
      refused++
      t.ok(hasher.pendingBytes >= 256 * 1024)
      await hasher.ready()
      if (hasher.pendingBytes >= 256 * 1024) t.fail(`ready() resolved with ${hasher.pendingBytes} pending`)
    }
  }
  t.ok(refused > 0, `update() returned false ${refused} times`)
  t.ok(maxPending < 256 * 1024 + chunk, `pending stayed ≤ high-water mark + one chunk (max ${maxPending})`)
  t.equal((await hasher.digest()).toString('hex'), md5(data))
})

t.test('md5: a high-water mark below the batch size cannot stall', async (t) => {
  const pool = new Md5WorkerPool({ workers: 1, batchBytes: 256 * 1024 })
  t.teardown(async () => await pool.close())
  const hasher = pool.createHasher({ highWaterMark: 1024 })
  const data = randomBytes(1024 * 1024 + 3)
  await feed(hasher, data, 10_000)
  t.equal((await hasher.digest()).toString('hex'), md5(data))
})

t.test('md5: several hashers interleaved share two workers', async (t) => {
  const pool = new Md5WorkerPool({ workers: 2, batchBytes: 256 * 1024 })
  t.teardown(async () => await pool.close())
  const bodies = [0, 1, 5000, 256 * 1024, 256 * 1024 + 1, 3_000_000, 7_000_000].map((n) => randomBytes(n))
  const hashers = bodies.map(() => pool.createHasher())
  const offsets = bodies.map(() => 0)
  // round-robin: one small chunk per hasher per turn
  for (let turn = 0; offsets.some((o, i) => o < bodies[i]!.length); turn++) {
    for (let i = 0; i < bodies.length; i++) {
      const body = bodies[i]!
      if (offsets[i]! >= body.length) continue
      const n = Math.min(body.length - offsets[i]!, 1 + ((turn * 7919 + i * 104729) % 90_000))
      if (!hashers[i]!.update(body.subarray(offsets[i]!, offsets[i]! + n))) await hashers[i]!.ready()
      offsets[i]! += n
    }
  }
  const digests = await Promise.all(hashers.map(async (h) => (await h.digest()).toString('hex')))
  t.same(digests, bodies.map(md5))
  t.ok(pool.workerCount <= 2, `${pool.workerCount} workers`)
})

t.test('md5: destroy mid-stream', async (t) => {
  const pool = new Md5WorkerPool({ workers: 1, batchBytes: 64 * 1024 })
  t.teardown(async () => await pool.close())
  const data = randomBytes(4 * 1024 * 1024)

  const survivor = pool.createHasher()
  const aborted = pool.createHasher()
  await feed(survivor, data.subarray(0, 1_000_000))
  await feed(aborted, data.subarray(0, 2_000_000))
  aborted.destroy()
  aborted.destroy()
  t.equal(aborted.pendingBytes, 0)
  t.throws(() => aborted.update(Buffer.of(1)), { code: 'CC_ERR_INTERNAL' }, 'update after destroy throws')
  await t.rejects(aborted.digest(), { code: 'CC_ERR_INTERNAL' }, 'digest after destroy rejects')
  await aborted.ready() // resolves: the hasher no longer accepts data

  const whileDigesting = pool.createHasher()
  await feed(whileDigesting, data)
  const pending = whileDigesting.digest()
  whileDigesting.destroy()
  const err = await pending.catch((e: unknown) => e)
  t.ok(isCacheError(err, 'CC_ERR_CLIENT_ABORTED'), 'a pending digest rejects with CC_ERR_CLIENT_ABORTED')

  await feed(survivor, data.subarray(1_000_000))
  t.equal((await survivor.digest()).toString('hex'), md5(data), 'the other hasher on the same worker is unaffected')

  const fresh = pool.createHasher()
  await feed(fresh, data)
  t.equal((await fresh.digest()).toString('hex'), md5(data), 'the worker keeps serving new hashers')
})

t.test('md5: a dying worker fails its hashers, and the pool starts a new one', async (t) => {
  const pool = new Md5WorkerPool({ workers: 1, batchBytes: 64 * 1024 })
  t.teardown(async () => await pool.close())
  const data = randomBytes(1024 * 1024)

  const victim = pool.createHasher()
  const digesting = pool.createHasher()
  await feed(victim, data)
  // 16 MiB queued without waiting, then the worker dies (what a crash looks like from the main
  // thread) with the digest asked for: the worker can never answer it, however fast it hashes.
  for (let i = 0; i < 16; i++) digesting.update(data)
  t.equal(pool.workerCount, 1)
  const [thread] = pool.threads
  const exited = new Promise((resolve) => thread!.once('exit', resolve))
  const terminated = thread!.terminate()
  const rejected = t.rejects(digesting.digest(), { code: 'CC_ERR_INTERNAL' }, 'a pending digest rejects')
  await terminated
  await exited
  await rejected
  t.throws(() => victim.update(Buffer.of(1)), { code: 'CC_ERR_INTERNAL' }, 'update on a failed hasher throws')
  await victim.ready() // resolves: the hasher no longer accepts data
  await t.rejects(victim.digest(), { code: 'CC_ERR_INTERNAL' })
  t.equal(pool.workerCount, 0, 'the dead worker left the pool')

  const next = pool.createHasher()
  await feed(next, data)
  t.equal((await next.digest()).toString('hex'), md5(data), 'a new worker serves new hashers')
  t.equal(pool.workerCount, 1)
})

t.test('md5: close() fails running hashers and refuses new ones', async (t) => {
  const pool = new Md5WorkerPool({ workers: 1, batchBytes: 64 * 1024 })
  const data = randomBytes(1024 * 1024)
  const hasher = pool.createHasher()
  await feed(hasher, data)
  const rejected = t.rejects(hasher.digest(), { code: 'CC_ERR_INTERNAL' })
  await pool.close()
  await rejected
  t.equal(pool.workerCount, 0)
  t.throws(() => pool.createHasher(), { code: 'CC_ERR_INTERNAL' })
  await pool.close() // idempotent
})

interface ChildResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs a TypeScript module in a fresh `node --import tsx` (killed after 30 s). */
async function runChild (dir: string, name: string, source: string, nodeFlags: string[] = []): Promise<ChildResult> {
  const script = join(dir, name)
  writeFileSync(script, source)
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}

const md5Module = JSON.stringify(pathToFileURL(fileURLToPath(new URL('../../src/core/checksum/md5.ts', import.meta.url))).href)

t.test('md5: the process exits by itself once hashing is done or abandoned', async (t) => {
  const { code, signal, stdout, stderr } = await runChild(t.testdir(), 'child.mts', `
import { createHash } from 'node:crypto'
import { createMd5Hasher } from ${md5Module}
const data = Buffer.alloc(5 * 1024 * 1024, 7)
const done = createMd5Hasher()
for (let o = 0; o < data.length; o += 65536) if (!done.update(data.subarray(o, o + 65536))) await done.ready()
const digest = await done.digest()   // top-level await: the worker must stay referenced until it answers
const abandoned = createMd5Hasher()
abandoned.update(data)               // never digested nor destroyed
const destroyed = createMd5Hasher()
destroyed.update(data)
destroyed.destroy()
console.log(digest.equals(createHash('md5').update(data).digest()) ? 'ok' : 'mismatch')
`)
  t.equal(signal, null, 'not killed by the timeout')
  t.equal(code, 0, `exit code 0 ${stderr}`)
  t.equal(stdout.trim(), 'ok')
})

t.test('md5: hashing never detaches an ArrayBuffer (which would slow every typed-array loop)', async (t) => {
  // V8 traces each invalidation of its "ArrayBufferDetaching" protector. tsx's
  // loader thread may already account for one, so compare with a baseline.
  const dir = t.testdir()
  const flags = ['--trace-protector-invalidation']
  const count = (r: ChildResult): number => (r.stdout + r.stderr).split('cell ArrayBufferDetaching').length - 1
  const baseline = await runChild(dir, 'baseline.mts', 'console.log("ok")\n', flags)
  const detaching = await runChild(dir, 'detaching.mts', 'const ab = new ArrayBuffer(8)\nstructuredClone(ab, { transfer: [ab] })\nconsole.log("ok")\n', flags)
  const hashing = await runChild(dir, 'hashing.mts', `
import { Md5WorkerPool } from ${md5Module}
const pool = new Md5WorkerPool({ workers: 2, inlineBelow: 0 })
const data = Buffer.alloc(3 * 1024 * 1024 + 5, 1)
const hashers = [pool.createHasher(), pool.createHasher(), pool.createHasher()]
for (const h of hashers) h.update(data)
hashers[2]!.destroy()
await Promise.all(hashers.slice(0, 2).map(async (h) => await h.digest()))
await pool.close()
console.log('ok')
`, flags)
  for (const r of [baseline, detaching, hashing]) t.equal(r.code, 0, r.stderr)
  t.ok(count(detaching) > count(baseline), 'the trace does show a detach (control)')
  t.equal(count(hashing), count(baseline), 'hashing through the workers detached nothing')
})
