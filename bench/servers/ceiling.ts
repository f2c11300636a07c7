/**
 * The ceiling: the least a Node 20 `node:http` server must do to take a Put
 * Blob to disk durably and stream it back. No auth, no metadata, no checksums,
 * no temp-file rename; just enough of the Blob protocol for the SDK's
 * `upload()` / `download()` / container create and delete to work.
 *
 *   node --import tsx bench/servers/ceiling.ts --dir DIR [--port 0] [--host 127.0.0.1]
 *
 * Prints `ceiling listening on port N` when ready. Exits when its parent's IPC
 * channel closes (run as a child with an 'ipc' stdio slot) or on SIGTERM.
 *
 * - PUT blob: `fs.createWriteStream(path, { flush: true, highWaterMark: 4 MiB })`
 *   (fsync before close; CONVENTIONS "Data path"), then 201 with an ETag.
 * - GET / HEAD blob: Content-Length, Content-Type, ETag, Last-Modified, the file
 *   streamed with a min(size, 1 MiB) read high-water mark.
 * - DELETE blob: unlink, 202. Container operations (`restype=container`): 201/202/200.
 */

import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, stat, unlink } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

const MiB = 1024 * 1024
const WRITE_HWM = 4 * MiB
const READ_HWM = MiB

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : String(process.argv[i + 1])
}

const dir = arg('dir', '')
if (dir === '') {
  console.error('ceiling: --dir DIR is required')
  process.exit(2)
}
await mkdir(dir, { recursive: true })

let etagCounter = 0
const etagOf = (mtimeMs: number, size: number): string => `"0x${Math.floor(mtimeMs * 1000).toString(16)}${size.toString(16)}"`

/** `/<account>/<container>/<blob...>` → one flat file name per blob. */
function fileFor (pathname: string): string | undefined {
  const parts = pathname.split('/')
  if (parts.length < 4 || parts[3] === '') return undefined
  return join(dir, encodeURIComponent(decodeURIComponent(parts.slice(2).join('/'))))
}

function send (res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers })
  res.end()
}

async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const pathname = q === -1 ? url : url.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
  const method = req.method ?? 'GET'

  if (query.get('restype') === 'container' || fileFor(pathname) === undefined) {
    req.resume()
    const status = method === 'PUT' ? 201 : method === 'DELETE' ? 202 : 200
    send(res, status, { etag: `"0x${(++etagCounter).toString(16)}"`, 'last-modified': new Date().toUTCString() })
    return
  }
  const file = fileFor(pathname) as string

  if (method === 'PUT') {
    const ws = createWriteStream(file, { flush: true, highWaterMark: WRITE_HWM })
    await pipeline(req, ws)
    const now = Date.now()
    send(res, 201, { etag: etagOf(now, ws.bytesWritten), 'last-modified': new Date(now).toUTCString() })
    return
  }

  if (method === 'GET' || method === 'HEAD') {
    let st
    try {
      st = await stat(file)
    } catch {
      req.resume()
      send(res, 404, { 'x-ms-error-code': 'BlobNotFound' })
      return
    }
    res.writeHead(200, {
      'content-length': String(st.size),
      'content-type': 'application/octet-stream',
      etag: etagOf(st.mtimeMs, st.size),
      'last-modified': st.mtime.toUTCString(),
      'x-ms-blob-type': 'BlockBlob',
      'accept-ranges': 'bytes'
    })
    if (method === 'HEAD' || st.size === 0) {
      res.end()
      return
    }
    await pipeline(createReadStream(file, { highWaterMark: Math.min(st.size, READ_HWM) }), res)
    return
  }

  if (method === 'DELETE') {
    req.resume()
    await unlink(file).catch(() => {})
    send(res, 202)
    return
  }

  req.resume()
  send(res, 501)
}

const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) send(res, 500)
    else res.destroy()
  })
})

server.listen(Number(arg('port', '0')), arg('host', '127.0.0.1'), () => {
  process.stdout.write(`ceiling listening on port ${(server.address() as AddressInfo).port}\n`)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
