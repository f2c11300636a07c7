/**
 * Flush progress as the admin API streams it and `ckptcache flush` shows it:
 * the rate and ETA estimate the server adds to each `FlushProgress`, and the
 * human renderings (sizes, durations, a one-line summary, a redrawable bar).
 * Pure functions and one small estimator; no I/O.
 */

import type { FlushProgress } from '../upstream/types.js'

/** One NDJSON line of `POST /flush`. */
export interface FlushProgressLine extends FlushProgress {
  /** Bytes per second made clean over the last few seconds; 0 before anything moved. */
  rateBytesPerS: number
  /** Seconds until done at that rate: 0 when done, null while there is no rate to go by. */
  etaS: number | null
  /** Set on a last line when the flush failed or the gateway stopped before it finished. */
  error?: string
}

/** The rate is measured over this much recent time, so a stall shows within seconds. */
const RATE_WINDOW_MS = 10_000
/** At most this many samples are kept, however short the sampling interval. */
const MAX_SAMPLES = 256

/**
 * Bytes per second over a sliding window of (time, clean bytes) samples.
 * Seeded with the flush's start, when by definition nothing counted was clean.
 */
export class RateEstimator {
  readonly #samples: Array<{ ms: number, bytes: number }>

  constructor (startedMs: number) {
    this.#samples = [{ ms: startedMs, bytes: 0 }]
  }

  /** Records a sample and returns the rate over the window ending at it. */
  sample (nowMs: number, cleanBytes: number): number {
    const s = this.#samples
    s.push({ ms: nowMs, bytes: cleanBytes })
    // Keep one sample at or before the window start as the base of the measurement.
    while (s.length > 2 && s[1].ms <= nowMs - RATE_WINDOW_MS) s.shift()
    while (s.length > MAX_SAMPLES) s.shift()
    const first = s[0]
    const elapsedS = (nowMs - first.ms) / 1000
    if (elapsedS <= 0) return 0
    return Math.max(0, (cleanBytes - first.bytes) / elapsedS)
  }
}

/** A progress line with rate and ETA. */
export function withRate (p: FlushProgress, rateBytesPerS: number): FlushProgressLine {
  const remaining = Math.max(0, p.bytes - p.cleanBytes)
  let etaS: number | null = null
  if (p.done || remaining === 0) etaS = 0
  else if (rateBytesPerS > 0) etaS = Math.ceil(remaining / rateBytesPerS)
  return { ...p, rateBytesPerS: Math.round(rateBytesPerS), etaS }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** `0 B`, `512 B`, `1.50 KiB`, `12.3 MiB`, `412 GiB`. */
export function formatBytes (n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(Number.isFinite(n) ? n : 0))} B`
  let v = n
  let unit = 0
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024
    unit++
  }
  // Rounding may carry into the next unit (1023.96 KiB is 1.00 MiB).
  if (Number(v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) >= 1024 && unit < UNITS.length - 1) {
    v /= 1024
    unit++
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[unit]}`
}

/** `0s`, `45s`, `3m 12s`, `2h 05m`, `3d 4h`. */
export function formatDuration (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3600) % 24}h`
}

/** The share done, 0..1: by bytes, or by objects when every object counted is empty. */
export function fractionDone (p: FlushProgress): number {
  if (p.done) return 1
  if (p.bytes > 0) return Math.min(1, p.cleanBytes / p.bytes)
  if (p.objects > 0) return Math.min(1, p.cleanObjects / p.objects)
  return 0
}

/** `3/10 objects, 1.50 MiB/4.00 MiB, 12.3 MiB/s, ETA 2s`. */
export function progressText (p: FlushProgressLine): string {
  const parts = [
    `${p.cleanObjects}/${p.objects} objects`,
    `${formatBytes(p.cleanBytes)}/${formatBytes(p.bytes)}`
  ]
  if (!p.done) {
    parts.push(`${formatBytes(p.rateBytesPerS)}/s`)
    parts.push(p.etaS === null ? 'ETA unknown' : `ETA ${formatDuration(p.etaS)}`)
  }
  return parts.join(', ')
}

/**
 * A bar and the progress text for a terminal of `columns` columns, shorter than it
 * (the last column stays free so a redraw never wraps): `[#####-----]  45% 3/10 objects, …`.
 */
export function progressBar (p: FlushProgressLine, columns: number): string {
  const text = progressText(p)
  const pct = `${Math.floor(fractionDone(p) * 100)}%`.padStart(4)
  const width = Math.max(0, columns - 1)
  // The bar gets what the text leaves, between 10 and 40 cells.
  const barCells = Math.min(40, width - text.length - pct.length - 4)
  if (barCells < 10) return `${pct} ${text}`.slice(0, width)
  const filled = Math.floor(fractionDone(p) * barCells)
  return `[${'#'.repeat(filled)}${'-'.repeat(barCells - filled)}] ${pct} ${text}`.slice(0, width)
}
