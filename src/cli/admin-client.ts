/**
 * What the `flush`, `drain` and `status` commands share: their flag parsing,
 * the admin API address (`--admin URL`, else the loopback admin port), HTTP
 * requests to it, NDJSON progress lines, and the errors that decide the exit
 * status.
 */

import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { parsePort } from '../config/parse.js'
import { envName } from '../config/settings.js'

export const EXIT_OK = 0
/** The admin API could not be reached or answered with an error. */
export const EXIT_FAILURE = 1
/** Unknown flag, missing value, bad URL. */
export const EXIT_USAGE = 2

export const DEFAULT_ADMIN_PORT = 10100
/** No answer (headers, or the next progress line) for this long fails the command. */
const IDLE_TIMEOUT_MS = 30_000
/** Bounds what a JSON answer or one NDJSON line may hold. */
const MAX_BODY_BYTES = 1024 * 1024

/** Where a command writes; stdout's `isTTY` and `columns` decide how progress is drawn. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
  stderr: NodeJS.WritableStream
}

/** A command line the command cannot run (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The admin API was unreachable, answered an error, or broke off (exit 1). */
export class AdminError extends Error {
  override readonly name = 'AdminError'
}

export type FlagSpec = Record<string, 'boolean' | 'value'>

/**
 * `--flag`, `--flag value` and `--flag=value` per `spec`; anything else is a UsageError
 * naming the argument. Returns the values given (`true` for boolean flags).
 */
export function parseFlags (command: string, args: readonly string[], spec: FlagSpec): Map<string, string | true> {
  const known = Object.keys(spec).map(f => `--${f}`).join(', ')
  const out = new Map<string, string | true>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(arg)
    if (m === null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} for ckptcache ${command} (flags: ${known}); see ckptcache --help`)
    const [, name, inline] = m
    const kind = spec[name]
    if (kind === undefined) throw new UsageError(`unknown flag --${name} for ckptcache ${command} (flags: ${known}); see ckptcache --help`)
    if (out.has(name)) throw new UsageError(`--${name} given more than once`)
    if (kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`)
      out.set(name, true)
    } else if (inline !== undefined) {
      out.set(name, inline)
    } else {
      const next = args[i + 1]
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`)
      out.set(name, next)
      i++
    }
  }
  return out
}

/**
 * The admin API's base URL: `--admin` when given, else `http://127.0.0.1:PORT` with PORT from
 * `--admin-port` (`portFlag`, for the commands that take it), the admin-port environment
 * variable (the one `serve` reads) or 10100. `env` is passed in by the entry point; nothing
 * here reads the process environment.
 */
export function adminBaseUrl (flag: string | true | undefined, env: NodeJS.ProcessEnv, portFlag?: string | true): URL {
  if (typeof portFlag === 'string') {
    if (flag !== undefined) throw new UsageError('give --admin URL or --admin-port PORT, not both')
    let port: number
    try {
      port = parsePort(portFlag)
    } catch (err) {
      throw new UsageError(`invalid --admin-port ${JSON.stringify(portFlag)}: ${(err as Error).message}`)
    }
    if (port === 0) throw new UsageError('--admin-port 0 is any free port: pass the port the gateway logged')
    return new URL(`http://127.0.0.1:${port}/`)
  }
  if (typeof flag === 'string') {
    let url: URL
    try {
      url = new URL(flag.includes('://') ? flag : `http://${flag}`)
    } catch {
      throw new UsageError(`invalid --admin ${JSON.stringify(flag)}: must be a URL such as http://127.0.0.1:${DEFAULT_ADMIN_PORT}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`invalid --admin ${JSON.stringify(flag)}: must be an http:// or https:// URL`)
    if (url.search !== '' || url.hash !== '') throw new UsageError(`invalid --admin ${JSON.stringify(flag)}: must have no query or fragment`)
    if (!url.pathname.endsWith('/')) url.pathname += '/'
    return url
  }
  const name = envName('admin-port')
  const text = env[name]
  let port = DEFAULT_ADMIN_PORT
  if (text !== undefined && text.trim() !== '') {
    try {
      port = parsePort(text)
    } catch (err) {
      throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: ${(err as Error).message}`)
    }
    if (port === 0) throw new UsageError(`${name} is 0 (any free port): pass the port the gateway logged with --admin URL`)
  }
  return new URL(`http://127.0.0.1:${port}/`)
}

/** The base URL as a user typed it, for messages. */
export function showUrl (base: URL): string {
  return base.href.replace(/\/$/, '')
}

/**
 * Sends a request to the admin API and resolves with the response once its headers arrive.
 * Network failures become an AdminError naming the URL and pointing at --admin.
 */
export function adminRequest (base: URL, method: string, pathAndQuery: string): Promise<IncomingMessage> {
  const url = new URL(pathAndQuery.replace(/^\//, ''), base)
  const lib = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    // No keep-alive: the command exits as soon as it has its answer.
    const req = lib.request(url, { method, agent: false, headers: { accept: 'application/json, application/x-ndjson' } })
    req.setTimeout(IDLE_TIMEOUT_MS, () => {
      req.destroy(Object.assign(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => { reject(unreachable(base, err)) })
    req.on('response', (res) => {
      res.on('error', () => {})
      resolve(res)
    })
    req.end()
  })
}

function unreachable (base: URL, err: NodeJS.ErrnoException): AdminError {
  const why = err.code ?? err.message
  return new AdminError(`cannot reach the admin API at ${showUrl(base)} (${why}): is ckptcache serving there? Point to its admin port with --admin URL (default http://127.0.0.1:${DEFAULT_ADMIN_PORT}, or the port in ${envName('admin-port')})`)
}

/** The whole body as text, at most MAX_BODY_BYTES. */
export async function readText (res: IncomingMessage): Promise<string> {
  let text = ''
  let size = 0
  res.setEncoding('utf8')
  for await (const chunk of res) {
    size += Buffer.byteLength(chunk as string)
    if (size > MAX_BODY_BYTES) {
      res.destroy()
      throw new AdminError(`the admin API answered more than ${MAX_BODY_BYTES} bytes`)
    }
    text += chunk as string
  }
  return text
}

/** The error message of a non-2xx answer (`{ error }` JSON, else the text and status). */
export async function errorOf (res: IncomingMessage): Promise<string> {
  const text = await readText(res).catch(() => '')
  try {
    const body = JSON.parse(text) as { error?: unknown }
    if (typeof body.error === 'string') return body.error
  } catch {}
  return `HTTP ${res.statusCode ?? '?'}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`
}

/**
 * The lines of a streamed body as they arrive. A body that breaks off (reset, idle timeout)
 * ends the iteration with an AdminError.
 */
export async function * readLines (res: IncomingMessage, base: URL): AsyncGenerator<string> {
  let pending = ''
  res.setEncoding('utf8')
  try {
    for await (const chunk of res) {
      pending += chunk as string
      let nl: number
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl)
        pending = pending.slice(nl + 1)
        if (line.trim() !== '') yield line
      }
      if (pending.length > MAX_BODY_BYTES) throw new AdminError('the admin API sent a progress line longer than 1 MiB')
    }
  } catch (err) {
    if (err instanceof AdminError) throw err
    const e = err as NodeJS.ErrnoException
    throw new AdminError(`the connection to the admin API at ${showUrl(base)} broke off (${e.code ?? e.message})`)
  }
  if (pending.trim() !== '') yield pending
}

/**
 * The JSON progress lines of a streamed body as they arrive; a line that is not a JSON object
 * is an AdminError.
 */
export async function * readJsonLines<T> (res: IncomingMessage, base: URL): AsyncGenerator<T> {
  for await (const text of readLines(res, base)) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      value = undefined
    }
    if (typeof value !== 'object' || value === null) {
      throw new AdminError(`the admin API at ${showUrl(base)} sent a progress line that is not JSON: ${text.slice(0, 200)}`)
    }
    yield value as T
  }
}

/**
 * Runs a command body and turns its expected failures into an exit status: a UsageError → 2, an
 * AdminError (unreachable, refused, failed) → 1, each with its message on stderr.
 */
export async function exitStatusOf (io: { stderr: { write (text: string): unknown } }, body: () => Promise<number>): Promise<number> {
  try {
    return await body()
  } catch (err) {
    if (err instanceof UsageError || err instanceof AdminError) {
      io.stderr.write(`ckptcache: ${err.message}\n`)
      return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
    }
    throw err
  }
}
