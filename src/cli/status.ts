/**
 * `ckptcache status [--json] [--admin URL]`: what a running node's writeback
 * queue and store hold, from the admin API's `GET /status`. `--json` prints
 * the answer as it came.
 *
 * Exit status: 0 printed, 1 admin API unreachable or error, 2 usage error.
 */

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
}

const FLAGS = { json: 'boolean', admin: 'value' } as const

export async function statusCommand (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  return await exitStatusOf(io, async () => {
    const flags = parseFlags('status', args, FLAGS)
    const base = adminBaseUrl(flags.get('admin'), env)
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

/** The status as aligned `name: value` lines. */
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
  const width = Math.max(...rows.map(([name]) => name.length)) + 2
  return rows.map(([name, value]) => `${`${name}:`.padEnd(width)}${value}\n`).join('')
}

function plural (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
