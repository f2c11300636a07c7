/**
 * The ceiling: the least a Node 20 `node:http` server must do to take a Put
 * Blob or PutObject to disk durably and stream it back. No auth, no metadata,
 * no checksum verification, no temp-file rename; just enough of each protocol
 * for the SDKs' upload and download calls and container/bucket create to work.
 *
 *   node --import tsx bench/servers/ceiling.ts --dir DIR [--port 0] [--s3-port 0] [--host 127.0.0.1]
 *
 * Prints `ceiling listening on port N` and then `ceiling s3 listening on port M`
 * when ready. Exits when its parent's IPC channel closes (run as a child with
 * an 'ipc' stdio slot) or on SIGTERM.
 *
 * Blob port (`/<account>/<container>/<blob>`):
 * - PUT blob: `fs.createWriteStream(path, { flush: true, highWaterMark: 4 MiB })`
 *   (fsync before close; CONVENTIONS "Data path"), then 201 with an ETag.
 * - GET / HEAD blob: Content-Length, Content-Type, ETag, Last-Modified, the file
 *   streamed with a min(size, 1 MiB) read high-water mark.
 * - DELETE blob: unlink, 202. Container operations (`restype=container`): 201/202/200.
 *
 * S3 port (path style, `/<bucket>/<key>`), the same file handling, plus what
 * `@aws-sdk/client-s3` needs at its default settings:
 * - PutObject: an aws-chunked body (the SDK's default for a stream body) has its
 *   framing removed on the way to the file; the checksum it carries (trailer or
 *   `x-amz-checksum-*` header) is remembered, never verified. 200 with an ETag.
 * - GetObject / HeadObject: as for Blob; with `x-amz-checksum-mode: ENABLED`
 *   the remembered checksum is sent back, so the client verifies the body as
 *   it does against a real server.
 * - Bucket operations (no key): 200; DeleteObject: unlink, 204.
 * - S3 Express directory buckets (`…--x-s3`): CreateSession answers fixed credentials, and the
 *   SDK's `/<bucket>//<key>` paths name the same files as `/<bucket>/<key>` would.
 */

import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, stat, unlink } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
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
function blobFileFor (pathname: string): string | undefined {
  const parts = pathname.split('/')
  if (parts.length < 4 || parts[3] === '') return undefined
  return join(dir, encodeURIComponent(decodeURIComponent(parts.slice(2).join('/'))))
}

/** `/<bucket>/<key...>` → one flat file name per object, apart from the Blob port's. */
function s3FileFor (pathname: string): string | undefined {
  const parts = pathname.split('/')
  if (parts.length < 3 || parts[2] === '') return undefined
  return join(dir, 's3~' + encodeURIComponent(decodeURIComponent(parts.slice(1).join('/'))))
}

/**
 * Removes aws-chunked framing (`<hex size>[;ext]\r\n<data>\r\n` … `0\r\n<trailers>\r\n`)
 * and passes the data through as slices of the incoming chunks. Trailer lines
 * are kept in `trailers`; nothing is verified.
 */
class AwsChunkedDeframer extends Transform {
  readonly trailers: Record<string, string> = {}
  #state: 'size' | 'data' | 'crlf' | 'trailer' | 'done' = 'size'
  #line = ''
  #left = 0

  constructor () {
    super({ highWaterMark: WRITE_HWM })
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let i = 0
    while (i < chunk.length) {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, chunk.length - i)
        this.push(chunk.subarray(i, i + n))
        i += n
        this.#left -= n
        if (this.#left === 0) { this.#state = 'crlf'; this.#left = 2 }
      } else if (this.#state === 'crlf') {
        const n = Math.min(this.#left, chunk.length - i)
        i += n
        this.#left -= n
        if (this.#left === 0) this.#state = 'size'
      } else if (this.#state === 'done') {
        i = chunk.length
      } else {
        const nl = chunk.indexOf(10, i)
        this.#line += chunk.toString('latin1', i, nl === -1 ? chunk.length : nl + 1)
        if (this.#line.length > 4096) { cb(new Error('aws-chunked: line too long')); return }
        if (nl === -1) break
        i = nl + 1
        const line = this.#line.trimEnd()
        this.#line = ''
        if (this.#state === 'size') {
          const size = parseInt(line.split(';')[0] as string, 16)
          if (!Number.isFinite(size) || size < 0) { cb(new Error(`aws-chunked: bad chunk size line ${JSON.stringify(line.slice(0, 40))}`)); return }
          if (size === 0) this.#state = 'trailer'
          else { this.#state = 'data'; this.#left = size }
        } else if (line === '') {
          this.#state = 'done'
        } else {
          const colon = line.indexOf(':')
          if (colon > 0) this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
        }
      }
    }
    cb()
  }

  override _flush (cb: TransformCallback): void {
    cb(this.#state === 'done' || this.#state === 'trailer' ? null : new Error('aws-chunked: body ended inside a chunk'))
  }
}

/** The checksum a client sent with each S3 object (`x-amz-checksum-<alg>` → value), echoed on GET. */
const s3Checksums = new Map<string, [string, string]>()

function send (res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers })
  res.end()
}

function splitUrl (req: IncomingMessage): { pathname: string, query: URLSearchParams, method: string } {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  return { pathname: q === -1 ? url : url.slice(0, q), query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)), method: req.method ?? 'GET' }
}

/** Streams `file` back (GET) or only its headers (HEAD) with `extra` headers; 404 with `notFound` headers when missing. */
async function sendFile (req: IncomingMessage, res: ServerResponse, file: string, extra: Record<string, string>, notFound: Record<string, string>): Promise<void> {
  let st
  try {
    st = await stat(file)
  } catch {
    req.resume()
    send(res, 404, notFound)
    return
  }
  res.writeHead(200, {
    'content-length': String(st.size),
    'content-type': 'application/octet-stream',
    etag: etagOf(st.mtimeMs, st.size),
    'last-modified': st.mtime.toUTCString(),
    ...extra,
    'accept-ranges': 'bytes'
  })
  if (req.method === 'HEAD' || st.size === 0) {
    res.end()
    return
  }
  await pipeline(createReadStream(file, { highWaterMark: Math.min(st.size, READ_HWM) }), res)
}

async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { pathname, query, method } = splitUrl(req)

  if (query.get('restype') === 'container' || blobFileFor(pathname) === undefined) {
    req.resume()
    const status = method === 'PUT' ? 201 : method === 'DELETE' ? 202 : 200
    send(res, status, { etag: `"0x${(++etagCounter).toString(16)}"`, 'last-modified': new Date().toUTCString() })
    return
  }
  const file = blobFileFor(pathname) as string

  if (method === 'PUT') {
    const ws = createWriteStream(file, { flush: true, highWaterMark: WRITE_HWM })
    await pipeline(req, ws)
    const now = Date.now()
    send(res, 201, { etag: etagOf(now, ws.bytesWritten), 'last-modified': new Date(now).toUTCString() })
    return
  }

  if (method === 'GET' || method === 'HEAD') {
    await sendFile(req, res, file, { 'x-ms-blob-type': 'BlockBlob' }, { 'x-ms-error-code': 'BlobNotFound' })
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

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** CreateSession's answer for S3 Express directory buckets: credentials nobody checks. */
const SESSION_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Credentials>' +
  '<SessionToken>ceiling-session</SessionToken><SecretAccessKey>ceiling-session-secret</SecretAccessKey><AccessKeyId>CEILINGSESSION</AccessKeyId>' +
  '<Expiration>2100-01-01T00:00:00Z</Expiration></Credentials></CreateSessionResult>'

async function handleS3 (req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { pathname: rawPath, query, method } = splitUrl(req)
  if (method === 'GET' && query.has('session')) {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(SESSION_XML)) }).end(SESSION_XML)
    return
  }
  // For a directory bucket (`…--x-s3`) the JS SDK puts `//` between bucket and key.
  const pathname = rawPath.replace(/^(\/[^/]+--x-s3)\/\//, '$1/')
  const file = s3FileFor(pathname)
  if (file === undefined) {
    req.resume()
    send(res, method === 'DELETE' ? 204 : 200)
    return
  }

  if (method === 'PUT') {
    const chunked = (header(req, 'content-encoding') ?? '').includes('aws-chunked') || (header(req, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')
    const ws = createWriteStream(file, { flush: true, highWaterMark: WRITE_HWM })
    let checksum: [string, string] | undefined
    if (chunked) {
      const deframer = new AwsChunkedDeframer()
      await pipeline(req, deframer, ws)
      const name = (header(req, 'x-amz-trailer') ?? '').toLowerCase()
      const value = deframer.trailers[name]
      if (value !== undefined) checksum = [name, value]
    } else {
      await pipeline(req, ws)
      const name = Object.keys(req.headers).find((h) => h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-type')
      if (name !== undefined) checksum = [name, header(req, name) as string]
    }
    if (checksum === undefined) s3Checksums.delete(file)
    else s3Checksums.set(file, checksum)
    send(res, 200, { etag: etagOf(Date.now(), ws.bytesWritten) })
    return
  }

  if (method === 'GET' || method === 'HEAD') {
    const checksum = header(req, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED' ? s3Checksums.get(file) : undefined
    await sendFile(req, res, file, checksum === undefined ? {} : { [checksum[0]]: checksum[1], 'x-amz-checksum-type': 'FULL_OBJECT' }, {})
    return
  }

  if (method === 'DELETE') {
    req.resume()
    await unlink(file).catch(() => {})
    s3Checksums.delete(file)
    send(res, 204)
    return
  }

  req.resume()
  send(res, 501)
}

const serve = (h: typeof handle): ReturnType<typeof createServer> =>
  createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
    h(req, res).catch(() => {
      if (!res.headersSent) send(res, 500)
      else res.destroy()
    })
  })
const server = serve(handle)
const s3Server = serve(handleS3)

const host = arg('host', '127.0.0.1')
server.listen(Number(arg('port', '0')), host, () => {
  process.stdout.write(`ceiling listening on port ${(server.address() as AddressInfo).port}\n`)
  s3Server.listen(Number(arg('s3-port', '0')), host, () => {
    process.stdout.write(`ceiling s3 listening on port ${(s3Server.address() as AddressInfo).port}\n`)
  })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => {
  for (const s of [server, s3Server]) { s.close(); s.closeAllConnections() }
  process.exit(0)
})
