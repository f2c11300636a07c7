/**
 * Reads the one `Config` of a node at start-up: built-in defaults < JSON
 * config file (`--config` / `CKPTCACHE_CONFIG`) < `CKPTCACHE_*` environment
 * variables < flags, each value parsed and validated where it was read so a
 * bad one is reported with the setting and the source it came from. This is
 * the only module that reads environment variables; it may use sync fs
 * because it runs once, before the node listens.
 */

import fs from 'node:fs'
import path from 'node:path'
import { DEV_S3_SECRET_KEY, EMULATOR_KEY, type Config } from './schema.js'
import { isBooleanWord, isLoopback, parseClusterSecret } from './parse.js'
import {
  AUTO_CAPACITY_FRACTION,
  AUTO_DIRTY_FRACTION,
  CONFIG_ENV,
  CONFIG_FLAG,
  SETTINGS,
  envName,
  settingName,
  type ParseContext,
  type RawConfig,
  type Setting,
} from './settings.js'

/** Invalid configuration. `message` lists every problem, one per line; each names its setting and source. */
export class ConfigError extends Error {
  readonly code = 'CC_ERR_CONFIG'
  readonly problems: readonly string[]

  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export function isConfigError (err: unknown): err is ConfigError {
  return err instanceof ConfigError
}

interface RawValue {
  setting: Setting
  text: string
  /** `the command line`, `CKPTCACHE_BLOB_PORT`, `config file /etc/ckptcache.json`. */
  source: string
  ctx: ParseContext
}

const BY_FLAG = new Map(SETTINGS.filter(s => s.flag !== undefined).map(s => [s.flag!, s]))
const BY_KEY = new Map<string, Setting>(SETTINGS.map(s => [s.key, s]))

/**
 * Builds the node's configuration from `argv` (the arguments after the
 * subcommand, e.g. `['--blob-port', '0']`) and `env` (usually `process.env`).
 * Throws a `ConfigError` naming every invalid setting and where it came from.
 */
export function loadConfig (argv: string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Config {
  const problems: string[] = []
  const cli: ParseContext = { baseDir: cwd }

  const flags = parseArgv(argv, problems)
  let configFile: { path: string, source: string } | undefined
  const configFlag = flags.config
  if (configFlag !== undefined) configFile = { path: configFlag, source: 'the command line' }
  else if (nonEmpty(env[CONFIG_ENV])) configFile = { path: env[CONFIG_ENV]!, source: CONFIG_ENV }

  // Lowest precedence first; later entries override earlier ones.
  const values: RawValue[] = []
  if (configFile !== undefined) values.push(...readConfigFile(path.resolve(cwd, configFile.path), configFile.source, problems))
  for (const setting of SETTINGS) {
    if (setting.flag === undefined) continue
    const name = envName(setting.flag)
    const text = env[name]
    if (nonEmpty(text)) values.push({ setting, text, source: name, ctx: cli })
  }
  for (const { setting, text } of flags.values) values.push({ setting, text, source: 'the command line', ctx: cli })

  const raw: Partial<Record<keyof RawConfig, unknown>> = {}
  const sources: Partial<Record<keyof RawConfig, string>> = {}
  for (const value of values) {
    try {
      raw[value.setting.key] = value.setting.parse(value.text, value.ctx)
      sources[value.setting.key] = value.source
    } catch (err) {
      const shown = value.setting.secret === true ? '' : ` ${JSON.stringify(value.text)}`
      problems.push(`invalid ${settingName(value.setting)}${shown} (from ${value.source}): ${(err as Error).message}`)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)

  for (const setting of SETTINGS) {
    if (!(setting.key in raw)) {
      const value = setting.default(env, cwd)
      if (value === undefined) continue
      raw[setting.key] = value
      sources[setting.key] = setting.key === 'dataDir' && path.isAbsolute(env.XDG_DATA_HOME ?? '') ? 'the default under XDG_DATA_HOME' : 'the default'
    }
  }
  const config = raw as RawConfig
  const from = (key: keyof RawConfig): string => `from ${sources[key]!}`

  if (config.accountKey === EMULATOR_KEY && !isLoopback(config.host)) {
    problems.push(
      `refusing to start: --host ${JSON.stringify(config.host)} (${from('host')}) is not a loopback address ` +
      `and --account-key is the well-known storage emulator key (${from('accountKey')}), which anyone can use; ` +
      `set --account-key or ${envName('account-key')} to a secret base64 key (e.g. openssl rand -base64 32), ` +
      'or bind 127.0.0.1, ::1 or localhost')
  }
  if (config.s3SecretKey === DEV_S3_SECRET_KEY && !isLoopback(config.host)) {
    problems.push(
      `refusing to start: --host ${JSON.stringify(config.host)} (${from('host')}) is not a loopback address ` +
      `and --s3-secret-key is the documented development secret (${from('s3SecretKey')}), which anyone can use; ` +
      `set --s3-secret-key or ${envName('s3-secret-key')} to a secret (e.g. openssl rand -base64 30), ` +
      'or bind 127.0.0.1, ::1 or localhost')
  }
  const existing = nearestExisting(config.dataDir)
  if (existing === config.dataDir && !fs.statSync(existing).isDirectory()) {
    problems.push(`invalid --data-dir ${JSON.stringify(config.dataDir)} (${from('dataDir')}): exists and is not a directory`)
  }
  let capacity = config.capacity
  if (capacity === 'auto' && problems.length === 0) {
    try {
      const stats = fs.statfsSync(existing)
      capacity = Math.floor(stats.bavail * stats.bsize * AUTO_CAPACITY_FRACTION)
    } catch (err) {
      problems.push(`cannot compute --capacity auto (${from('capacity')}): statfs ${JSON.stringify(existing)} failed: ${(err as Error).message}; set --capacity`)
    }
    if (capacity === 0) {
      problems.push(`cannot use --capacity auto (${from('capacity')}): the filesystem of ${JSON.stringify(existing)} has no free space; free some or set --capacity`)
    }
  }
  if (config.mode === 'cache-only') {
    for (const key of ['upstreamConnectionString', 'upstreamAccountUrl', 'upstreamContainer'] as const) {
      if (config[key] !== undefined) problems.push(`${settingName(BY_KEY.get(key)!)} (${from(key)}) needs --mode writeback or writethrough (--mode is cache-only, ${from('mode')})`)
    }
  } else if ((config.upstreamConnectionString === undefined) === (config.upstreamAccountUrl === undefined)) {
    problems.push(config.upstreamConnectionString === undefined
      ? `--mode ${config.mode} (${from('mode')}) needs an upstream: set --upstream-connection-string or --upstream-account-url`
      : `set one of --upstream-connection-string (${from('upstreamConnectionString')}) and --upstream-account-url (${from('upstreamAccountUrl')}), not both`)
  }
  const clusterSecret = checkCluster(config, from, problems)
  if (problems.length > 0) throw new ConfigError(problems)
  const dirtyLimit = config.dirtyLimit === 'auto' ? Math.max(1, Math.floor((capacity as number) * AUTO_DIRTY_FRACTION)) : config.dirtyLimit
  const { clusterSecretFile: _file, clusterSecret: _secret, ...rest } = config
  return {
    ...rest,
    ...(clusterSecret === undefined ? {} : { clusterSecret }),
    capacity: capacity as number,
    ...(config.capacity === 'auto' ? { capacityAuto: true } : {}),
    dirtyLimit,
    ...(config.dirtyLimit === 'auto' ? { dirtyLimitAuto: true } : {})
  }
}

/** Largest cluster secret file read; a secret is at most 4096 characters. */
const MAX_SECRET_FILE_BYTES = 16 * 1024

/**
 * The cluster settings checked together: a node is clustered when --peers, --peers-file or
 * --peers-dns is set; it then needs exactly one of them and a cluster secret. Reads
 * --cluster-secret-file and returns the secret (from it or from --cluster-secret).
 */
function checkCluster (config: RawConfig, from: (key: keyof RawConfig) => string, problems: string[]): string | undefined {
  let secret = config.clusterSecret
  let secretProblem = false
  if (config.clusterSecretFile !== undefined) {
    const file = config.clusterSecretFile
    const where = `--cluster-secret-file ${JSON.stringify(file)} (${from('clusterSecretFile')})`
    if (secret !== undefined) {
      problems.push(`set one of --cluster-secret (${from('clusterSecret')}) and --cluster-secret-file (${from('clusterSecretFile')}), not both`)
    } else {
      try {
        secret = parseClusterSecret(readSecretFile(file).replace(/[\r\n]+$/, ''))
      } catch (err) {
        secretProblem = true
        const e = err as NodeJS.ErrnoException
        // Messages of the parser never quote the secret; those of fs name the file only.
        problems.push(e.code !== undefined ? `cannot read ${where}: ${e.message}` : `invalid cluster secret in ${where}: ${e.message}`)
      }
    }
  }
  const sources = [
    config.peers.length > 0 ? `--peers (${from('peers')})` : undefined,
    config.peersFile !== undefined ? `--peers-file (${from('peersFile')})` : undefined,
    config.peersDns !== undefined ? `--peers-dns (${from('peersDns')})` : undefined
  ].filter((s): s is string => s !== undefined)
  if (sources.length > 1) problems.push(`set one of ${sources.slice(0, -1).join(', ')} and ${sources[sources.length - 1]!}, not more than one`)
  if (sources.length > 0 && secret === undefined && !secretProblem) {
    problems.push(
      `${sources[0]!} makes this node part of a cluster, which needs a cluster secret: set --cluster-secret-file ` +
      `(${envName('cluster-secret-file')}) or --cluster-secret (${envName('cluster-secret')}) to the same secret on every node, ` +
      'at least 16 characters (e.g. openssl rand -base64 32)')
  }
  if (config.probeTimeoutMs <= config.probeIntervalMs) {
    problems.push(
      `--probe-timeout ${config.probeTimeoutMs}ms (${from('probeTimeoutMs')}) must be longer than ` +
      `--probe-interval ${config.probeIntervalMs}ms (${from('probeIntervalMs')})`)
  }
  return secret
}

/** At most MAX_SECRET_FILE_BYTES of a file (a device or a pipe must not stall start-up for ever). */
function readSecretFile (file: string): string {
  const fd = fs.openSync(file, 'r')
  try {
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)
    let n = 0
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null)
      if (got === 0) break
      n += got
    }
    if (n > MAX_SECRET_FILE_BYTES) throw new Error(`the file is larger than ${MAX_SECRET_FILE_BYTES / 1024} KiB; it must hold the secret only`)
    return buf.subarray(0, n).toString('utf8')
  } finally {
    fs.closeSync(fd)
  }
}

interface ParsedArgv {
  values: { setting: Setting, text: string }[]
  config?: string
}

/** `--flag value` and `--flag=value`; no positional arguments. */
function parseArgv (argv: string[], problems: string[]): ParsedArgv {
  const out: ParsedArgv = { values: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (/^-[^-]/.test(arg)) {
      problems.push(`unknown flag ${arg}: ckptcache has long flags only (--name value); see ckptcache --help`)
      if (!arg.includes('=') && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) i++ // its value, most likely
      continue
    }
    if (!arg.startsWith('--') || arg === '--') {
      problems.push(`unexpected argument ${JSON.stringify(arg)}: settings are given as --flag value (see ckptcache --help)`)
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq === -1 ? undefined : eq)
    const setting = BY_FLAG.get(name)
    if (setting === undefined && name !== CONFIG_FLAG) {
      const near = suggest(name, [...BY_FLAG.keys(), CONFIG_FLAG])
      problems.push(`unknown flag --${name}${near === undefined ? '' : ` (did you mean --${near}?)`}; see ckptcache --help`)
      if (eq === -1 && i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) i++ // its value, most likely
      continue
    }
    let text: string
    if (eq !== -1) {
      text = arg.slice(eq + 1)
    } else if (setting?.kind === 'boolean') {
      // `--flag` alone is true; `--flag false` takes the next argument only when it is a boolean word.
      text = i + 1 < argv.length && isBooleanWord(argv[i + 1]!) ? argv[++i]! : 'true'
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      text = argv[++i]!
    } else {
      problems.push(`missing value for --${name}: use --${name} ${setting?.arg ?? 'FILE'} or --${name}=${setting?.arg ?? 'FILE'}`)
      continue
    }
    if (setting === undefined) out.config = text
    else out.values.push({ setting, text })
  }
  return out
}

/** The settings of a JSON config file, as raw text for the same parsers flags use. */
function readConfigFile (file: string, via: string, problems: string[]): RawValue[] {
  const where = `config file ${JSON.stringify(file)}`
  let data: unknown
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    const why = err instanceof SyntaxError ? `invalid JSON: ${err.message}` : (err as Error).message
    problems.push(`cannot read --config ${where} (from ${via}): ${why}`)
    return []
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.push(`invalid ${where} (from ${via}): must be a JSON object of settings, e.g. {"blobPort": 10000}`)
    return []
  }
  const ctx: ParseContext = { baseDir: path.dirname(file) }
  const values: RawValue[] = []
  for (const [key, value] of Object.entries(data)) {
    const setting = BY_KEY.get(key)
    if (setting === undefined) {
      const near = BY_FLAG.get(key)?.key ?? suggest(key, [...BY_KEY.keys()])
      problems.push(`unknown key ${JSON.stringify(key)} in ${where}${near === undefined ? '' : ` (did you mean "${near}"?)`}`)
      continue
    }
    const source = `${where}, key "${key}"`
    if (typeof value === 'number' && Number.isFinite(value)) {
      values.push({ setting, text: String(value), source, ctx })
    } else if (typeof value === 'string') {
      values.push({ setting, text: value, source, ctx })
    } else if (typeof value === 'boolean' && setting.kind === 'boolean') {
      values.push({ setting, text: String(value), source, ctx })
    } else if (Array.isArray(value) && setting.kind === 'list') {
      if (value.every((v): v is string => typeof v === 'string' && !v.includes(','))) values.push({ setting, text: value.join(','), source, ctx })
      else problems.push(`invalid ${settingName(setting)} (from ${source}): an array here must hold strings without commas`)
    } else {
      const allowed = setting.kind === 'boolean' ? 'true, false or a string' : setting.kind === 'list' ? 'an array of strings or a comma-separated string' : 'a string or a number'
      problems.push(`invalid ${settingName(setting)} (from ${source}): must be ${allowed}, not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
    }
  }
  return values
}

function nonEmpty (text: string | undefined): text is string {
  return text !== undefined && text !== ''
}

/** The path itself if it exists, else its closest existing ancestor. */
function nearestExisting (p: string): string {
  let dir = p
  while (!fs.existsSync(dir)) {
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return dir
}

/** The candidate within edit distance 2 of `word` (case-insensitive), if any. */
function suggest (word: string, candidates: string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}
