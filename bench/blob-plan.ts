/**
 * The Blob rows: gateway, ceiling and Azurite driven by `@azure/storage-blob`
 * (client calls in bench/blob-scenarios.ts).
 */

import { Agent } from 'node:http'
import type { ContainerClient } from '@azure/storage-blob'
import { containerClient, getObjects, getSmall, openContainer, putObjects, putSmall, repeatedBuffer, uploadDataObject } from './blob-scenarios.js'
import { bulkTimeout, progress, rotate, smallTimeout, type Connect, type Measurer } from './measure.js'
import { BIG, CONCURRENCY, MID, SMALL_CONCURRENCY, SMALL_SIZE, sizeLabel, type Plan, type PlanOptions } from './plan.js'
import type { Scenario } from './report.js'
import type { BenchServer, ServerName } from './servers/start.js'

const BLOB_SERVERS: readonly ServerName[] = ['gateway', 'ceiling', 'azurite']

/** A container client on a fresh keep-alive agent, destroyed after the run. */
const blob: Connect<ContainerClient> = (server) => {
  const agent = new Agent({ keepAlive: true })
  return { client: containerClient(server.connectionString as string, agent), close: () => { agent.destroy() } }
}

export function blobPlan (o: PlanOptions): Plan {
  const ALL = o.servers.filter((s) => BLOB_SERVERS.includes(s))
  const BLOCK_SERVERS = ALL.filter((s) => s !== 'ceiling')
  const scenarios: Scenario[] = []
  for (const size of o.bigRuns > 0 ? [MID, BIG] : [MID]) {
    for (const c of CONCURRENCY) {
      for (const op of ['PUT', 'GET'] as const) {
        scenarios.push({
          key: `${op.toLowerCase()}-${sizeLabel(size).replace(' ', '')}-c${c}`,
          label: `${op} ${sizeLabel(size)} ×${c}`,
          unit: 'MiB/s',
          protocol: 'blob',
          servers: ALL,
          targets: size === BIG ? { vsCeiling: 0.8, vsPeer: 2 } : { vsPeer: 2 },
          rssPhase: `${op} ${sizeLabel(size)}`
        })
      }
    }
  }
  if (o.bigRuns > 0) {
    scenarios.push({
      key: 'uploaddata-1GiB', label: 'uploadData 1 GiB (Put Block ×256 + Put Block List)', unit: 'MiB/s', protocol: 'blob',
      servers: BLOCK_SERVERS, targets: { vsPeer: 2 }, rssPhase: 'uploadData 1 GiB'
    }, {
      key: 'get-blocks-1GiB', label: 'GET 1 GiB block blob (256 blocks)', unit: 'MiB/s', protocol: 'blob',
      servers: BLOCK_SERVERS, targets: { vsPeer: 2 }, rssPhase: 'GET 1 GiB blocks'
    })
  }
  scenarios.push({
    key: 'put-4KiB-c16', label: `PUT 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s', protocol: 'blob',
    servers: ALL, targets: { vsPeer: 2 }, rssPhase: '4 KiB'
  }, {
    key: 'get-4KiB-c16', label: `GET 4 KiB ×${SMALL_CONCURRENCY}`, unit: 'ops/s', protocol: 'blob',
    servers: ALL, targets: { vsPeer: 2 }, rssPhase: '4 KiB'
  })
  const scenario = (key: string): Scenario => scenarios.find((s) => s.key === key) as Scenario

  async function bulk (m: Measurer, byName: (n: ServerName) => BenchServer, size: number, runs: number): Promise<void> {
    const tag = sizeLabel(size).replace(' ', '')
    for (const c of CONCURRENCY) {
      const names = Array.from({ length: c }, (_, i) => `obj-${tag}-${i}`)
      progress(`${sizeLabel(size)} ×${c}: ${runs} runs\n`)
      for (let r = 0; r < runs; r++) {
        for (const name of rotate(ALL, r)) {
          const server = byName(name)
          const timeout = bulkTimeout(size * c)
          await m.measure(server, scenario(`put-${tag}-c${c}`), timeout, blob, async (c, signal) => await putObjects(c, names, size, signal))
          await m.measure(server, scenario(`get-${tag}-c${c}`), timeout, blob, async (c, signal) => await getObjects(c, names, size, signal))
        }
      }
    }
  }

  async function blocks (m: Measurer, byName: (n: ServerName) => BenchServer, runs: number): Promise<void> {
    progress(`uploadData 1 GiB: ${runs} runs\n`)
    const data = repeatedBuffer(BIG)
    for (let r = 0; r < runs; r++) {
      for (const name of rotate(BLOCK_SERVERS, r)) {
        const server = byName(name)
        await m.measure(server, scenario('uploaddata-1GiB'), bulkTimeout(BIG), blob, async (c, signal) => await uploadDataObject(c, 'blocks-1GiB', data, signal))
        await m.measure(server, scenario('get-blocks-1GiB'), bulkTimeout(BIG), blob, async (c, signal) => await getObjects(c, ['blocks-1GiB'], BIG, signal))
      }
    }
  }

  async function small (m: Measurer, byName: (n: ServerName) => BenchServer, runs: number): Promise<void> {
    progress(`4 KiB ×${SMALL_CONCURRENCY}: warm-up ${o.smallWarmup} ops, then ${runs} runs of ${o.smallOps} new objects\n`)
    for (const name of ALL) {
      const warm = Array.from({ length: o.smallWarmup }, (_, i) => `warm-${i}`)
      await m.measure(byName(name), undefined, smallTimeout(o.smallWarmup), blob, async (c, signal) => await putSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
      await m.measure(byName(name), undefined, smallTimeout(o.smallWarmup), blob, async (c, signal) => await getSmall(c, warm, SMALL_SIZE, SMALL_CONCURRENCY, signal))
    }
    for (let r = 0; r < runs; r++) {
      const names = Array.from({ length: o.smallOps }, (_, i) => `small-${r}-${i}`)
      for (const name of rotate(ALL, r)) {
        const server = byName(name)
        await m.measure(server, scenario('put-4KiB-c16'), smallTimeout(o.smallOps), blob, async (c, signal) => await putSmall(c, names, SMALL_SIZE, SMALL_CONCURRENCY, signal))
        await m.measure(server, scenario('get-4KiB-c16'), smallTimeout(o.smallOps), blob, async (c, signal) => await getSmall(c, names, SMALL_SIZE, SMALL_CONCURRENCY, signal))
      }
    }
  }

  return {
    protocol: 'blob',
    servers: ALL,
    scenarios,
    notes: [],
    diskBytes: o.bigRuns > 0 ? (BIG * 5 * o.bigRuns + BIG * o.bigRuns) + BIG * 7 : MID * 10,
    describe: () => [
      `objects: PUT/GET ${sizeLabel(MID)}${o.bigRuns > 0 ? ` and ${sizeLabel(BIG)}` : ''} at concurrency ${CONCURRENCY.join(' and ')} (c distinct blobs in parallel; one Put Blob each via upload(() => stream, size), body = one random 4 MiB buffer repeated; GET = download() streamed and counted)`,
      ...(o.bigRuns > 0 ? ['SDK default for large objects (gateway and Azurite; the ceiling has no blocks): uploadData(1 GiB buffer) = Put Block 4 MiB ×256, 5 in flight, + Put Block List; then download() of that blob'] : []),
      `small: ${o.smallOps} new 4 KiB blobs per run, ${SMALL_CONCURRENCY} in flight (upload(buffer), then download() of the same names), after ${o.smallWarmup} warm-up ops`,
      `runs: ${o.midRuns} × ${sizeLabel(MID)}${o.bigRuns > 0 ? `, ${o.bigRuns} × ${sizeLabel(BIG)} and uploadData` : ''}, ${o.smallRuns} × 4 KiB; one warm-up ${sizeLabel(MID)} PUT+GET per server; server order rotates every run; large-object runs after the first overwrite the same names; GETs read what the PUT just wrote (page cache)`
    ],
    prepare: async (server) => {
      const agent = new Agent({ keepAlive: true })
      await openContainer(server.connectionString as string, agent)
      agent.destroy()
    },
    run: async (m, byName) => {
      // Warm-up: one mid-size PUT + GET per server (JIT, sockets, first-touch of buffers).
      for (const name of ALL) {
        await m.measure(byName(name), undefined, bulkTimeout(MID), blob, async (c, signal) => await putObjects(c, ['warm-mid'], MID, signal))
        await m.measure(byName(name), undefined, bulkTimeout(MID), blob, async (c, signal) => await getObjects(c, ['warm-mid'], MID, signal))
      }
      await bulk(m, byName, MID, o.midRuns)
      if (o.bigRuns > 0) {
        await bulk(m, byName, BIG, o.bigRuns)
        await blocks(m, byName, o.bigRuns)
      }
      await small(m, byName, o.smallRuns)
    }
  }
}
