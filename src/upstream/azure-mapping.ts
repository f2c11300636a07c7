/**
 * Our object properties in Azure's forms and back: etags with and without
 * quotes, content headers as `BlobHTTPHeaders`, Get Blob Properties and List
 * Blobs items as `UpstreamProps`, and user metadata names.
 *
 * Metadata names: Azure accepts C# identifiers only, S3 clients send any
 * token (`x-amz-meta-model-step`). Each character outside [A-Za-z0-9_] maps
 * to `_`, and a name starting with a digit gets a leading `_`
 * (`model-step` → `model_step`, `2x` → `_2x`). Where two names map to one
 * (names are case-insensitive in Azure), a name that needed no mapping wins,
 * else the first in code-unit order; the others are dropped. The mapping is
 * one way: a read-through of such a blob sees the mapped names.
 */
import type { BlobHTTPHeaders } from '@azure/storage-blob'
import type { ContentHeaders, UserMetadata } from '../core/types.js'
import type { UpstreamProps } from './types.js'

export function quote (etag: string): string {
  return etag.startsWith('"') || etag === '*' ? etag : `"${etag}"`
}

export function unquote (etag: string | undefined): string {
  if (etag === undefined) return ''
  return etag.startsWith('"') && etag.endsWith('"') && etag.length >= 2 ? etag.slice(1, -1) : etag
}

export function blobHeaders (content: ContentHeaders, md5: string): BlobHTTPHeaders {
  return {
    blobContentType: content.contentType,
    blobContentEncoding: content.contentEncoding,
    blobContentLanguage: content.contentLanguage,
    blobContentDisposition: content.contentDisposition,
    blobCacheControl: content.cacheControl,
    blobContentMD5: Buffer.from(md5, 'base64')
  }
}

/** Metadata names as Azure accepts them (see the top of this file for the rule). */
export function toAzureMetadata (metadata: UserMetadata): Record<string, string> {
  const valid = /^[A-Za-z_][A-Za-z0-9_]*$/
  const keys = Object.keys(metadata).sort()
  const ordered = [...keys.filter((k) => valid.test(k)), ...keys.filter((k) => !valid.test(k))]
  const out: Record<string, string> = {}
  const taken = new Set<string>()
  for (const key of ordered) {
    let name = key.replace(/[^A-Za-z0-9_]/g, '_')
    if (!/^[A-Za-z_]/.test(name)) name = `_${name}`
    if (taken.has(name.toLowerCase())) continue
    taken.add(name.toLowerCase())
    out[name] = metadata[key]!
  }
  return out
}

export interface PropsLike {
  contentLength?: number
  etag?: string
  lastModified?: Date
  createdOn?: Date
  contentType?: string
  contentEncoding?: string
  contentLanguage?: string
  contentDisposition?: string
  cacheControl?: string
  contentMD5?: Uint8Array
  metadata?: Record<string, string>
}

export function propsOf (p: PropsLike): UpstreamProps {
  const content: ContentHeaders = {}
  if (p.contentType !== undefined) content.contentType = p.contentType
  if (p.contentEncoding !== undefined) content.contentEncoding = p.contentEncoding
  if (p.contentLanguage !== undefined) content.contentLanguage = p.contentLanguage
  if (p.contentDisposition !== undefined) content.contentDisposition = p.contentDisposition
  if (p.cacheControl !== undefined) content.cacheControl = p.cacheControl
  if (p.contentMD5 !== undefined && p.contentMD5.length > 0) content.contentMd5 = Buffer.from(p.contentMD5).toString('base64')
  const props: UpstreamProps = {
    size: p.contentLength ?? 0,
    etag: unquote(p.etag),
    lastModifiedMs: p.lastModified?.getTime() ?? 0,
    content,
    metadata: { ...p.metadata }
  }
  if (p.createdOn !== undefined) props.createdMs = p.createdOn.getTime()
  return props
}
