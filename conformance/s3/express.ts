/**
 * S3 Express One Zone directory buckets for the suite's cases: their names, a client that reaches
 * them the way a user's does (the SDK's defaults, so it opens CreateSession sessions by itself and
 * signs object requests with them), creating and removing them, and a record of what the client
 * sent (signing service, session token) so a case can check it used the session it claims to.
 */
import { AssertionError } from 'node:assert'
import { isIP } from 'node:net'
import {
  CreateBucketCommand, CreateSessionCommand, paginateListDirectoryBuckets, S3Client, type CreateSessionCommandOutput, type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { SkipCase } from './case.js'
import { emptyAndDeleteBucket } from './cleanup.js'
import type { S3Endpoint } from './endpoint.js'

/** An Availability Zone of us-east-1 (the suite's default region), as directory bucket names carry it. */
export const ZONE = 'use1-az4'

const DIRECTORY_BUCKET = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?--[a-z0-9]+(?:-[a-z0-9]+)+--x-s3$/

/**
 * `<base>-<tag>--use1-az4--x-s3`. Directory bucket names are 3 to 63 characters of lower-case
 * letters, digits and hyphens, begin and end with a letter or digit, and end with
 * `--<zone id>--x-s3`; the base may not hold `--`. A name breaking a rule is a bug of the suite.
 */
export function directoryBucketName(base: string, tag: string): string {
  const name = `${base}-${tag}--${ZONE}--x-s3`
  const baseName = name.slice(0, -`--${ZONE}--x-s3`.length)
  if (name.length > 63 || !DIRECTORY_BUCKET.test(name) || baseName.includes('--')) {
    throw new Error(`${name} is not a valid directory bucket name`)
  }
  return name
}

/** The CreateBucket input for a directory bucket in ZONE. */
export function createDirectoryBucketCommand(bucket: string): CreateBucketCommand {
  return new CreateBucketCommand({
    Bucket: bucket,
    CreateBucketConfiguration: {
      Location: { Type: 'AvailabilityZone', Name: ZONE },
      Bucket: { Type: 'Directory', DataRedundancy: 'SingleAvailabilityZone' },
    },
  })
}

/**
 * A client for directory buckets: the settings of `s3Client` (endpoint.ts) without
 * `forcePathStyle`, which the SDK's endpoint rules do not apply to directory buckets: they address
 * them path-style on an IP endpoint and virtual-hosted on a host name (such an endpoint skips the
 * case). It opens CreateSession sessions by itself, or takes them from `sessions`.
 */
export function directoryClient(ep: S3Endpoint, sessions?: S3ExpressIdentityProvider): S3Client {
  const host = new URL(ep.url).hostname.replace(/^\[(.*)\]$/, '$1')
  if (isIP(host) === 0) {
    throw new SkipCase(`the SDK addresses directory buckets path-style only on an IP endpoint, not ${host}`)
  }
  return new S3Client({
    endpoint: ep.url,
    region: ep.region,
    credentials: { accessKeyId: ep.accessKeyId, secretAccessKey: ep.secretAccessKey },
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    logger: QUIET,
    ...(sessions ? { s3ExpressIdentityProvider: sessions } : {}),
  })
}

type S3ExpressIdentityProvider = NonNullable<S3ClientConfig['s3ExpressIdentityProvider']>

/** Credentials of a CreateSession answer. */
export type SessionCredentials = NonNullable<CreateSessionCommandOutput['Credentials']>

/**
 * A directory client that signs with one session of `mode` on `bucket`, which it opens with an
 * explicit CreateSession (the SDK's own sessions are ReadWrite), the same way the SDK signs with
 * a session of its own: service `s3express`, `x-amz-s3session-token`. CreateSession is the
 * client's first request, as it is when the SDK opens sessions itself: the SDK keeps the signing
 * service of its first signed request for later ones.
 */
export async function sessionClient(ep: S3Endpoint, bucket: string, mode: 'ReadOnly' | 'ReadWrite'): Promise<{
  client: S3Client
  credentials: SessionCredentials
  sent: SentRequest[]
}> {
  let credentials: SessionCredentials | undefined
  const client = directoryClient(ep, {
    async getS3ExpressIdentity() {
      if (!credentials) throw new Error('no session yet')
      return {
        accessKeyId: credentials.AccessKeyId ?? '',
        secretAccessKey: credentials.SecretAccessKey ?? '',
        sessionToken: credentials.SessionToken ?? '',
        ...(credentials.Expiration ? { expiration: credentials.Expiration } : {}),
      }
    },
  })
  const sent = recordRequests(client)
  try {
    credentials = (await client.send(new CreateSessionCommand({ Bucket: bucket, SessionMode: mode }))).Credentials
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken) {
      throw new AssertionError({ message: `CreateSession ${mode} returned no credentials` })
    }
    return { client, credentials, sent }
  } catch (err) {
    client.destroy()
    throw err
  }
}

const QUIET = { trace() {}, debug() {}, info() {}, warn() {}, error() {} }

/** One request a client sent, as signed. */
export interface SentRequest {
  /** The command's name: `PutObjectCommand`, `CreateSessionCommand`, … */
  command: string
  /** The service of the SigV4 credential scope (`s3`, `s3express`). */
  service: string | undefined
  /** The `x-amz-s3session-token` it carried, if any. */
  sessionToken: string | undefined
  /** The answer's `Date` header, once answered. */
  date?: string
}

/** Records every request `client` sends from now on (after signing), and the answer's Date. */
export function recordRequests(client: S3Client): SentRequest[] {
  const sent: SentRequest[] = []
  client.middlewareStack.add((next, context) => async (args) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers ?? {}
    const header = (name: string): string | undefined => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1]
    const entry: SentRequest = {
      command: String(context.commandName ?? ''),
      service: /Credential=[^/,]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(header('authorization') ?? '')?.[1],
      sessionToken: header('x-amz-s3session-token'),
    }
    sent.push(entry)
    const out = await next(args)
    const date = (out.response as { headers?: Record<string, string> }).headers?.date
    if (date) entry.date = date
    return out
  }, { step: 'deserialize', name: 'conformanceRequestRecorder' })
  return sent
}

/** Names of the directory buckets ListDirectoryBuckets shows that start with `prefix`. */
export async function listDirectoryBuckets(s3: S3Client, prefix = ''): Promise<string[]> {
  const names: string[] = []
  for await (const page of paginateListDirectoryBuckets({ client: s3 }, {})) {
    for (const b of page.Buckets ?? []) if (b.Name?.startsWith(prefix)) names.push(b.Name)
  }
  return names
}

/**
 * Runs `fn` on a directory bucket made for it (`<runId>-<tag>--use1-az4--x-s3`) with a
 * directory client that records what it sends, then removes the bucket. When `fn` fails, its
 * error is the one reported and the removal is best effort.
 */
export async function withDirectoryBucket(
  ep: S3Endpoint,
  runId: string,
  tag: string,
  fn: (s3: S3Client, bucket: string, sent: SentRequest[]) => Promise<void>,
): Promise<void> {
  const bucket = directoryBucketName(runId, tag)
  const s3 = directoryClient(ep)
  const sent = recordRequests(s3)
  try {
    await s3.send(createDirectoryBucketCommand(bucket))
    try {
      await fn(s3, bucket, sent)
    } catch (err) {
      await emptyAndDeleteBucket(s3, bucket).catch(() => {})
      throw err
    }
    await emptyAndDeleteBucket(s3, bucket)
  } finally {
    s3.destroy()
  }
}
