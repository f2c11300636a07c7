/**
 * The tables of the cluster scenario: throughput per phase against Azurite
 * direct and the ceiling with the bytes that crossed between nodes, peer
 * requests per client operation on each node (made and served), where each
 * reader's bytes came from, CPU per GiB and peak RSS. Medians over runs.
 */

import { cpus } from 'node:os'
import { CLUSTER_PHASES, NODE_IDS, type ClusterResults, type Phase, type PhaseSample, type Target } from './cluster-plan.js'
import type { PeerDelta } from './cluster-nodes.js'
import { cell, fmt, GiB, median, MiB, phaseFailed, phaseSamples, printTable, ratioCell, stats, type Stats } from './report.js'

/** The row labels of the cluster phases and the direct phase each is compared with. */
export const PHASE_ROWS: Record<string, { label: string, direct: Phase }> = {
  save: { label: `save through ${NODE_IDS[0]} (replicas 2, ack all)`, direct: 'save' },
  'restore-b': { label: `restore through ${NODE_IDS[1]}`, direct: 'restore' },
  'restore-c': { label: `restore through ${NODE_IDS[2]}`, direct: 'restore' },
  'restore-killed': { label: `restore through ${NODE_IDS[2]}, ${NODE_IDS[0]} just killed (-9)`, direct: 'restore' }
}

const sumOver = (s: PhaseSample, f: (d: PeerDelta) => number): number => Object.values(s.peers ?? {}).reduce((n, d) => n + f(d), 0)

/** Median over a phase's samples of each node's requests (made or served) per client operation, by op. */
function perOp (xs: PhaseSample[], id: string, which: 'requests' | 'served'): Record<string, number> | undefined {
  const withNode = xs.filter((s) => s.peers?.[id] !== undefined && s.ops > 0)
  if (withNode.length === 0) return undefined
  const ops = [...new Set(withNode.flatMap((s) => Object.keys((s.peers as Record<string, PeerDelta>)[id]?.[which] ?? {})))].sort()
  return Object.fromEntries(ops.map((op) => [op, median(withNode.map((s) => ((s.peers as Record<string, PeerDelta>)[id]?.[which][op] ?? 0) / s.ops))]))
}

const opsCell = (m: Record<string, number> | undefined, gone: boolean): string => {
  if (m === undefined) return gone ? 'killed' : '—'
  const parts = Object.entries(m).filter(([, n]) => n > 0).map(([op, n]) => `${op} ${n.toFixed(2)}`)
  return parts.length === 0 ? 'none' : parts.join(', ')
}

export interface ClusterSummary {
  cores: number
  throughput: Array<{ phase: string, row: string, cluster?: Stats, azurite?: Stats, ceiling?: Stats, peerBytesSent?: number, peerBytesReceived?: number, checkpointBytes?: number }>
  /** Per phase, per node: median peer requests made and served per client operation, by op. */
  peerRequests: Array<{ phase: string, nodes: Record<string, { made?: Record<string, number>, served?: Record<string, number> }> }>
  downAfterS?: Stats
}

export function printCluster (r: ClusterResults, targets: readonly Target[]): ClusterSummary {
  const cores = cpus().length
  const value = (phase: Phase, t: Target): Stats | undefined => stats(phaseSamples(r, phase, t).map((s) => s.value as number))
  const has = (t: Target): boolean => targets.includes(t)
  const summary: ClusterSummary = { cores, throughput: [], peerRequests: [] }

  const rows = CLUSTER_PHASES.map((phase) => {
    const { label, direct } = PHASE_ROWS[phase] as { label: string, direct: Phase }
    const xs = phaseSamples(r, phase, 'cluster')
    const cl = value(phase, 'cluster')
    const az = value(direct, 'azurite')
    const ce = value(direct, 'ceiling')
    const sent = xs.length === 0 ? undefined : median(xs.map((s) => sumOver(s, (d) => d.bytesSent)))
    const received = xs.length === 0 ? undefined : median(xs.map((s) => sumOver(s, (d) => d.bytesReceived)))
    const bytes = xs.length === 0 ? undefined : median(xs.map((s) => s.bytes))
    summary.throughput.push({
      phase, row: label, cluster: cl, azurite: az, ceiling: ce,
      ...(sent === undefined ? {} : { peerBytesSent: sent, peerBytesReceived: received, checkpointBytes: bytes })
    })
    let crossed = '—'
    if (sent !== undefined && received !== undefined && bytes !== undefined) {
      crossed = `${(sent / MiB).toFixed(1)} MiB (${(sent / bytes).toFixed(2)}× ckpt)`
      if (Math.abs(sent - received) > 0.01 * Math.max(sent, received)) crossed += `; received ${(received / MiB).toFixed(1)} MiB`
    }
    const show = (t: Target, st: Stats | undefined, p: Phase): string => has(t) ? cell(st, phaseFailed(r, p, t)) : '—'
    return [label, show('cluster', cl, phase), show('azurite', az, direct), show('ceiling', ce, direct), ratioCell(cl, az), ratioCell(cl, ce), crossed]
  })
  printTable(`Cluster throughput [MiB/s]: median (min–max) over runs; higher is better. ${NODE_IDS.length} gateways, the client, Azurite and the ceiling on one machine with ${cores} CPU cores, loopback only.`,
    ['phase', 'cluster', 'Azurite direct', 'ceiling', 'cluster/Azurite', 'cluster/ceiling', 'bytes across peers (sent, all nodes)'], rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'])
  console.log('Azurite direct and the ceiling: the save row compares with their save, every restore row with their restore of the same checkpoint.')
  console.log('bytes across peers: the sum over the nodes of the ckptcache_peer_bytes_total{direction="sent"} deltas (each byte counted once, by its sender); ' +
    'a killed node\'s counters are gone with it.')

  const gone = (phase: Phase, id: string): boolean => phase === 'restore-killed' && id === NODE_IDS[0]
  const requestRows: string[][] = []
  const servedRows: string[][] = []
  for (const phase of CLUSTER_PHASES) {
    const xs = phaseSamples(r, phase, 'cluster')
    const nodes: ClusterSummary['peerRequests'][number]['nodes'] = {}
    for (const id of NODE_IDS) {
      const made = perOp(xs, id, 'requests')
      const served = perOp(xs, id, 'served')
      nodes[id] = { ...(made === undefined ? {} : { made }), ...(served === undefined ? {} : { served }) }
    }
    summary.peerRequests.push({ phase, nodes })
    const label = (PHASE_ROWS[phase] as { label: string }).label
    requestRows.push([label, ...NODE_IDS.map((id) => opsCell(nodes[id]?.made, gone(phase, id)))])
    servedRows.push([label, ...NODE_IDS.map((id) => opsCell(nodes[id]?.served, gone(phase, id)))])
  }
  const ops = phaseSamples(r, 'save', 'cluster')[0]?.ops
  const heads = NODE_IDS.map((id, i) => `${id}${i === 0 ? ' (writer)' : ''}`)
  printTable(`Peer requests each node made per client operation (medians; ckptcache_peer_requests_total by op / ${ops ?? 'the'} client operations of the phase).`,
    ['phase', ...heads], requestRows, ['l', 'l', 'l', 'l'])
  printTable('Peer requests each node served per client operation (medians; ckptcache_peer_requests_served_total by op, probes left out).',
    ['phase', ...heads], servedRows, ['l', 'l', 'l', 'l'])

  const sources: string[] = []
  for (const phase of CLUSTER_PHASES.filter((p) => p !== 'save')) {
    const xs = phaseSamples(r, phase, 'cluster')
    const through = xs[0]?.through
    if (through === undefined) continue
    const mib = (f: (d: PeerDelta) => number): string => {
      const st = stats(xs.map((s) => (s.peers?.[through] === undefined ? 0 : f(s.peers[through])) / MiB)) as Stats
      return `${st.median.toFixed(1)} MiB${st.n > 1 && st.max - st.min >= 1 ? ` (${st.min.toFixed(0)}–${st.max.toFixed(0)})` : ''}`
    }
    sources.push(`${(PHASE_ROWS[phase] as { label: string }).label}: ${through} served ${mib((d) => d.servedBytes.local ?? 0)} from its own disk ` +
      `and received ${mib((d) => d.bytesReceived)} from peers (served_bytes{source="peer"}: ${mib((d) => d.servedBytes.peer ?? 0)})`)
  }
  if (sources.length > 0) {
    console.log('\nwhere the reader\'s bytes came from (median (min–max) over runs): ckptcache_served_bytes_total{source="local"} and ckptcache_peer_bytes_total{direction="received"} deltas on the node read through:' +
      `\n  ${sources.join('\n  ')}` +
      '\n  (which shards a reader holds follows the rendezvous order of their names, so it changes from step to step; so does its restore speed)')
  }
  const down = stats(phaseSamples(r, 'restore-killed', 'cluster').flatMap((s) => s.downAfterS === undefined ? [] : [s.downAfterS]))
  if (down !== undefined) {
    summary.downAfterS = down
    console.log(`after the kill, B and C saw A down ${fmt(down.median)} s later (median; the probe timeout is 5 s): the killed-node restore ran while their views still listed A live`)
  }

  const who: string[] = [...NODE_IDS, 'azurite', 'ceiling', 'client']
  const cpuRows: string[][] = []
  const rssRows: string[][] = []
  const line = (t: Target, phase: Phase, label: string): void => {
    const xs = phaseSamples(r, phase, t)
    if (xs.length === 0) return
    const per = (k: string): string => {
      const ys = xs.filter((s) => s.cpuS[k] !== undefined).map((s) => (s.cpuS[k] as number) / (s.bytes / GiB))
      return ys.length === 0 ? '—' : fmt(median(ys))
    }
    const peak = (k: string): string => {
      const ys = xs.flatMap((s) => s.peakRss[k] === undefined ? [] : [s.peakRss[k] as number])
      return ys.length === 0 ? '—' : `${(Math.max(...ys) / MiB).toFixed(0)} MiB`
    }
    cpuRows.push([`${t}: ${label}`, ...who.map(per)])
    if (t === 'cluster') rssRows.push([label, ...NODE_IDS.map(peak)])
  }
  for (const phase of CLUSTER_PHASES) line('cluster', phase, (PHASE_ROWS[phase] as { label: string }).label)
  for (const t of ['azurite', 'ceiling'] as const) for (const phase of ['save', 'restore'] as const) line(t, phase, phase)
  printTable(`Cluster CPU per GiB of checkpoint, medians (s/GiB): each process during the phase. All share ${cores} cores.`,
    ['target: phase', ...who.map((w) => (NODE_IDS as readonly string[]).includes(w) ? `node ${w}` : w)], cpuRows)
  printTable('Cluster nodes\' peak RSS (VmHWM) per phase, max over runs. Target: each gateway < 200 MiB.', ['phase', ...NODE_IDS.map((id) => `node ${id}`)], rssRows)
  return summary
}
