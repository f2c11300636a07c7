#!/usr/bin/env python3
"""S3 conformance cases for the Python client (boto3).

Spawned by conformance/s3/python-cases.ts. Reads the endpoint from CKPTCACHE_CONFORMANCE_S3_ENDPOINT,
_ACCESS_KEY, _SECRET_KEY and _REGION, works only under --prefix inside the existing bucket
--bucket, and prints one JSON object per line on stdout:

  {"event": "env", "python": "3.11.7", "sdk": "1.43.11", "botocore": "1.43.11"}   once, first
  {"operation": "put-get-head", "status": "pass", "ms": 12.3}                       one per case
  {"operation": "...", "status": "fail", "ms": 4.5, "error": "..."}
  {"operation": "...", "status": "skip", "ms": 0, "error": "why"}

The client has boto3's default configuration (checksums included: botocore >= 1.36 sends a
CRC32 with every upload) but two settings: path-style addressing, and one attempt per call so a
single 5xx is a finding, not a retry.
"""

import base64
import hashlib
import os
import sys
import tempfile
import zlib

# The shared harness lives in conformance/shared; no __pycache__ is left in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared"))
from case_harness import Registry, data, equal, main  # noqa: E402

CASES = Registry()
case = CASES.case
MiB = 1024 * 1024
ENDPOINT_ENV = ("CKPTCACHE_CONFORMANCE_S3_ENDPOINT", "CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY", "CKPTCACHE_CONFORMANCE_S3_SECRET_KEY")


def md5_etag(body):
    return '"%s"' % hashlib.md5(body).hexdigest()


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return '"%s-%d"' % (digest, len(parts))


def crc32_b64(body):
    return base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def expect_error(what, fn, status, code):
    from botocore.exceptions import ClientError
    try:
        fn()
    except ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        equal(got, (status, code), what + ": status and error code")
        return e
    raise AssertionError("%s: expected %d %s, got success" % (what, status, code))


def boto3_client(**config):
    """A boto3 S3 client for the endpoint under test (from the environment) with boto3's defaults
    but one attempt per call, so a single 5xx is a finding, not a retry; `config`: more botocore
    Config settings."""
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3",
        endpoint_url=os.environ["CKPTCACHE_CONFORMANCE_S3_ENDPOINT"],
        aws_access_key_id=os.environ["CKPTCACHE_CONFORMANCE_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["CKPTCACHE_CONFORMANCE_S3_SECRET_KEY"],
        region_name=os.environ.get("CKPTCACHE_CONFORMANCE_S3_REGION") or "us-east-1",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


class Ctx:
    def __init__(self, bucket, prefix):
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = boto3_client(s3={"addressing_style": "path"})

    def key(self, op, leaf):
        return "%s%s/%s" % (self.prefix, op, leaf)

    def keys_under(self, prefix):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [c["Key"] for c in page.get("Contents", [])]
        return out


def sends_checksums_by_default():
    import botocore
    return tuple(int(x) for x in botocore.__version__.split(".")[:2]) >= (1, 36)


@case("put-get/300KiB")
def put_get_head(ctx, op):
    key = ctx.key(op, "step_100/__0_0.distcp")
    body = data(300 * 1024 + 7)
    r = ctx.s3.put_object(Bucket=ctx.bucket, Key=key, Body=body, ContentType="application/x-dcp", Metadata={"step": "100"})
    equal(r["ETag"], md5_etag(body), "put_object ETag is the MD5")
    if sends_checksums_by_default():
        equal(r.get("ChecksumCRC32"), crc32_b64(body), "put_object returns the CRC32 boto3 sent")
    g = ctx.s3.get_object(Bucket=ctx.bucket, Key=key)
    equal(g["Body"].read(), body, "get_object bytes")
    equal((g["ContentType"], g["Metadata"], g["ETag"]), ("application/x-dcp", {"step": "100"}, r["ETag"]), "content type, metadata, ETag")
    h = ctx.s3.head_object(Bucket=ctx.bucket, Key=key)
    equal((h["ContentLength"], h["ETag"]), (len(body), r["ETag"]), "head_object size and ETag")
    rg = ctx.s3.get_object(Bucket=ctx.bucket, Key=key, Range="bytes=100-199")
    equal(rg["ResponseMetadata"]["HTTPStatusCode"], 206, "ranged get status")
    equal(rg["ContentRange"], "bytes 100-199/%d" % len(body), "Content-Range")
    equal(rg["Body"].read(), body[100:200], "ranged get bytes")


@case("list-v2/paging")
def list_paginator(ctx, op):
    root = ctx.key(op, "ckpt/")
    keys = [root + "latest", root + "odd key+with spaces&\u00fc.txt"]
    for step in ("step_100", "step_200"):
        keys += ["%s%s/__%d_0.distcp" % (root, step, r) for r in range(3)] + ["%s%s/.metadata" % (root, step)]
    for k in keys:
        ctx.s3.put_object(Bucket=ctx.bucket, Key=k, Body=k.encode())
    # boto3 lists with encoding-type=url and decodes the keys.
    pages = list(ctx.s3.get_paginator("list_objects_v2").paginate(Bucket=ctx.bucket, Prefix=root, PaginationConfig={"PageSize": 3}))
    equal([p["KeyCount"] for p in pages], [3, 3, 3, 1], "KeyCount per page")
    equal([c["Key"] for p in pages for c in p.get("Contents", [])], sorted(keys), "keys over all pages")
    top = list(ctx.s3.get_paginator("list_objects_v2").paginate(Bucket=ctx.bucket, Prefix=root, Delimiter="/", PaginationConfig={"PageSize": 2}))
    equal([cp["Prefix"] for p in top for cp in p.get("CommonPrefixes", [])], [root + "step_100/", root + "step_200/"], "CommonPrefixes")
    equal(sorted(c["Key"] for p in top for c in p.get("Contents", [])), sorted([root + "latest", root + "odd key+with spaces&\u00fc.txt"]), "top-level keys")


@case("multipart/upload")
def upload_file(ctx, op):
    key = ctx.key(op, "shard.bin")
    body = data(9 * MiB + 123)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src.bin")
        with open(src, "wb") as f:
            f.write(body)
        # Default TransferConfig: multipart above 8 MiB, 8 MiB parts.
        ctx.s3.upload_file(src, ctx.bucket, key)
    h = ctx.s3.head_object(Bucket=ctx.bucket, Key=key)
    equal(h["ContentLength"], len(body), "size")
    equal(h["ETag"], multipart_etag([body[:8 * MiB], body[8 * MiB:]]), "ETag of a 2-part upload")
    equal(hashlib.sha256(ctx.s3.get_object(Bucket=ctx.bucket, Key=key)["Body"].read()).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256")
    equal(ctx.s3.list_multipart_uploads(Bucket=ctx.bucket, Prefix=ctx.key(op, "")).get("Uploads", []), [], "no upload left open")


@case("download-file")
def download_file(ctx, op):
    key = ctx.key(op, "shard.bin")
    body = data(9 * MiB + 5)
    ctx.s3.put_object(Bucket=ctx.bucket, Key=key, Body=body)
    with tempfile.TemporaryDirectory() as d:
        dst = os.path.join(d, "dst.bin")
        # Above the 8 MiB threshold: a HEAD, then ranged GETs in parallel.
        ctx.s3.download_file(ctx.bucket, key, dst)
        with open(dst, "rb") as f:
            equal(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256 of the downloaded file")


@case("delete-objects/verbose")
def delete_objects(ctx, op):
    keys = [ctx.key(op, "__%d_0.distcp" % i) for i in range(5)]
    for k in keys:
        ctx.s3.put_object(Bucket=ctx.bucket, Key=k, Body=b"x")
    missing = ctx.key(op, "never-written")
    r = ctx.s3.delete_objects(Bucket=ctx.bucket, Delete={"Objects": [{"Key": k} for k in keys + [missing]]})
    equal(sorted(d["Key"] for d in r.get("Deleted", [])), sorted(keys + [missing]), "Deleted")
    equal(r.get("Errors", []), [], "Errors")
    equal(ctx.keys_under(ctx.key(op, "")), [], "nothing left")


@case("copy/rename-metadata-tmp")
def copy_object(ctx, op):
    tmp, final = ctx.key(op, "step_100/.metadata.tmp"), ctx.key(op, "step_100/.metadata")
    body = data(5000)
    put = ctx.s3.put_object(Bucket=ctx.bucket, Key=tmp, Body=body, Metadata={"step": "100"})
    r = ctx.s3.copy_object(Bucket=ctx.bucket, Key=final, CopySource={"Bucket": ctx.bucket, "Key": tmp})
    equal(r["CopyObjectResult"]["ETag"], put["ETag"], "the copy has the source ETag")
    ctx.s3.delete_object(Bucket=ctx.bucket, Key=tmp)
    g = ctx.s3.get_object(Bucket=ctx.bucket, Key=final)
    equal((g["Body"].read(), g["Metadata"]), (body, {"step": "100"}), "bytes and metadata of the renamed object")
    expect_error("head_object of the old name", lambda: ctx.s3.head_object(Bucket=ctx.bucket, Key=tmp), 404, "404")
    ctx.s3.copy_object(Bucket=ctx.bucket, Key=final, CopySource={"Bucket": ctx.bucket, "Key": final},
                       MetadataDirective="REPLACE", Metadata={"step": "200"}, ContentType="text/plain")
    h = ctx.s3.head_object(Bucket=ctx.bucket, Key=final)
    equal((h["Metadata"], h["ContentType"]), ({"step": "200"}, "text/plain"), "MetadataDirective=REPLACE")


@case("get/no-such-key")
def no_such_key(ctx, op):
    try:
        ctx.s3.get_object(Bucket=ctx.bucket, Key=ctx.key(op, "missing"))
        raise AssertionError("get_object of a missing key succeeded")
    except ctx.s3.exceptions.NoSuchKey as e:
        equal(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "status")


@case("get/no-such-key-names-key")
def no_such_key_names_key(ctx, op):
    # S3's NoSuchKey body names the key (<Key>), which boto3 returns as Error.Key.
    key = ctx.key(op, "missing")
    e = expect_error("get_object of a missing key", lambda: ctx.s3.get_object(Bucket=ctx.bucket, Key=key), 404, "NoSuchKey")
    equal(e.response["Error"].get("Key"), key, "Error.Key")


@case("head/missing-404")
def head_404(ctx, op):
    # HEAD answers have no body: boto3 reports the status as the code.
    expect_error("head_object of a missing key", lambda: ctx.s3.head_object(Bucket=ctx.bucket, Key=ctx.key(op, "missing")), 404, "404")


@case("bucket/no-such-bucket")
def no_such_bucket(ctx, op):
    missing = ctx.bucket + "-missing"
    expect_error("list_objects_v2 of a missing bucket", lambda: ctx.s3.list_objects_v2(Bucket=missing), 404, "NoSuchBucket")
    expect_error("put_object into a missing bucket", lambda: ctx.s3.put_object(Bucket=missing, Key="k", Body=b"x"), 404, "NoSuchBucket")
    expect_error("head_bucket of a missing bucket", lambda: ctx.s3.head_bucket(Bucket=missing), 404, "404")


def boto3_versions():
    import boto3
    import botocore
    return {"sdk": boto3.__version__, "botocore": botocore.__version__}


def require_endpoint_env():
    """Exits 2 naming the first endpoint variable that is not set."""
    for name in ENDPOINT_ENV:
        if not os.environ.get(name):
            sys.stderr.write("%s is not set\n" % name)
            sys.exit(2)


def boto_failure(e):
    """The HTTP status and S3 error code of a botocore ClientError."""
    response = getattr(e, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode"), response.get("Error", {}).get("Code")


def connect(args):
    require_endpoint_env()
    return Ctx(args.bucket, args.prefix), None


if __name__ == "__main__":
    main(CASES, target="bucket", default_prefix="python/", sdk_name="boto3",
         sdk_versions=boto3_versions, connect=connect, failure_of=boto_failure)
