/**
 * Layout strategies: where a logical object (local container + name) lives in Azure Blob.
 *
 * - `identity`: the name as is.
 * - `hash:N`: `<N hex chars of SHA-256 of the name's directory>/<name>`, so different
 *   directories (checkpoints) land in different name ranges.
 * - `round-robin:P1,…,Pk`, `binary:M`, `hex:M`: after the prefix strategies of AWS's
 *   s3torchconnector DCP writer. A DCP shard (`__<rank>_<n>.distcp`) goes under a prefix chosen
 *   by its rank: `P[rank % k]`, or the rank's binary / hex digits reversed and zero-padded to M
 *   (so consecutive ranks differ in the first character). Other names keep their name, except
 *   that a name whose first path segment is itself one of the strategy's prefixes goes under the
 *   first prefix (rank 0's): the upstream name space of prefixed blobs and the one of unprefixed
 *   blobs are then disjoint, which is what lets a listing tell a prefix from a directory.
 *
 * With one shared upstream container every blob name starts with `<local container>/`.
 * `fromUpstream` inverts `toUpstream` by recomputing it for each candidate, so it never maps a
 * blob that is not the image of a name. `listSources` returns the listings that together hold a
 * prefix's names; the strategies whose prefixes cannot be enumerated (hash, binary, hex) find the
 * ones present with one delimiter listing of the container's top level.
 */
import { createHash } from 'node:crypto'
import { CacheError } from '../errors.js'
import { upstreamContainerName } from './container-map.js'
import type { Layout, ListSource, PrefixVerdict, Upstream, UpstreamRef } from './types.js'

/** What a listing needs of the upstream. */
export type UpstreamLister = Pick<Upstream, 'list'>

export type { ListSource, PrefixVerdict }

/** The Layout the listing code works with (every Layout now: `listSources` may discover prefixes through the upstream). */
export type ListingLayout = Layout

export interface LayoutOptions {
  /** Put every local container into this one upstream container, under `<container>/`. */
  upstreamContainer?: string
}

/** Ranks above this are not DCP ranks (nine decimal digits): their files keep their names. */
const MAX_RANK = 999_999_999
const SHARD = /(?:^|\/)__(\d{1,9})_\d+\.distcp$/

/** The rank of a DCP shard file name (`…/__<rank>_<n>.distcp`), else undefined. */
export function shardRank (name: string): number | undefined {
  const m = SHARD.exec(name)
  return m === null ? undefined : Number(m[1])
}

/** The rank's digits in `base`, zero-padded to `minLen`, reversed (s3torchconnector's numeric prefixes). */
export function rankPrefix (rank: number, base: 2 | 16, minLen: number): string {
  return [...rank.toString(base).padStart(minLen, '0')].reverse().join('')
}

interface Strategy {
  readonly description: string
  /** The prefix segment of a name, or undefined when the name is stored as is. */
  segmentOf (name: string): string | undefined
  /** True when `seg` is one of this strategy's prefix segments. */
  isSegment (seg: string): boolean
  /** True when some prefix segment starts with `text`. */
  mayStartSegment (text: string): boolean
  /** The segments when finitely known; undefined when they must be discovered. */
  readonly segments?: readonly string[]
  /** Whether some names are stored without a prefix (an identity source is needed). */
  readonly unprefixed: boolean
}

function firstSegment (name: string): string | undefined {
  const i = name.indexOf('/')
  return i === -1 ? undefined : name.slice(0, i)
}

function identityStrategy (): Strategy {
  return { description: 'identity', segmentOf: () => undefined, isSegment: () => false, mayStartSegment: () => false, segments: [], unprefixed: true }
}

function hashStrategy (n: number): Strategy {
  const re = new RegExp(`^[0-9a-f]{${n}}$`)
  return {
    description: `hash:${n}`,
    segmentOf: (name) => {
      const slash = name.lastIndexOf('/')
      const dir = slash === -1 ? '' : name.slice(0, slash)
      return createHash('sha256').update(dir, 'utf8').digest('hex').slice(0, n)
    },
    isSegment: (seg) => re.test(seg),
    mayStartSegment: (text) => text.length <= n && /^[0-9a-f]*$/.test(text),
    unprefixed: false,
  }
}

/** Shards by rank, names under a prefix-like first segment under `escape`, the rest as they are. */
function rankStrategy (description: string, prefixOf: (rank: number) => string, isSegment: (seg: string) => boolean,
  mayStartSegment: (text: string) => boolean, segments?: readonly string[]): Strategy {
  const escape = prefixOf(0)
  return {
    description,
    segmentOf: (name) => {
      const rank = shardRank(name)
      if (rank !== undefined) return prefixOf(rank)
      const first = firstSegment(name)
      return first !== undefined && isSegment(first) ? escape : undefined
    },
    isSegment,
    mayStartSegment,
    ...(segments === undefined ? {} : { segments }),
    unprefixed: true,
  }
}

function roundRobinStrategy (prefixes: string[]): Strategy {
  for (const p of prefixes) {
    if (!/^[A-Za-z0-9._-]+$/.test(p) || p === '.' || p === '..') throw new Error(`round-robin prefix "${p}" must be letters, digits, . _ - and not . or ..`)
  }
  const set = new Set(prefixes)
  return rankStrategy(`round-robin:${prefixes.join(',')}`, (rank) => prefixes[rank % prefixes.length] as string,
    (seg) => set.has(seg), (text) => prefixes.some((p) => p.startsWith(text)), [...set])
}

function numericStrategy (kind: 'binary' | 'hex', minLen: number): Strategy {
  const base = kind === 'binary' ? 2 : 16
  const digits = kind === 'binary' ? /^[01]+$/ : /^[0-9a-f]+$/
  const maxLen = Math.max(minLen, MAX_RANK.toString(base).length)
  const isSegment = (seg: string): boolean => {
    if (seg.length < minLen || seg.length > maxLen || !digits.test(seg)) return false
    const rank = parseInt([...seg].reverse().join(''), base)
    return rank <= MAX_RANK && rankPrefix(rank, base, minLen) === seg
  }
  const mayStartSegment = (text: string): boolean => text.length <= maxLen && (text === '' || digits.test(text))
  return rankStrategy(`${kind}:${minLen}`, (rank) => rankPrefix(rank, base, minLen), isSegment, mayStartSegment)
}

function parseStrategy (spec: string): Strategy {
  const m = /^(identity|hash|round-robin|binary|hex)(?::(.*))?$/.exec(spec.trim())
  if (m === null) throw new Error(`unknown layout "${spec}"`)
  const kind = m[1] as string
  const arg = m[2]
  const num = (dflt: number, max: number): number => {
    if (arg === undefined) return dflt
    if (!/^\d+$/.test(arg) || Number(arg) < 1 || Number(arg) > max) throw new Error(`layout ${kind}:N needs N from 1 to ${max}`)
    return Number(arg)
  }
  switch (kind) {
    case 'identity':
      if (arg !== undefined) throw new Error('layout identity takes no argument')
      return identityStrategy()
    case 'hash': return hashStrategy(num(2, 8))
    case 'binary': return numericStrategy('binary', num(8, 32))
    case 'hex': return numericStrategy('hex', num(2, 8))
    default:
      if (arg === undefined || arg === '') throw new Error('layout round-robin needs a list of prefixes')
      return roundRobinStrategy(arg.split(','))
  }
}

/** Pages through a delimiter listing of `root` and keeps the top-level segments the strategy could have made. */
async function discoverSegments (upstream: UpstreamLister, container: string, root: string, strategy: Strategy): Promise<string[]> {
  const found: string[] = []
  let marker: string | undefined
  do {
    const page = await upstream.list(container, { prefix: root, delimiter: '/', maxResults: 5000, ...(marker === undefined ? {} : { marker }) })
    for (const item of page.items) {
      if (item.kind !== 'prefix') continue
      const seg = item.name.slice(root.length, -1)
      if (strategy.isSegment(seg)) found.push(seg)
    }
    marker = page.next
  } while (marker !== undefined)
  return found
}

/**
 * The layout for a validated `--layout` spec: `identity` | `hash[:N]` (N=2) |
 * `round-robin:P1,P2,…` | `binary[:MINLEN]` (8) | `hex[:MINLEN]` (2).
 */
export function createLayout (spec: string, opts: LayoutOptions = {}): ListingLayout {
  const strategy = parseStrategy(spec)
  const shared = opts.upstreamContainer
  const containerOf = (container: string): string => shared ?? upstreamContainerName(container)
  const rootOf = (container: string): string => (shared === undefined ? '' : `${container}/`)

  const toUpstream = (container: string, name: string): UpstreamRef => {
    const seg = strategy.segmentOf(name)
    return { container: containerOf(container), blob: rootOf(container) + (seg === undefined ? '' : `${seg}/`) + name }
  }

  const fromUpstream = (ref: UpstreamRef, container: string): string | undefined => {
    const root = rootOf(container)
    if (ref.container !== containerOf(container) || !ref.blob.startsWith(root)) return undefined
    const rest = ref.blob.slice(root.length)
    const candidates: string[] = []
    if (strategy.unprefixed) candidates.push(rest)
    const first = firstSegment(rest)
    if (first !== undefined && strategy.isSegment(first)) candidates.push(rest.slice(first.length + 1))
    return candidates.find((name) => name !== '' && toUpstream(container, name).blob === ref.blob)
  }

  // An unprefixed name never starts with `<segment>/`, so a common prefix of the unprefixed source that
  // does is made of prefixed blobs; one that could still grow into a segment needs a look inside.
  const identityHolds = (p: string): PrefixVerdict => {
    const first = firstSegment(p)
    if (first !== undefined) return strategy.isSegment(first) ? 'no' : 'yes'
    return strategy.mayStartSegment(p) ? 'verify' : 'yes'
  }

  const listSources = async (container: string, prefix: string, upstream?: UpstreamLister): Promise<ListSource[]> => {
    const up = containerOf(container)
    const root = rootOf(container)
    const sources: ListSource[] = []
    if (strategy.unprefixed) {
      sources.push({ container: up, blob: root + prefix, root, ...(strategy.description === 'identity' ? {} : { holds: identityHolds }) })
    }
    let segments = strategy.segments
    if (segments === undefined) {
      if (upstream === undefined) throw new CacheError('CC_ERR_INTERNAL', `listing under the ${strategy.description} layout needs the upstream to find its prefixes`)
      segments = await discoverSegments(upstream, up, root, strategy)
    }
    for (const seg of segments) sources.push({ container: up, blob: `${root}${seg}/${prefix}`, root: `${root}${seg}/` })
    return sources
  }

  return { description: strategy.description, toUpstream, fromUpstream, listSources }
}
