/**
 * Local container (Azure container or S3 bucket) → upstream Azure container.
 *
 * A local name that is already a valid Azure container name maps to itself. S3 bucket names
 * may hold dots and S3 Express directory buckets (`name--usw2-az1--x-s3`) hold `--`, neither of
 * which Azure accepts: those map to a sanitized form plus `-` and 8 hex characters of the
 * SHA-256 of the original name, so the mapping stays stable across nodes and restarts and two
 * local names meet on one upstream container only if their hashes collide (2^-32 per pair).
 */
import { createHash } from 'node:crypto'
import { isAzureContainerName } from '../core/container-names.js'

/** The upstream Azure container of a local container (one upstream container per local one). */
export function upstreamContainerName (local: string): string {
  if (isAzureContainerName(local)) return local
  const hash = createHash('sha256').update(local, 'utf8').digest('hex').slice(0, 8)
  const base = local
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63 - 9)
    .replace(/-+$/, '')
  return `${base === '' ? 'c' : base}-${hash}`
}
