/**
 * Pure parsers for configuration values. Each returns the parsed value or
 * throws a plain `Error` whose message completes the sentence
 * `invalid --flag "value" (from source): <message>`; `load.ts` adds the
 * setting and its source.
 */

import { isAzureContainerName } from '../core/container-names.js'
import { isIP } from 'node:net'

/**
 * Units with an `i` are powers of 1024; every other unit is a power of 1000
 * (IEC 80000-13, the convention Kubernetes quantities use). Units are
 * case-insensitive and the trailing `B` is optional.
 */
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  p: 1e15,
  pb: 1e15,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
  pi: 2 ** 50,
  pib: 2 ** 50,
}

/** `500G` → 500e9, `1.5TiB` → 1.5 × 2^40, `4096` → 4096. Fractional bytes are rounded down. */
export function parseSize (text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text)
  const factor = match === null ? undefined : SIZE_UNITS[match[2]!.toLowerCase()]
  if (match === null || factor === undefined) {
    throw new Error('must be a number of bytes, optionally with a unit: K M G T P (powers of 1000, B optional) or KiB MiB GiB TiB PiB (powers of 1024), e.g. 500G or 1.5TiB')
  }
  if (factor === 1 && match[1]!.includes('.')) throw new Error('a number of bytes must be a whole number')
  const bytes = Math.floor(Number(match[1]) * factor)
  if (bytes <= 0) throw new Error('must be greater than zero')
  if (!Number.isSafeInteger(bytes)) throw new Error('is too large')
  return bytes
}

const DURATION_UNITS: Record<string, number> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

/** `7d`, `12h`, `30m`, `45s`, `250ms`, or a bare number of milliseconds. */
export function parseDuration (text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text)
  const factor = match === null ? undefined : DURATION_UNITS[match[2]!.toLowerCase()]
  if (match === null || factor === undefined) {
    throw new Error('must be a duration such as 7d, 12h, 30m, 45s, 250ms or a number of milliseconds')
  }
  const ms = Math.round(Number(match[1]) * factor)
  if (ms <= 0) throw new Error('must be greater than zero')
  if (!Number.isSafeInteger(ms)) throw new Error('is too large')
  return ms
}

/** A positive integer (counts, limits). */
export function parsePositiveInt (text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new Error('must be a positive integer')
  return Number(text)
}

/** A TCP port; 0 lets the OS pick a free one. */
export function parsePort (text: string): number {
  if (!/^\s*\d{1,5}\s*$/.test(text) || Number(text) > 65535) throw new Error('must be an integer 0-65535')
  return Number(text)
}

/** An IPv4/IPv6 address (brackets allowed around IPv6) or a DNS host name, normalized. */
export function parseHost (text: string): string {
  let host = text.trim()
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  if (isIP(host) !== 0) return host.toLowerCase()
  const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i
  if (host.length > 0 && host.length <= 253 && host.split('.').every(part => label.test(part))) return host.toLowerCase()
  throw new Error('must be an IP address or a host name')
}

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped ::ffff:127.x.y.z) and `localhost`. */
export function isLoopback (host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** Azure storage account names: 3–24 lowercase letters and digits. */
export function parseAccountName (text: string): string {
  if (!/^[a-z0-9]{3,24}$/.test(text)) throw new Error('must be 3-24 lowercase letters and digits')
  return text
}

/** A non-empty, padded, standard-alphabet base64 string (what the Azure portal shows). */
export function parseBase64Key (text: string): string {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw new Error('must be base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)')
  }
  return text
}

/** One of a fixed list of words. */
export function parseChoice<T extends string> (choices: readonly T[]): (text: string) => T {
  return (text) => {
    if ((choices as readonly string[]).includes(text)) return text as T
    throw new Error(`must be one of ${choices.join(', ')}`)
  }
}

/** An S3 access key id: 3-128 characters of A-Z a-z 0-9 and . _ - (no `/`, which the SigV4 credential scope splits on). */
export function parseAccessKey (text: string): string {
  if (!/^[A-Za-z0-9._-]{3,128}$/.test(text)) throw new Error('must be 3-128 characters of A-Z a-z 0-9 . _ -')
  return text
}

/** An S3 secret access key: 8-128 printable ASCII characters without spaces. */
export function parseSecretKey (text: string): string {
  if (!/^[\x21-\x7e]{8,128}$/.test(text)) throw new Error('must be 8-128 printable ASCII characters without spaces')
  return text
}

/** A whole number ≥ 0. */
export function parseNonNegativeInt (text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(Number(text))) throw new Error('must be a whole number (0 or more)')
  return Number(text)
}

/** An Azure block size: 1 MiB to 4000 MiB. */
export function parseBlockSize (text: string): number {
  const bytes = parseSize(text)
  if (bytes < 2 ** 20 || bytes > 4000 * 2 ** 20) throw new Error('must be between 1MiB and 4000MiB')
  return bytes
}

/** The largest single Put Blob: 1 MiB to 5000 MiB. */
export function parseSinglePutSize (text: string): number {
  const bytes = parseSize(text)
  if (bytes < 2 ** 20 || bytes > 5000 * 2 ** 20) throw new Error('must be between 1MiB and 5000MiB')
  return bytes
}

/** An Azure Storage connection string: `;`-separated `Key=Value` pairs with an account key or a SAS. */
export function parseConnectionString (text: string): string {
  const pairs = new Map<string, string>()
  for (const part of text.split(';')) {
    if (part.trim() === '') continue
    const eq = part.indexOf('=')
    if (eq <= 0) throw new Error('must be Key=Value pairs separated by ;')
    pairs.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  const hasKey = pairs.has('accountname') && pairs.has('accountkey')
  const hasSas = pairs.has('sharedaccesssignature') && (pairs.has('blobendpoint') || pairs.has('accountname'))
  if (!hasKey && !hasSas) throw new Error('must hold AccountName and AccountKey, or SharedAccessSignature and BlobEndpoint')
  return text
}

/** An http(s) URL. */
export function parseUrl (text: string): string {
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    throw new Error('must be a URL such as https://ACCOUNT.blob.core.windows.net')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http or https URL')
  return url.toString().replace(/\/$/, '')
}

/** An Azure container name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit. */
export function parseContainerName (text: string): string {
  if (!isAzureContainerName(text)) throw new Error('must be an Azure container name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit')
  return text
}

/** Comma-separated base-name globs (`*`, `?`), none empty, none with `/`. */
export function parseGlobList (text: string): string[] {
  const globs = text.split(',').map((g) => g.trim())
  if (globs.some((g) => g === '' || g.includes('/'))) throw new Error('must be comma-separated base-name patterns such as .metadata,_SUCCESS,*.complete (no empty entries, no /)')
  return globs
}

/** identity | hash[:N] | round-robin:P1,P2,… | binary[:MINLEN] | hex[:MINLEN]. */
export function parseLayoutSpec (text: string): string {
  const spec = text.trim()
  const m = /^(identity|hash|round-robin|binary|hex)(?::(.*))?$/.exec(spec)
  if (m === null) throw new Error('must be identity, hash[:N], round-robin:P1,P2,..., binary[:MINLEN] or hex[:MINLEN]')
  const [, kind, arg] = m
  if (kind === 'identity' && arg !== undefined) throw new Error('identity takes no argument')
  if ((kind === 'hash' || kind === 'binary' || kind === 'hex') && arg !== undefined) {
    const max = kind === 'hash' ? 8 : kind === 'binary' ? 32 : 8
    if (!/^\d+$/.test(arg) || Number(arg) < 1 || Number(arg) > max) throw new Error(`${kind}:N needs N from 1 to ${max}`)
  }
  if (kind === 'round-robin') {
    const prefixes = (arg ?? '').split(',')
    if (arg === undefined || prefixes.some((p) => !/^[A-Za-z0-9._-]+$/.test(p))) throw new Error('round-robin needs a comma-separated list of prefixes of letters, digits, . _ -')
    if (prefixes.some((p) => p === '.' || p === '..')) throw new Error('round-robin prefixes cannot be . or .. (URL dot-segments)')
  }
  return spec
}

const TRUE_WORDS = ['true', 'yes', 'on', '1']
const FALSE_WORDS = ['false', 'no', 'off', '0']

/** true/false, yes/no, on/off, 1/0 (case-insensitive). */
export function parseBoolean (text: string): boolean {
  const word = text.trim().toLowerCase()
  if (TRUE_WORDS.includes(word)) return true
  if (FALSE_WORDS.includes(word)) return false
  throw new Error('must be true or false (also yes/no, on/off, 1/0)')
}

/** True when `text` is one of the words `parseBoolean` accepts. */
export function isBooleanWord (text: string): boolean {
  const word = text.trim().toLowerCase()
  return TRUE_WORDS.includes(word) || FALSE_WORDS.includes(word)
}

/** A node id: 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit. */
export function parseNodeId (text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(text)) throw new Error('must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit')
  return text
}

/**
 * A peer address `host:port`: an IPv4 address, a host name or an IPv6 address in
 * brackets (`[fd00::1]:10102`), and a port 1-65535. Returned normalized (host lowercased).
 */
export function parsePeerAddress (text: string): string {
  const entry = text.trim()
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d{1,5})$/.exec(entry)
  if (m === null) {
    throw new Error(`${JSON.stringify(entry)} is not host:port (IPv6 addresses in brackets: [fd00::1]:10102)`)
  }
  const [, rawHost, portText] = m
  const port = Number(portText)
  if (port < 1 || port > 65535) throw new Error(`${JSON.stringify(entry)} has port ${portText}: must be 1-65535`)
  const bracketed = rawHost!.startsWith('[')
  let host: string
  try {
    host = parseHost(rawHost!)
  } catch {
    throw new Error(`${JSON.stringify(entry)} has an invalid host: must be an IP address (IPv6 in brackets) or a host name`)
  }
  if (bracketed && isIP(host) !== 6) throw new Error(`${JSON.stringify(entry)}: only IPv6 addresses go in brackets`)
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
}

/** Comma-separated peer addresses (`host:port,…`), each listed once; an empty text is no peers. */
export function parsePeerList (text: string): string[] {
  if (text.trim() === '') return []
  const peers: string[] = []
  for (const part of text.split(',')) {
    if (part.trim() === '') throw new Error('has an empty entry: must be host:port entries separated by commas')
    const peer = parsePeerAddress(part)
    if (peers.includes(peer)) throw new Error(`lists ${peer} more than once`)
    peers.push(peer)
  }
  return peers
}

/** `NAME:PORT`: a DNS name (e.g. a Kubernetes headless Service) and the peer port its addresses listen on. */
export function parsePeersDns (text: string): string {
  const m = /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(text)
  const port = m === null ? 0 : Number(m[2])
  if (m === null || port < 1 || port > 65535) throw new Error('must be NAME:PORT, e.g. ckptcache-peers.default.svc.cluster.local:10102 (port 1-65535)')
  let host: string
  try {
    host = parseHost(m[1]!)
  } catch {
    throw new Error(`${JSON.stringify(m[1])} is not a DNS name`)
  }
  if (isIP(host) !== 0) throw new Error(`${JSON.stringify(m[1])} is an address, not a DNS name: list fixed addresses with --peers`)
  return `${host}:${port}`
}

/** Minimum length of the cluster secret. */
export const MIN_CLUSTER_SECRET_LENGTH = 16

/** The shared secret peer requests are signed with: 16-4096 characters, no control characters. */
export function parseClusterSecret (text: string): string {
  if (text.length < MIN_CLUSTER_SECRET_LENGTH) throw new Error(`must be at least ${MIN_CLUSTER_SECRET_LENGTH} characters (e.g. openssl rand -base64 32)`)
  if (text.length > 4096) throw new Error('must be at most 4096 characters')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new Error('must not contain control characters or line breaks')
  return text
}

/** Copies of each object: 1-16. */
export function parseReplicas (text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1 || Number(text) > 16) throw new Error('must be a whole number from 1 to 16')
  return Number(text)
}

/** A rate in bytes per second: a size, optionally followed by `/s` (`256MiB`, `1GB/s`). */
export function parseRate (text: string): number {
  return parseSize(text.replace(/\/s\s*$/i, ''))
}
