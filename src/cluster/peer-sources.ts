/**
 * Where the addresses of the peers come from: a static list, a file re-read
 * on every resolve (one `host:port` per line), and a DNS name (a Kubernetes
 * headless Service) resolved again every time. Membership probes whatever
 * this answers; the addresses name no node: the probe answer does.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { open } from 'node:fs/promises'
import { isIP } from 'node:net'
import { parsePeerAddress, parsePeersDns } from '../config/parse.js'
import { CacheError } from '../errors.js'

/** A peers file larger than this is refused (it is a list of addresses). */
const MAX_FILE_BYTES = 1024 * 1024

export type PeerLookup = (hostname: string, options: { all: true }) => Promise<Array<{ address: string, family: number }>>

export interface PeerSourcesOptions {
  /** Static `host:port` entries. */
  peers: string[]
  /** A file with one `host:port` per line; `#` starts a comment. */
  peersFile?: string
  /** `NAME:PORT`: the peers are NAME's addresses, each on PORT. */
  peersDns?: string
  /** Called once when a source starts failing (or fails differently); its last good list is kept. */
  onError?: (err: CacheError, source: 'file' | 'dns') => void
  /** The resolver; `dns.promises.lookup` unless given. */
  lookup?: PeerLookup
}

export interface PeerSources {
  /** Peer API base URLs (`http://host:port`, IPv6 in brackets) from every source, deduplicated and sorted. */
  resolve (): Promise<string[]>
}

/** Builds the sources; a bad static entry or DNS setting is a CC_ERR_INVALID_INPUT that names it. */
export function createPeerSources (opts: PeerSourcesOptions): PeerSources {
  const fixed = opts.peers.map(entry => {
    try {
      return peerUrl(parsePeerAddress(entry))
    } catch (err) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `invalid peer: ${(err as Error).message}`, { cause: err })
    }
  })
  let dns: { name: string, port: number } | undefined
  if (opts.peersDns !== undefined) {
    try {
      const spec = parsePeersDns(opts.peersDns)
      const at = spec.lastIndexOf(':')
      dns = { name: spec.slice(0, at), port: Number(spec.slice(at + 1)) }
    } catch (err) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `invalid peers DNS ${JSON.stringify(opts.peersDns)}: ${(err as Error).message}`, { cause: err })
    }
  }
  const lookup = opts.lookup ?? (dnsLookup as PeerLookup)
  const file = opts.peersFile
  const reported = { file: '', dns: '' }
  let fileGood: string[] = []
  let dnsGood: string[] = []

  function failed (source: 'file' | 'dns', err: CacheError): void {
    if (reported[source] === err.message) return
    reported[source] = err.message
    opts.onError?.(err, source)
  }

  async function fromFile (path: string): Promise<string[]> {
    try {
      fileGood = parsePeersFile(await readSmall(path), path)
      reported.file = ''
    } catch (err) {
      failed('file', err instanceof CacheError ? err : new CacheError('CC_ERR_INVALID_INPUT', `cannot read the peers file ${path}: ${(err as Error).message}`, { cause: err }))
    }
    return fileGood
  }

  async function fromDns (name: string, port: number): Promise<string[]> {
    try {
      const addrs = await lookup(name, { all: true })
      // A scoped IPv6 address (fe80::1%eth0) has no URL form; a headless Service never answers one.
      dnsGood = addrs.filter(a => !a.address.includes('%')).map(a => peerUrl(`${a.family === 6 ? `[${a.address}]` : a.address}:${port}`))
      reported.dns = ''
    } catch (err) {
      failed('dns', new CacheError('CC_ERR_PEER_UNAVAILABLE', `cannot resolve the peers DNS name ${name}: ${(err as Error).message}`, { cause: err }))
    }
    return dnsGood
  }

  return {
    async resolve () {
      const [listed, resolved] = await Promise.all([
        file === undefined ? [] : fromFile(file),
        dns === undefined ? [] : fromDns(dns.name, dns.port)
      ])
      return [...new Set([...fixed, ...listed, ...resolved])].sort()
    }
  }
}

/** `http://host:port` of a normalized `host:port` (IPv6 in brackets, written the canonical way). */
export function peerUrl (hostPort: string): string {
  const at = hostPort.lastIndexOf(':')
  let host = hostPort.slice(0, at)
  if (host.startsWith('[')) {
    const bare = host.slice(1, -1)
    if (isIP(bare) === 6) host = new URL(`http://[${bare}]/`).hostname
  }
  return `http://${host}:${hostPort.slice(at + 1)}`
}

/** The entries of a peers file: one `host:port` per line, `#` comments and blank lines ignored; a bad line fails the whole file. */
export function parsePeersFile (text: string, path: string): string[] {
  const out: string[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/#.*$/, '').trim()
    if (line === '') continue
    try {
      out.push(peerUrl(parsePeerAddress(line)))
    } catch (err) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `peers file ${path} line ${i + 1}: ${(err as Error).message}`, { cause: err })
    }
  }
  return out
}

async function readSmall (path: string): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    if (size > MAX_FILE_BYTES) {
      throw new CacheError('CC_ERR_INVALID_INPUT', `peers file ${path} is ${size} bytes: more than the ${MAX_FILE_BYTES} a list of addresses needs`)
    }
    return await fh.readFile('utf8')
  } finally {
    await fh.close()
  }
}
