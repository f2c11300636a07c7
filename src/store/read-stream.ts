import { createReadStream, type ReadStream } from 'node:fs'
import { Readable } from 'node:stream'

/** One contiguous piece of a file to send: bytes `start`..`end` inclusive. */
export interface FileSlice {
  path: string
  start: number
  end: number
}

const READ_HWM = 1024 * 1024

/**
 * Streams a sequence of file slices as one body. Each slice is read with a
 * buffer sized to it (at most 1 MiB: big enough for throughput, small enough
 * not to waste fresh memory on small objects); backpressure pauses the file
 * stream. `onClose` runs once, however the stream ends.
 */
export class SliceReader extends Readable {
  readonly #slices: FileSlice[]
  readonly #onClose: () => void
  #index = 0
  #current: ReadStream | undefined
  #closed = false

  constructor (slices: FileSlice[], onClose: () => void) {
    super({ highWaterMark: 2 * READ_HWM })
    this.#slices = slices
    this.#onClose = onClose
  }

  override _read (): void {
    if (this.#current !== undefined) this.#current.resume()
    else this.#openNext()
  }

  #openNext (): void {
    const slice = this.#slices[this.#index++]
    if (slice === undefined) {
      this.push(null)
      return
    }
    const length = slice.end - slice.start + 1
    const rs = createReadStream(slice.path, { start: slice.start, end: slice.end, highWaterMark: Math.min(READ_HWM, length) })
    this.#current = rs
    let sent = 0
    rs.on('data', (chunk: Buffer | string) => {
      sent += chunk.length
      if (!this.push(chunk)) rs.pause()
    })
    rs.on('end', () => {
      this.#current = undefined
      if (sent !== length) {
        this.destroy(new Error(`extent ${slice.path} ended after ${sent} of ${length} bytes`))
        return
      }
      this.#openNext()
    })
    rs.on('error', (err) => this.destroy(err))
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.#current?.destroy()
    this.#current = undefined
    if (!this.#closed) {
      this.#closed = true
      this.#onClose()
    }
    cb(err)
  }
}
