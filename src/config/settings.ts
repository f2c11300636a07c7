/**
 * The table of settings: for each `Config` key, its flag, environment
 * variable, parser, default and meaning. `load.ts` reads values through it
 * and `help.ts` renders it, so the two cannot drift apart.
 */

import path from 'node:path'
import { DEV_S3_ACCESS_KEY, DEV_S3_SECRET_KEY, EMULATOR_ACCOUNT, EMULATOR_KEY, type Config } from './schema.js'
import {
  parseAccessKey,
  parseAccountName,
  parseBase64Key,
  parseChoice,
  parseDuration,
  parseHost,
  parsePort,
  parsePositiveInt,
  parseSecretKey,
  parseSize,
} from './parse.js'

/** Config as read, before `capacity: 'auto'` is resolved against the data dir's filesystem. */
export type RawConfig = Omit<Config, 'capacity' | 'capacityAuto'> & { capacity: number | 'auto' }

/** Where relative paths resolve and where the default data dir comes from. */
export interface ParseContext {
  /** The current directory for flags and environment, the file's directory for a config file. */
  baseDir: string
}

interface SettingOf<K extends keyof RawConfig> {
  key: K
  /** Flag name without the leading `--`; absent for settings only a config file can set. */
  flag?: string
  /** Argument placeholder in help. */
  arg?: string
  /** Keys and other secrets are never echoed in error messages. */
  secret?: boolean
  parse: (text: string, ctx: ParseContext) => RawConfig[K]
  /** Default, given the environment (only `dataDir` looks at it). */
  default: (env: NodeJS.ProcessEnv, cwd: string) => RawConfig[K]
  /** The default as help shows it. */
  defaultText: string
  /** Meaning, one or more help lines. */
  help: string[]
}

export type Setting = { [K in keyof RawConfig]: SettingOf<K> }[keyof RawConfig]

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const EVICTION_POLICIES = ['reject', 'lru'] as const
export const MODES = ['cache-only'] as const
export const AUTO_CAPACITY_FRACTION = 0.9
export const DEFAULT_STAGED_BLOCK_MAX_AGE_MS = 7 * 86_400_000
export const DEFAULT_MAX_REQUESTS = 1024

function parsePath (text: string, ctx: ParseContext): string {
  if (text.trim() === '') throw new Error('must not be empty')
  return path.resolve(ctx.baseDir, text)
}

export const SETTINGS: readonly Setting[] = [
  {
    key: 'dataDir',
    flag: 'data-dir',
    arg: 'DIR',
    parse: parsePath,
    default: (env, cwd) => {
      // XDG Base Directory spec: an empty or relative XDG_DATA_HOME is ignored.
      const xdg = env.XDG_DATA_HOME
      return xdg !== undefined && path.isAbsolute(xdg) ? path.join(xdg, 'ckptcache') : path.resolve(cwd, 'data')
    },
    defaultText: '$XDG_DATA_HOME/ckptcache if XDG_DATA_HOME is set, else ./data',
    help: ['Root of the local store: objects, staged blocks and temp files.'],
  },
  {
    key: 'host',
    flag: 'host',
    arg: 'ADDR',
    parse: parseHost,
    default: () => '127.0.0.1',
    defaultText: '127.0.0.1',
    help: ['Address the client ports bind to (IPv4, IPv6 or a host name).'],
  },
  {
    key: 'blobPort',
    flag: 'blob-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => 10000,
    defaultText: '10000',
    help: ['Azure Blob REST port; 0 picks any free port.'],
  },
  {
    key: 'account',
    flag: 'account',
    arg: 'NAME',
    parse: parseAccountName,
    default: () => EMULATOR_ACCOUNT,
    defaultText: EMULATOR_ACCOUNT,
    help: ['Storage account name clients use: http://HOST:PORT/NAME/container/blob.', '3-24 lowercase letters and digits.'],
  },
  {
    key: 'accountKey',
    flag: 'account-key',
    arg: 'KEY',
    secret: true,
    parse: parseBase64Key,
    default: () => EMULATOR_KEY,
    defaultText: 'the well-known storage emulator key (loopback hosts only)',
    help: ['Base64 account key that SharedKey and SAS requests are verified with.'],
  },
  {
    key: 's3Port',
    flag: 's3-port',
    arg: 'PORT',
    parse: parsePort,
    default: () => 9000,
    defaultText: '9000',
    help: ['S3 REST port (path-style http://HOST:PORT/bucket/key), on the same', '--host; 0 picks any free port.'],
  },
  {
    key: 's3AccessKey',
    flag: 's3-access-key',
    arg: 'KEY',
    parse: parseAccessKey,
    default: () => DEV_S3_ACCESS_KEY,
    defaultText: DEV_S3_ACCESS_KEY,
    help: ['Access key id S3 clients sign requests with (SigV4).'],
  },
  {
    key: 's3SecretKey',
    flag: 's3-secret-key',
    arg: 'SECRET',
    secret: true,
    parse: parseSecretKey,
    default: () => DEV_S3_SECRET_KEY,
    defaultText: `the development secret ${DEV_S3_SECRET_KEY} (loopback hosts only)`,
    help: ['Secret access key that S3 signatures are verified with.'],
  },
  {
    key: 'capacity',
    flag: 'capacity',
    arg: 'SIZE',
    parse: (text) => text.trim().toLowerCase() === 'auto' ? 'auto' : parseSize(text),
    default: () => 'auto',
    defaultText: 'auto',
    help: [
      'Bytes the store may use for objects and staged blocks, or auto: 90% of',
      'the free space on the data dir\'s filesystem, measured at start-up.',
    ],
  },
  {
    key: 'eviction',
    flag: 'eviction',
    arg: 'reject|lru',
    parse: parseChoice(EVICTION_POLICIES),
    default: () => 'reject',
    defaultText: 'reject',
    help: ['When a write does not fit: reject fails it; lru evicts the least', 'recently used objects.'],
  },
  {
    key: 'stagedBlockMaxAgeMs',
    flag: 'staged-block-max-age',
    arg: 'DURATION',
    parse: parseDuration,
    default: () => DEFAULT_STAGED_BLOCK_MAX_AGE_MS,
    defaultText: '7d',
    help: ['Uncommitted blocks older than this are deleted (Azure keeps them 7 days).'],
  },
  {
    key: 'maxRequests',
    flag: 'max-requests',
    arg: 'N',
    parse: parsePositiveInt,
    default: () => DEFAULT_MAX_REQUESTS,
    defaultText: String(DEFAULT_MAX_REQUESTS),
    help: [
      'Requests in flight per client port. Past it a request is answered 503',
      '(Blob ServerBusy, S3 SlowDown) with Retry-After, which the SDKs retry.',
    ],
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    arg: 'LEVEL',
    parse: parseChoice(LOG_LEVELS),
    default: () => 'info',
    defaultText: 'info',
    help: [`One of ${LOG_LEVELS.join(', ')}.`, 'Logs are JSON lines on stdout.'],
  },
  {
    key: 'mode',
    parse: parseChoice(MODES),
    default: () => 'cache-only',
    defaultText: 'cache-only',
    help: ['cache-only: objects live on this node only, there is no cloud tier.', 'Config file only for now; writeback modes are not implemented yet.'],
  },
]

/** `blob-port` → `CKPTCACHE_BLOB_PORT`. */
export function envName (flag: string): string {
  return 'CKPTCACHE_' + flag.toUpperCase().replace(/-/g, '_')
}

export const CONFIG_FLAG = 'config'
export const CONFIG_ENV = envName(CONFIG_FLAG)

/** How error messages name a setting: its flag, or its config-file key when it has none. */
export function settingName (setting: Setting): string {
  return setting.flag === undefined ? setting.key : `--${setting.flag}`
}
