/**
 * The Blob conformance suite (conformance/blob/) run as tests: first against Azurite, Microsoft's
 * emulator and our reference, with the places it is known to differ from Azure listed below;
 * then against the gateway with no expected failures; and the suite's command line (exit codes,
 * expected-failure list, JSON report) against Azurite.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobServiceClient } from '@azure/storage-blob'
import { jsCases } from '../conformance/blob/js-cases.js'
import { listPythonOperations } from '../conformance/blob/python-cases.js'
import { formatReport } from '../conformance/blob/report.js'
import { DEFAULT_PYTHON, runSuite, type SuiteReport } from '../conformance/blob/suite.js'
import { startAzurite } from './helpers/azurite.js'
import { assertCaseResults, ranOperations, reportStatuses, runConformanceCli, type CliRun } from './helpers/conformance.js'
import { startGateway } from './helpers/gateway.js'

/**
 * Where Azurite 3.35.0 answers differently from Azure Blob Storage, so the suite (which asserts
 * Azure's behaviour) fails there. Each entry was checked to fail only on the named difference:
 * with that one status/code relaxed, every other assertion of the case passes on Azurite.
 */
export const AZURITE_EXPECTED_FAILURES: Readonly<Record<string, string>> = {
  'js:download/range-empty-416':
    'Azurite answers a range on a 0-byte blob with 206 and "Content-Range: bytes 0--1/0"; Azure answers ' +
    '416 InvalidRange with "Content-Range: bytes */0" (Azure/Azurite#2410).',
  'js:download/range-start-past-end-416':
    'Azurite answers a range starting exactly at the blob size with 206 and "Content-Range: bytes 10-9/10" ' +
    '(it does answer 416 for a start beyond the size); Azure answers 416 InvalidRange (Azure/Azurite#318).',
  'js:checksums/md5-mismatch':
    'Azurite refuses a wrong Content-MD5 (Put Block) or x-ms-blob-content-md5 (Put Blob) with 400 ' +
    'InvalidOperation; Azure uses 400 Md5Mismatch.',
  'js:auth/wrong-key':
    'Azurite refuses a wrong SharedKey signature or a forged SAS signature with 403 AuthorizationFailure; ' +
    'Azure uses 403 AuthenticationFailed.',
}

const azurite = await startAzurite()
t.teardown(() => azurite.stop())

/** One assertion per case, plus: every case ran, and the run left no container behind. */
async function checkReport(t: Test, report: SuiteReport, connectionString: string): Promise<void> {
  t.comment(formatReport(report))
  assertCaseResults(t, report.results)
  const ran = (client: string): string[] => ranOperations(report.results, client)
  t.same(ran('js').filter((op) => op !== 'cleanup'), jsCases.map((c) => c.operation), 'every JS case ran')
  const pythonOps = await listPythonOperations(DEFAULT_PYTHON)
  if (pythonOps && !ran('python').includes('*')) t.same(ran('python').sort(), [...pythonOps].sort(), 'every Python case ran')
  const left: string[] = []
  for await (const c of BlobServiceClient.fromConnectionString(connectionString).listContainers({ prefix: report.container })) left.push(c.name)
  t.same(left, [], 'the run deleted every container it made')
  t.ok(report.ok, 'suite verdict ok')
}

t.test('against Azurite (the reference), with its documented differences', async (t) => {
  const report = await runSuite({
    connectionString: azurite.connectionString,
    expectedFailures: Object.keys(AZURITE_EXPECTED_FAILURES),
  })
  await checkReport(t, report, azurite.connectionString)
})

t.test('against the gateway, with no expected failures', async (t) => {
  const gw = await startGateway()
  t.teardown(() => gw.stop())
  const report = await runSuite({ connectionString: gw.connectionString })
  await checkReport(t, report, gw.connectionString)
})

t.test('command line: table, JSON report, exit codes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ckptcache-conformance-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  const cli = (args: string[], env: Record<string, string | undefined>): Promise<CliRun> =>
    runConformanceCli('conformance/blob/run.ts', args, { CKPTCACHE_CONFORMANCE_CONNECTION_STRING: undefined, CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES: undefined, ...env })
  const cs = azurite.connectionString

  const [expected, unexpected, stale, usage] = await Promise.all([
    // A pass, a Python pass and a listed failure: exit 0.
    cli(['--only', 'js:upload/1B', '--only', 'python:upload/0B', '--only', 'js:download/range-empty-416',
      '--expect-fail', 'js:download/range-empty-416', '--json', join(dir, 'a.json'), '--quiet'], { CKPTCACHE_CONFORMANCE_CONNECTION_STRING: cs }),
    // The same failure, not listed: exit 1.
    cli(['--only', 'js:download/range-empty-416', '--no-python', '--quiet'], { CKPTCACHE_CONFORMANCE_CONNECTION_STRING: cs }),
    // Listed (through the environment) but passing: the list is stale, exit 1.
    cli(['--only', 'js:upload/1B', '--no-python', '--json', join(dir, 'c.json'), '--quiet'],
      { CKPTCACHE_CONFORMANCE_CONNECTION_STRING: cs, CKPTCACHE_CONFORMANCE_EXPECTED_FAILURES: 'js:upload/1B' }),
    // No connection string: usage error.
    cli([], {}),
  ])

  t.equal(expected.code, 0, `listed failure only: exit 0\n${expected.stdout}${expected.stderr}`)
  t.same(await reportStatuses(join(dir, 'a.json')),
    { 'js:upload/1B': 'pass', 'python:upload/0B': 'pass', 'js:download/range-empty-416': 'xfail' }, 'JSON report statuses')
  t.match(expected.stdout, /^operation\s+js\s+python$/m, 'table header')
  t.match(expected.stdout, /^upload\/0B\s+-\s+pass/m, 'table row: python only')

  t.equal(unexpected.code, 1, 'unlisted failure: exit 1')
  t.match(unexpected.stdout, /FAIL\s+js:download\/range-empty-416\s+range 0-0 on a 0-byte blob: expected 416 InvalidRange/, 'failure listed with its error')

  t.equal(stale.code, 1, 'expected failure that passed: exit 1')
  t.same(await reportStatuses(join(dir, 'c.json')), { 'js:upload/1B': 'xpass' }, 'reported as xpass')

  t.equal(usage.code, 2, 'missing connection string: exit 2')
  t.match(usage.stderr, /CKPTCACHE_CONFORMANCE_CONNECTION_STRING is not set/, 'says what is missing')
})
