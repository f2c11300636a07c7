import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { BlobServiceClient } from '@azure/storage-blob'
import t from 'tap'
import { SETTINGS, envName } from '../src/config/settings.js'
import { EMULATOR_KEY } from '../src/config/schema.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const READY = /ckptcache ready blob=http:\/\/([^\s:]+|\[[^\]]+\]):(\d+)/
const OTHER_KEY = Buffer.alloc(32, 9).toString('base64')

/** The test's environment minus anything that would configure the CLI behind its back. */
function cleanEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CKPTCACHE_') && k !== 'XDG_DATA_HOME'))
  return { ...env, ...extra }
}

interface Cli {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Resolves with the match once stdout matches; rejects if the process exits first. */
  waitFor: (re: RegExp) => Promise<RegExpMatchArray>
}

function start (args: string[], env: NodeJS.ProcessEnv = {}, entry = ['--import', 'tsx', 'src/main.ts']): Cli {
  const child = spawn(process.execPath, [...entry, ...args], { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const waiters: (() => void)[] = []
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; for (const w of [...waiters]) w() })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  const waitFor = (re: RegExp): Promise<RegExpMatchArray> => new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(out)
      if (m === null) return
      waiters.splice(waiters.indexOf(check), 1)
      resolve(m)
    }
    waiters.push(check)
    check()
    void exited.then(({ code, signal }) => reject(new Error(`exited (${code ?? signal}) before ${re}; stderr: ${err}; stdout: ${out}`)))
  })
  return { child, stdout: () => out, stderr: () => err, exited, waitFor }
}

async function run (args: string[], env: NodeJS.ProcessEnv = {}, entry?: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const cli = start(args, env, entry)
  const { code } = await cli.exited
  return { code, stdout: cli.stdout(), stderr: cli.stderr() }
}

t.test('--help lists every flag, its variable, config key and default', async t => {
  const { code, stdout, stderr } = await run(['--help'])
  t.equal(code, 0)
  t.equal(stderr, '')
  t.match(stdout, /^Usage:$/m)
  t.match(stdout, /^ {2}--config FILE\n {6}env CKPTCACHE_CONFIG$/m)
  for (const s of SETTINGS) {
    if (s.flag === undefined) {
      t.match(stdout, new RegExp(`config file only\\) ${s.key}\\n`), s.key)
      continue
    }
    t.ok(stdout.replace(/,\n {6}file key/g, ', file key').includes(`  --${s.flag} ${s.arg}\n      env ${envName(s.flag)}, file key ${s.key}\n`), `--${s.flag}`)
  }
  t.match(stdout, /Default: 10000\n/)
  t.match(stdout, /powers of 1024/)
  t.match(stdout, /powers of 1000/)
  t.same(stdout.split('\n').filter(line => line.length > 80), [], 'fits 80 columns')
  t.equal((await run(['help'])).stdout, stdout, 'help is --help')
})

t.test('--version', async t => {
  const { version } = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  const { code, stdout } = await run(['--version'])
  t.equal(code, 0)
  t.equal(stdout, `${version}\n`)
  const bin = await run(['--version'], {}, ['bin/ckptcache.cjs'])
  t.equal(bin.code, 0, 'bin/ckptcache.cjs runs')
  t.equal(bin.stdout, `${version}\n`)
})

t.test('bad configuration exits 2 naming the setting', async t => {
  const flag = await run(['serve', '--blob-prot', '1'])
  t.equal(flag.code, 2)
  t.equal(flag.stdout, '')
  t.equal(flag.stderr, 'ckptcache: unknown flag --blob-prot (did you mean --blob-port?); see ckptcache --help\n')

  const env = await run([], { CKPTCACHE_BLOB_PORT: 'abc' })
  t.equal(env.code, 2)
  t.equal(env.stderr, 'ckptcache: invalid --blob-port "abc" (from CKPTCACHE_BLOB_PORT): must be an integer 0-65535\n')

  const open = await run(['--host', '0.0.0.0'])
  t.equal(open.code, 2)
  t.match(open.stderr, /^ckptcache: refusing to start: --host "0.0.0.0" .* emulator key/)

  const command = await run(['serv'])
  t.equal(command.code, 2)
  t.match(command.stderr, /unknown command "serv"/)
})

t.test('serve: ready line, working connection string, SIGTERM exits 0', async t => {
  const dataDir = t.testdir()
  const cli = start(['serve', '--blob-port', '0', '--s3-port', '0', '--admin-port', '0', '--data-dir', dataDir])
  t.teardown(() => { cli.child.kill('SIGKILL') })
  const [, host, port] = await cli.waitFor(READY)
  t.equal(host, '127.0.0.1')
  t.not(port, '0', 'the real port, not 0')
  const [, cs] = await cli.waitFor(/Connection string:\n {2}(\S+)\n/)
  t.equal(cs, `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${EMULATOR_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`)
  await cli.waitFor(/az storage container create -n ckpt\n/)
  t.match(cli.stdout(), `BlobServiceClient.fromConnectionString('${cs}')`)
  t.match(cli.stdout(), `BlobServiceClient.from_connection_string('${cs}')`)
  t.match(cli.stdout(), `export AZURE_STORAGE_CONNECTION_STRING='${cs}'`)

  const ready = cli.stdout().split('\n').find(line => READY.test(line))!
  t.match(JSON.parse(ready), { level: 30, ports: { blob: Number(port) } }, 'the ready line is a pino info line with the ports')

  const service = BlobServiceClient.fromConnectionString(cs!)
  const container = service.getContainerClient('ckpt')
  await container.create()
  const body = Buffer.from('step 1000 shard 0\n'.repeat(1000))
  await container.getBlockBlobClient('step-1000/shard-0.pt').upload(body, body.length)
  const download = await container.getBlobClient('step-1000/shard-0.pt').download()
  const chunks: Buffer[] = []
  for await (const chunk of download.readableStreamBody!) chunks.push(chunk as Buffer)
  t.ok(Buffer.concat(chunks).equals(body), 'downloaded bytes equal uploaded bytes')

  cli.child.kill('SIGTERM')
  t.same(await cli.exited, { code: 0, signal: null })
})

t.test('serve with a custom key: key not printed; SIGINT exits 0', async t => {
  const dataDir = t.testdir()
  const cli = start(['--blob-port=0', '--s3-port=0', '--account', 'ckptnode', '--log-level', 'warn'], {
    CKPTCACHE_DATA_DIR: dataDir,
    CKPTCACHE_ACCOUNT_KEY: OTHER_KEY,
  })
  t.teardown(() => { cli.child.kill('SIGKILL') })
  const [, cs] = await cli.waitFor(/Connection string:\n {2}(.+)\n/)
  t.match(cs, /^DefaultEndpointsProtocol=http;AccountName=ckptnode;AccountKey=<your key>;BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/ckptnode;$/)
  await cli.waitFor(/az storage container create -n ckpt\n/)
  t.notOk(cli.stdout().includes(OTHER_KEY), 'the configured key is never printed')
  t.notOk(cli.stderr().includes(OTHER_KEY))
  cli.child.kill('SIGINT')
  t.same(await cli.exited, { code: 0, signal: null })
})

t.test('port in use: one line naming the port, exit 1', async t => {
  const blocker = net.createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => blocker.close(() => resolve())))
  const port = (blocker.address() as net.AddressInfo).port
  const { code, stdout, stderr } = await run(['--blob-port', String(port), '--data-dir', t.testdir()])
  t.equal(code, 1)
  t.notMatch(stdout, READY)
  t.equal(stderr.split('\n').filter(Boolean).length, 1, 'one line')
  t.match(stderr, `ckptcache: cannot listen on 127.0.0.1:${port}: port ${port} is already in use`)
})
