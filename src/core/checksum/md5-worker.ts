/**
 * The MD5 worker thread: its message protocol and its source.
 *
 * The worker is started from source text (`new Worker(MD5_WORKER_SOURCE, {
 * eval: true })`) rather than from a module file because, on Node 20, a
 * worker whose entry is a `.ts` file does not get tsx's loader hooks
 * (privatenumber/tsx#354: ERR_UNKNOWN_FILE_EXTENSION), so a file worker would
 * work after `tsc` but not under `node --import tsx` or tap. Plain CommonJS
 * source runs the same everywhere, loads nothing but `node:` built-ins, and
 * lets the pool start workers with an empty `execArgv` (no tsx per thread).
 *
 * Protocol (one MessagePort per worker, so per-hasher order is the post order):
 *   → update  {id, buf, len}  hash buf[0, len) into hasher id
 *   ← buffer  {id, buf, len}  …done: the main thread may reuse buf
 *   → digest  {id}            finish hasher id
 *   ← digest  {id, digest}    16-byte MD5 (cloned)
 *   → drop    {id}            forget hasher id (aborted upload); no reply
 * Batch buffers are SharedArrayBuffers, shared rather than transferred: the
 * first ArrayBuffer detached in an isolate (which is what a transfer does)
 * invalidates V8's "array buffer detaching" protector for the rest of the
 * process, and from then on every typed-array loop carries extra checks —
 * measured: CRC64 drops from ~1.05 to ~0.75 GB/s, and other typed-array code
 * in the process pays too. Ownership is handed over by the messages instead:
 * the main thread does not touch a buffer between `update` and `buffer`.
 * A hasher's state is created by its first update or digest and deleted by its
 * digest or drop; the main thread never posts for an id after either.
 */

export type ToMd5Worker =
  | { op: 'update', id: number, buf: SharedArrayBuffer, len: number }
  | { op: 'digest', id: number }
  | { op: 'drop', id: number }

export type FromMd5Worker =
  | { op: 'buffer', id: number, buf: SharedArrayBuffer, len: number }
  | { op: 'digest', id: number, digest: Uint8Array }

export const MD5_WORKER_SOURCE = `'use strict'
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const hashes = new Map()
function hashFor (id) {
  let hash = hashes.get(id)
  if (hash === undefined) {
    hash = createHash('md5')
    hashes.set(id, hash)
  }
  return hash
}
parentPort.on('message', (msg) => {
  switch (msg.op) {
    case 'update':
      hashFor(msg.id).update(new Uint8Array(msg.buf, 0, msg.len))
      parentPort.postMessage({ op: 'buffer', id: msg.id, buf: msg.buf, len: msg.len })
      break
    case 'digest': {
      // a fresh 16-byte array: a Buffer would clone its whole 8 KiB pool slab
      const digest = new Uint8Array(hashFor(msg.id).digest())
      hashes.delete(msg.id)
      parentPort.postMessage({ op: 'digest', id: msg.id, digest })
      break
    }
    case 'drop':
      hashes.delete(msg.id)
      break
    default:
      throw new Error('md5 worker: unknown op ' + String(msg.op))
  }
})
`
