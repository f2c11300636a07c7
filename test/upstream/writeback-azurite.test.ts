/**
 * The writeback queue against a real upstream: the Azure adapter talking to Azurite, with the
 * real tiered store. A DCP checkpoint directory arrives whole, its `.metadata` last; a restart
 * resumes uploads and recorded deletes; deletes of clean objects and deletes during an upload
 * leave nothing behind; with Azurite stopped writes are admitted up to the dirty limit, then
 * refused with a Retry-After, and everything drains once an Azurite is back on the same port.
 *
 * Azurite sits behind a small TCP forwarder, so "Azurite stopped" is a real refused connection on
 * the port the upstream knows and "restarted on the same port" is a new Azurite behind it.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BlobServiceClient } from '@azure/storage-blob'
import { createNodeMetrics } from '../../src/admin/metrics.js'
import { isCacheError, type CacheError } from '../../src/errors.js'
import type { FsStore } from '../../src/store/fs-store.js'
import { createAzureUpstream } from '../../src/upstream/azure-upstream.js'
import { createLayout } from '../../src/upstream/layout.js'
import { DEFAULT_MARKER_PATTERNS } from '../../src/upstream/markers.js'
import type { Upstream, UploadRequest, UploadResult } from '../../src/upstream/types.js'
import { WritebackQueue, type WritebackOptions } from '../../src/upstream/writeback.js'
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY, startAzurite, type AzuriteHandle } from '../helpers/azurite.js'
import { del, openStore, put, silentLog } from './writeback-fixture.js'

const KiB = 1024
const CONTAINER = 'ckpts'

/** A loopback TCP forwarder to whichever Azurite is current; with none, connections are refused. */
interface Forwarder {
  port: number
  connectionString: string
  readonly target: number | 'hang' | undefined
  /** Forwards new connections to `port` from now on (none: refused; hang: accepted, never answered); open ones are cut. */
  retarget (port: number | 'hang' | undefined): void
  close (): Promise<void>
}

async function startForwarder (target: number): Promise<Forwarder> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const port = fwd.target
    if (port === undefined) {
      client.destroy()
      return
    }
    if (port === 'hang') {
      sockets.add(client)
      client.on('error', () => {})
      client.resume()
      return
    }
    const upstream = connect(port, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const kill = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    for (const s of [client, upstream]) {
      s.on('error', kill)
      s.on('close', kill)
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const fwd = {
    port,
    target: target as number | 'hang' | undefined,
    retarget: (p: number | 'hang' | undefined) => {
      fwd.target = p
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};` +
      `BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  return fwd as Forwarder
}

/** The real adapter, observed: when each upload started and ended (delegates everything). */
class ObservedUpstream implements Upstream {
  readonly events: Array<{ kind: 'start' | 'end', name: string, ok?: boolean }> = []
  readonly #up: Upstream
  readonly #waiting: Array<{ name: string, resolve: () => void }> = []

  constructor (up: Upstream) {
    this.#up = up
  }

  /** Resolves when an upload of `name` starts. */
  started (name: string): Promise<void> {
    if (this.events.some((e) => e.kind === 'start' && e.name === name)) return Promise.resolve()
    return new Promise((resolve) => this.#waiting.push({ name, resolve }))
  }

  async upload (req: UploadRequest): Promise<UploadResult> {
    this.events.push({ kind: 'start', name: req.ref.blob })
    for (const w of this.#waiting.filter((x) => x.name === req.ref.blob)) w.resolve()
    try {
      const r = await this.#up.upload(req)
      this.events.push({ kind: 'end', name: req.ref.blob, ok: true })
      return r
    } catch (err) {
      this.events.push({ kind: 'end', name: req.ref.blob, ok: false })
      throw err
    }
  }

  ensureContainer (c: string): Promise<void> { return this.#up.ensureContainer(c) }
  head (...a: Parameters<Upstream['head']>): ReturnType<Upstream['head']> { return this.#up.head(...a) }
  download (...a: Parameters<Upstream['download']>): ReturnType<Upstream['download']> { return this.#up.download(...a) }
  delete (...a: Parameters<Upstream['delete']>): ReturnType<Upstream['delete']> { return this.#up.delete(...a) }
  list (...a: Parameters<Upstream['list']>): ReturnType<Upstream['list']> { return this.#up.list(...a) }
  close (): Promise<void> { return this.#up.close() }
}

const azurite = await startAzurite()
t.teardown(() => azurite.stop())
const sdk = BlobServiceClient.fromConnectionString(azurite.connectionString, { retryOptions: { maxTries: 1 } })

interface Setup {
  store: FsStore
  upstream: ObservedUpstream
  queue: WritebackQueue
}

let containers = 0
/** A fresh upstream container name per test (the local container is created under that name). */
function containerName (): string {
  return `${CONTAINER}-${++containers}`
}

async function setup (t: Test, opts: { root?: string, container: string, connectionString?: string, start?: boolean, queue?: Partial<WritebackOptions>, blockSize?: number }): Promise<Setup> {
  const root = opts.root ?? t.testdir()
  const store = await openStore(join(root, 'store'))
  if (store.getContainer(opts.container) === undefined) await store.createContainer(opts.container, {})
  const metrics = createNodeMetrics()
  const upstream = new ObservedUpstream(createAzureUpstream({
    connectionString: opts.connectionString ?? azurite.connectionString, blockSize: opts.blockSize ?? 256 * KiB, blockConcurrency: 2, maxRps: 0, metrics,
    retry: { attempts: 2, baseMs: 10, capMs: 50 }
  }))
  const queue = new WritebackQueue({
    store, upstream, layout: createLayout('identity', {}), dir: join(root, 'writeback'), mode: 'writeback', dirtyLimit: 1 << 30,
    concurrency: 4, markerPatterns: [...DEFAULT_MARKER_PATTERNS], metrics, log: silentLog, retryDelayMs: { base: 50, max: 200 }, ...opts.queue
  })
  t.teardown(async () => {
    await queue.close()
    await upstream.close()
    await store.close()
  })
  if (opts.start !== false) await queue.start()
  return { store, upstream, queue }
}

/** Every blob of an upstream container: name → bytes and times. */
async function blobs (container: string): Promise<Map<string, { data: Buffer, lastModified: number, created: number }>> {
  const c = sdk.getContainerClient(container)
  const out = new Map<string, { data: Buffer, lastModified: number, created: number }>()
  if (!await c.exists()) return out
  for await (const item of c.listBlobsFlat()) {
    out.set(item.name, {
      data: await c.getBlobClient(item.name).downloadToBuffer(),
      lastModified: item.properties.lastModified.getTime(),
      created: item.properties.createdOn?.getTime() ?? 0
    })
  }
  return out
}

t.test('a DCP checkpoint directory ends upstream with exactly its blobs, bytes equal, .metadata after every shard', async (t) => {
  const container = containerName()
  const s = await setup(t, { container })
  const dir = 'run-7/step-1000/'
  const want = new Map<string, Buffer>()
  for (let rank = 0; rank < 8; rank++) {
    const data = randomBytes(768 * KiB + rank * 1000)
    want.set(`${dir}__${rank}_0.distcp`, data)
    await put(s.store, `${dir}__${rank}_0.distcp`, data, container)
  }
  const index = Buffer.from(JSON.stringify({ shards: [...want.keys()] }))
  want.set(`${dir}.metadata`, index)
  await put(s.store, `${dir}.metadata`, index, container)
  await s.queue.flush(container, dir).done

  const got = await blobs(container)
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'exactly the checkpoint\'s blobs')
  for (const [name, data] of want) t.ok(got.get(name)?.data.equals(data), `${name}: bytes equal`)
  const ev = s.upstream.events
  const metaStart = ev.findIndex((e) => e.kind === 'start' && e.name === `${dir}.metadata`)
  for (let rank = 0; rank < 8; rank++) {
    const end = ev.findIndex((e) => e.kind === 'end' && e.ok === true && e.name === `${dir}__${rank}_0.distcp`)
    t.ok(end >= 0 && end < metaStart, `shard ${rank} was committed upstream before .metadata started`)
  }
  const meta = got.get(`${dir}.metadata`)
  for (const [name, b] of got) {
    if (name.endsWith('.metadata')) continue
    t.ok((meta?.lastModified ?? 0) >= b.lastModified, `${name}: Azurite's last-modified is not after .metadata's`)
    t.ok((meta?.created ?? 0) >= b.created, `${name}: created no later than .metadata`)
  }
  t.match(s.queue.status(), { dirtyObjects: 0, uploadedObjects: 9 })
})

t.test('a delete of a clean object removes it upstream; a delete during an upload leaves nothing upstream', async (t) => {
  const container = containerName()
  const s = await setup(t, { container, blockSize: 64 * KiB, queue: { concurrency: 2 } })
  await put(s.store, 'a/clean', 'uploaded, then deleted', container)
  await put(s.store, 'a/kept', 'stays', container)
  await s.queue.flush().done
  t.same([...(await blobs(container)).keys()].sort(), ['a/clean', 'a/kept'])
  await del(s.store, 'a/clean', container)
  await s.queue.flush().done
  t.same([...(await blobs(container)).keys()], ['a/kept'], 'deleted upstream')

  // 8 MiB in 64 KiB blocks, two at a time: long enough to be deleted mid-way.
  await put(s.store, 'a/big', randomBytes(8 * 1024 * KiB), container)
  await s.upstream.started('a/big')
  await del(s.store, 'a/big', container)
  await s.queue.flush().done
  t.ok(s.upstream.events.some((e) => e.kind === 'end' && e.name === 'a/big' && e.ok === false), 'the upload was aborted')
  t.same([...(await blobs(container)).keys()], ['a/kept'], 'nothing of the aborted upload is left')
  t.notOk(s.queue.deletePending(container, 'a/big'))
  t.equal(await s.upstream.head({ container, blob: 'a/big' }), undefined)
})

t.test('a restart resumes every pending upload and every recorded delete', async (t) => {
  const container = containerName()
  const root = t.testdir()
  const fwd = await startForwarder(azurite.port)
  t.teardown(() => fwd.close())
  {
    const s = await setup(t, { root, container, connectionString: fwd.connectionString })
    await put(s.store, 'old/gone', 'uploaded before the outage', container)
    await s.queue.flush().done
    t.ok((await blobs(container)).has('old/gone'))
    fwd.retarget(undefined) // the upstream is unreachable from here on
    await del(s.store, 'old/gone', container)
    for (let i = 0; i < 5; i++) await put(s.store, `new/${i}`, `written during the outage ${i}`, container)
    t.match(s.queue.status(), { dirtyObjects: 5, pendingDeletes: 1 })
    await s.queue.close()
    await s.store.close()
  }
  t.same([...(await blobs(container)).keys()], ['old/gone'], 'nothing arrived while it was unreachable')
  fwd.retarget(azurite.port)
  const s = await setup(t, { root, container, connectionString: fwd.connectionString })
  t.match(s.queue.status(), { dirtyObjects: 5, pendingDeletes: 1 })
  await s.queue.flush().done
  const got = await blobs(container)
  t.same([...got.keys()].sort(), ['new/0', 'new/1', 'new/2', 'new/3', 'new/4'])
  t.equal(got.get('new/3')?.data.toString(), 'written during the outage 3')
  t.match(s.queue.status(), { dirtyObjects: 0, pendingDeletes: 0 })
})

t.test('Azurite stopped: writes admitted up to the dirty limit, then SERVER_BUSY; restarted on the same port: everything drains', async (t) => {
  const container = containerName()
  let current: AzuriteHandle = await startAzurite()
  t.teardown(() => current.stop())
  const fwd = await startForwarder(current.port)
  t.teardown(() => fwd.close())
  const s = await setup(t, { container, connectionString: fwd.connectionString, queue: { dirtyLimit: 1024 * KiB } })
  await put(s.store, 'warm', 'before the outage', container)
  await s.queue.flush().done
  await current.stop()

  const written = new Map<string, Buffer>()
  let refused: CacheError | undefined
  for (let i = 0; i < 20 && refused === undefined; i++) {
    const data = randomBytes(200 * KiB)
    try {
      s.queue.admit(data.length) // what a front end asks before it accepts a body
    } catch (err) {
      if (!isCacheError(err, 'CC_ERR_SERVER_BUSY')) throw err
      refused = err
      break
    }
    await put(s.store, `o/${i}`, data, container)
    written.set(`o/${i}`, data)
  }
  t.equal(written.size, 5, 'five 200 KiB writes fit under 1 MiB, the sixth does not')
  t.ok(refused !== undefined, 'refused past the limit')
  t.match(refused?.message, /bytes are waiting for writeback/)
  const retryAfter = Number(refused?.detail.retryAfter)
  t.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter} s`)
  const st = s.queue.status()
  t.equal(st.dirtyObjects, 5)
  t.ok(st.failedAttempts >= 1, 'uploads were tried and failed')
  t.match(st.lastError, /unavailable|ECONNREFUSED|ECONNRESET|socket/i)

  current = await startAzurite() // a new Azurite behind the same port
  fwd.retarget(current.port)
  await s.queue.flush().done
  const sdk2 = BlobServiceClient.fromConnectionString(current.connectionString, { retryOptions: { maxTries: 1 } })
  const c = sdk2.getContainerClient(container)
  for (const [name, data] of written) t.ok((await c.getBlobClient(name).downloadToBuffer()).equals(data), `${name} arrived, bytes equal`)
  t.match(s.queue.status(), { dirtyObjects: 0, dirtyBytes: 0 })
  t.doesNotThrow(() => s.queue.admit(2048 * KiB))
})

t.test('kill -9 with uploads in flight: after a restart every acknowledged write arrives and the recorded delete is done', async (t) => {
  const container = containerName()
  const root = t.testdir()
  const fwd = await startForwarder(azurite.port)
  t.teardown(() => fwd.close())
  {
    const s = await setup(t, { root, container, connectionString: fwd.connectionString })
    await put(s.store, 'old/gone', 'uploaded, deleted by the process that gets killed', container)
    await s.queue.flush().done
    await s.queue.close()
    await s.store.close()
  }
  fwd.retarget('hang') // the killed process's uploads stay in flight until it dies
  const child = spawn(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), 'writeback-child.ts'), root, container, fwd.connectionString], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const ready = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out)
    })
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${out}`)))
  })
  t.match(JSON.parse(ready.slice(ready.indexOf(' ') + 1)), { dirtyObjects: 5, pendingDeletes: 1 })
  child.kill('SIGKILL')
  await exited
  t.same([...(await blobs(container)).keys()], ['old/gone'], 'nothing arrived before the kill')

  fwd.retarget(azurite.port)
  const s = await setup(t, { root, container, connectionString: fwd.connectionString })
  t.match(s.queue.status(), { dirtyObjects: 5, pendingDeletes: 1 })
  await s.queue.flush().done
  const got = await blobs(container)
  t.same([...got.keys()].sort(), ['new/0', 'new/1', 'new/2', 'new/3', 'new/4'])
  t.equal(got.get('new/0')?.data.length, 1024 * 1024)
  t.equal(got.get('new/4')?.data.toString(), 'written before the kill 4')
})
