/**
 * boto3 (the machine's python3) with its default configuration against a real gateway, on a
 * general purpose bucket and on an S3 Express directory bucket (where boto3 opens CreateSession
 * sessions itself): put/get/head, the list paginator (encoding-type=url), upload_file multipart,
 * download_file, delete_objects. An IP endpoint makes botocore address buckets path-style.
 */
import t, { type Test } from 'tap'
import { startGateway, type GatewayHandle } from '../../helpers/gateway.js'
import { runPythonChecks } from '../../helpers/python-checks.js'

const SCRIPT = String.raw`
import hashlib, os, sys, tempfile
import boto3
from boto3.s3.transfer import TransferConfig

s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'], aws_access_key_id=os.environ['S3_KEY'],
                  aws_secret_access_key=os.environ['S3_SECRET'], region_name='us-east-1')
B = os.environ['BUCKET']
directory = B.endswith('--x-s3')
def check(cond, what):
    print(('ok ' if cond else 'FAIL ') + what)

if directory:
    s3.create_bucket(Bucket=B, CreateBucketConfiguration={'Location': {'Type': 'AvailabilityZone', 'Name': B.split('--')[1]},
                                                          'Bucket': {'Type': 'Directory', 'DataRedundancy': 'SingleAvailabilityZone'}})
else:
    s3.create_bucket(Bucket=B)
body = b'rank 0 shard\n' * 1000
r = s3.put_object(Bucket=B, Key='step_100/__0_0.distcp', Body=body, ContentType='application/x-dcp', Metadata={'step': '100'})
check((r['ETag'] == '"%s"' % hashlib.md5(body).hexdigest()) != directory, 'put ETag: the MD5 (general purpose), opaque (directory)')
g = s3.get_object(Bucket=B, Key='step_100/__0_0.distcp')
check(g['Body'].read() == body, 'get bytes')
check(g['ContentType'] == 'application/x-dcp' and g['Metadata'] == {'step': '100'}, 'content type and metadata')
h = s3.head_object(Bucket=B, Key='step_100/__0_0.distcp')
check(h['ContentLength'] == len(body), 'head size')
r = s3.get_object(Bucket=B, Key='step_100/__0_0.distcp', Range='bytes=5-9')
check(r['Body'].read() == body[5:10] and r['ResponseMetadata']['HTTPStatusCode'] == 206, 'ranged get')

keys = ['step_100/__%d_0.distcp' % i for i in range(1, 8)] + ['step_100/.metadata', 'odd key+with spaces&amp.txt']
for k in keys:
    s3.put_object(Bucket=B, Key=k, Body=k.encode())
listed = []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=B, PaginationConfig={'PageSize': 3}):
    listed += [c['Key'] for c in page.get('Contents', [])]
check(listed == sorted(keys + ['step_100/__0_0.distcp']), 'list_objects_v2 paginator: %r' % listed)
v1 = []
for page in s3.get_paginator('list_objects').paginate(Bucket=B, PaginationConfig={'PageSize': 4}):
    v1 += [c['Key'] for c in page.get('Contents', [])]
check(v1 == listed, 'list_objects (v1) paginator')

data = os.urandom(20 * 1024 * 1024 + 123)
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, 'src.bin')
    with open(src, 'wb') as f:
        f.write(data)
    s3.upload_file(src, B, 'big/shard.bin', Config=TransferConfig(multipart_threshold=8 * 1024 * 1024))
    h = s3.head_object(Bucket=B, Key='big/shard.bin')
    check(h['ETag'].endswith('-3"') and h['ContentLength'] == len(data), 'upload_file went multipart: %s' % h['ETag'])
    dst = os.path.join(d, 'dst.bin')
    s3.download_file(B, 'big/shard.bin', dst)
    with open(dst, 'rb') as f:
        check(f.read() == data, 'download_file bytes')

r = s3.delete_objects(Bucket=B, Delete={'Objects': [{'Key': k} for k in keys]})
check(sorted(d['Key'] for d in r['Deleted']) == sorted(keys), 'delete_objects')
left = s3.list_objects_v2(Bucket=B)
check(sorted(c['Key'] for c in left['Contents']) == ['big/shard.bin', 'step_100/__0_0.distcp'], 'what is left')
try:
    s3.get_object(Bucket=B, Key='gone')
    check(False, 'NoSuchKey')
except s3.exceptions.NoSuchKey:
    check(True, 'NoSuchKey')
`

t.test('boto3 with default settings', async (t) => {
  const gw = await startGateway({ args: ['--log-level', 'debug'] })
  t.teardown(() => gw.stop())
  for (const bucket of ['pyckpt', 'pyckpt--use1-az4--x-s3']) await t.test(bucket, async (t) => { await run(t, gw, bucket) })
})

async function run (t: Test, gw: GatewayHandle, bucket: string): Promise<void> {
  await runPythonChecks(t, {
    script: SCRIPT,
    env: { BUCKET: bucket, S3_ENDPOINT: gw.s3Endpoint, S3_KEY: gw.s3AccessKey, S3_SECRET: gw.s3SecretKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
    checks: 12
  })
  // What the gateway saw: on a directory bucket every object request was signed with a session.
  const seen = gw.output().split('\n').filter((l) => l.includes('"s3 request"')).map((l) => JSON.parse(l) as { op: string, bucket: string, session: boolean })
  const objectOps = seen.filter((r) => r.bucket === bucket && /Object|Part|Multipart/.test(r.op))
  t.ok(objectOps.length >= 20, `${objectOps.length} object requests on ${bucket}`)
  const directory = bucket.endsWith('--x-s3')
  t.ok(objectOps.every((r) => r.session === directory), directory ? 'all with session credentials' : 'all with the long-term key')
  if (directory) t.ok(seen.some((r) => r.op === 'CreateSession' && r.bucket === bucket), 'boto3 opened a session')
}
