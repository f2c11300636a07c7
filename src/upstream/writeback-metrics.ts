/**
 * The writeback queue's Prometheus series: gauges read when scraped, and the
 * counters of upload attempts, uploaded bytes and upstream deletes.
 */
import type { Counter, Metrics } from '../admin/metrics.js'

export interface WritebackGauges {
  dirtyBytes (): number
  dirtyObjects (): number
  dirtyLimit (): number
  oldestDirtyAgeMs (): number
  queued (): number
  uploading (): number
  pendingDeletes (): number
}

export interface WritebackCounters {
  /** `ckptcache_writeback_uploads_total{result}`: `ok` or `failed` attempts. */
  uploads: Counter
  uploadedBytes: Counter
  deletes: Counter
}

export function registerWritebackMetrics (r: Metrics, g: WritebackGauges): WritebackCounters {
  r.gauge('ckptcache_dirty_bytes', 'Bytes of dirty objects (not yet uploaded).', g.dirtyBytes)
  r.gauge('ckptcache_dirty_objects', 'Dirty objects (not yet uploaded).', g.dirtyObjects)
  r.gauge('ckptcache_dirty_limit_bytes', 'Dirty bytes past which writes are refused with a retryable 503.', g.dirtyLimit)
  r.gauge('ckptcache_oldest_dirty_age_seconds', 'Age of the oldest dirty object.', () => g.oldestDirtyAgeMs() / 1000)
  r.gauge('ckptcache_writeback_queue_depth', 'Dirty objects waiting for an upload (markers waiting for their directory included).', g.queued)
  r.gauge('ckptcache_writeback_uploading', 'Uploads in progress.', g.uploading)
  r.gauge('ckptcache_writeback_pending_deletes', 'Upstream deletes recorded and not yet done.', g.pendingDeletes)
  return {
    uploads: r.counter('ckptcache_writeback_uploads_total', 'Writeback upload attempts, by result (ok, failed).', ['result']),
    uploadedBytes: r.counter('ckptcache_writeback_uploaded_bytes_total', 'Object bytes the writeback uploaded.'),
    deletes: r.counter('ckptcache_writeback_deletes_total', 'Upstream deletes the writeback carried out.')
  }
}
