import { startGateway } from '../test/helpers/gateway.ts'
import { spawn } from 'node:child_process'
const gw = await startGateway()
const child = spawn(process.execPath, ['--import', 'tsx', 'conformance/blob/run.ts', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, CKPTCACHE_CONFORMANCE_CONNECTION_STRING: gw.connectionString } })
const t0 = Date.now()
const code = await new Promise(r => child.on('exit', r))
console.error('exit code', code, 'wall', Date.now() - t0)
await gw.stop()
