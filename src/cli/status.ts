/**
 * `ckptcache status [--json] [--admin URL | --admin-port PORT]`: what a running
 * node's writeback queue and store hold and, on a clustered node, the cluster
 * as it sees it (nodes live, draining or down; refill counters), from the
 * admin API's `GET /status`. `--json` prints the answer as it came.
 *
 * Exit status: 0 printed, 1 admin API unreachable or error, 2 usage error.
 */

import type { ClusterStatus } from '../cluster/types.js'
import type { StoreStats } from '../store/local-store.js'
import type { WritebackStatus } from '../upstream/types.js'
import { formatBytes, formatDuration } from '../admin/progress.js'
import {
  AdminError, EXIT_OK, adminBaseUrl, adminRequest, errorOf, exitStatusOf, parseFlags, readText, showUrl,
  type CliIo
} from './admin-client.js'

/** The body of `GET /status`. */
export interface StatusBody {
  mode: WritebackStatus['mode']
  store: StoreStats
  writeback: WritebackStatus | null
  /** Present on a clustered node. */
  cluster?: ClusterStatus
}

const FLAGS = { json: 'boolean', admin: 'value', 'admin-port': 'value' } as const

export async function statusCommand (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  return await exitStatusOf(io, async () => {
    const flags = parseFlags('status', args, FLAGS)
    const base = adminBaseUrl(flags.get('admin'), env, flags.get('admin-port'))
    const res = await adminRequest(base, 'GET', '/status')
    if (res.statusCode !== 200) throw new AdminError(`status refused by ${showUrl(base)}: ${await errorOf(res)}`)
    const text = await readText(res)
    let body: StatusBody
    try {
      body = JSON.parse(text) as StatusBody
    } catch {
      throw new AdminError(`the admin API at ${showUrl(base)} answered /status with something other than JSON`)
    }
    if (flags.get('json') === true) io.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    else io.stdout.write(renderStatus(body))
    return EXIT_OK
  })
}

/**
 * The status as aligned `name: value` lines; on a clustered node the nodes follow as an
 * indented table of their own.
 */
export function renderStatus (body: StatusBody): string {
  const s = body.store
  const rows: Array<[string, string]> = [
    ['mode', body.mode + (body.writeback === null ? ' (no upstream)' : '')],
    ['store', `${formatBytes(s.used)} used of ${formatBytes(s.capacity)}, ${plural(s.objects, 'object')} in ${plural(s.containers, 'container')}`]
  ]
  const w = body.writeback
  if (w !== null) {
    rows.push(
      ['dirty', `${plural(w.dirtyObjects, 'object')}, ${formatBytes(w.dirtyBytes)} (limit ${formatBytes(w.dirtyLimit)})`],
      ['oldest dirty', w.dirtyObjects === 0 ? '-' : `${formatDuration(w.oldestDirtyAgeMs / 1000)} ago`],
      ['uploads', `${w.queued} queued, ${w.uploading} in progress`],
      ['pending deletes', String(w.pendingDeletes)],
      ['uploaded', `${plural(w.uploadedObjects, 'object')}, ${formatBytes(w.uploadedBytes)}`],
      ['failed attempts', String(w.failedAttempts)],
      ['last error', w.lastError ?? 'none']
    )
  }
  const c = body.cluster
  if (c !== undefined) {
    const live = c.nodes.filter(n => n.live).length
    const r = c.refill
    rows.push(
      ['cluster', `node ${c.nodeId}${c.draining ? ' (draining)' : ''}, ${plural(c.replicas, 'replica')}, ack ${c.ack}`],
      ['refill', `${plural(r.pendingObjects, 'object')} pending, ${plural(r.copiedObjects, 'object')} (${formatBytes(r.copiedBytes)}) copied`],
      ['nodes', `${live} live of ${c.nodes.length}`]
    )
  }
  const width = Math.max(...rows.map(([name]) => name.length)) + 2
  const lines = rows.map(([name, value]) => `${`${name}:`.padEnd(width)}${value}\n`)
  if (c !== undefined) lines.push(...nodeTable(c.nodes))
  return lines.join('')
}

/** `  gpu-1  live      http://10.0.0.1:10102  (this node)`, one line per node, ids and states aligned. */
function nodeTable (nodes: ClusterStatus['nodes']): string[] {
  const state = (n: ClusterStatus['nodes'][number]): string => !n.live ? 'down' : n.draining ? 'draining' : 'live'
  const idWidth = Math.max(0, ...nodes.map(n => n.id.length)) + 2
  const stateWidth = Math.max(0, ...nodes.map(n => state(n).length)) + 2
  return nodes.map(n => `  ${n.id.padEnd(idWidth)}${state(n).padEnd(stateWidth)}${n.url}${n.self ? '  (this node)' : ''}\n`)
}

function plural (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
