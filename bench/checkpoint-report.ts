/**
 * The tables of the checkpoint scenario: throughput per phase (gateway,
 * Azurite direct, ceiling, ratios), the Azure Blob traffic of one checkpoint
 * with and without the gateway, and CPU per GiB. Medians over runs.
 */

import type { CheckpointResults, Phase, PhaseSample, Target } from './checkpoint-plan.js'
import type { Traffic } from './checkpoint-scenarios.js'
import { cell, fmt, GiB, median, MiB, phaseFailed, phaseSamples, printTable, ratioCell, stats, type Stats } from './report.js'

/** The median Traffic of some samples: each count's median on its own. */
export function medianTraffic (xs: Array<Traffic | undefined>): Traffic | undefined {
  const ts = xs.filter((t): t is Traffic => t !== undefined)
  if (ts.length === 0) return undefined
  const ops = [...new Set(ts.flatMap((t) => Object.keys(t.requests)))].sort()
  return {
    requests: Object.fromEntries(ops.map((op) => [op, median(ts.map((t) => t.requests[op] ?? 0))])),
    data: median(ts.map((t) => t.data)),
    metadata: median(ts.map((t) => t.metadata)),
    bytesOut: median(ts.map((t) => t.bytesOut)),
    bytesIn: median(ts.map((t) => t.bytesIn))
  }
}

const sumTraffic = (a: Traffic | undefined, b: Traffic | undefined): Traffic | undefined => {
  if (a === undefined || b === undefined) return undefined
  const requests: Record<string, number> = { ...a.requests }
  for (const [k, v] of Object.entries(b.requests)) requests[k] = (requests[k] ?? 0) + v
  return { requests, data: a.data + b.data, metadata: a.metadata + b.metadata, bytesOut: a.bytesOut + b.bytesOut, bytesIn: a.bytesIn + b.bytesIn }
}

const total = (t: Traffic): number => t.data + t.metadata
/** Request counts are whole numbers; a median of an even number of runs may end in .5. */
const count = (n: number): string => Number.isInteger(n) ? String(n) : n.toFixed(1)
const reqCell = (t: Traffic | undefined): string => t === undefined ? '—' : `${count(total(t))} (${count(t.data)} data + ${count(t.metadata)} meta)`
const bytesCell = (t: Traffic | undefined): string => t === undefined ? '—' : `${((t.bytesOut + t.bytesIn) / MiB).toFixed(1)} MiB`
const ops = (t: Traffic | undefined): string => t === undefined
  ? '—'
  : Object.entries(t.requests).filter(([, n]) => n > 0).map(([op, n]) => `${op} ${count(n)}`).join(', ') || 'none'
const trafficRatio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined ? '—' : b === 0 ? (a === 0 ? '—' : '∞') : `${(a / b).toFixed(2)}×`

/** Median requests per second a phase sent to Azure Blob. */
function rate (xs: PhaseSample[]): string {
  const rs = xs.filter((s) => s.upstream !== undefined && s.seconds > 0).map((s) => total(s.upstream as Traffic) / s.seconds)
  return rs.length === 0 ? '—' : fmt(median(rs))
}

export interface CheckpointSummary {
  throughput: Array<{ row: string, unit: string, gateway?: Stats, azurite?: Stats, ceiling?: Stats }>
  traffic: Array<{ row: string, gateway?: Traffic, direct?: Traffic }>
}

export function printCheckpoint (r: CheckpointResults, targets: readonly Target[]): CheckpointSummary {
  const value = (phase: Phase, t: Target): Stats | undefined => stats(phaseSamples(r, phase, t).map((s) => s.value as number))
  const seconds = (phase: Phase, t: Target): Stats | undefined => stats(phaseSamples(r, phase, t).map((s) => s.seconds))
  const has = (t: Target): boolean => targets.includes(t)
  type Row = { row: string, unit: string, cells: Partial<Record<Target, [Phase, 'value' | 'seconds'] | undefined>> }
  const rows: Row[] = [
    { row: 'save (all shards + .metadata acknowledged)', unit: 'MiB/s', cells: { gateway: ['save', 'value'], azurite: ['save', 'value'], ceiling: ['save', 'value'] } },
    { row: 'clean in Azure Blob (from save start)', unit: 'MiB/s', cells: { gateway: ['clean', 'value'], azurite: ['clean', 'value'] } },
    { row: 'time to clean in Azure Blob', unit: 's', cells: { gateway: ['clean', 'seconds'], azurite: ['clean', 'seconds'] } },
    { row: 'flush after the ack (POST /flush)', unit: 's', cells: { gateway: ['flush', 'seconds'] } },
    { row: 'restore, warm gateway cache', unit: 'MiB/s', cells: { gateway: ['restore', 'value'], azurite: ['restore', 'value'], ceiling: ['restore', 'value'] } },
    { row: 'restore, cold cache (read-through)', unit: 'MiB/s', cells: { gateway: ['restore-cold', 'value'], azurite: ['restore', 'value'] } }
  ]
  const summary: CheckpointSummary = { throughput: [], traffic: [] }
  const table = rows.map(({ row, unit, cells }) => {
    const st = (t: Target): Stats | undefined => {
      const c = cells[t]
      return c === undefined ? undefined : c[1] === 'value' ? value(c[0], t) : seconds(c[0], t)
    }
    const show = (t: Target): string => {
      const c = cells[t]
      if (!has(t)) return '—'
      return c === undefined ? 'n/a' : cell(st(t), phaseFailed(r, c[0], t))
    }
    summary.throughput.push({ row, unit, gateway: st('gateway'), azurite: st('azurite'), ceiling: st('ceiling') })
    return [`${row} [${unit}]`, show('gateway'), show('azurite'), show('ceiling'), ratioCell(st('gateway'), st('azurite')), ratioCell(st('gateway'), st('ceiling'))]
  })
  printTable('Checkpoint throughput: median (min–max) over runs; MiB/s higher is better, seconds lower. The gateway writes back to the same Azurite.',
    ['phase', 'gateway (writeback)', 'Azurite direct', 'ceiling', 'gateway/Azurite', 'gateway/ceiling'], table, ['l', 'r', 'r', 'r', 'r', 'r'])
  console.log('Azurite direct: a checkpoint is clean in Azure Blob when acknowledged, so its save is its time to clean; both restore rows compare with the same direct restore.')

  if (has('gateway') && has('azurite')) {
    const gSave = phaseSamples(r, 'clean', 'gateway')
    const gWarm = phaseSamples(r, 'restore', 'gateway')
    const gCold = phaseSamples(r, 'restore-cold', 'gateway')
    const dSave = phaseSamples(r, 'save', 'azurite')
    const dRestore = phaseSamples(r, 'restore', 'azurite')
    const m = (xs: PhaseSample[]): Traffic | undefined => medianTraffic(xs.map((s) => s.upstream))
    const lines: Array<[string, Traffic | undefined, Traffic | undefined, string, string]> = [
      ['save (until clean upstream)', m(gSave), m(dSave), rate(gSave), rate(dSave)],
      ['restore, warm gateway cache', m(gWarm), m(dRestore), rate(gWarm), rate(dRestore)],
      ['restore, cold cache (read-through)', m(gCold), m(dRestore), rate(gCold), rate(dRestore)],
      ['save + restore on the same node', sumTraffic(m(gSave), m(gWarm)), sumTraffic(m(dSave), m(dRestore)), '', ''],
      ['save + restore on a fresh node', sumTraffic(m(gSave), m(gCold)), sumTraffic(m(dSave), m(dRestore)), '', '']
    ]
    printTable('Azure Blob traffic per checkpoint (medians): requests that reached Azurite and object bytes, with the gateway (its /metrics) and without (the client\'s own count).',
      ['per checkpoint', 'via gateway: requests', 'direct: requests', 'requests gateway/direct', 'via gateway: bytes', 'direct: bytes', 'bytes gateway/direct', 'req/s via gateway', 'req/s direct'],
      lines.map(([row, g, d, rg, rd]) => {
        summary.traffic.push({ row, ...(g === undefined ? {} : { gateway: g }), ...(d === undefined ? {} : { direct: d }) })
        return [row, reqCell(g), reqCell(d), trafficRatio(g === undefined ? undefined : total(g), d === undefined ? undefined : total(d)),
          bytesCell(g), bytesCell(d), trafficRatio(g === undefined ? undefined : g.bytesOut + g.bytesIn, d === undefined ? undefined : d.bytesOut + d.bytesIn), rg, rd]
      }), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'])
    console.log(`operations, via gateway: save ${ops(m(gSave))}; warm restore ${ops(m(gWarm))}; cold restore ${ops(m(gCold))}`)
    console.log(`operations, direct:      save ${ops(m(dSave))}; restore ${ops(m(dRestore))}`)
    const clientSave = medianTraffic(phaseSamples(r, 'save', 'gateway').map((s) => s.client))
    console.log(`the client sent the gateway: save ${ops(clientSave)} (the same calls as direct)`)
    const served = (xs: PhaseSample[], src: string): string => xs.length === 0 ? '—' : `${(median(xs.map((s) => s.served?.[src] ?? 0)) / MiB).toFixed(1)} MiB`
    console.log(`gateway served: warm restore ${served(gWarm, 'local')} from its cache, ${served(gWarm, 'upstream')} from Azure Blob; cold restore ${served(gCold, 'local')} from its cache, ${served(gCold, 'upstream')} from Azure Blob`)
    const retries = [...gSave, ...gWarm, ...gCold].reduce((n, s) => n + (s.retries ?? 0), 0)
    if (retries > 0) console.log(`the gateway retried ${retries} upstream requests over all runs (throttling or errors; each retry is counted in its requests)`)
  }

  const cpuRows: string[][] = []
  const phases: Array<[Phase, string]> = [['save', 'save'], ['clean', 'save → clean'], ['restore', 'restore'], ['restore-cold', 'restore (cold)']]
  const labelOf = (t: Target, phase: Phase, label: string): string => t === 'gateway' && phase === 'restore' ? 'restore (warm)' : label
  for (const t of targets) {
    for (const [phase, label] of phases) {
      const xs = phaseSamples(r, phase, t)
      if (xs.length === 0 || (t === 'azurite' && phase === 'clean')) continue
      const per = (who: Target | 'client'): string => {
        const ys = xs.filter((s) => s.cpuS[who] !== undefined).map((s) => (s.cpuS[who] as number) / (s.bytes / GiB))
        return ys.length === 0 ? '—' : fmt(median(ys))
      }
      cpuRows.push([`${t}: ${labelOf(t, phase, label)}`, per('gateway'), per('azurite'), per('ceiling'), per('client')])
    }
  }
  printTable('Checkpoint CPU per GiB, medians (s/GiB): each server process and the client (this process) during the phase. All share the machine\'s cores.',
    ['target: phase', 'gateway', 'Azurite', 'ceiling', 'client'], cpuRows)

  const rssRows: string[][] = []
  for (const t of targets) {
    for (const [phase, label] of phases) {
      const xs = phaseSamples(r, phase, t)
      if (xs.length === 0 || (t === 'azurite' && phase === 'clean')) continue
      const peak = (who: Target): string => {
        const ys = xs.flatMap((s) => s.peakRss?.[who] === undefined ? [] : [s.peakRss[who] as number])
        return ys.length === 0 ? '—' : `${(Math.max(...ys) / MiB).toFixed(0)} MiB`
      }
      rssRows.push([`${t}: ${labelOf(t, phase, label)}`, peak('gateway'), peak('azurite'), peak('ceiling')])
    }
  }
  printTable('Checkpoint server peak RSS (VmHWM) per phase, max over runs. Target: gateway < 200 MiB.', ['target: phase', 'gateway', 'Azurite', 'ceiling'], rssRows)
  return summary
}
