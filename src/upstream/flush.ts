/**
 * Flush tracking: a flush takes a snapshot of what is dirty under its prefix
 * when it starts (names with a dirty version, and upstream deletes recorded),
 * and counts each as done once its name has no dirty version and no delete
 * record left. A newer dirty version of a counted name must reach the upstream
 * too: the flush waits for the name, not for one version.
 */
import { CacheError } from '../errors.js'
import type { FlushHandle, FlushProgress } from './types.js'

export class FlushTracker implements FlushHandle {
  readonly done: Promise<void>
  /** Name key → bytes, for what is not done yet. */
  readonly #pending: Map<string, number>
  readonly #objects: number
  readonly #bytes: number
  readonly #startedMs: number
  #cleanObjects = 0
  #cleanBytes = 0
  #resolve!: () => void
  #reject!: (err: Error) => void

  /** `items`: every name key counted, with its dirty bytes (0 for a delete). */
  constructor (items: Map<string, number>, startedMs = Date.now()) {
    this.#pending = items
    this.#objects = items.size
    let bytes = 0
    for (const b of items.values()) bytes += b
    this.#bytes = bytes
    this.#startedMs = startedMs
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // A caller that only polls progress() must not see an unhandled rejection at close.
    this.done.catch(() => {})
    if (items.size === 0) this.#resolve()
  }

  /** The name keys still waited for. */
  keys (): IterableIterator<string> {
    return this.#pending.keys()
  }

  get finished (): boolean {
    return this.#pending.size === 0
  }

  /** The name `key` has nothing dirty and no delete pending any more. Returns true once all is done. */
  settle (key: string): boolean {
    const bytes = this.#pending.get(key)
    if (bytes === undefined) return this.#pending.size === 0
    this.#pending.delete(key)
    this.#cleanObjects++
    this.#cleanBytes += bytes
    if (this.#pending.size === 0) this.#resolve()
    return this.#pending.size === 0
  }

  /** The writeback closed before this flush finished. */
  abandon (): void {
    if (this.#pending.size === 0) return
    this.#reject(new CacheError('CC_ERR_SERVER_BUSY', `The writeback queue closed with ${this.#pending.size} object(s) of this flush not yet uploaded; they stay dirty and are uploaded after a restart.`))
  }

  progress (): FlushProgress {
    return {
      objects: this.#objects,
      bytes: this.#bytes,
      cleanObjects: this.#cleanObjects,
      cleanBytes: this.#cleanBytes,
      done: this.#pending.size === 0,
      startedMs: this.#startedMs
    }
  }
}

/** Whether the name key `<container>/<name>` lies under a flush's scope. */
export function inFlushScope (key: string, container: string | undefined, prefix: string | undefined): boolean {
  if (container === undefined) return true
  return key.startsWith(container + '/' + (prefix ?? ''))
}
