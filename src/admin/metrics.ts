/**
 * A small Prometheus registry: counters with fixed label names, gauges read
 * when scraped, rendered in the text exposition format (version 0.0.4).
 * Every part of the node counts into the one registry the composition root
 * creates and hands down; nothing is global.
 */

export type Labels = Record<string, string>

export class Counter {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly #values = new Map<string, { labels: Labels, value: number }>()

  constructor (name: string, help: string, labelNames: readonly string[]) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
  }

  inc (labels: Labels = {}, by = 1): void {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000')
    const slot = this.#values.get(key)
    if (slot === undefined) this.#values.set(key, { labels: { ...labels }, value: by })
    else slot.value += by
  }

  /** The current value for these labels (0 when never counted). */
  get (labels: Labels = {}): number {
    return this.#values.get(this.labelNames.map((n) => labels[n] ?? '').join('\u0000'))?.value ?? 0
  }

  /** The sum over every label combination that matches `filter`. */
  sum (filter: Labels = {}): number {
    let total = 0
    for (const { labels, value } of this.#values.values()) {
      if (Object.entries(filter).every(([k, v]) => labels[k] === v)) total += value
    }
    return total
  }

  render (): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`
    if (this.#values.size === 0 && this.labelNames.length === 0) out += `${this.name} 0\n`
    for (const { labels, value } of this.#values.values()) out += `${this.name}${renderLabels(labels)} ${value}\n`
    return out
  }
}

export class Gauge {
  readonly name: string
  readonly help: string
  readonly #read: () => number | Array<{ labels: Labels, value: number }>

  constructor (name: string, help: string, read: () => number | Array<{ labels: Labels, value: number }>) {
    this.name = name
    this.help = help
    this.#read = read
  }

  render (): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`
    const v = this.#read()
    if (typeof v === 'number') out += `${this.name} ${v}\n`
    else for (const { labels, value } of v) out += `${this.name}${renderLabels(labels)} ${value}\n`
    return out
  }
}

export class Metrics {
  readonly #items = new Map<string, Counter | Gauge>()

  counter (name: string, help: string, labelNames: readonly string[] = []): Counter {
    const existing = this.#items.get(name)
    if (existing instanceof Counter) return existing
    if (existing !== undefined) throw new Error(`metric ${name} is already a gauge`)
    const c = new Counter(name, help, labelNames)
    this.#items.set(name, c)
    return c
  }

  /** A gauge read when scraped. Registering the same name again replaces the reader. */
  gauge (name: string, help: string, read: () => number | Array<{ labels: Labels, value: number }>): void {
    if (this.#items.get(name) instanceof Counter) throw new Error(`metric ${name} is already a counter`)
    this.#items.set(name, new Gauge(name, help, read))
  }

  /** The text exposition format. */
  render (): string {
    let out = ''
    for (const item of this.#items.values()) out += item.render()
    return out
  }
}

function renderLabels (labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** Upstream operations that only move metadata, as opposed to data (put block, commit, get). */
export type UpstreamOpClass = 'metadata' | 'data'

/**
 * The node's named counters, created once by the composition root. Gauges
 * (dirty bytes, queue depth, store usage) are registered by their owners.
 */
export interface NodeMetrics {
  readonly registry: Metrics
  /** `ckptcache_upstream_requests_total{operation,class}`: every upstream HTTP request, retries included. */
  readonly upstreamRequests: Counter
  /** `ckptcache_upstream_bytes_total{direction}`: `out` uploaded to, `in` downloaded from the upstream. */
  readonly upstreamBytes: Counter
  /** `ckptcache_upstream_retries_total{operation}`. */
  readonly upstreamRetries: Counter
  /** `ckptcache_client_requests_total{frontend,operation}`. */
  readonly clientRequests: Counter
  /** `ckptcache_client_bytes_total{frontend,direction}`: `in` request bodies, `out` response bodies. */
  readonly clientBytes: Counter
  /** `ckptcache_served_bytes_total{source}`: object bytes read from `local`, `peer` or `upstream`. */
  readonly servedBytes: Counter
  /** `ckptcache_cache_lookups_total{result}`: object reads found locally (`hit`) or not (`miss`). */
  readonly cacheLookups: Counter
  /** `ckptcache_evictions_total`: clean objects evicted to make room. */
  readonly evictions: Counter
}

export function createNodeMetrics (registry = new Metrics()): NodeMetrics {
  return {
    registry,
    upstreamRequests: registry.counter('ckptcache_upstream_requests_total', 'Requests sent to Azure Blob, by operation and class (metadata or data), retries included.', ['operation', 'class']),
    upstreamBytes: registry.counter('ckptcache_upstream_bytes_total', 'Object bytes sent to (out) and received from (in) Azure Blob.', ['direction']),
    upstreamRetries: registry.counter('ckptcache_upstream_retries_total', 'Upstream requests retried after throttling or a network error.', ['operation']),
    clientRequests: registry.counter('ckptcache_client_requests_total', 'Client requests, by front end and operation.', ['frontend', 'operation']),
    clientBytes: registry.counter('ckptcache_client_bytes_total', 'Client body bytes, by front end and direction (in: request, out: response).', ['frontend', 'direction']),
    servedBytes: registry.counter('ckptcache_served_bytes_total', 'Object bytes served to clients, by where they came from (local, peer, upstream).', ['source']),
    cacheLookups: registry.counter('ckptcache_cache_lookups_total', 'Object reads found in the local cache (hit) or not (miss).', ['result']),
    evictions: registry.counter('ckptcache_evictions_total', 'Clean objects evicted to make room.')
  }
}
