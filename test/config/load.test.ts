import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { isLoopback, parseDuration, parseSize } from '../../src/config/parse.js'
import { DEV_S3_ACCESS_KEY, DEV_S3_SECRET_KEY, EMULATOR_ACCOUNT, EMULATOR_KEY } from '../../src/config/schema.js'

const OTHER_KEY = Buffer.alloc(32, 7).toString('base64')

/** The problems a ConfigError lists; fails the test when nothing is thrown. */
function problemsOf (t: Test, fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    t.type(err, ConfigError)
    t.equal((err as ConfigError).code, 'CC_ERR_CONFIG')
    t.equal((err as Error).message, (err as ConfigError).problems.join('\n'))
    return [...(err as ConfigError).problems]
  }
  t.fail('expected a ConfigError')
  return []
}

function writeJson (dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
  return file
}


/** The cluster settings' defaults (a node without peers carries them unused). */
const CLUSTER_DEFAULTS = {
  peerHost: '127.0.0.1',
  peerPort: 10102,
  peers: [],
  replicas: 2,
  ack: 'all',
  probeIntervalMs: 1000,
  probeTimeoutMs: 5000,
  refillGraceMs: 60000,
  refillRate: 256 * 2 ** 20,
  peerReadCache: false,
  replayWindowMs: 60000,
}

t.test('defaults', async t => {
  const cwd = t.testdir()
  const config = loadConfig([], {}, cwd)
  const free = fs.statfsSync(cwd)
  const expectedCapacity = free.bavail * free.bsize * 0.9
  t.match(config, {
    dataDir: path.join(cwd, 'data'),
    host: '127.0.0.1',
    blobPort: 10000,
    s3Port: 9000,
    s3AccessKey: DEV_S3_ACCESS_KEY,
    s3SecretKey: DEV_S3_SECRET_KEY,
    account: EMULATOR_ACCOUNT,
    accountKey: EMULATOR_KEY,
    eviction: 'reject',
    stagedBlockMaxAgeMs: 7 * 24 * 3600 * 1000,
    maxRequests: 1024,
    mode: 'cache-only',
    logLevel: 'info',
  })
  t.ok(Number.isSafeInteger(config.capacity) && config.capacity > 0, 'capacity is a positive whole number of bytes')
  // Others write to this filesystem at the same time: allow 1 GiB of drift.
  t.ok(Math.abs(config.capacity - expectedCapacity) < 2 ** 30, `capacity auto ${config.capacity} ≈ 90% of free ${expectedCapacity}`)
  t.same(Object.keys(config).sort(), [
    'account', 'accountKey', 'adminPort', 'blobPort', 'blockConcurrency', 'capacity', 'capacityAuto', 'dataDir', 'dirtyLimit', 'dirtyLimitAuto',
    'eviction', 'host', 'layout', 'logLevel', 'markerPatterns', 'maxRequests', 'mode', 'revalidateAfterMs', 's3AccessKey', 's3Port', 's3SecretKey',
    'stagedBlockMaxAgeMs', 'uploadBlockSize', 'uploadSingleMax', 'upstreamMaxRps', 'writebackConcurrency', ...Object.keys(CLUSTER_DEFAULTS)].sort())
  t.match(config, CLUSTER_DEFAULTS)
  t.match(config, { adminPort: 10100, layout: 'identity', uploadBlockSize: 8 * 2 ** 20, uploadSingleMax: 256 * 2 ** 20, writebackConcurrency: 8, blockConcurrency: 4, upstreamMaxRps: 0, markerPatterns: ['.metadata', '_SUCCESS', '*.complete'], revalidateAfterMs: 600_000 })
  t.equal(config.dirtyLimit, Math.floor(config.capacity * 0.5), 'dirty limit auto: half the capacity')
})

t.test('default data dir', async t => {
  t.equal(loadConfig([], {}).dataDir, path.resolve('data'), './data relative to the current directory')
  t.equal(loadConfig([], { XDG_DATA_HOME: '/srv/xdg' }).dataDir, '/srv/xdg/ckptcache')
  t.equal(loadConfig([], { XDG_DATA_HOME: '' }).dataDir, path.resolve('data'), 'empty XDG_DATA_HOME is ignored')
  t.equal(loadConfig([], { XDG_DATA_HOME: 'rel/xdg' }).dataDir, path.resolve('data'), 'relative XDG_DATA_HOME is ignored (XDG spec)')
  t.equal(loadConfig(['--data-dir', '/d'], { XDG_DATA_HOME: '/srv/xdg' }).dataDir, '/d', 'a flag beats XDG_DATA_HOME')
})

t.test('capacity auto measures the nearest existing ancestor', async t => {
  const dir = t.testdir()
  const config = loadConfig(['--data-dir', path.join(dir, 'not', 'yet', 'created')], {})
  const free = fs.statfsSync(dir)
  t.ok(Math.abs(config.capacity - free.bavail * free.bsize * 0.9) < 2 ** 30)
  t.notOk(fs.existsSync(path.join(dir, 'not')), 'loading config creates nothing')
})

t.test('precedence: defaults < config file < environment < flags', async t => {
  const dir = t.testdir()
  const file = writeJson(dir, 'ckpt.json', {
    blobPort: 1111,
    account: 'fromfile',
    logLevel: 'warn',
    eviction: 'lru',
    capacity: 4096,
  })
  const env = { CKPTCACHE_CONFIG: file, CKPTCACHE_BLOB_PORT: '2222', CKPTCACHE_ACCOUNT: 'fromenv', CKPTCACHE_LOG_LEVEL: 'debug' }
  const config = loadConfig(['--blob-port', '3333', '--log-level=trace'], env)
  t.equal(config.blobPort, 3333, 'flag beats env and file')
  t.equal(config.logLevel, 'trace', '--flag=value beats env and file')
  t.equal(config.account, 'fromenv', 'env beats file')
  t.equal(config.eviction, 'lru', 'file beats default')
  t.equal(config.capacity, 4096, 'file beats default')
  t.equal(config.host, '127.0.0.1', 'default where nothing is set')

  const fromFile = loadConfig([], { CKPTCACHE_CONFIG: file })
  t.equal(fromFile.blobPort, 1111)
  t.equal(fromFile.account, 'fromfile')
})

t.test('--config beats CKPTCACHE_CONFIG; empty variables are unset', async t => {
  const dir = t.testdir()
  const a = writeJson(dir, 'a.json', { blobPort: 1 })
  const b = writeJson(dir, 'b.json', { blobPort: 2 })
  t.equal(loadConfig(['--config', b], { CKPTCACHE_CONFIG: a }).blobPort, 2)
  t.equal(loadConfig([`--config=${a}`], {}).blobPort, 1)
  t.equal(loadConfig([], { CKPTCACHE_CONFIG: '', CKPTCACHE_BLOB_PORT: '' }).blobPort, 10000)
  t.equal(loadConfig(['--config', 'b.json'], {}, dir).blobPort, 2, 'relative --config resolves against the current directory')
})

t.test('every setting from the environment and from a file', async t => {
  const dir = t.testdir()
  const env = {
    CKPTCACHE_DATA_DIR: 'store',
    CKPTCACHE_HOST: '::1',
    CKPTCACHE_BLOB_PORT: '0',
    CKPTCACHE_ACCOUNT: 'acct1',
    CKPTCACHE_ACCOUNT_KEY: OTHER_KEY,
    CKPTCACHE_S3_PORT: '0',
    CKPTCACHE_S3_ACCESS_KEY: 'AKIDENV',
    CKPTCACHE_S3_SECRET_KEY: 'env-secret-key',
    CKPTCACHE_CAPACITY: '10GB',
    CKPTCACHE_EVICTION: 'lru',
    CKPTCACHE_STAGED_BLOCK_MAX_AGE: '12h',
    CKPTCACHE_MAX_REQUESTS: '64',
    CKPTCACHE_LOG_LEVEL: 'silent',
    CKPTCACHE_MODE: 'writeback',
    CKPTCACHE_UPSTREAM_CONNECTION_STRING: 'AccountName=acct;AccountKey=' + OTHER_KEY,
    CKPTCACHE_UPSTREAM_CONTAINER: 'checkpoints',
    CKPTCACHE_LAYOUT: 'round-robin:a,b',
    CKPTCACHE_DIRTY_LIMIT: '2GB',
    CKPTCACHE_ADMIN_PORT: '0',
    CKPTCACHE_UPLOAD_BLOCK_SIZE: '16MiB',
    CKPTCACHE_UPLOAD_SINGLE_MAX: '1GiB',
    CKPTCACHE_WRITEBACK_CONCURRENCY: '2',
    CKPTCACHE_BLOCK_CONCURRENCY: '3',
    CKPTCACHE_UPSTREAM_MAX_RPS: '500',
    CKPTCACHE_MARKER_PATTERNS: '.metadata,*.done',
    CKPTCACHE_REVALIDATE_AFTER: '0',
  }
  t.same(loadConfig([], env, dir), {
    ...CLUSTER_DEFAULTS,
    dataDir: path.join(dir, 'store'),
    host: '::1',
    blobPort: 0,
    s3Port: 0,
    s3AccessKey: 'AKIDENV',
    s3SecretKey: 'env-secret-key',
    account: 'acct1',
    accountKey: OTHER_KEY,
    capacity: 10e9,
    eviction: 'lru',
    stagedBlockMaxAgeMs: 12 * 3600e3,
    maxRequests: 64,
    mode: 'writeback',
    logLevel: 'silent',
    upstreamConnectionString: 'AccountName=acct;AccountKey=' + OTHER_KEY,
    upstreamContainer: 'checkpoints',
    layout: 'round-robin:a,b',
    dirtyLimit: 2e9,
    adminPort: 0,
    uploadBlockSize: 16 * 2 ** 20,
    uploadSingleMax: 2 ** 30,
    writebackConcurrency: 2,
    blockConcurrency: 3,
    upstreamMaxRps: 500,
    markerPatterns: ['.metadata', '*.done'],
    revalidateAfterMs: 0,
  })

  const sub = path.join(dir, 'etc')
  fs.mkdirSync(sub)
  const file = writeJson(sub, 'ckpt.json', {
    dataDir: '../nvme',
    host: 'localhost',
    blobPort: 10001,
    s3Port: 9001,
    s3AccessKey: 'AKIDFILE',
    s3SecretKey: 'file-secret-key',
    account: 'acct2',
    accountKey: OTHER_KEY,
    capacity: '1.5TiB',
    eviction: 'reject',
    stagedBlockMaxAgeMs: 60000,
    maxRequests: 4096,
    mode: 'cache-only',
    logLevel: 'error',
  })
  t.same(loadConfig(['--config', file], {}, '/'), {
    ...CLUSTER_DEFAULTS,
    dataDir: path.join(dir, 'nvme'),
    host: 'localhost',
    blobPort: 10001,
    s3Port: 9001,
    s3AccessKey: 'AKIDFILE',
    s3SecretKey: 'file-secret-key',
    account: 'acct2',
    accountKey: OTHER_KEY,
    capacity: 1.5 * 2 ** 40,
    eviction: 'reject',
    stagedBlockMaxAgeMs: 60000,
    maxRequests: 4096,
    mode: 'cache-only',
    logLevel: 'error',
    layout: 'identity',
    dirtyLimit: 0.75 * 2 ** 40,
    dirtyLimitAuto: true,
    adminPort: 10100,
    uploadBlockSize: 8 * 2 ** 20,
    uploadSingleMax: 256 * 2 ** 20,
    writebackConcurrency: 8,
    blockConcurrency: 4,
    upstreamMaxRps: 0,
    markerPatterns: ['.metadata', '_SUCCESS', '*.complete'],
    revalidateAfterMs: 600_000,
  }, 'relative paths in a file resolve against its directory')
  t.equal(loadConfig(['--config', writeJson(sub, 'd.json', { stagedBlockMaxAgeMs: '30m' })], {}).stagedBlockMaxAgeMs, 30 * 60e3,
    'a duration string in the file')
})

t.test('cloud tier settings are checked together', async t => {
  t.same(problemsOf(t, () => loadConfig(['--mode', 'writeback'], {})), [
    '--mode writeback (from the command line) needs an upstream: set --upstream-connection-string or --upstream-account-url'])
  t.same(problemsOf(t, () => loadConfig(['--upstream-account-url', 'https://a.blob.core.windows.net'], {})), [
    '--upstream-account-url (from the command line) needs --mode writeback or writethrough (--mode is cache-only, from the default)'])
  t.same(problemsOf(t, () => loadConfig(['--mode', 'writethrough', '--upstream-account-url', 'https://a.blob.core.windows.net', '--upstream-connection-string', 'AccountName=a;AccountKey=' + OTHER_KEY], {})), [
    'set one of --upstream-connection-string (from the command line) and --upstream-account-url (from the command line), not both'])
  t.same(problemsOf(t, () => loadConfig(['--upstream-connection-string', 'AccountName=a'], {})), [
    'invalid --upstream-connection-string (from the command line): must hold AccountName and AccountKey, or SharedAccessSignature and BlobEndpoint'], 'the secret is not echoed')
  t.same(problemsOf(t, () => loadConfig(['--layout', 'round-robin:'], {})), [
    'invalid --layout "round-robin:" (from the command line): round-robin needs a comma-separated list of prefixes of letters, digits, . _ -'])
  t.same(problemsOf(t, () => loadConfig(['--upload-block-size', '512KiB'], {})), [
    'invalid --upload-block-size "512KiB" (from the command line): must be between 1MiB and 4000MiB'])
  t.same(problemsOf(t, () => loadConfig(['--marker-patterns', 'a,,b'], {})), [
    'invalid --marker-patterns "a,,b" (from the command line): must be comma-separated base-name patterns such as .metadata,_SUCCESS,*.complete (no empty entries, no /)'])
  t.equal(loadConfig(['--mode', 'writeback', '--upstream-account-url', 'https://a.blob.core.windows.net/', '--capacity', '10GB'], {}).dirtyLimit, 5e9)
})

t.test('sizes', async t => {
  const ok: [string, number][] = [
    ['4096', 4096],
    ['500G', 500e9],
    ['500GB', 500e9],
    ['500g', 500e9],
    ['10GB', 10e9],
    ['1k', 1000],
    ['1KB', 1000],
    ['2M', 2e6],
    ['3T', 3e12],
    ['1P', 1e15],
    ['1Ki', 1024],
    ['1KiB', 1024],
    ['2MiB', 2 * 2 ** 20],
    ['8GiB', 8 * 2 ** 30],
    ['8gib', 8 * 2 ** 30],
    ['1.5TiB', 1649267441664],
    ['2PiB', 2 * 2 ** 50],
    ['0.5KiB', 512],
    ['1.0001K', 1000],
    ['64B', 64],
  ]
  for (const [text, bytes] of ok) t.equal(parseSize(text), bytes, text)
  for (const text of ['', 'G', '1.5', '1e9', '12XB', '5 gigs', '0', '0K', '-1', '1,000', '99999P']) {
    t.throws(() => parseSize(text), Error, `rejects ${JSON.stringify(text)}`)
  }
  t.equal(loadConfig(['--capacity', '1.5TiB'], {}).capacity, 1649267441664)
  t.equal(loadConfig(['--capacity', 'AUTO'], {}).capacity > 0, true)
})

t.test('durations', async t => {
  const ok: [string, number][] = [
    ['7d', 7 * 86400e3],
    ['12h', 12 * 3600e3],
    ['30m', 30 * 60e3],
    ['45s', 45e3],
    ['250ms', 250],
    ['60000', 60000],
    ['1.5h', 5400e3],
  ]
  for (const [text, ms] of ok) t.equal(parseDuration(text), ms, text)
  for (const text of ['', '7 days', '1w', '0', '0s', '-1s', 'h', '1h30m']) {
    t.throws(() => parseDuration(text), Error, `rejects ${JSON.stringify(text)}`)
  }
  t.equal(loadConfig(['--staged-block-max-age', '30m'], {}).stagedBlockMaxAgeMs, 30 * 60e3)
})

t.test('every invalid setting is named with its source', async t => {
  const cases: [string[], NodeJS.ProcessEnv, string][] = [
    [[], { CKPTCACHE_BLOB_PORT: 'abc' }, 'invalid --blob-port "abc" (from CKPTCACHE_BLOB_PORT): must be an integer 0-65535'],
    [['--blob-port', '65536'], {}, 'invalid --blob-port "65536" (from the command line): must be an integer 0-65535'],
    [['--blob-port=-1'], {}, 'invalid --blob-port "-1" (from the command line): must be an integer 0-65535'],
    [['--host', 'bad host!'], {}, 'invalid --host "bad host!" (from the command line): must be an IP address or a host name'],
    [[], { CKPTCACHE_ACCOUNT: 'Upper' }, 'invalid --account "Upper" (from CKPTCACHE_ACCOUNT): must be 3-24 lowercase letters and digits'],
    [['--account', 'ab'], {}, 'invalid --account "ab" (from the command line): must be 3-24 lowercase letters and digits'],
    [['--account', 'a'.repeat(25)], {}, `invalid --account "${'a'.repeat(25)}" (from the command line): must be 3-24 lowercase letters and digits`],
    [['--account', 'my-acct'], {}, 'invalid --account "my-acct" (from the command line): must be 3-24 lowercase letters and digits'],
    [['--capacity', '12XB'], {}, 'invalid --capacity "12XB" (from the command line): must be a number of bytes'],
    [[], { CKPTCACHE_CAPACITY: '0' }, 'invalid --capacity "0" (from CKPTCACHE_CAPACITY): must be greater than zero'],
    [['--eviction', 'fifo'], {}, 'invalid --eviction "fifo" (from the command line): must be one of reject, lru'],
    [[], { CKPTCACHE_STAGED_BLOCK_MAX_AGE: '7 days' }, 'invalid --staged-block-max-age "7 days" (from CKPTCACHE_STAGED_BLOCK_MAX_AGE): must be a duration'],
    [['--log-level', 'verbose'], {}, 'invalid --log-level "verbose" (from the command line): must be one of fatal, error, warn, info, debug, trace, silent'],
    [['--data-dir='], {}, 'invalid --data-dir "" (from the command line): must not be empty'],
    [['--bogus'], {}, 'unknown flag --bogus; see ckptcache --help'],
    [['--blob-prot', '1'], {}, 'unknown flag --blob-prot (did you mean --blob-port?); see ckptcache --help'],
    [['--help'], {}, 'unknown flag --help'],
    [['-p', '1'], {}, 'unknown flag -p: ckptcache has long flags only'],
    [['serve'], {}, 'unexpected argument "serve"'],
    [['--blob-port'], {}, 'missing value for --blob-port: use --blob-port PORT or --blob-port=PORT'],
    [['--host', '--blob-port', '1'], {}, 'missing value for --host'],
    [['--config'], {}, 'missing value for --config'],
  ]
  for (const [argv, env, message] of cases) {
    const problems = problemsOf(t, () => loadConfig(argv, env))
    t.equal(problems.length, 1, `one problem for ${JSON.stringify({ argv, env })}`)
    t.ok(problems[0]?.startsWith(message), `${problems[0]} starts with ${message}`)
  }
})

t.test('an invalid account key is named but never echoed', async t => {
  for (const key of ['not base64!', 'abc', 'YWJj=', 'YW=j']) {
    const [problem] = problemsOf(t, () => loadConfig([], { CKPTCACHE_ACCOUNT_KEY: key }))
    t.match(problem, /^invalid --account-key \(from CKPTCACHE_ACCOUNT_KEY\): must be base64/)
    t.notOk(problem!.includes(key), 'the key is not in the message')
  }
})

t.test('config file errors', async t => {
  const dir = t.testdir()
  const missing = path.join(dir, 'missing.json')
  t.match(problemsOf(t, () => loadConfig(['--config', missing], {})),
    [new RegExp(`^cannot read --config config file "${missing}" \\(from the command line\\): ENOENT`)])
  const broken = writeJson(dir, 'broken.json', '{"blobPort": 1,}')
  t.match(problemsOf(t, () => loadConfig([], { CKPTCACHE_CONFIG: broken })),
    [/^cannot read --config config file ".*broken.json" \(from CKPTCACHE_CONFIG\): invalid JSON/])
  const array = writeJson(dir, 'array.json', [1])
  t.match(problemsOf(t, () => loadConfig(['--config', array], {})), [/must be a JSON object of settings/])

  const file = writeJson(dir, 'bad.json', {
    blobPort: 'abc',
    'blob-port': 1,
    stagedBlockMaxAge: '7d',
    colour: 'blue',
    eviction: true,
    mode: 'write-back',
    accountKey: 'nope!',
  })
  const where = `config file "${file}"`
  t.same(problemsOf(t, () => loadConfig(['--config', file], {})), [
    `unknown key "blob-port" in ${where} (did you mean "blobPort"?)`,
    `unknown key "stagedBlockMaxAge" in ${where} (did you mean "stagedBlockMaxAgeMs"?)`,
    `unknown key "colour" in ${where}`,
    `invalid --eviction (from ${where}, key "eviction"): must be a string or a number, not boolean`,
    `invalid --blob-port "abc" (from ${where}, key "blobPort"): must be an integer 0-65535`,
    `invalid --mode "write-back" (from ${where}, key "mode"): must be one of cache-only, writeback, writethrough`,
    `invalid --account-key (from ${where}, key "accountKey"): must be base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)`,
  ], 'all problems at once, in file order after structural ones')
})

t.test('a bad value is an error even where a higher source overrides it', async t => {
  const problems = problemsOf(t, () => loadConfig(['--blob-port', '1'], { CKPTCACHE_BLOB_PORT: 'abc' }))
  t.match(problems, [/CKPTCACHE_BLOB_PORT/])
})

t.test('data dir that is a file', async t => {
  const dir = t.testdir({ afile: 'x' })
  t.match(problemsOf(t, () => loadConfig(['--data-dir', path.join(dir, 'afile')], {})),
    [/^invalid --data-dir ".*afile" \(from the command line\): exists and is not a directory$/])
})

t.test('the emulator key is refused off loopback', async t => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
    t.doesNotThrow(() => loadConfig(['--host', host], {}), `${host} is loopback`)
  }
  for (const host of ['0.0.0.0', '::', '10.1.2.3', '128.0.0.1', 'fe80::1', 'node1.example.com', '::ffff:10.0.0.1']) {
    const [problem] = problemsOf(t, () => loadConfig(['--host', host], {}))
    t.match(problem, /^refusing to start: --host ".*" \(from the command line\) is not a loopback address and --account-key is the well-known storage emulator key \(from the default\)/, host)
  }
  t.match(problemsOf(t, () => loadConfig(['--account-key', EMULATOR_KEY], { CKPTCACHE_HOST: '0.0.0.0' })),
    [/--host "0.0.0.0" \(from CKPTCACHE_HOST\).*emulator key \(from the command line\)/], 'also when the emulator key is given explicitly')
  const config = loadConfig(['--host', '0.0.0.0', '--account-key', OTHER_KEY, '--s3-secret-key', 'a-real-secret'], {})
  t.equal(config.host, '0.0.0.0')
  t.equal(config.accountKey, OTHER_KEY, 'a real key may bind any address')
  t.equal(config.s3SecretKey, 'a-real-secret')
  t.equal(isLoopback('127.255.255.254'), true)
  t.equal(isLoopback('localhost.example.com'), false)
})

t.test('the development S3 secret is refused off loopback', async t => {
  t.doesNotThrow(() => loadConfig(['--host', '::1'], {}))
  const problems = problemsOf(t, () => loadConfig(['--host', '10.1.2.3', '--account-key', OTHER_KEY], {}))
  t.equal(problems.length, 1)
  t.match(problems[0], /^refusing to start: --host "10.1.2.3" \(from the command line\) is not a loopback address and --s3-secret-key is the documented development secret \(from the default\)/)
  t.match(problemsOf(t, () => loadConfig(['--account-key', OTHER_KEY], { CKPTCACHE_HOST: '0.0.0.0', CKPTCACHE_S3_SECRET_KEY: DEV_S3_SECRET_KEY })),
    [/--s3-secret-key is the documented development secret \(from CKPTCACHE_S3_SECRET_KEY\)/])
  const config = loadConfig(['--host', '0.0.0.0', '--account-key', OTHER_KEY], { CKPTCACHE_S3_SECRET_KEY: 'x'.repeat(40), CKPTCACHE_S3_ACCESS_KEY: 'AKIAOTHER' })
  t.equal(config.s3AccessKey, 'AKIAOTHER')
})

t.test('S3 settings are validated; the secret is never echoed', async t => {
  t.same(problemsOf(t, () => loadConfig(['--s3-port', '70000'], {})), ['invalid --s3-port "70000" (from the command line): must be an integer 0-65535'])
  t.same(problemsOf(t, () => loadConfig(['--s3-access-key', 'a/b'], {})), ['invalid --s3-access-key "a/b" (from the command line): must be 3-128 characters of A-Z a-z 0-9 . _ -'])
  t.same(problemsOf(t, () => loadConfig([], { CKPTCACHE_S3_SECRET_KEY: 'short' })), ['invalid --s3-secret-key (from CKPTCACHE_S3_SECRET_KEY): must be 8-128 printable ASCII characters without spaces'])
})

t.test('problems from all sources are reported together', async t => {
  const problems = problemsOf(t, () => loadConfig(['--eviction', 'x', '--nope'], { CKPTCACHE_LOG_LEVEL: 'loud' }))
  t.equal(problems.length, 3)
  t.match(problems.join('\n'), /--nope[\s\S]*--log-level "loud" \(from CKPTCACHE_LOG_LEVEL\)[\s\S]*--eviction "x" \(from the command line\)/)
})
