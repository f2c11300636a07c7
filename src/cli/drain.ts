/**
 * `ckptcache drain [--wait] [--admin URL | --admin-port PORT]`: asks a running
 * clustered node to hand what only it holds (dirty objects, sole copies) to
 * its peers before maintenance, and reports progress from the admin API's
 * NDJSON stream (`POST /drain`). The node stays readable while it drains and
 * takes no new placements or uploads.
 *
 * Without --wait it prints one progress line and exits 0 when the drain is
 * already done, 3 when it is still going (the node keeps draining). With
 * --wait it follows the drain to the end: a bar redrawn in place on a
 * terminal, plain lines (one per 2 s at most) otherwise.
 *
 * Exit status: 0 done, 1 admin API unreachable / error / not a cluster /
 * drain failed, 2 usage error, 3 started but not done (without --wait).
 */

import type { DrainProgressLine } from '../admin/server.js'
import { formatBytes, formatDuration, progressBar, progressText, type FlushProgressLine } from '../admin/progress.js'
import {
  AdminError, EXIT_OK, adminBaseUrl, adminRequest, errorOf, exitStatusOf, parseFlags, readJsonLines, showUrl,
  type CliIo
} from './admin-client.js'

export const EXIT_NOT_DONE = 3
/** Plain (non-terminal) output prints a progress line this often at most. */
const PLAIN_LINE_INTERVAL_MS = 2000
const FLAGS = { wait: 'boolean', admin: 'value', 'admin-port': 'value' } as const

export async function drainCommand (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo, now: () => number = Date.now): Promise<number> {
  return await exitStatusOf(io, async () => await drain(args, env, io, now))
}

async function drain (args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo, now: () => number): Promise<number> {
  const flags = parseFlags('drain', args, FLAGS)
  const base = adminBaseUrl(flags.get('admin'), env, flags.get('admin-port'))
  const wait = flags.get('wait') === true

  const res = await adminRequest(base, 'POST', '/drain')
  if (res.statusCode !== 200) throw new AdminError(`drain refused by ${showUrl(base)}: ${await errorOf(res)}`)

  const tty = io.stdout.isTTY === true
  let drawn = false
  let lastPlainMs = -Infinity
  try {
    for await (const p of readJsonLines<DrainProgressLine>(res, base)) {
      if (p.error !== undefined) {
        if (drawn) io.stdout.write('\n')
        throw new AdminError(`drain failed: ${p.error}`)
      }
      if (p.done) {
        io.stdout.write(`${drawn ? '\r' : ''}${doneLine(p, now())}${drawn ? '\x1b[K' : ''}\n`)
        return EXIT_OK
      }
      if (!wait) {
        io.stdout.write(`drain: ${drainText(p)}\n`)
        return EXIT_NOT_DONE
      }
      if (tty) {
        io.stdout.write(`\r${drainBar(p, io.stdout.columns ?? 80)}\x1b[K`)
        drawn = true
      } else if (now() - lastPlainMs >= PLAIN_LINE_INTERVAL_MS) {
        io.stdout.write(`drain: ${drainText(p)}\n`)
        lastPlainMs = now()
      }
    }
  } finally {
    // Without --wait, or on an error, stop following; the node's drain goes on regardless.
    res.destroy()
  }
  if (drawn) io.stdout.write('\n')
  throw new AdminError(`the admin API at ${showUrl(base)} ended the progress stream before the drain finished`)
}

/** The drain seen as the flush renderings see progress: handed over counts as done. */
function asProgress (p: DrainProgressLine): FlushProgressLine {
  return {
    objects: p.objects,
    bytes: p.bytes,
    cleanObjects: p.handedObjects,
    cleanBytes: p.handedBytes,
    done: p.done,
    startedMs: p.startedMs,
    rateBytesPerS: p.rateBytesPerS,
    etaS: p.etaS
  }
}

function failedText (p: DrainProgressLine): string {
  return p.failed > 0 ? `, ${p.failed} failed (retrying)` : ''
}

/** `3/10 objects, 1.50 MiB/4.00 MiB, 12.3 MiB/s, ETA 2s, 1 failed (retrying)`. */
export function drainText (p: DrainProgressLine): string {
  return progressText(asProgress(p)) + failedText(p)
}

/** The progress bar of `ckptcache flush`, with the failed copies after it; shorter than `columns`. */
export function drainBar (p: DrainProgressLine, columns: number): string {
  const failed = failedText(p)
  return (progressBar(asProgress(p), Math.max(1, columns - failed.length)) + failed).slice(0, Math.max(0, columns - 1))
}

function doneLine (p: DrainProgressLine, nowMs: number): string {
  if (p.objects === 0) return 'drain: done, nothing needed a copy on another node'
  const took = formatDuration(Math.max(0, nowMs - p.startedMs) / 1000)
  return `drain: done, ${p.objects} object${p.objects === 1 ? '' : 's'} (${formatBytes(p.bytes)}) held by other nodes after ${took}`
}
