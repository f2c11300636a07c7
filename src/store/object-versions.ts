import { newEtag } from '../core/etag.js'
import type { Extent, ObjectMeta } from '../core/types.js'
import type { ObjectWrite } from './local-store.js'

/**
 * What a new version's meta.json holds. A tiered store (writeback modes) numbers its dirty
 * versions in commit order (`seq`, the order the writeback uploads them in).
 */
export class Versions {
  readonly #tiered: boolean
  /** The next dirty version's commit sequence number. */
  #nextSeq = 1

  constructor (tiered: boolean) {
    this.#tiered = tiered
  }

  /** Start-up: numbering goes on after every sequence number found on disk. */
  saw (seq: number | undefined): void {
    if (seq !== undefined && seq >= this.#nextSeq) this.#nextSeq = seq + 1
  }

  /** The version a write of `extents` makes of the name whose current version is `current`. */
  create (container: string, name: string, current: ObjectMeta | undefined, write: ObjectWrite, extents: Extent[], fromBlocks: boolean): ObjectMeta {
    const now = Date.now()
    return {
      container,
      name,
      size: extents.reduce((n, e) => n + e.size, 0),
      etag: write.etag ?? newEtag(now),
      createdMs: write.replica?.createdMs ?? current?.createdMs ?? now,
      lastModifiedMs: write.replica?.lastModifiedMs ?? now,
      content: write.content,
      metadata: write.metadata,
      checksums: write.checksums,
      extents,
      fromBlocks,
      ...(write.parts === undefined ? {} : { parts: write.parts }),
      ...(write.holders === undefined ? {} : { holders: write.holders }),
      ...this.tierState(current, write.fill, write.replica)
    }
  }

  /** A tiered store's new version is dirty (keeping what upstream holds of the name), unless it is a fill. */
  tierState (current: ObjectMeta | undefined, fill?: ObjectWrite['fill'], replica?: ObjectWrite['replica']): Pick<ObjectMeta, 'dirty' | 'seq' | 'upstreamEtag'> {
    if (!this.#tiered) return {}
    if (fill !== undefined) return { upstreamEtag: fill.upstreamEtag }
    if (replica !== undefined && !replica.dirty) return replica.upstreamEtag === undefined ? {} : { upstreamEtag: replica.upstreamEtag }
    if (replica !== undefined) return { dirty: true, seq: this.#nextSeq++, ...(replica.upstreamEtag === undefined ? {} : { upstreamEtag: replica.upstreamEtag }) }
    return { dirty: true, seq: this.#nextSeq++, ...(current?.upstreamEtag === undefined ? {} : { upstreamEtag: current.upstreamEtag }) }
  }
}

/** The same version with checksums computed after its commit; an MD5 also becomes its Content-MD5 if it has none. */
export function withChecksums (meta: ObjectMeta, checksums: ObjectMeta['checksums']): ObjectMeta {
  return {
    ...meta,
    checksums: { ...meta.checksums, ...checksums },
    content: meta.content.contentMd5 === undefined && checksums.md5 !== undefined ? { ...meta.content, contentMd5: checksums.md5 } : meta.content
  }
}

/**
 * The version `current` once the writeback uploaded it as the upstream blob `upstreamEtag`: clean,
 * with the upload's MD5 when it had none. Undefined when nothing would change.
 */
export function cleanVersion (current: ObjectMeta, upstreamEtag: string, checksums?: ObjectMeta['checksums']): ObjectMeta | undefined {
  const md5 = checksums?.md5 !== undefined && current.checksums.md5 === undefined ? checksums.md5 : undefined
  if (current.dirty !== true && current.upstreamEtag === upstreamEtag && md5 === undefined) return undefined
  const { dirty: _dirty, seq: _seq, ...rest } = current
  return withChecksums({ ...rest, upstreamEtag }, md5 === undefined ? {} : { md5 })
}
