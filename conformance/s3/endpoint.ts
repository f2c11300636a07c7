/**
 * The S3 endpoint under test, and the clients every part of the suite builds from it: path-style
 * addressing, the endpoint's keys, and otherwise the SDK's defaults.
 */
import { S3Client, type BucketLocationConstraint, type CreateBucketCommandInput } from '@aws-sdk/client-s3'

export interface S3Endpoint {
  /** `http://127.0.0.1:<port>`: path-style requests go to `<url>/<bucket>/<key>`. */
  url: string
  accessKeyId: string
  secretAccessKey: string
  /** Signing region. Default us-east-1. */
  region: string
}

export const ENV = {
  endpoint: 'CKPTCACHE_CONFORMANCE_S3_ENDPOINT',
  accessKey: 'CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY',
  secretKey: 'CKPTCACHE_CONFORMANCE_S3_SECRET_KEY',
  region: 'CKPTCACHE_CONFORMANCE_S3_REGION',
} as const

/** The endpoint from the environment, or the names of the variables that are missing. */
export function endpointFromEnv(env: NodeJS.ProcessEnv): S3Endpoint | { missing: string[] } {
  const url = env[ENV.endpoint]
  const accessKeyId = env[ENV.accessKey]
  const secretAccessKey = env[ENV.secretKey]
  const missing = [[ENV.endpoint, url], [ENV.accessKey, accessKeyId], [ENV.secretKey, secretAccessKey]]
    .filter(([, v]) => !v).map(([k]) => k as string)
  if (!url || !accessKeyId || !secretAccessKey) return { missing }
  return { url: url.replace(/\/+$/, ''), accessKeyId, secretAccessKey, region: env[ENV.region] || 'us-east-1' }
}

/**
 * An `@aws-sdk/client-s3` client for the endpoint. Default settings but two (and a silent
 * logger): path-style (the endpoint is an address, not a domain with bucket subdomains) and one
 * attempt per call
 * (conformance, not resilience: a single 5xx is a finding, not a retry). The checksum settings
 * are the SDK's defaults written out, so a user's AWS_* environment or config file cannot change
 * what is tested: a CRC32 on every upload (aws-chunked with a trailer for stream bodies), and
 * response checksums validated when the server sends them.
 */
export function s3Client(ep: S3Endpoint, credentials?: { accessKeyId: string, secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: ep.url,
    region: ep.region,
    forcePathStyle: true,
    credentials: credentials ?? { accessKeyId: ep.accessKeyId, secretAccessKey: ep.secretAccessKey },
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    logger: QUIET,
  })
}

/** The SDK's default logger is silent but for one console warning per failed stream upload. */
const QUIET = { trace() {}, debug() {}, info() {}, warn() {}, error() {} }

/**
 * CreateBucket input for the endpoint's region: outside us-east-1 S3 wants the region named in a
 * CreateBucketConfiguration.
 */
export function createBucketInput(ep: S3Endpoint, bucket: string): CreateBucketCommandInput {
  return ep.region === 'us-east-1' ? { Bucket: bucket } : { Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: ep.region as BucketLocationConstraint } }
}

/**
 * The environment for a child process (Python, CLIs): this process's, without any AWS_* setting
 * of the user's, so only what the suite sets is read.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('AWS_') || k.startsWith('RCLONE_') || k.startsWith('S3CMD_') || k.startsWith('BOTO_')) continue
    env[k] = v
  }
  return { ...env, ...extra }
}
