/**
 * The S3 conformance suite (conformance/s3/) run as tests: against moto's S3 server, our
 * reference, with the places it is known to differ from S3 listed below; against the gateway,
 * with only the gateway's known bugs listed; and the suite's command line (exit codes,
 * expected-failure list, JSON report, a missing tool) against moto. Both suites run at once.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBuckets } from '../conformance/s3/cleanup.js'
import { s3Client, type S3Endpoint } from '../conformance/s3/endpoint.js'
import { directoryClient, listDirectoryBuckets } from '../conformance/s3/express.js'
import { jsCases } from '../conformance/s3/js-cases.js'
import { listPythonOperations, PYTHON_SCRIPTS } from '../conformance/s3/python-cases.js'
import { formatReport } from '../conformance/s3/report.js'
import { DEFAULT_PYTHON, runSuite, TOOLS, type SuiteReport } from '../conformance/s3/suite.js'
import { assertCaseResults, ranOperations, reportStatuses, runConformanceCli, type CliRun } from './helpers/conformance.js'
import { startGateway } from './helpers/gateway.js'
import { startMoto } from './helpers/moto.js'

process.removeAllListeners('warning') // the SDK's "Node ≥ 22 after 2027" notice

/**
 * Where moto 5.2 answers differently from Amazon S3, so the suite (which asserts S3's behaviour)
 * fails there. Each entry was checked to fail on the named difference.
 */
export const MOTO_EXPECTED_FAILURES: Readonly<Record<string, string>> = {
  'js:bucket/invalid-name':
    'moto creates buckets named with upper-case letters or underscores; S3 refuses them with 400 InvalidBucketName.',
  'js:metadata/underscore-name':
    "moto's HTTP server (werkzeug) drops request headers whose name has an underscore, so x-amz-meta-rank_layout is lost; S3 keeps it.",
  'js:list-v1/next-marker':
    'moto returns an opaque token as NextMarker on every truncated ListObjects page; S3 returns the last key or common prefix, and only with a delimiter.',
  'js:delete-objects/quiet':
    'moto ignores <Quiet>true</Quiet> in DeleteObjects and lists every deleted key.',
  'js:multipart/invalid-part-order':
    'moto completes an upload whose parts are listed in descending order; S3 refuses it with 400 InvalidPartOrder.',
  'js:multipart/no-such-upload':
    'moto answers UploadPart and CompleteMultipartUpload for an unknown upload id with 500; S3 answers 404 NoSuchUpload.',
  'js:checksum/bad-content-md5':
    'moto does not verify Content-MD5: it stores the body; S3 refuses it with 400 BadDigest.',
  'js:checksum/invalid-content-md5':
    'moto does not check that Content-MD5 is a base64 MD5; S3 refuses it with 400 InvalidDigest.',
  'js:checksum/bad-crc32-header':
    'moto does not verify x-amz-checksum-crc32: it stores the body; S3 refuses it with 400 BadDigest.',
  'js:checksum/bad-crc32-trailer':
    'moto does not verify the CRC32 trailer of an aws-chunked body: it stores the corrupted bytes; S3 refuses them with 400 BadDigest.',
  'js:presign/tampered-expired':
    'moto does not verify presigned URLs: a URL used for another key, or expired, still reads; S3 answers 403.',
  'js:auth/wrong-secret':
    'moto does not verify SigV4 signatures; S3 answers 403 SignatureDoesNotMatch.',
  'js:auth/unknown-key':
    'moto accepts any access key id; S3 answers 403 InvalidAccessKeyId.',
  'js:auth/anonymous':
    'moto cannot route an unsigned request to S3 (403 with an empty HTML body); S3 answers 403 AccessDenied in XML.',
  // Directory buckets: moto has no CreateSession (GET /<bucket>?session is a bucket listing, or 404
  // NoSuchBucket before the bucket exists), and both SDKs open a session before CreateBucket on a
  // custom endpoint, so not one directory bucket can be created; each case fails at its CreateBucket.
  'js:express/bucket-create-head-list-delete':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket); nor does it know HeadBucket locations or ListDirectoryBuckets (it lists every bucket).',
  'js:express/put-get-head-delete':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and would give MD5 ETags where S3 gives opaque ones.',
  'js:express/list-v2-delimiter':
    "moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and takes any delimiter where S3 allows only '/' there.",
  'js:express/multipart-upload':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket) to upload into.',
  'js:express/multipart-consecutive-parts':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and completes uploads whose part numbers skip one.',
  'js:express/append':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and ignores WriteOffsetBytes (overwrites, never InvalidWriteOffset).',
  'js:express/session-read-only':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), so it has no ReadOnly sessions either.',
  'js:express/session-expiry':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), so it returns no session credentials.',
  'python:express/bucket-create-head-delete':
    'moto cannot create a directory bucket: boto3 opens a session first and moto has no CreateSession (404 NoSuchBucket).',
  'python:express/list-directory-buckets':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and lists general purpose buckets as directory buckets.',
  'python:express/put-get-list-delete':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and would give MD5 ETags and take any delimiter.',
  'python:express/upload-file-multipart':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket) for upload_file to write into.',
  'python:express/append':
    'moto cannot create a directory bucket (no CreateSession: 404 NoSuchBucket), and ignores WriteOffsetBytes.',
}

/** The gateway's known differences from S3 (none: each one found was a bug, and was fixed). */
export const GATEWAY_EXPECTED_FAILURES: Readonly<Record<string, string>> = {}

const [gateway, moto] = await Promise.all([startGateway(), startMoto()])
t.teardown(async () => { await Promise.all([gateway.stop(), moto.stop()]) })

const gatewayEndpoint: S3Endpoint = { url: gateway.s3Endpoint, accessKeyId: gateway.s3AccessKey, secretAccessKey: gateway.s3SecretKey, region: 'us-east-1' }
const motoEndpoint: S3Endpoint = { url: moto.s3Endpoint, accessKeyId: moto.s3AccessKey, secretAccessKey: moto.s3SecretKey, region: moto.region }

// Both suites at once: most of a run is waiting on client processes, not CPU.
const [motoReport, gatewayReport] = await Promise.all([
  runSuite({ endpoint: motoEndpoint, expectedFailures: Object.keys(MOTO_EXPECTED_FAILURES) }),
  runSuite({ endpoint: gatewayEndpoint, expectedFailures: Object.keys(GATEWAY_EXPECTED_FAILURES) }),
])

/** One assertion per case, plus: every case ran, and the run left no bucket behind. */
async function checkReport(t: Test, report: SuiteReport, endpoint: S3Endpoint): Promise<void> {
  t.comment(formatReport(report))
  assertCaseResults(t, report.results)
  const ran = (client: string): string[] => ranOperations(report.results, client)
  t.same(ran('js').filter((op) => op !== 'cleanup'), jsCases.map((c) => c.operation), 'every JS case ran')
  const pythonOps = await Promise.all(PYTHON_SCRIPTS.map((script) => listPythonOperations(DEFAULT_PYTHON, script)))
  if (pythonOps.every((ops) => ops !== undefined) && !ran('python').includes('*')) {
    t.same(ran('python').sort(), pythonOps.flat().sort(), 'every Python case ran')
  }
  for (const tool of Object.values(TOOLS)) t.same(ran(tool.name), tool.cases.map((c) => c.operation), `every ${tool.name} case ran or was skipped`)
  const s3 = s3Client(endpoint)
  const directories = directoryClient(endpoint)
  try {
    t.same(await runBuckets(s3, report.bucket), [], 'the run deleted every bucket it made')
    t.same(await listDirectoryBuckets(directories, report.bucket), [], 'and every directory bucket')
  } finally {
    s3.destroy()
    directories.destroy()
  }
  t.ok(report.ok, 'suite verdict ok')
}

t.test('against moto (the reference), with its documented differences', async (t) => {
  await checkReport(t, motoReport, motoEndpoint)
})

t.test('against the gateway, with only its known bugs listed', async (t) => {
  await checkReport(t, gatewayReport, gatewayEndpoint)
})

t.test('command line: table, JSON report, exit codes, a missing tool', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ckptcache-conformance-s3-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = {
    CKPTCACHE_CONFORMANCE_S3_ENDPOINT: moto.s3Endpoint,
    CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY: moto.s3AccessKey,
    CKPTCACHE_CONFORMANCE_S3_SECRET_KEY: moto.s3SecretKey,
  }
  const cli = (args: string[], extra: Record<string, string | undefined>): Promise<CliRun> =>
    runConformanceCli('conformance/s3/run.ts', args, {
      CKPTCACHE_CONFORMANCE_S3_ENDPOINT: undefined,
      CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY: undefined,
      CKPTCACHE_CONFORMANCE_S3_SECRET_KEY: undefined,
      CKPTCACHE_CONFORMANCE_S3_EXPECTED_FAILURES: undefined,
      ...extra,
    })
  const noTools = ['--no-awscli', '--no-s3cmd', '--no-rclone']

  const [expected, unexpected, usage] = await Promise.all([
    // A pass, a Python pass, a listed failure and a tool that is not installed: exit 0.
    cli(['--only', 'js:put-get/1B-buffer', '--only', 'python:head/missing-404', '--only', 'js:auth/unknown-key', '--only', 'rclone:',
      '--expect-fail', 'js:auth/unknown-key', '--rclone', join(dir, 'no-such-rclone'), '--no-awscli', '--no-s3cmd',
      '--json', join(dir, 'a.json')], env),
    // A failure not listed, and one listed (through the environment) that passes, which means the
    // list is stale: exit 1.
    cli(['--only', 'js:auth/unknown-key', '--only', 'js:put-get/1B-buffer', '--no-python', '--json', join(dir, 'b.json'), '--quiet', ...noTools],
      { ...env, CKPTCACHE_CONFORMANCE_S3_EXPECTED_FAILURES: 'js:put-get/1B-buffer' }),
    // No endpoint: usage error.
    cli([], {}),
  ])

  t.equal(expected.code, 0, `listed failure and a missing tool only: exit 0\n${expected.stdout}${expected.stderr}`)
  t.same(await reportStatuses(join(dir, 'a.json')), {
    'js:put-get/1B-buffer': 'pass',
    'python:head/missing-404': 'pass',
    'js:auth/unknown-key': 'xfail',
    ...Object.fromEntries(TOOLS.rclone.cases.map((c) => [`rclone:${c.operation}`, 'skip'])),
  }, 'JSON report statuses')
  t.match(expected.stdout, /^operation\s+js\s+python\s+rclone$/m, 'table header')
  t.match(expected.stdout, /^head\/missing-404\s+-\s+pass/m, 'table row: python only')
  t.match(expected.stdout, /skip\s+rclone:copy-up\s+.*no-such-rclone is not installed/, 'a missing tool is skipped, with the reason')
  t.match(expected.stderr, /^xfail js:auth\/unknown-key /m, 'progress lines on stderr')

  t.equal(unexpected.code, 1, 'unlisted failure or stale expected failure: exit 1')
  t.same(await reportStatuses(join(dir, 'b.json')), { 'js:auth/unknown-key': 'fail', 'js:put-get/1B-buffer': 'xpass' }, 'reported as fail and xpass')
  t.match(unexpected.stdout, /FAIL\s+js:auth\/unknown-key\s+ListObjectsV2: expected 403 InvalidAccessKeyId/, 'failure listed with its error')
  t.match(unexpected.stdout, /XPASS\s+js:put-get\/1B-buffer\s+listed as an expected failure but passed/, 'stale entry listed')

  t.equal(usage.code, 2, 'missing endpoint: exit 2')
  t.match(usage.stderr, /CKPTCACHE_CONFORMANCE_S3_ENDPOINT, CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY, CKPTCACHE_CONFORMANCE_S3_SECRET_KEY are not set/, 'says what is missing')
})
