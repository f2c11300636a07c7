/**
 * Commit markers go last (DESIGN.md, promise 5). A marker is an object whose
 * basename matches one of the configured globs (`*` any run of characters,
 * `?` one character; everything else literal). It is uploaded only after every
 * object of the same container and directory committed before it is clean
 * upstream or deleted.
 *
 * "Directory" means the name up to and including its last `/`, and only that
 * directory: objects in deeper subdirectories do not hold a marker back. A
 * DCP checkpoint writes its shards and its `.metadata` side by side, and a
 * `_SUCCESS` or `*.complete` speaks for its own directory; a marker at the top
 * of a tree of running jobs would otherwise wait for every job below it (and
 * for ever while they keep writing). A writer that needs a whole tree first
 * can put its marker next to the last shard it wrote.
 */
import { MinHeap } from './min-heap.js'

/** DCP's index, Hadoop/Spark's success flag, and the common `<step>.complete` convention. */
export const DEFAULT_MARKER_PATTERNS: readonly string[] = ['.metadata', '_SUCCESS', '*.complete']

/** The directory part of an object name: up to and including the last `/` ('' at the top). */
export function directoryOf (name: string): string {
  return name.slice(0, name.lastIndexOf('/') + 1)
}

/** The name after its last `/`. */
export function baseNameOf (name: string): string {
  return name.slice(name.lastIndexOf('/') + 1)
}

/** A basename glob as a whole-string regular expression. */
export function globToRegExp (glob: string): RegExp {
  let src = ''
  for (const ch of glob) {
    if (ch === '*') src += '[^/]*'
    else if (ch === '?') src += '[^/]'
    else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${src}$`, 'su')
}

/** Whether an object name is a commit marker under `patterns` (matched against its basename). */
export function markerMatcher (patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(globToRegExp)
  if (res.length === 0) return () => false
  return (name) => {
    const base = baseNameOf(name)
    return res.some((re) => re.test(base))
  }
}

interface DirState<T> {
  /** Objects of the directory not yet clean upstream, keyed by the sequence they block from. */
  blockers: MinHeap<T>
  /** Markers waiting for the directory, keyed by their own sequence. */
  parked: MinHeap<T>
}

/**
 * Per directory: which objects are not yet upstream (from which commit sequence), and which
 * markers wait for them. `T` is the caller's per-name record; `dirOf` names its directory key.
 * Everything is O(log n) per change; a directory's state goes when it holds nothing.
 *
 * Contract that keeps markers free of cycles: a marker blocks its directory from the sequence of
 * its own latest version (the one it is parked with), never from an earlier one. Markers then
 * wait only for smaller sequences than their own blocking one, so the smallest always goes.
 */
export class DirectoryOrder<T> {
  readonly #dirs = new Map<string, DirState<T>>()
  readonly #dirOf: (item: T) => string

  constructor (dirOf: (item: T) => string) {
    this.#dirOf = dirOf
  }

  /** `item` is not upstream as of commit sequence `seq` (sets or moves it). */
  block (item: T, seq: number): void {
    this.#state(this.#dirOf(item)).blockers.set(item, seq)
  }

  /** `item` is clean upstream or deleted: it holds nothing back any more. */
  unblock (item: T): void {
    const dir = this.#dirOf(item)
    const s = this.#dirs.get(dir)
    if (s === undefined) return
    s.blockers.delete(item)
    this.#dropIfEmpty(dir, s)
  }

  /** True when an object of the directory other than `item` blocks from a sequence before `seq`. */
  blocked (item: T, seq: number): boolean {
    const first = this.#dirs.get(this.#dirOf(item))?.blockers.minKeyExcept(item)
    return first !== undefined && first < seq
  }

  /** A marker with sequence `seq` waits for its directory. */
  park (item: T, seq: number): void {
    this.#state(this.#dirOf(item)).parked.set(item, seq)
  }

  unpark (item: T): void {
    const dir = this.#dirOf(item)
    const s = this.#dirs.get(dir)
    if (s === undefined) return
    s.parked.delete(item)
    this.#dropIfEmpty(dir, s)
  }

  isParked (item: T): boolean {
    return this.#dirs.get(this.#dirOf(item))?.parked.has(item) === true
  }

  /** Removes and returns the parked markers of `dir` that nothing blocks any more, in sequence order. */
  release (dir: string): T[] {
    const s = this.#dirs.get(dir)
    if (s === undefined) return []
    const out: T[] = []
    for (;;) {
      const item = s.parked.peek()
      const seq = s.parked.peekKey()
      if (item === undefined || seq === undefined) break
      const first = s.blockers.minKeyExcept(item)
      if (first !== undefined && first < seq) break
      s.parked.delete(item)
      out.push(item)
    }
    this.#dropIfEmpty(dir, s)
    return out
  }

  /** Parked markers in all (status). */
  get parkedCount (): number {
    let n = 0
    for (const s of this.#dirs.values()) n += s.parked.size
    return n
  }

  #state (dir: string): DirState<T> {
    let s = this.#dirs.get(dir)
    if (s === undefined) {
      s = { blockers: new MinHeap(), parked: new MinHeap() }
      this.#dirs.set(dir, s)
    }
    return s
  }

  #dropIfEmpty (dir: string, s: DirState<T>): void {
    if (s.blockers.size === 0 && s.parked.size === 0) this.#dirs.delete(dir)
  }
}
