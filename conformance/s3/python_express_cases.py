#!/usr/bin/env python3
"""S3 conformance cases for the Python client (boto3) on S3 Express One Zone directory buckets.

Spawned by conformance/s3/python-cases.ts with the command line and output of python_cases.py.
Each case creates its own directory bucket, `<--bucket>-<tag>--use1-az4--x-s3`, with a
CreateBucketConfiguration, and deletes it at the end.

The client has boto3's default configuration but one attempt per call: no addressing style
(botocore addresses a directory bucket path-style on an IP endpoint, virtual-hosted on a host
name, so a host-name endpoint skips the cases), and boto3 opens CreateSession sessions by itself
and signs object requests with them (service s3express, x-amz-s3session-token), which the cases
check on the requests botocore sent.
"""

import contextlib
import hashlib
import ipaddress
import os
import re
import sys
import tempfile
import urllib.parse

# The shared harness lives in conformance/shared; no __pycache__ is left in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared"))
from case_harness import Registry, data, equal, main  # noqa: E402
from python_cases import MiB, boto3_client, boto3_versions, boto_failure, expect_error, md5_etag, require_endpoint_env  # noqa: E402

CASES = Registry()
case = CASES.case
ZONE = "use1-az4"  # an Availability Zone of us-east-1, the suite's default region


def directory_bucket_name(base, tag):
    """`<base>-<tag>--use1-az4--x-s3`: 3 to 63 lower-case letters, digits and hyphens, no `--` in the base."""
    suffix = "--%s--x-s3" % ZONE
    name = "%s-%s%s" % (base, tag, suffix)
    if len(name) > 63 or not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?%s$" % suffix, name) or "--" in name[:-len(suffix)]:
        raise ValueError("%s is not a valid directory bucket name" % name)
    return name


class Ctx:
    def __init__(self, base):
        self.base = base
        self.s3 = boto3_client()
        self.sent = []  # (operation, signing service, has x-amz-s3session-token)
        self.s3.meta.events.register("before-send.s3", self._record)

    def _record(self, request, event_name, **_):
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        service = re.search(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/", auth)
        self.sent.append((event_name.split(".")[-1], service and service.group(1), "x-amz-s3session-token" in headers))

    def create(self, bucket):
        return self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "Location": {"Type": "AvailabilityZone", "Name": ZONE},
            "Bucket": {"Type": "Directory", "DataRedundancy": "SingleAvailabilityZone"},
        })

    def remove(self, bucket):
        for u in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for c in page.get("Contents", []):
                self.s3.delete_object(Bucket=bucket, Key=c["Key"])
        self.s3.delete_bucket(Bucket=bucket)

    @contextlib.contextmanager
    def directory_bucket(self, tag):
        """A directory bucket for the case; removed after it (best effort when the case failed)."""
        bucket = directory_bucket_name(self.base, tag)
        self.create(bucket)
        try:
            yield bucket
        except BaseException:
            try:
                self.remove(bucket)
            except Exception:  # noqa: BLE001 - the case's own error is the one to report
                pass
            raise
        self.remove(bucket)

    def assert_session_signed(self, operations):
        """Every request of `operations` was signed for s3express with a session token, and a session was opened."""
        mine = [s for s in self.sent if s[0] in operations]
        equal(bool(mine), True, "requests of %s were sent" % ", ".join(operations))
        for op, service, token in mine:
            equal((service, token), ("s3express", True), "%s: signing service and x-amz-s3session-token" % op)
        equal(any(s[0] == "CreateSession" for s in self.sent), True, "boto3 opened a session with CreateSession")


@case("express/bucket-create-head-delete")
def bucket_create_head_delete(ctx, op):
    bucket = directory_bucket_name(ctx.base, "pb")
    r = ctx.create(bucket)
    try:
        equal(r["ResponseMetadata"]["HTTPStatusCode"], 200, "create_bucket status")
        h = ctx.s3.head_bucket(Bucket=bucket)
        equal((h.get("BucketLocationType"), h.get("BucketLocationName")), ("AvailabilityZone", ZONE), "head_bucket location")
        equal(ctx.s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0, "a new directory bucket is empty")
    except BaseException:
        with contextlib.suppress(Exception):
            ctx.remove(bucket)
        raise
    d = ctx.s3.delete_bucket(Bucket=bucket)
    equal(d["ResponseMetadata"]["HTTPStatusCode"], 204, "delete_bucket status")
    expect_error("head_bucket after delete", lambda: ctx.s3.head_bucket(Bucket=bucket), 404, "404")


@case("express/list-directory-buckets")
def list_directory_buckets(ctx, op):
    with ctx.directory_bucket("pl") as bucket:
        names = [b["Name"] for p in ctx.s3.get_paginator("list_directory_buckets").paginate() for b in p.get("Buckets", [])]
        equal(bucket in names, True, "list_directory_buckets includes %s (got %r)" % (bucket, names[:10]))
        general = [b["Name"] for b in ctx.s3.list_buckets().get("Buckets", [])]
        equal(bucket in general, False, "list_buckets leaves out the directory bucket")
        equal(sorted(set(names) & set(general)), [], "list_directory_buckets leaves out general purpose buckets")


@case("express/put-get-list-delete")
def put_get_list_delete(ctx, op):
    with ctx.directory_bucket("po") as bucket:
        key = "ckpt/step_100/__0_0.distcp"
        body = data(300 * 1024 + 7)
        r = ctx.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-dcp", Metadata={"step": "100"})
        equal(bool(re.match(r'^".+"$', r["ETag"])), True, "put_object ETag is quoted: %s" % r["ETag"])
        equal(r["ETag"] == md5_etag(body), False, "a directory bucket ETag is not the MD5 of the body")
        g = ctx.s3.get_object(Bucket=bucket, Key=key)
        equal(g["Body"].read(), body, "get_object bytes")
        equal((g["ETag"], g["ContentType"], g["Metadata"]), (r["ETag"], "application/x-dcp", {"step": "100"}), "ETag, content type, metadata")
        h = ctx.s3.head_object(Bucket=bucket, Key=key)
        equal((h["ContentLength"], h["ETag"]), (len(body), r["ETag"]), "head_object size and ETag")
        for k in ("ckpt/latest", "ckpt/step_200/__0_0.distcp"):
            ctx.s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
        top = ctx.s3.list_objects_v2(Bucket=bucket, Prefix="ckpt/", Delimiter="/")
        equal(sorted(p["Prefix"] for p in top.get("CommonPrefixes", [])), ["ckpt/step_100/", "ckpt/step_200/"], "CommonPrefixes with /")
        equal([c["Key"] for c in top.get("Contents", [])], ["ckpt/latest"], "Contents with /")
        expect_error("list_objects_v2 with delimiter |", lambda: ctx.s3.list_objects_v2(Bucket=bucket, Delimiter="|"), 400, "InvalidArgument")
        d = ctx.s3.delete_object(Bucket=bucket, Key=key)
        equal(d["ResponseMetadata"]["HTTPStatusCode"], 204, "delete_object status")
        expect_error("get_object after delete", lambda: ctx.s3.get_object(Bucket=bucket, Key=key), 404, "NoSuchKey")
        ctx.assert_session_signed(("PutObject", "GetObject", "HeadObject", "ListObjectsV2", "DeleteObject"))


@case("express/upload-file-multipart")
def upload_file_multipart(ctx, op):
    with ctx.directory_bucket("pm") as bucket:
        key = "step_100/shard.bin"
        body = data(9 * MiB + 123)
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src.bin")
            with open(src, "wb") as f:
                f.write(body)
            # Default TransferConfig: multipart above 8 MiB, 8 MiB parts: two parts.
            ctx.s3.upload_file(src, bucket, key)
        equal(sum(1 for s in ctx.sent if s[0] == "UploadPart"), 2, "upload_file sent two parts")
        h = ctx.s3.head_object(Bucket=bucket, Key=key)
        equal(h["ContentLength"], len(body), "size")
        equal(hashlib.sha256(ctx.s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256")
        equal(ctx.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [], "no upload left open")
        ctx.assert_session_signed(("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"))


@case("express/append")
def append(ctx, op):
    with ctx.directory_bucket("pa") as bucket:
        key = "train.log"
        a, b = data(64 * 1024 + 1), data(100 * 1024 + 3)
        first = ctx.s3.put_object(Bucket=bucket, Key=key, Body=a, WriteOffsetBytes=0)
        equal(ctx.s3.head_object(Bucket=bucket, Key=key)["ContentLength"], len(a), "WriteOffsetBytes=0 created the object")
        second = ctx.s3.put_object(Bucket=bucket, Key=key, Body=b, WriteOffsetBytes=len(a))
        equal(second.get("Size"), len(a) + len(b), "put_object Size after the append")
        equal(second["ETag"] == first["ETag"], False, "an append makes a new ETag")
        equal(ctx.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), a + b, "bytes after the append")
        for offset in (len(a), len(a) + len(b) + 1):
            expect_error("WriteOffsetBytes=%d on a %d-byte object" % (offset, len(a) + len(b)),
                         lambda: ctx.s3.put_object(Bucket=bucket, Key=key, Body=b"late", WriteOffsetBytes=offset), 400, "InvalidWriteOffset")
        g = ctx.s3.get_object(Bucket=bucket, Key=key)
        equal((g["Body"].read(), g["ETag"]), (a + b, second["ETag"]), "refused appends changed nothing")


def ip_endpoint(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return "botocore addresses directory buckets path-style only on an IP endpoint, not %s" % host


def connect(args):
    require_endpoint_env()
    why_not = ip_endpoint(os.environ["CKPTCACHE_CONFORMANCE_S3_ENDPOINT"])
    return Ctx(args.bucket), why_not


def forget_sent(ctx):
    ctx.sent = []


if __name__ == "__main__":
    main(CASES, target="bucket", default_prefix="python/", sdk_name="boto3",
         sdk_versions=boto3_versions, connect=connect, failure_of=boto_failure,
         target_help="the run's bucket; directory bucket names start with it",
         prefix_help="unused: every case has a bucket of its own", before_case=forget_sent)
