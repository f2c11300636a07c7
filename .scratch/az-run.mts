import { startAzurite } from '../test/helpers/azurite.ts'
import { spawn } from 'node:child_process'
const az = await startAzurite()
const child = spawn(process.execPath, ['--import', 'tsx', process.env.RUNTS ?? 'conformance/blob/run.ts', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, CKPTCACHE_CONFORMANCE_CONNECTION_STRING: az.connectionString } })
const t0 = Date.now()
const code = await new Promise(r => child.on('exit', r))
console.error('exit code', code, 'wall', Date.now() - t0)
await az.stop()
