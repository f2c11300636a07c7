/**
 * Checksum costs on the upload path.
 *
 *   node --import tsx bench/checksum.ts [--gib 1] [--runs 3] [--no-http] [--only-http]
 *                                       [--batch-kib 1024] [--hwm-kib 4096]
 *
 * 1. Hashing 1 GiB fed in 64 KiB chunks (the size a socket hands us) from the
 *    main thread: MD5 inline (`crypto.createHash`) vs the worker hasher (one
 *    stream, and two streams interleaved), a loop that only touches the
 *    chunks as the floor. "main CPU" is the main thread's own run time from
 *    /proc/thread-self/schedstat; `process.cpuUsage()` is reported too but it
 *    counts every thread of the process (workers, GC helpers), so it is the
 *    total cost, not the event loop's.
 * 2. CRC throughput: our CRC64, Azure's WASM CRC64 from @azure/storage-common
 *    (the JS SDK's own), and `zlib.crc32` as the native ceiling.
 * 3. Small bodies: main-thread CPU and latency per object, inline vs worker,
 *    which sets `inlineBelow`.
 * 4. A real PUT: node:http server on loopback discarding the body, client in
 *    a child process, body hashed with nothing / inline MD5 / worker MD5 /
 *    CRC64. All on the same 2 cores, so the client competes with the server.
 * Medians of --runs, all in one process run, since the machine is shared.
 */

import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism, cpus, loadavg } from 'node:os'
import zlib from 'node:zlib'
import { StorageCRC64Calculator } from '@azure/storage-common'
import { Crc64 } from '../src/core/checksum/crc64.js'
import { Md5WorkerPool, type Md5Hasher } from '../src/core/checksum/md5.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const GIB = arg('gib', 1)
const RUNS = arg('runs', 3)
const HTTP = !process.argv.includes('--no-http')
const ONLY_HTTP = process.argv.includes('--only-http')
const BATCH = arg('batch-kib', 1024) * 1024
const HWM = arg('hwm-kib', 4096) * 1024
const MiB = 1024 * 1024
const TOTAL = Math.round(GIB * 1024) * MiB
const CHUNK = 64 * 1024

/** The calling thread's CPU time in ms (Linux schedstat), or process CPU where unavailable. */
function threadCpuMs (): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6
  } catch {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
}
const processCpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }

interface Sample { wall: number, main: number, proc: number }
async function measure (fn: () => Promise<void> | void): Promise<Sample> {
  const w0 = performance.now(); const m0 = threadCpuMs(); const p0 = processCpuMs()
  await fn()
  return { wall: performance.now() - w0, main: threadCpuMs() - m0, proc: processCpuMs() - p0 }
}
async function runs (fn: () => Promise<void> | void): Promise<Sample> {
  await fn() // warm-up
  const samples: Sample[] = []
  for (let i = 0; i < RUNS; i++) samples.push(await measure(fn))
  return { wall: median(samples.map((s) => s.wall)), main: median(samples.map((s) => s.main)), proc: median(samples.map((s) => s.proc)) }
}

const source = randomBytes(64 * MiB)
/** Calls `each` with successive 64 KiB chunks of one reused buffer, TOTAL bytes in all. */
async function stream (each: (chunk: Buffer) => boolean | Promise<void> | void, total = TOTAL): Promise<void> {
  const chunk = Buffer.allocUnsafe(CHUNK)
  for (let off = 0; off < total; off += CHUNK) {
    source.copy(chunk, 0, off % source.length, off % source.length + CHUNK) // a socket writes fresh bytes into its buffer
    const r = each(chunk)
    if (r instanceof Promise) await r
  }
}
const fed = (h: Md5Hasher) => async (c: Buffer): Promise<void> => { if (!h.update(c)) await h.ready() }

const table = (title: string, head: string[], rows: Array<Array<string | number>>): void => {
  console.log(`\n${title}`)
  const cells = [head, ...rows.map((r) => r.map((c) => typeof c === 'number' ? c.toFixed(c < 10 ? 2 : 0) : c))]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)))
  for (const [n, r] of cells.entries()) {
    console.log('| ' + r.map((c, i) => i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!)).join(' | ') + ' |')
    if (n === 0) console.log('|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|')
  }
}

console.log(`Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), ${GIB} GiB per measurement in ${CHUNK / 1024} KiB chunks, median of ${RUNS} runs after a warm-up; worker hasher: ${BATCH / 1024} KiB batches, ${HWM / 1024} KiB high-water mark; load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)

// ---- 1. MD5 over 1 GiB -------------------------------------------------------------------
const pool = new Md5WorkerPool({ batchBytes: BATCH }) // default: min(2, cores) workers
const createHasher = (): Md5Hasher => pool.createHasher({ highWaterMark: HWM })
const perGiB = (ms: number): number => ms / 1000 / GIB
if (!ONLY_HTTP) {
  const md5Rows: Array<Array<string | number>> = []
  const addMd5 = (name: string, s: Sample, floor?: Sample): void => {
    md5Rows.push([name, perGiB(s.main), perGiB(s.proc), (TOTAL / MiB) / (s.wall / 1000), floor === undefined ? '' : `${(s.main / floor.main).toFixed(1)}×`])
  }
  const floor = await runs(async () => { let x = 0; await stream((c) => { x ^= c[0]! }); if (x === 256) console.log(x) })
  const inline = await runs(async () => { const h = createHash('md5'); await stream((c) => { h.update(c) }); h.digest() })
  const worker1 = await runs(async () => { const h = createHasher(); await stream(fed(h)); await h.digest() })
  const worker2 = await runs(async () => {
    const hs = [createHasher(), createHasher()]
    let i = 0
    await stream(async (c) => { const h = hs[i++ & 1]!; if (!h.update(c)) await h.ready() })
    await Promise.all(hs.map(async (h) => await h.digest()))
  })
  const crcMain = await runs(async () => { const h = new Crc64(); await stream((c) => { h.update(c) }); h.digest() })
  addMd5('touch chunks only (floor)', floor)
  addMd5('MD5 inline createHash', inline, floor)
  addMd5('MD5 worker hasher, 1 stream', worker1, floor)
  addMd5('MD5 worker hasher, 2 streams', worker2, floor)
  addMd5('CRC64 inline (ours)', crcMain, floor)
  table(`1. Hashing ${GIB} GiB from the main thread`, ['', 'main CPU s/GiB', 'process CPU s/GiB', 'MiB/s', 'main vs floor'], md5Rows)
  console.log(`   main-thread saving of the worker hasher: ${(perGiB(inline.main) - perGiB(worker1.main)).toFixed(2)} s/GiB (${(inline.main / worker1.main).toFixed(1)}× less)`)

  // ---- 2. CRC throughput ---------------------------------------------------------------------
  await StorageCRC64Calculator.init()
  const crcRows: Array<Array<string | number>> = []
  for (const size of [MiB, CHUNK]) {
    const loop = (fn: (b: Buffer) => void) => () => { for (let o = 0; o < TOTAL; o += size) fn(source.subarray(o % source.length, o % source.length + size)) }
    const ours = await runs(loop((b) => { new Crc64().update(b).digest() }))
    const azure = await runs(loop((b) => { new StorageCRC64Calculator().final(b, b.length) }))
    const crc32 = await runs(loop((b) => { zlib.crc32(b) }))
    const md5 = await runs(loop((b) => { createHash('md5').update(b).digest() }))
    const rate = (s: Sample): number => (TOTAL / MiB) / (s.wall / 1000)
    crcRows.push([`${size / 1024} KiB`, rate(ours), rate(azure), rate(crc32), rate(md5), `${(rate(ours) / rate(azure)).toFixed(2)}×`])
  }
  table('2. Throughput, MiB/s (one thread)', ['buffer', 'CRC64 ours', 'CRC64 Azure WASM', 'zlib.crc32', 'MD5 (crypto)', 'ours / Azure'], crcRows)

  // ---- 3. Small bodies -----------------------------------------------------------------------
  const forced = new Md5WorkerPool({ inlineBelow: 0 })
  const smallRows: Array<Array<string | number>> = []
  for (const size of [4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024]) {
    const n = Math.max(200, Math.min(5000, Math.floor(256 * MiB / size / 8)))
    const body = source.subarray(0, size)
    const inlineS = await runs(() => { for (let i = 0; i < n; i++) createHash('md5').update(body).digest() })
    const workerS = await runs(async () => { for (let i = 0; i < n; i++) { const h = forced.createHasher(); h.update(body); await h.digest() } })
    const us = (ms: number): number => ms * 1000 / n
    smallRows.push([`${size / 1024} KiB`, us(inlineS.main), us(workerS.main), us(inlineS.wall), us(workerS.wall)])
  }
  table('3. Small bodies, µs per object (sequential)', ['body', 'inline main CPU', 'worker main CPU', 'inline latency', 'worker latency'], smallRows)
  await forced.close()
}

// ---- 4. PUT over loopback ------------------------------------------------------------------
if (HTTP) {
  const CLIENT = `
    import http from 'node:http'
    const [port, total] = process.argv.slice(-2).map(Number)
    const body = Buffer.alloc(1 << 20, 7)
    const req = http.request({ port, method: 'PUT', path: '/', headers: { 'content-length': total } }, (res) => { res.resume(); res.on('end', () => process.exit(0)) })
    let sent = 0
    const pump = () => { while (sent < total) { sent += body.length; if (!req.write(body)) return req.once('drain', pump) } req.end() }
    pump()`
  type Mode = 'none' | 'md5-inline' | 'md5-worker' | 'crc64-inline'
  let mode: Mode = 'none'
  const server = http.createServer((req, res) => {
    const m0 = threadCpuMs()
    const h = mode === 'md5-worker' ? createHasher() : undefined
    const inlineHash = mode === 'md5-inline' ? createHash('md5') : undefined
    const crc = mode === 'crc64-inline' ? new Crc64() : undefined
    req.on('data', (c: Buffer) => {
      inlineHash?.update(c)
      crc?.update(c)
      if (h !== undefined && !h.update(c)) { req.pause(); void h.ready().then(() => req.resume()) }
    })
    req.on('end', () => {
      void (async () => {
        const digest = h !== undefined ? await h.digest() : inlineHash?.digest() ?? crc?.digest()
        res.setHeader('x-main-cpu-ms', (threadCpuMs() - m0).toFixed(1))
        res.end(digest?.toString('base64') ?? '')
      })()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const put = async (): Promise<void> => await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, String(port), String(TOTAL)], { stdio: 'inherit' })
    child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`client exited ${code}`)))
  })
  const httpRows: Array<Array<string | number>> = []
  let base = 0
  for (const m of ['none', 'md5-inline', 'md5-worker', 'crc64-inline'] as Mode[]) {
    mode = m
    const s = await runs(put)
    const rate = (TOTAL / MiB) / (s.wall / 1000)
    if (m === 'none') base = rate
    httpRows.push([m, rate, perGiB(s.main), perGiB(s.proc), `${(rate / base * 100).toFixed(0)} %`])
  }
  server.close()
  table(`4. PUT ${GIB} GiB over loopback (client in a child process, body discarded)`, ['server hashes', 'MiB/s', 'server main CPU s/GiB', 'server process CPU s/GiB', 'vs none'], httpRows)
}

await pool.close()
