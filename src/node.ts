import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { join } from 'node:path'
import { createAdminServer } from './admin/server.js'
import { createNodeMetrics, type NodeMetrics } from './admin/metrics.js'
import { AUTO_CAPACITY_FRACTION, AUTO_DIRTY_FRACTION } from './config/settings.js'
import type { Config } from './config/schema.js'
import { Md5Backfill } from './core/md5-backfill.js'
import { ObjectService } from './core/object-service.js'
import type { ObjectTier } from './core/tier-port.js'
import { createBlobFrontend } from './frontends/blob/server.js'
import { createS3Frontend } from './frontends/s3/server.js'
import { FsStore } from './store/fs-store.js'
import type { UploadGate, Writeback } from './upstream/types.js'
import type { RunningCluster } from './cluster/start.js'

export interface RunningNode {
  ports: { blob: number, s3: number, admin: number, peer?: number }
  log: FastifyBaseLogger
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close (): Promise<void>
}

export interface StartOptions {
  /** A logger to use instead of the default JSON logger on stdout. */
  logger?: FastifyBaseLogger
}

/** The composition root: builds the store, the object core and the front ends, and starts listening. */
export async function startNode (config: Config, opts: StartOptions = {}): Promise<RunningNode> {
  // Logs go through process.stdout, not pino's own fd writer: that writer retries a write to a
  // closed pipe forever when the process exits, so a gateway whose log reader went away could
  // never stop.
  const log: FastifyBaseLogger = opts.logger ?? pino({
    level: config.logLevel,
    redact: { paths: ['req.headers.authorization', 'accountKey', 'config.accountKey', 's3SecretKey', 'config.s3SecretKey'], censor: '[redacted]' }
  }, process.stdout)
  const tiered = config.mode !== 'cache-only'
  const metrics = createNodeMetrics()
  const store = new FsStore({
    root: config.dataDir,
    capacity: config.capacity,
    // With a cloud tier, clean objects are copies of Azure Blob's and make room for new writes.
    eviction: tiered ? 'lru' : config.eviction,
    tiered,
    stagedBlockMaxAgeMs: config.stagedBlockMaxAgeMs,
    onError: (err, what) => log.error({ err }, `store: ${what} failed`)
  })
  await store.open()
  if (config.capacityAuto === true) {
    // `auto` measured free space only; what this store already holds is part of its share too.
    const held = store.stats().committed + store.stats().staged
    store.setCapacity(config.capacity + Math.floor(held * AUTO_CAPACITY_FRACTION))
  }
  const dirtyLimit = config.dirtyLimitAuto === true ? Math.max(1, Math.floor(store.stats().capacity * AUTO_DIRTY_FRACTION)) : config.dirtyLimit
  const stats = store.stats()
  log.info({ dataDir: config.dataDir, objects: stats.objects, containers: stats.containers, usedBytes: stats.used, capacity: stats.capacity }, 'store opened')
  const backfill = new Md5Backfill(store, (err) => log.warn({ err }, 'background Content-MD5 failed'))
  // With a cloud tier each upload computes and records the MD5 of a version that has none.
  if (!tiered) backfill.scheduleMissing()
  // Loaded only with peers: a single node carries no cluster code.
  const clustered = config.peers.length > 0 || config.peersFile !== undefined || config.peersDns !== undefined
  const cluster: RunningCluster | undefined = clustered
    ? await (await import('./cluster/start.js')).createCluster(config, store, metrics.registry, log)
    : undefined
  // An MD5 computed here after the acknowledgement reaches the version's copies on other nodes.
  if (cluster !== undefined) backfill.onComputed = (meta, md5) => { cluster.objects.md5Computed(meta, md5) }
  const tier = tiered ? await startTier(config, store, dirtyLimit, metrics, log, cluster?.gate) : undefined
  store.watch((event) => { if (event.type === 'evict') metrics.evictions.inc() })
  const service = new ObjectService(store, backfill, {
    metrics,
    ...(tier === undefined ? {} : { tier: tier.objectTier }),
    ...(cluster === undefined ? {} : { cluster: cluster.objects })
  })
  const blob = createBlobFrontend(service, { account: config.account, accountKey: Buffer.from(config.accountKey, 'base64'), maxRequests: config.maxRequests, metrics }, log)
  const s3 = createS3Frontend(service, { credentials: [{ accessKeyId: config.s3AccessKey, secretAccessKey: config.s3SecretKey }], maxRequests: config.maxRequests, metrics }, log)
  let ready = false
  const admin = createAdminServer({
    metrics: metrics.registry,
    ...(tier === undefined ? {} : { writeback: tier.writeback }),
    ...(cluster === undefined ? {} : { drain: () => cluster.drain(), cluster: () => cluster.status() }),
    storeStats: () => store.stats(),
    ready: () => ready,
    log
  })
  // Whatever started is stopped again, in reverse order, when a later step fails.
  const started: Array<() => Promise<void>> = [async () => { await backfill.close(); await cluster?.close(); await tier?.close(); await store.close() }]
  const stopAll = async (): Promise<void> => {
    for (const stop of started.reverse()) await stop()
  }
  const ports: RunningNode['ports'] = { blob: 0, s3: 0, admin: 0 }
  try {
    if (cluster !== undefined) {
      ports.peer = await cluster.start(tier?.writeback)
      log.info({ nodeId: cluster.nodeId, peerPort: ports.peer, replicas: config.replicas, ack: config.ack }, 'cluster started')
    }
    ports.blob = await blob.listen(config.host, config.blobPort)
    started.push(() => blob.close())
    ports.s3 = await s3.listen(config.host, config.s3Port)
    started.push(() => s3.close())
    ports.admin = await admin.listen(config.host, config.adminPort)
    started.push(() => admin.close())
  } catch (err) {
    await stopAll()
    throw err
  }
  ready = true
  let closing: Promise<void> | undefined
  return {
    ports,
    log,
    close () {
      closing ??= (async () => {
        ready = false
        await Promise.all([blob.close(), s3.close()])
        await admin.close()
        await backfill.close()
        await cluster?.close()
        await tier?.close()
        await store.close()
      })()
      return closing
    }
  }
}

interface RunningTier {
  objectTier: ObjectTier
  writeback: Writeback
  close (): Promise<void>
}

/** The cloud tier: the Azure Blob adapter, the layout, the writeback queue and read-through. */
async function startTier (config: Config, store: FsStore, dirtyLimit: number, metrics: NodeMetrics, log: FastifyBaseLogger, gate: UploadGate | undefined): Promise<RunningTier> {
  // Loaded only with a cloud tier: the Azure SDK costs a cache-only gateway ~20 MiB of memory.
  const [{ createAzureUpstream }, { createLayout }, { ReadThroughCache }, { listUpstream }, { WritebackQueue }] = await Promise.all([
    import('./upstream/azure-upstream.js'),
    import('./upstream/layout.js'),
    import('./upstream/read-through.js'),
    import('./upstream/upstream-list.js'),
    import('./upstream/writeback.js')
  ])
  const mode = config.mode as 'writeback' | 'writethrough'
  const upstream = createAzureUpstream({
    ...(config.upstreamConnectionString === undefined ? {} : { connectionString: config.upstreamConnectionString }),
    ...(config.upstreamAccountUrl === undefined ? {} : { accountUrl: config.upstreamAccountUrl }),
    blockSize: config.uploadBlockSize,
    singlePutMax: config.uploadSingleMax,
    blockConcurrency: config.blockConcurrency,
    maxRps: config.upstreamMaxRps,
    metrics,
    log
  })
  const layout = createLayout(config.layout, config.upstreamContainer === undefined ? {} : { upstreamContainer: config.upstreamContainer })
  const writeback = new WritebackQueue({
    store,
    upstream,
    layout,
    dir: join(config.dataDir, 'writeback'),
    mode,
    dirtyLimit,
    concurrency: config.writebackConcurrency,
    markerPatterns: config.markerPatterns,
    metrics,
    log,
    ...(gate === undefined ? {} : { gate })
  })
  await writeback.start()
  const readThrough = new ReadThroughCache({
    store,
    upstream,
    layout,
    deletePending: (c, n) => writeback.deletePending(c, n),
    blockSize: config.uploadBlockSize,
    concurrency: config.blockConcurrency,
    revalidateAfterMs: config.revalidateAfterMs,
    metrics,
    log
  })
  log.info({ mode, layout: layout.description, dirtyLimit, pending: writeback.status().dirtyObjects }, 'cloud tier started')
  return {
    objectTier: {
      mode,
      writeback,
      readThrough,
      listUpstream: async (container, query) => await listUpstream(upstream, layout, container, query)
    },
    writeback,
    async close () {
      await readThrough.close()
      await writeback.close()
      await upstream.close()
    }
  }
}
