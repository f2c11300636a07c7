import { rm } from 'node:fs/promises'

/**
 * Files that open reads still need. A commit or delete that drops an extent
 * unlinks it only when no read holds it, so a reader always sees the version
 * it started with, whole.
 */
export class Pins {
  readonly #count = new Map<string, number>()
  readonly #doomed = new Set<string>()

  pin (paths: readonly string[]): void {
    for (const p of paths) this.#count.set(p, (this.#count.get(p) ?? 0) + 1)
  }

  unpin (paths: readonly string[]): void {
    for (const p of paths) {
      const n = (this.#count.get(p) ?? 1) - 1
      if (n > 0) {
        this.#count.set(p, n)
        continue
      }
      this.#count.delete(p)
      if (this.#doomed.delete(p)) void rm(p, { force: true }).catch(() => {})
    }
  }

  isPinned (path: string): boolean {
    return this.#count.has(path)
  }

  /** Unlinks now, or when the last reader lets go. A crash in between leaves an orphan the next start removes. */
  async remove (path: string): Promise<void> {
    if (this.#count.has(path)) {
      this.#doomed.add(path)
      return
    }
    await rm(path, { force: true })
  }
}
