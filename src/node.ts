import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { AUTO_CAPACITY_FRACTION } from './config/settings.js'
import type { Config } from './config/schema.js'
import { Md5Backfill } from './core/md5-backfill.js'
import { ObjectService } from './core/object-service.js'
import { createBlobFrontend } from './frontends/blob/server.js'
import { createS3Frontend } from './frontends/s3/server.js'
import { FsStore } from './store/fs-store.js'

export interface RunningNode {
  ports: { blob: number, s3: number }
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
  const store = new FsStore({
    root: config.dataDir,
    capacity: config.capacity,
    eviction: config.eviction,
    stagedBlockMaxAgeMs: config.stagedBlockMaxAgeMs,
    onError: (err, what) => log.error({ err }, `store: ${what} failed`)
  })
  await store.open()
  if (config.capacityAuto === true) {
    // `auto` measured free space only; what this store already holds is part of its share too.
    const held = store.stats().committed + store.stats().staged
    store.setCapacity(config.capacity + Math.floor(held * AUTO_CAPACITY_FRACTION))
  }
  const stats = store.stats()
  log.info({ dataDir: config.dataDir, objects: stats.objects, containers: stats.containers, usedBytes: stats.used, capacity: stats.capacity }, 'store opened')
  const backfill = new Md5Backfill(store, (err) => log.warn({ err }, 'background Content-MD5 failed'))
  backfill.scheduleMissing()
  const service = new ObjectService(store, backfill)
  const blob = createBlobFrontend(service, { account: config.account, accountKey: Buffer.from(config.accountKey, 'base64'), maxRequests: config.maxRequests }, log)
  const s3 = createS3Frontend(service, { credentials: [{ accessKeyId: config.s3AccessKey, secretAccessKey: config.s3SecretKey }], maxRequests: config.maxRequests }, log)
  let blobPort: number
  let s3Port: number
  try {
    blobPort = await blob.listen(config.host, config.blobPort)
  } catch (err) {
    await store.close()
    throw err
  }
  try {
    s3Port = await s3.listen(config.host, config.s3Port)
  } catch (err) {
    await blob.close()
    await store.close()
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    ports: { blob: blobPort, s3: s3Port },
    log,
    close () {
      closing ??= (async () => {
        await Promise.all([blob.close(), s3.close()])
        await backfill.close()
        await store.close()
      })()
      return closing
    }
  }
}
