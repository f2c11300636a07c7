import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { helpText } from '../../src/config/help.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { SETTINGS, envName } from '../../src/config/settings.js'

const SECRET = 'cluster-secret-0123456789'

/** The problems a ConfigError lists; fails the test when nothing is thrown. */
function problemsOf (t: Test, fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    t.type(err, ConfigError)
    return [...(err as ConfigError).problems]
  }
  t.fail('expected a ConfigError')
  return []
}

/** The cluster keys of a config, as the test compares them. */
function clusterOf (config: ReturnType<typeof loadConfig>): Record<string, unknown> {
  const { nodeId, peerHost, peerPort, peers, peersFile, peersDns, clusterSecret, replicas, ack, probeIntervalMs, probeTimeoutMs, refillGraceMs, refillRate, peerReadCache, replayWindowMs } = config
  return Object.fromEntries(Object.entries({ nodeId, peerHost, peerPort, peers, peersFile, peersDns, clusterSecret, replicas, ack, probeIntervalMs, probeTimeoutMs, refillGraceMs, refillRate, peerReadCache, replayWindowMs }).filter(([, v]) => v !== undefined))
}

const DEFAULTS = {
  peerHost: '127.0.0.1',
  peerPort: 10102,
  peers: [],
  replicas: 2,
  ack: 'all',
  probeIntervalMs: 1000,
  probeTimeoutMs: 5000,
  refillGraceMs: 60_000,
  refillRate: 256 * 2 ** 20,
  peerReadCache: false,
  replayWindowMs: 60_000
}

t.test('defaults: a single node, nothing clustered', async t => {
  const config = loadConfig([], {}, t.testdir())
  t.same(clusterOf(config), DEFAULTS)
  t.notOk('clusterSecretFile' in config, 'the secret file setting is not part of Config')
  t.notOk('clusterSecret' in config)
  t.not(config.peerPort, config.blobPort)
  t.not(config.peerPort, config.s3Port)
  t.not(config.peerPort, config.adminPort)
})

t.test('every cluster setting from flags', async t => {
  const config = loadConfig([
    '--node-id', 'gpu-07.rack_2',
    '--peer-host', '10.0.0.7',
    '--peer-port', '7000',
    '--peers', '10.0.0.7:7000, [FD00::8]:7000,gpu-09.example.com:7001',
    '--cluster-secret', SECRET,
    '--replicas', '3',
    '--ack', 'local',
    '--probe-interval', '250ms',
    '--probe-timeout', '2s',
    '--refill-grace', '5m',
    '--refill-rate', '1GiB/s',
    '--peer-read-cache',
    '--replay-window', '30s'
  ], {}, t.testdir())
  t.same(clusterOf(config), {
    nodeId: 'gpu-07.rack_2',
    peerHost: '10.0.0.7',
    peerPort: 7000,
    peers: ['10.0.0.7:7000', '[fd00::8]:7000', 'gpu-09.example.com:7001'],
    clusterSecret: SECRET,
    replicas: 3,
    ack: 'local',
    probeIntervalMs: 250,
    probeTimeoutMs: 2000,
    refillGraceMs: 300_000,
    refillRate: 2 ** 30,
    peerReadCache: true,
    replayWindowMs: 30_000
  })
})

t.test('every cluster setting from the environment', async t => {
  const dir = t.testdir({ 'peers.txt': '10.0.0.1:10102\n', 'secret': `${SECRET}\n` })
  const config = loadConfig([], {
    CKPTCACHE_NODE_ID: 'n1',
    CKPTCACHE_PEER_HOST: '::1',
    CKPTCACHE_PEER_PORT: '0',
    CKPTCACHE_PEERS_FILE: 'peers.txt',
    CKPTCACHE_CLUSTER_SECRET_FILE: 'secret',
    CKPTCACHE_REPLICAS: '1',
    CKPTCACHE_ACK: 'all',
    CKPTCACHE_PROBE_INTERVAL: '2s',
    CKPTCACHE_PROBE_TIMEOUT: '10s',
    CKPTCACHE_REFILL_GRACE: '1h',
    CKPTCACHE_REFILL_RATE: '100MB',
    CKPTCACHE_PEER_READ_CACHE: 'yes',
    CKPTCACHE_REPLAY_WINDOW: '90000'
  }, dir)
  t.same(clusterOf(config), {
    nodeId: 'n1',
    peerHost: '::1',
    peerPort: 0,
    peers: [],
    peersFile: path.join(dir, 'peers.txt'),
    clusterSecret: SECRET,
    replicas: 1,
    ack: 'all',
    probeIntervalMs: 2000,
    probeTimeoutMs: 10_000,
    refillGraceMs: 3_600_000,
    refillRate: 100e6,
    peerReadCache: true,
    replayWindowMs: 90_000
  })
  t.notOk('clusterSecretFile' in config)

  const dns = loadConfig([], { CKPTCACHE_PEERS_DNS: 'ckptcache-peers.ml.svc.cluster.local:10102', CKPTCACHE_CLUSTER_SECRET: SECRET }, dir)
  t.equal(dns.peersDns, 'ckptcache-peers.ml.svc.cluster.local:10102')
  t.equal(loadConfig([], { CKPTCACHE_PEERS: '127.0.0.1:1,127.0.0.2:1', CKPTCACHE_CLUSTER_SECRET: SECRET }, dir).peers.length, 2)
})

t.test('every cluster setting from a config file; flags and env still win', async t => {
  const dir = t.testdir({ etc: { 'ckpt.json': '' }, 'secret': SECRET })
  const file = path.join(dir, 'etc', 'ckpt.json')
  fs.writeFileSync(file, JSON.stringify({
    nodeId: 'file-node',
    peerHost: '10.1.0.1',
    peerPort: 10200,
    peers: ['10.1.0.1:10200', '10.1.0.2:10200'],
    clusterSecretFile: '../secret',
    replicas: 4,
    ack: 'local',
    probeIntervalMs: 500,
    probeTimeoutMs: '3s',
    refillGraceMs: 120000,
    refillRate: 1048576,
    peerReadCache: true,
    replayWindowMs: 45000
  }))
  t.same(clusterOf(loadConfig(['--config', file], {}, '/')), {
    nodeId: 'file-node',
    peerHost: '10.1.0.1',
    peerPort: 10200,
    peers: ['10.1.0.1:10200', '10.1.0.2:10200'],
    clusterSecret: SECRET,
    replicas: 4,
    ack: 'local',
    probeIntervalMs: 500,
    probeTimeoutMs: 3000,
    refillGraceMs: 120_000,
    refillRate: 2 ** 20,
    peerReadCache: true,
    replayWindowMs: 45_000
  }, 'a relative secret file resolves against the config file\'s directory')

  const over = loadConfig(['--config', file, '--replicas', '2', '--peer-read-cache=false'], { CKPTCACHE_PEERS: '10.1.0.9:1', CKPTCACHE_ACK: 'all' }, '/')
  t.same([over.replicas, over.peerReadCache, over.peers, over.ack], [2, false, ['10.1.0.9:1'], 'all'])

  fs.writeFileSync(file, JSON.stringify({ peers: '10.1.0.1:1,10.1.0.2:1', markerPatterns: ['.metadata', '*.done'], peerReadCache: 'off' }))
  const strings = loadConfig(['--config', file, '--cluster-secret', SECRET], {}, '/')
  t.same([strings.peers, strings.markerPatterns, strings.peerReadCache], [['10.1.0.1:1', '10.1.0.2:1'], ['.metadata', '*.done'], false], 'lists as strings, booleans as words')

  fs.writeFileSync(file, JSON.stringify({ peers: [1, 2], replicas: true, peerReadCache: [true], markerPatterns: ['a,b'] }))
  const where = `config file "${file}"`
  t.same(problemsOf(t, () => loadConfig(['--config', file], {}, '/')), [
    `invalid --peers (from ${where}, key "peers"): an array here must hold strings without commas`,
    `invalid --replicas (from ${where}, key "replicas"): must be a string or a number, not boolean`,
    `invalid --peer-read-cache (from ${where}, key "peerReadCache"): must be true, false or a string, not an array`,
    `invalid --marker-patterns (from ${where}, key "markerPatterns"): an array here must hold strings without commas`
  ])
})

t.test('--peer-read-cache: bare, with a value, before another flag', async t => {
  const dir = t.testdir()
  const cases: Array<[string[], NodeJS.ProcessEnv, boolean]> = [
    [['--peer-read-cache'], {}, true],
    [['--peer-read-cache', '--replicas', '1'], {}, true],
    [['--peer-read-cache', 'false'], {}, false],
    [['--peer-read-cache', 'No'], {}, false],
    [['--peer-read-cache=0'], {}, false],
    [['--peer-read-cache=on'], {}, true],
    [[], { CKPTCACHE_PEER_READ_CACHE: 'off' }, false],
    [[], { CKPTCACHE_PEER_READ_CACHE: 'TRUE' }, true],
    [['--peer-read-cache', 'false'], { CKPTCACHE_PEER_READ_CACHE: 'true' }, false]
  ]
  for (const [argv, env, expected] of cases) t.equal(loadConfig(argv, env, dir).peerReadCache, expected, JSON.stringify({ argv, env }))
  t.same(problemsOf(t, () => loadConfig(['--peer-read-cache=maybe'], {}, dir)), [
    'invalid --peer-read-cache "maybe" (from the command line): must be true or false (also yes/no, on/off, 1/0)'])
  t.same(problemsOf(t, () => loadConfig(['--peer-read-cache', 'maybe'], {}, dir)), [
    'unexpected argument "maybe": settings are given as --flag value (see ckptcache --help)'], 'a word that is no boolean is not taken as its value')
})

t.test('--cluster-secret-file: trailing newline dropped; unreadable, short and doubled secrets refused', async t => {
  const dir = t.testdir({
    lf: `${SECRET}\n`,
    crlf: `${SECRET}\r\n`,
    bare: SECRET,
    short: 'too-short\n',
    inner: 'first-line-0123456789\nsecond-line\n',
    big: 'x'.repeat(20_000)
  })
  for (const name of ['lf', 'crlf', 'bare']) {
    t.equal(loadConfig(['--peers', '127.0.0.1:10102', '--cluster-secret-file', name], {}, dir).clusterSecret, SECRET, name)
  }
  const file = (name: string): string => path.join(dir, name)
  t.same(problemsOf(t, () => loadConfig(['--cluster-secret-file', 'short', '--peers', '127.0.0.1:1'], {}, dir)), [
    `invalid cluster secret in --cluster-secret-file "${file('short')}" (from the command line): must be at least 16 characters (e.g. openssl rand -base64 32)`],
  'one problem: the missing-secret message is not added')
  const [inner] = problemsOf(t, () => loadConfig([], { CKPTCACHE_CLUSTER_SECRET_FILE: file('inner') }, dir))
  t.equal(inner, `invalid cluster secret in --cluster-secret-file "${file('inner')}" (from CKPTCACHE_CLUSTER_SECRET_FILE): must not contain control characters or line breaks`)
  t.notMatch(inner, 'first-line', 'the content is never echoed')
  t.match(problemsOf(t, () => loadConfig(['--cluster-secret-file', 'big'], {}, dir)), [/^invalid cluster secret in --cluster-secret-file ".*big" \(from the command line\): the file is larger than 16 KiB/])
  t.match(problemsOf(t, () => loadConfig(['--cluster-secret-file', 'missing'], {}, dir)), [
    new RegExp(`^cannot read --cluster-secret-file "${file('missing')}" \\(from the command line\\): ENOENT`)])
  t.same(problemsOf(t, () => loadConfig(['--cluster-secret-file', 'lf'], { CKPTCACHE_CLUSTER_SECRET: SECRET }, dir)), [
    'set one of --cluster-secret (from CKPTCACHE_CLUSTER_SECRET) and --cluster-secret-file (from the command line), not both'])
})

t.test('a clustered node needs a secret and exactly one membership source', async t => {
  const dir = t.testdir({ 'peers.txt': '' })
  const need = (first: string): string => `${first} makes this node part of a cluster, which needs a cluster secret: ` +
    'set --cluster-secret-file (CKPTCACHE_CLUSTER_SECRET_FILE) or --cluster-secret (CKPTCACHE_CLUSTER_SECRET) to the same secret on every node, ' +
    'at least 16 characters (e.g. openssl rand -base64 32)'
  t.same(problemsOf(t, () => loadConfig(['--peers', '10.0.0.1:10102'], {}, dir)), [need('--peers (from the command line)')])
  t.same(problemsOf(t, () => loadConfig([], { CKPTCACHE_PEERS_FILE: 'peers.txt' }, dir)), [need('--peers-file (from CKPTCACHE_PEERS_FILE)')])
  t.same(problemsOf(t, () => loadConfig(['--peers-dns', 'svc:10102'], {}, dir)), [need('--peers-dns (from the command line)')])
  t.same(problemsOf(t, () => loadConfig(['--peers', '10.0.0.1:1', '--peers-dns', 'svc:1', '--cluster-secret', SECRET], {}, dir)), [
    'set one of --peers (from the command line) and --peers-dns (from the command line), not more than one'])
  t.same(problemsOf(t, () => loadConfig(['--peers', '10.0.0.1:1', '--peers-file', 'peers.txt', '--cluster-secret', SECRET], { CKPTCACHE_PEERS_DNS: 'svc:1' }, dir)), [
    'set one of --peers (from the command line), --peers-file (from the command line) and --peers-dns (from CKPTCACHE_PEERS_DNS), not more than one'])
  // A secret without peers is allowed (the node is simply not clustered); an empty --peers is no peers.
  t.same(loadConfig(['--cluster-secret', SECRET, '--peers='], {}, dir).peers, [])

  const [short] = problemsOf(t, () => loadConfig(['--cluster-secret', 'only-15-chars!!'], {}, dir))
  t.equal(short, 'invalid --cluster-secret (from the command line): must be at least 16 characters (e.g. openssl rand -base64 32)')
  t.notMatch(short, 'only-15', 'the secret is never echoed')
})

t.test('node ids, peer addresses, DNS names, replicas, ack, probes and rates are validated', async t => {
  const dir = t.testdir()
  const ok = ['a', 'A9', 'gpu-01.rack_2', 'x'.repeat(64)]
  for (const id of ok) t.equal(loadConfig(['--node-id', id], {}, dir).nodeId, id)
  const idRule = 'must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit'
  for (const id of ['-a', '.a', '_a', 'a b', 'a/b', 'ä', 'x'.repeat(65)]) {
    t.same(problemsOf(t, () => loadConfig([`--node-id=${id}`], {}, dir)), [`invalid --node-id ${JSON.stringify(id)} (from the command line): ${idRule}`], id)
  }
  t.same(problemsOf(t, () => loadConfig(['--node-id='], {}, dir)), [`invalid --node-id "" (from the command line): ${idRule}`])

  const peers: Array<[string, string]> = [
    ['fd00::1:10102', '"fd00::1:10102" is not host:port (IPv6 addresses in brackets: [fd00::1]:10102)'],
    ['10.0.0.1', '"10.0.0.1" is not host:port (IPv6 addresses in brackets: [fd00::1]:10102)'],
    ['10.0.0.1:0', '"10.0.0.1:0" has port 0: must be 1-65535'],
    ['10.0.0.1:70000', '"10.0.0.1:70000" has port 70000: must be 1-65535'],
    ['10.0.0.1:1,,10.0.0.2:1', 'has an empty entry: must be host:port entries separated by commas'],
    ['10.0.0.1:1,10.0.0.1:1', 'lists 10.0.0.1:1 more than once'],
    ['[FD00::1]:1,[fd00::1]:1', 'lists [fd00::1]:1 more than once'],
    ['bad_host:1', '"bad_host:1" has an invalid host: must be an IP address (IPv6 in brackets) or a host name'],
    ['[node1]:1', '"[node1]:1": only IPv6 addresses go in brackets'],
    ['[10.0.0.1]:1', '"[10.0.0.1]:1": only IPv6 addresses go in brackets'],
    ['http://10.0.0.1:1', '"http://10.0.0.1:1" is not host:port (IPv6 addresses in brackets: [fd00::1]:10102)']
  ]
  for (const [text, why] of peers) {
    t.same(problemsOf(t, () => loadConfig(['--peers', text, '--cluster-secret', SECRET], {}, dir)), [`invalid --peers ${JSON.stringify(text)} (from the command line): ${why}`], text)
  }
  t.same(loadConfig(['--peers', ' [::1]:10102 , LOCALHOST:1 ', '--cluster-secret', SECRET], {}, dir).peers, ['[::1]:10102', 'localhost:1'], 'normalized')

  const dns: Array<[string, string]> = [
    ['svc', 'must be NAME:PORT, e.g. ckptcache-peers.default.svc.cluster.local:10102 (port 1-65535)'],
    ['svc:0', 'must be NAME:PORT, e.g. ckptcache-peers.default.svc.cluster.local:10102 (port 1-65535)'],
    ['svc:99999', 'must be NAME:PORT, e.g. ckptcache-peers.default.svc.cluster.local:10102 (port 1-65535)'],
    ['10.0.0.1:1', '"10.0.0.1" is an address, not a DNS name: list fixed addresses with --peers'],
    ['bad_name:1', '"bad_name" is not a DNS name']
  ]
  for (const [text, why] of dns) {
    t.same(problemsOf(t, () => loadConfig(['--peers-dns', text, '--cluster-secret', SECRET], {}, dir)), [`invalid --peers-dns ${JSON.stringify(text)} (from the command line): ${why}`], text)
  }

  for (const n of ['0', '17', 'two', '1.5']) {
    t.same(problemsOf(t, () => loadConfig(['--replicas', n], {}, dir)), [`invalid --replicas ${JSON.stringify(n)} (from the command line): must be a whole number from 1 to 16`], n)
  }
  t.equal(loadConfig(['--replicas', '16'], {}, dir).replicas, 16)
  t.same(problemsOf(t, () => loadConfig(['--ack', 'quorum'], {}, dir)), ['invalid --ack "quorum" (from the command line): must be one of all, local'])

  t.same(problemsOf(t, () => loadConfig(['--probe-timeout', '1s'], {}, dir)), [
    '--probe-timeout 1000ms (from the command line) must be longer than --probe-interval 1000ms (from the default)'])
  t.same(problemsOf(t, () => loadConfig(['--probe-interval', '10s'], { CKPTCACHE_PROBE_TIMEOUT: '6s' }, dir)), [
    '--probe-timeout 6000ms (from CKPTCACHE_PROBE_TIMEOUT) must be longer than --probe-interval 10000ms (from the command line)'])
  t.same(problemsOf(t, () => loadConfig(['--probe-interval', '0'], {}, dir)), ['invalid --probe-interval "0" (from the command line): must be greater than zero'])

  t.match(problemsOf(t, () => loadConfig(['--refill-rate', 'fast'], {}, dir)), [/^invalid --refill-rate "fast" \(from the command line\): must be a number of bytes/])
  t.match(problemsOf(t, () => loadConfig(['--refill-rate', '1GiB/h'], {}, dir)), [/^invalid --refill-rate "1GiB\/h" \(from the command line\): must be a number of bytes/])
  t.match(problemsOf(t, () => loadConfig(['--refill-grace', 'soon'], {}, dir)), [/^invalid --refill-grace "soon" \(from the command line\): must be a duration/])
  t.match(problemsOf(t, () => loadConfig(['--replay-window', '-1s'], {}, dir)), [/^invalid --replay-window "-1s" \(from the command line\): must be a duration/])
  t.same(problemsOf(t, () => loadConfig(['--peer-port', '65536'], {}, dir)), ['invalid --peer-port "65536" (from the command line): must be an integer 0-65535'])
  t.same(problemsOf(t, () => loadConfig(['--peer-host', 'bad host'], {}, dir)), ['invalid --peer-host "bad host" (from the command line): must be an IP address or a host name'])
})

t.test('help: every cluster setting with its variable, file key and default, in 80 columns', async t => {
  const help = helpText('test')
  const keys = ['nodeId', 'peerHost', 'peerPort', 'peers', 'peersFile', 'peersDns', 'clusterSecret', 'clusterSecretFile', 'replicas', 'ack',
    'probeIntervalMs', 'probeTimeoutMs', 'refillGraceMs', 'refillRate', 'peerReadCache', 'replayWindowMs']
  for (const key of keys) {
    const s = SETTINGS.find(s => s.key === key)
    if (s?.flag === undefined) {
      t.fail(`no flag for ${key}`)
      continue
    }
    const block = help.replace(/,\n {6}file key/g, ', file key').split('\n\n').find(b => b.startsWith(`  --${s.flag} `))
    t.ok(block?.includes(`\n      env ${envName(s.flag)}, file key ${key}\n`), `--${s.flag} names its variable and key`)
    t.match(block, /\n {6}Default: \S/, `--${s.flag} has a default`)
    t.ok((block?.split('\n').length ?? 0) >= 4, `--${s.flag} has help text`)
  }
  t.match(help, 'Default: 10102')
  t.match(help, '  ckptcache drain [--wait] [--admin URL]')
  t.same(help.split('\n').filter(l => l.length > 80), [])
})
