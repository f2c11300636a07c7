import type { Readable } from 'node:stream'
import type { LocalStore } from '../store/local-store.js'
import { md5OfStream } from './checksum/md5.js'
import type { ObjectMeta } from './types.js'

/** Bodies up to this size get their MD5 on the request path: it costs less than a scheduling round trip. */
export const INLINE_MD5_MAX = 8 * 1024 * 1024
/** Jobs waiting beyond this are dropped (the object simply keeps no Content-MD5); bounded like every queue. */
const MAX_QUEUED = 100_000

interface Job {
  container: string
  name: string
  etag: string
}

/**
 * Computes, after the acknowledgement, the Content-MD5 Azure stores for a
 * Put Blob whose client sent none. Hashing a large body on the request path
 * costs ~1.6 CPU-seconds per GiB and caps a single upload at the speed of one
 * MD5 thread; here it runs one object at a time on the MD5 worker threads,
 * from the committed file, and lands on the object without changing its
 * etag (and, through `onComputed`, on the version's copies on other nodes).
 * Until then reads return no Content-MD5 (never one not computed).
 */
export class Md5Backfill {
  readonly #store: LocalStore
  readonly #onError: (err: unknown) => void
  readonly #queue: Job[] = []
  /**
   * Told each MD5 recorded, with the version as stored just after (its holders included), so
   * that its other copies can record the same one. Set by the composition root once the
   * cluster exists; a throw is reported like a failed job.
   */
  onComputed: ((meta: ObjectMeta, md5: string) => void) | undefined
  #running: Promise<void> | undefined
  #closed = false
  /** The read being hashed: closing stops it. */
  #body: Readable | undefined

  constructor (store: LocalStore, onError: (err: unknown) => void) {
    this.#store = store
    this.#onError = onError
  }

  /** Queues an object whose MD5 is still unknown. */
  schedule (meta: ObjectMeta): void {
    if (this.#closed || this.#queue.length >= MAX_QUEUED) return
    this.#queue.push({ container: meta.container, name: meta.name, etag: meta.etag })
    this.#running ??= this.#drain().finally(() => { this.#running = undefined })
  }

  /**
   * Queues every single-shot object that still lacks its MD5 (after a restart). Objects with an
   * explicit part count (S3 Express appends and directory-bucket PutObjects) have none by design.
   */
  scheduleMissing (): void {
    for (const meta of this.#store.objects()) {
      if (!meta.fromBlocks && meta.parts === undefined && meta.checksums.md5 === undefined && meta.size > INLINE_MD5_MAX) this.schedule(meta)
    }
  }

  /** Resolves when the queue is empty (tests, shutdown). */
  async idle (): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#queue.length = 0
    this.#body?.destroy()
    await this.idle()
  }

  async #drain (): Promise<void> {
    for (let job = this.#queue.shift(); job !== undefined && !this.#closed; job = this.#queue.shift()) {
      try {
        await this.#hash(job)
      } catch (err) {
        if (!this.#closed) this.#onError(err)
      }
    }
  }

  async #hash (job: Job): Promise<void> {
    const meta = this.#store.head(job.container, job.name)
    if (meta === undefined || meta.etag !== job.etag) return
    const body = this.#body = this.#store.openRead(meta)
    try {
      const md5 = (await md5OfStream(body)).toString('base64')
      if (!await this.#store.addChecksums(job.container, job.name, job.etag, { md5 })) return
      const stored = this.#store.head(job.container, job.name)
      if (stored?.etag === job.etag) this.onComputed?.(stored, md5)
    } finally {
      this.#body = undefined
      body.destroy()
    }
  }
}
