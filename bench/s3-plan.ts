/**
 * The S3 rows: gateway, ceiling and moto driven by `@aws-sdk/client-s3` at its
 * default settings (client calls and what they put on the wire in
 * bench/s3-scenarios.ts), plus the cost of request checksums on the gateway.
 */

import type { S3Client } from '@aws-sdk/client-s3'
import { bulkTimeout, progress, rotate, smallTimeout, type Connect, type Measurer } from './measure.js'
import { BIG, CONCURRENCY, MID, SMALL_CONCURRENCY, SMALL_SIZE, sizeLabel, type Plan, type PlanOptions } from './plan.js'
import type { Scenario } from './report.js'
import { CHECKSUM_VARIANTS, DIRECTORY_BUCKET, getObjects, getSmall, openBucket, putObjects, putSmall, s3Client, type ChecksumVariant } from './s3-scenarios.js'
import type { BenchServer, S3Endpoint, ServerName } from './servers/start.js'

const S3_SERVERS: readonly ServerName[] = ['gateway', 'ceiling', 'moto']
/** The checksum rows compare the gateway with the ceiling (which verifies nothing). */
const CHECKSUM_SERVERS: readonly ServerName[] = ['gateway', 'ceiling']
const VARIANTS = Object.keys(CHECKSUM_VARIANTS) as ChecksumVariant[]

/**
 * Why moto has no 1 GiB rows. moto reads a whole request body into memory and
 * then decodes the SDK's default aws-chunked body by appending each chunk to a
 * bytes object (moto/s3/responses.py `_handle_encoded_body`), which copies
 * everything received so far for every chunk: quadratic in the object size.
 */
export const MOTO_BIG_NOTE = 'moto: no 1 GiB rows. moto buffers the whole request body and decodes the SDK\'s aws-chunked body by appending each ' +
  'chunk to a bytes object (s3/responses.py _handle_encoded_body), quadratic in size: outside this benchmark, one PutObject took ' +
  '1.9 s at 32 MiB, 4.4 s at 64 MiB, 15 s at 128 MiB and 43 s at 256 MiB (1.2 GiB peak RSS), and a 1 GiB one had not finished after 5 minutes.'

const s3 = (variant: ChecksumVariant = 'crc32'): Connect<S3Client> => (server) => {
  const client = s3Client(server.s3 as S3Endpoint, variant)
  return { client, close: () => { client.destroy() } }
}

export function s3Plan (o: PlanOptions): Plan {
  const ALL = o.servers.filter((s) => S3_SERVERS.includes(s))
  const BIG_SERVERS = ALL.filter((s) => s !== 'moto')
  const SUM_SERVERS = ALL.filter((s) => CHECKSUM_SERVERS.includes(s))
  /** The checksum rows use 1 GiB objects; --quick (no 1 GiB) runs them at 64 MiB. */
  const SUM_SIZE = o.bigRuns > 0 ? BIG : MID
  const SUM_RUNS = o.bigRuns > 0 ? o.bigRuns : o.midRuns
  const scenarios: Scenario[] = []
  for (const size of o.bigRuns > 0 ? [MID, BIG] : [MID]) {
    for (const c of CONCURRENCY) {
      for (const op of ['PutObject', 'GetObject'] as const) {
        scenarios.push({
          key: `s3-${op === 'PutObject' ? 'put' : 'get'}-${sizeLabel(size).replace(' ', '')}-c${c}`,
          label: `${op} ${sizeLabel(size)} ×${c}`,
          unit: 'MiB/s',
          protocol: 's3',
          servers: size === BIG ? BIG_SERVERS : ALL,
          targets: size === BIG ? { vsCeiling: 0.8 } : {},
          rssPhase: `${op} ${sizeLabel(size)}`
        })
      }
    }
  }
  // The S3 Express path: a directory bucket through CreateSession sessions (opaque ETags, so no
  // MD5 before the answer); the ceiling answers CreateSession with credentials it never checks.
  for (const op of ['PutObject', 'GetObject'] as const) {
    scenarios.push({
      key: `s3-${op === 'PutObject' ? 'put' : 'get'}-${sizeLabel(SUM_SIZE).replace(' ', '')}-directory`,
      label: `${op} ${sizeLabel(SUM_SIZE)} ×1, directory bucket (S3 Express)`,
      unit: 'MiB/s',
      protocol: 's3',
      servers: SUM_SERVERS,
      targets: SUM_SIZE === BIG ? { vsCeiling: 0.8 } : {},
      rssPhase: 'S3 Express'
    })
  }
  for (const v of VARIANTS) {
    scenarios.push({
      key: `s3-put-${sizeLabel(SUM_SIZE).replace(' ', '')}-${v}`,
      label: `PutObject ${sizeLabel(SUM_SIZE)} ×1, ${CHECKSUM_VARIANTS[v]}`,
      unit: 'MiB/s',
      protocol: 's3',
      servers: SUM_SERVERS,
      targets: {},
      rssPhase: 'PutObject checksums'
    })
  }
  scenarios.push({
    key: 's3-put-4KiB-c16', label: `PutObject 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s', protocol: 's3',
    servers: ALL, targets: {}, rssPhase: 'S3 4 KiB'
  }, {
    key: 's3-get-4KiB-c16', label: `GetObject 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s', protocol: 's3',
    servers: ALL, targets: {}, rssPhase: 'S3 4 KiB'
  })
  const scenario = (key: string): Scenario => scenarios.find((s) => s.key === key) as Scenario

  async function bulk (m: Measurer, byName: (n: ServerName) => BenchServer, size: number, runs: number): Promise<void> {
    const tag = sizeLabel(size).replace(' ', '')
    const servers = size === BIG ? BIG_SERVERS : ALL
    for (const c of CONCURRENCY) {
      const keys = Array.from({ length: c }, (_, i) => `obj-${tag}-${i}`)
      progress(`S3 ${sizeLabel(size)} ×${c}: ${runs} runs\n`)
      for (let r = 0; r < runs; r++) {
        for (const name of rotate(servers, r)) {
          const server = byName(name)
          const timeout = bulkTimeout(size * c)
          await m.measure(server, scenario(`s3-put-${tag}-c${c}`), timeout, s3(), async (c, signal) => await putObjects(c, keys, size, signal))
          await m.measure(server, scenario(`s3-get-${tag}-c${c}`), timeout, s3(), async (c, signal) => await getObjects(c, keys, size, signal))
        }
      }
    }
  }

  /** PutObject with each checksum variant, variants and servers interleaved so drift hits all alike. */
  async function checksums (m: Measurer, byName: (n: ServerName) => BenchServer): Promise<void> {
    const tag = sizeLabel(SUM_SIZE).replace(' ', '')
    progress(`S3 PutObject ${sizeLabel(SUM_SIZE)} by request checksum (${VARIANTS.join(', ')}): ${SUM_RUNS} runs\n`)
    for (let r = 0; r < SUM_RUNS; r++) {
      for (const name of rotate(SUM_SERVERS, r)) {
        for (const v of rotate(VARIANTS, r)) {
          await m.measure(byName(name), scenario(`s3-put-${tag}-${v}`), bulkTimeout(SUM_SIZE), s3(v),
            async (c, signal) => await putObjects(c, [`sum-${v}`], SUM_SIZE, signal, v))
        }
      }
    }
  }

  /** PutObject then GetObject in the directory bucket, servers rotating. */
  async function directory (m: Measurer, byName: (n: ServerName) => BenchServer): Promise<void> {
    const tag = sizeLabel(SUM_SIZE).replace(' ', '')
    progress(`S3 Express: ${sizeLabel(SUM_SIZE)} ×1 in ${DIRECTORY_BUCKET}: ${SUM_RUNS} runs\n`)
    for (let r = 0; r < SUM_RUNS; r++) {
      for (const name of rotate(SUM_SERVERS, r)) {
        await m.measure(byName(name), scenario(`s3-put-${tag}-directory`), bulkTimeout(SUM_SIZE), s3(),
          async (c, signal) => await putObjects(c, ['express'], SUM_SIZE, signal, 'crc32', DIRECTORY_BUCKET))
        await m.measure(byName(name), scenario(`s3-get-${tag}-directory`), bulkTimeout(SUM_SIZE), s3(),
          async (c, signal) => await getObjects(c, ['express'], SUM_SIZE, signal, DIRECTORY_BUCKET))
      }
    }
  }

  async function small (m: Measurer, byName: (n: ServerName) => BenchServer, runs: number): Promise<void> {
    progress(`S3 4 KiB ×${SMALL_CONCURRENCY}: warm-up ${o.smallWarmup} ops, then ${runs} runs of ${o.smallOps} new objects\n`)
    for (const name of ALL) {
      const warm = Array.from({ length: o.smallWarmup }, (_, i) => `warm-${i}`)
      await m.measure(byName(name), undefined, smallTimeout(o.smallWarmup), s3(), async (c, signal) => await putSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
      await m.measure(byName(name), undefined, smallTimeout(o.smallWarmup), s3(), async (c, signal) => await getSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
    }
    for (let r = 0; r < runs; r++) {
      const keys = Array.from({ length: o.smallOps }, (_, i) => `small-${r}-${i}`)
      for (const name of rotate(ALL, r)) {
        const server = byName(name)
        await m.measure(server, scenario('s3-put-4KiB-c16'), smallTimeout(o.smallOps), s3(), async (c, signal) => await putSmall(c, keys, SMALL_SIZE, SMALL_CONCURRENCY, signal))
        await m.measure(server, scenario('s3-get-4KiB-c16'), smallTimeout(o.smallOps), s3(), async (c, signal) => await getSmall(c, keys, SMALL_SIZE, SMALL_CONCURRENCY, signal))
      }
    }
  }

  const onDisk = ALL.filter((s) => s !== 'moto').length
  return {
    protocol: 's3',
    servers: ALL,
    scenarios,
    notes: o.bigRuns > 0 && ALL.includes('moto') ? [MOTO_BIG_NOTE] : [],
    // Per disk-backed server: the 1 GiB objects (×1 and ×4), the checksum objects, the small objects; moto spills bodies to its temp dir.
    diskBytes: (onDisk * ((o.bigRuns > 0 ? 5 * BIG : 5 * MID) + (VARIANTS.length + 1) * SUM_SIZE) + (ALL.includes('moto') ? 10 * MID : 0)),
    describe: () => [
      `S3: @aws-sdk/client-s3 at its defaults (path style, retries off): PutObject/GetObject ${sizeLabel(MID)}${o.bigRuns > 0 ? ` and ${sizeLabel(BIG)}` : ''} at concurrency ${CONCURRENCY.join(' and ')} ` +
        '(c distinct keys in parallel; PutObject body = the same repeated 4 MiB buffer as a stream with ContentLength, which the SDK sends aws-chunked ' +
        '(STREAMING-UNSIGNED-PAYLOAD-TRAILER) with a CRC32 trailer and Expect: 100-continue on a connection of its own; GetObject sends x-amz-checksum-mode: ENABLED, ' +
        'so the client checks the body against a CRC32 the server returns (the gateway and moto return the stored one, the ceiling echoes what the client sent), body streamed and counted)',
      `S3 request checksums: PutObject ${sizeLabel(SUM_SIZE)} ×1 on ${SUM_SERVERS.join(' and ')} with the default CRC32 trailer, with ChecksumAlgorithm CRC32C (trailer; the client computes it in pure JS), ` +
        'and with requestChecksumCalculation WHEN_REQUIRED (plain body, Content-Length, UNSIGNED-PAYLOAD); the ceiling verifies nothing',
      `S3 Express: PutObject and GetObject ${sizeLabel(SUM_SIZE)} ×1 in the directory bucket ${DIRECTORY_BUCKET} on ${SUM_SERVERS.join(' and ')}: the SDK opens a CreateSession session ` +
        'and signs with it (the ceiling answers CreateSession with credentials it never checks); same body and checksum as the rows above',
      `S3 small: ${o.smallOps} new 4 KiB objects per run, ${SMALL_CONCURRENCY} in flight (PutObject(Buffer): CRC32 in a header, signed payload SHA-256; then GetObject of the same keys), after ${o.smallWarmup} warm-up ops`,
      `S3 runs: ${o.midRuns} × ${sizeLabel(MID)}${o.bigRuns > 0 ? `, ${o.bigRuns} × ${sizeLabel(BIG)}` : ''}, ${SUM_RUNS} × each checksum variant, ${o.smallRuns} × 4 KiB; one warm-up ${sizeLabel(MID)} PutObject+GetObject per server; server order rotates every run` +
        (o.bigRuns > 0 && ALL.includes('moto') ? '; moto: no 1 GiB rows (see the note under the S3 table)' : '')
    ],
    // moto has no CreateSession: only the gateway and the ceiling get the directory bucket.
    prepare: async (server) => { await openBucket(server.s3 as S3Endpoint, SUM_SERVERS.includes(server.name)) },
    run: async (m, byName) => {
      for (const name of ALL) {
        await m.measure(byName(name), undefined, bulkTimeout(MID), s3(), async (c, signal) => await putObjects(c, ['warm-mid'], MID, signal))
        await m.measure(byName(name), undefined, bulkTimeout(MID), s3(), async (c, signal) => await getObjects(c, ['warm-mid'], MID, signal))
      }
      await bulk(m, byName, MID, o.midRuns)
      if (o.bigRuns > 0) await bulk(m, byName, BIG, o.bigRuns)
      await directory(m, byName)
      await checksums(m, byName)
      await small(m, byName, o.smallRuns)
    }
  }
}
