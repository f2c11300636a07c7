import type { FastifyReply } from 'fastify'
import type { ObjectMeta } from '../../core/types.js'

/** The response header that says whether a version is uploaded to the cloud tier yet. */
export const TIER_STATE_HEADER = 'x-ckptcache-state'

/**
 * With a cloud tier, reads and HEADs say `dirty` (in the cache only, upload pending) or `clean`
 * (in Azure Blob: uploaded, filled from it, or not cached at all). Cache-only objects say nothing.
 */
export function setTierStateHeader (reply: FastifyReply, meta: ObjectMeta): void {
  if (meta.dirty === true) reply.header(TIER_STATE_HEADER, 'dirty')
  else if (meta.upstreamEtag !== undefined) reply.header(TIER_STATE_HEADER, 'clean')
}
