/**
 * `ckptcache flush [--prefix CONTAINER[/PREFIX]] [--wait] [--admin URL]`:
 * asks a running node to upload everything dirty under the prefix (all when
 * absent) and reports progress from the admin API's NDJSON stream.
 *
 * Without --wait it prints one progress line and exits 0 when the flush is
 * already done, 3 when it is still going (the node keeps flushing). With
 * --wait it follows the flush to the end: a bar redrawn in place on a
 * terminal, plain lines (one per 2 s at most) otherwise.
 *
 * Exit status: 0 done, 1 admin API unreachable / error / flush failed,
 * 2 usage error, 3 started but not done (without --wait).
 */

import { parseFlushTarget } from '../admin/server.js'
import { formatBytes, formatDuration, progressBar, progressText, type FlushProgressLine } from '../admin/progress.js'
import {
  AdminError, EXIT_OK, UsageError, adminBaseUrl, adminRequest, errorOf, exitStatusOf, parseFlags, readLines, showUrl,
  type CliIo
} from './admin-client.js'

export const EXIT_NOT_DONE = 3
/** Plain (non-terminal) output prints a progress line this often at most. */
const PLAIN_LINE_INTERVAL_MS = 2000
const FLAGS = { prefix: 'value', wait: 'boolean', admin: 'value' } as const

export async function flushCommand (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo, now: () => number = Date.now): Promise<number> {
  return await exitStatusOf(io, async () => await flush(args, env, io, now))
}

async function flush (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo, now: () => number): Promise<number> {
  const flags = parseFlags('flush', args, FLAGS)
  const base = adminBaseUrl(flags.get('admin'), env)
  const prefix = flags.get('prefix')
  const wait = flags.get('wait') === true
  let what = 'everything'
  let query = ''
  if (typeof prefix === 'string' && prefix !== '') {
    try {
      parseFlushTarget(new URLSearchParams({ prefix }))
    } catch (err) {
      throw new UsageError(`invalid --prefix ${JSON.stringify(prefix)}: ${(err as Error).message}`)
    }
    what = prefix
    query = `?prefix=${encodeURIComponent(prefix)}`
  }

  const res = await adminRequest(base, 'POST', `/flush${query}`)
  if (res.statusCode !== 200) throw new AdminError(`flush of ${what} refused by ${showUrl(base)}: ${await errorOf(res)}`)

  const tty = io.stdout.isTTY === true
  let drawn = false
  let lastPlainMs = -Infinity
  try {
    for await (const text of readLines(res, base)) {
      let p: FlushProgressLine
      try {
        p = JSON.parse(text) as FlushProgressLine
      } catch {
        throw new AdminError(`the admin API at ${showUrl(base)} sent a progress line that is not JSON: ${text.slice(0, 200)}`)
      }
      if (p.error !== undefined) {
        if (drawn) io.stdout.write('\n')
        throw new AdminError(`flush of ${what} failed: ${p.error}`)
      }
      if (p.done) {
        io.stdout.write(`${drawn ? '\r' : ''}${doneLine(what, p, now())}${drawn ? '\x1b[K' : ''}\n`)
        return EXIT_OK
      }
      if (!wait) {
        io.stdout.write(`flush ${what}: ${progressText(p)}\n`)
        return EXIT_NOT_DONE
      }
      if (tty) {
        io.stdout.write(`\r${progressBar(p, io.stdout.columns ?? 80)}\x1b[K`)
        drawn = true
      } else if (now() - lastPlainMs >= PLAIN_LINE_INTERVAL_MS) {
        io.stdout.write(`flush ${what}: ${progressText(p)}\n`)
        lastPlainMs = now()
      }
    }
  } finally {
    // Without --wait, or on an error, stop following; the node's flush goes on regardless.
    res.destroy()
  }
  if (drawn) io.stdout.write('\n')
  throw new AdminError(`the admin API at ${showUrl(base)} ended the progress stream before the flush of ${what} finished`)
}

function doneLine (what: string, p: FlushProgressLine, nowMs: number): string {
  if (p.objects === 0) return `flush ${what}: done, nothing was dirty`
  const took = formatDuration(Math.max(0, nowMs - p.startedMs) / 1000)
  return `flush ${what}: done, ${p.objects} object${p.objects === 1 ? '' : 's'} (${formatBytes(p.bytes)}) clean upstream after ${took}`
}
