import { startAzurite } from '../test/helpers/azurite.ts'
import { runSuite } from '../conformance/blob/suite.ts'
const t0 = Date.now()
const az = await startAzurite()
console.log('start', Date.now() - t0)
const r = await runSuite({ connectionString: az.connectionString })
console.log('suite', r.ms, Date.now() - t0)
await az.stop()
import { formatReport } from '../conformance/blob/report.ts'
const az2 = await startAzurite()
const r2 = await runSuite({ connectionString: az2.connectionString })
console.log(formatReport(r2))
await az2.stop()
