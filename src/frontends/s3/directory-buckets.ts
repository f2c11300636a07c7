/**
 * S3 Express One Zone directory buckets: `<base>--<zone id>--x-s3`, e.g. `ckpt--use1-az4--x-s3`.
 * They are ordinary containers of the store; what differs is the protocol around them
 * (CreateSession credentials, append writes, consecutive part numbers, `/`-only delimiters).
 */
import { S3Error } from './errors.js'

const SUFFIX = '--x-s3'
/** base (lowercase letters, digits, hyphens) -- zone id (e.g. use1-az4, usw2-az1, a Local Zone id) -- x-s3 */
const DIRECTORY_BUCKET = /^([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)--([a-z0-9]+(?:-[a-z0-9]+)+)--x-s3$/

/** True when a bucket name has the directory bucket form (`…--x-s3`). */
export function isDirectoryBucket (name: string): boolean {
  return name.endsWith(SUFFIX)
}

/** The zone id a directory bucket name carries (`use1-az4`), or undefined if the name is malformed. */
export function directoryBucketZone (name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return undefined
  const m = DIRECTORY_BUCKET.exec(name)
  if (m === null || (m[1] as string).includes('--')) return undefined
  return m[2]
}

/** Directory bucket naming rules: 3–63 characters, `<base>--<zone id>--x-s3`. */
export function validateDirectoryBucketName (name: string): string {
  const zone = directoryBucketZone(name)
  if (zone === undefined) throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name })
  return zone
}
