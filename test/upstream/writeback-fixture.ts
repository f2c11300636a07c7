/**
 * Test fixture of the writeback queue: a real tiered FsStore in a temp dir, and (for the cases a
 * real upstream cannot stage deterministically: an upload held open, a failure injected, an
 * abort after the commit) a small in-memory Upstream that records every call.
 */
import type { Test } from 'tap'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createNodeMetrics, type NodeMetrics } from '../../src/admin/metrics.js'
import type { ObjectMeta } from '../../src/core/types.js'
import { CacheError } from '../../src/errors.js'
import { FsStore } from '../../src/store/fs-store.js'
import { DEFAULT_MARKER_PATTERNS } from '../../src/upstream/markers.js'
import type {
  Layout, Upstream, UpstreamListPage, UpstreamProps, UpstreamRef, UploadRequest, UploadResult
} from '../../src/upstream/types.js'
import { WritebackQueue, type WritebackOptions } from '../../src/upstream/writeback.js'

export const C = 'c'

export const identity: Layout = {
  description: 'identity',
  toUpstream: (container, name) => ({ container, blob: name }),
  fromUpstream: (ref) => ref.blob,
  listSources: async (container, prefix) => [{ container, blob: prefix, root: '' }]
}

export interface Call {
  op: 'upload' | 'delete'
  name: string
  version?: string
  ifMatch?: string
  atMs: number
}

export interface Blob {
  data: Buffer
  etag: string
  version: string
  req: Omit<UploadRequest, 'source' | 'signal'>
}

/** How a held upload behaves: wait before reading, or commit the blob first and then wait. */
export interface Gate {
  /** Resolves when the upload reached the gate. */
  readonly reached: Promise<void>
  release (): void
}

export class RecordingUpstream implements Upstream {
  readonly blobs = new Map<string, Blob>()
  readonly calls: Call[] = []
  /** Names in the order their uploads committed. */
  readonly committed: string[] = []
  /** Throws this from the next calls while it returns an error. */
  fail: ((op: 'upload' | 'delete', name: string) => Error | undefined) | undefined
  inFlight = 0
  maxInFlight = 0
  readonly #gates = new Map<string, { commitFirst: boolean, reached: () => void, released: Promise<void> }>()
  readonly #watchers: Array<{ pred: (c: Call) => boolean, resolve: (c: Call) => void }> = []
  #n = 0

  /** The next upload of `name` waits at the gate (after committing when `commitFirst`), until released or aborted. */
  hold (name: string, commitFirst = false): Gate {
    let reached!: () => void
    let release!: () => void
    const reachedP = new Promise<void>((resolve) => { reached = resolve })
    const released = new Promise<void>((resolve) => { release = resolve })
    this.#gates.set(name, { commitFirst, reached, released })
    return { reached: reachedP, release }
  }

  /** Resolves with the first call (past or future) matching `pred`. */
  async call (pred: (c: Call) => boolean): Promise<Call> {
    const done = this.calls.find(pred)
    if (done !== undefined) return done
    return new Promise((resolve) => this.#watchers.push({ pred, resolve }))
  }

  uploads (name?: string): Call[] {
    return this.calls.filter((c) => c.op === 'upload' && (name === undefined || c.name === name))
  }

  async ensureContainer (): Promise<void> {}

  async upload (req: UploadRequest): Promise<UploadResult> {
    const name = req.ref.blob
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      this.#record({ op: 'upload', name, version: req.version, atMs: Date.now() })
      const err = this.fail?.('upload', name)
      if (err !== undefined) {
        await new Promise((resolve) => setImmediate(resolve)) // a failed request takes a moment too
        throw err
      }
      const chunks: Buffer[] = []
      for await (const c of req.source.open() as AsyncIterable<Buffer>) chunks.push(c)
      const gate = this.#gates.get(name)
      if (gate !== undefined) this.#gates.delete(name)
      const commit = (): UploadResult => {
        const etag = `0x8D${String(++this.#n).padStart(4, '0')}`
        const { source: _s, signal: _g, ...rest } = req
        this.blobs.set(name, { data: Buffer.concat(chunks), etag, version: req.version, req: rest })
        this.committed.push(name)
        return { etag, md5: '', requests: 1 }
      }
      let result: UploadResult | undefined
      if (gate?.commitFirst === true) result = commit()
      if (gate !== undefined) {
        gate.reached()
        await new Promise<void>((resolve) => {
          void gate.released.then(resolve)
          if (req.signal?.aborted === true) resolve()
          req.signal?.addEventListener('abort', () => resolve(), { once: true })
        })
      }
      if (req.signal?.aborted === true) throw new CacheError('CC_ERR_CLIENT_ABORTED')
      return result ?? commit()
    } finally {
      this.inFlight--
    }
  }

  async head (ref: UpstreamRef): Promise<UpstreamProps | undefined> {
    const b = this.blobs.get(ref.blob)
    return b === undefined ? undefined : { size: b.data.length, etag: b.etag, lastModifiedMs: 0, content: {}, metadata: {} }
  }

  async download (): Promise<Readable> {
    throw new Error('not used by the writeback')
  }

  async delete (ref: UpstreamRef, opts: { ifMatch?: string } = {}): Promise<boolean> {
    this.#record({ op: 'delete', name: ref.blob, ...(opts.ifMatch === undefined ? {} : { ifMatch: opts.ifMatch }), atMs: Date.now() })
    const err = this.fail?.('delete', ref.blob)
    if (err !== undefined) throw err
    const b = this.blobs.get(ref.blob)
    if (b === undefined || (opts.ifMatch !== undefined && opts.ifMatch !== b.etag)) return false
    this.blobs.delete(ref.blob)
    return true
  }

  async list (): Promise<UpstreamListPage> {
    return { items: [] }
  }

  async close (): Promise<void> {}

  #record (c: Call): void {
    this.calls.push(c)
    for (const w of [...this.#watchers]) {
      if (!w.pred(c)) continue
      this.#watchers.splice(this.#watchers.indexOf(w), 1)
      w.resolve(c)
    }
  }
}

export const silentLog = { info () {}, warn () {}, error () {} }

export async function openStore (root: string): Promise<FsStore> {
  const store = new FsStore({ root, capacity: 1 << 30, eviction: 'reject', stagedBlockMaxAgeMs: 86_400_000, tiered: true })
  await store.open()
  if (store.getContainer(C) === undefined) await store.createContainer(C, {})
  return store
}

export async function put (store: FsStore, name: string, data: Buffer | string, container = C): Promise<ObjectMeta> {
  const body = typeof data === 'string' ? Buffer.from(data) : data
  const ing = await store.ingest({ body: Readable.from(body.length === 0 ? [] : [body]), expectedSize: body.length, maxSize: body.length })
  return store.commitObject(container, name, ing, { content: { contentType: 'application/octet-stream' }, metadata: { step: '1' }, checksums: {} }, () => {})
}

export async function del (store: FsStore, name: string, container = C): Promise<ObjectMeta> {
  return store.deleteObject(container, name, () => {})
}

export interface Fixture {
  root: string
  store: FsStore
  upstream: RecordingUpstream
  metrics: NodeMetrics
  dir: string
  queue (opts?: Partial<WritebackOptions>): WritebackQueue
}

/** A store (and a recording upstream); `queue()` builds a queue over them, closed at teardown. */
export async function fixture (t: Test, root = t.testdir()): Promise<Fixture> {
  const store = await openStore(join(root, 'store'))
  const upstream = new RecordingUpstream()
  const metrics = createNodeMetrics()
  const dir = join(root, 'writeback')
  const queues: WritebackQueue[] = []
  t.teardown(async () => {
    for (const q of queues) await q.close()
    await store.close()
  })
  return {
    root, store, upstream, metrics, dir,
    queue: (opts = {}) => {
      const q = new WritebackQueue({
        store, upstream, layout: identity, dir, mode: 'writeback', dirtyLimit: 1 << 30, concurrency: 4,
        markerPatterns: [...DEFAULT_MARKER_PATTERNS], metrics, log: silentLog, retryDelayMs: { base: 20, max: 80 }, ...opts
      })
      queues.push(q)
      return q
    }
  }
}

/**
 * What a watcher registered after the queue's sees at each client delete (the store calls its
 * watchers in order and deletes after the last): is the upstream delete pending, and how many
 * record files are on disk.
 */
export function afterQueueWatcher (f: Fixture, q: WritebackQueue): Array<{ name: string, pending: boolean, files: number }> {
  const seen: Array<{ name: string, pending: boolean, files: number }> = []
  f.store.watch(async (ev) => {
    if (ev.type !== 'delete') return
    seen.push({ name: ev.meta.name, pending: q.deletePending(ev.meta.container, ev.meta.name), files: (await readdir(join(f.dir, 'deletes'))).length })
  })
  return seen
}

export function unavailable (): CacheError {
  return new CacheError('CC_ERR_UPSTREAM_UNAVAILABLE', 'injected: upstream unavailable')
}
