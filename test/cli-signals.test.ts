/**
 * Shutdown must not depend on the log reader: a gateway whose stdout pipe was
 * closed still stops on SIGTERM and exits 0.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from './helpers/gateway.js'

t.test('SIGTERM after the stdout reader went away: exits 0', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ckptcache-sig-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'main.ts'), 'serve', '--blob-port', '0', '--s3-port', '0', '--admin-port', '0', '--data-dir', dataDir],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] })
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])))
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (/ckptcache ready/.test(out)) resolve()
    })
    child.once('exit', () => reject(new Error(`exited before ready:\n${out}`)))
  })
  child.stdout.destroy()
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code, signal] = await exited
  clearTimeout(timer)
  t.equal(signal, null, 'not killed')
  t.equal(code, 0, 'clean exit')
})
