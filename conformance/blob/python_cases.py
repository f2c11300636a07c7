#!/usr/bin/python3
"""Blob conformance cases for the Python client (azure-storage-blob).

Spawned by conformance/blob/python-cases.ts. Reads the connection string from
CKPTCACHE_CONFORMANCE_CONNECTION_STRING, works only under --prefix inside the existing container
--container, and prints one JSON object per line on stdout:

  {"event": "env", "python": "3.11.2", "sdk": "12.15.0"}                  once, first
  {"operation": "upload/single", "status": "pass", "ms": 12.3}            one per case
  {"operation": "...", "status": "fail", "ms": 4.5, "error": "..."}
  {"operation": "...", "status": "skip", "ms": 0, "error": "why"}

Uses the standard library and the SDK only, so it runs on Debian's /usr/bin/python3 with
python3-azure.
"""

import hashlib
import os
import sys

# The shared harness lives in conformance/shared; no __pycache__ is left in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared"))
from case_harness import Registry, check, data, equal, main  # noqa: E402

CASES = Registry()
case = CASES.case


class Ctx:
    def __init__(self, conn_str, container, prefix):
        from azure.storage.blob import BlobServiceClient
        self.conn_str = conn_str
        self.container_name = container
        self.prefix = prefix
        self.service = BlobServiceClient.from_connection_string(conn_str, read_timeout=120)
        self.container = self.service.get_container_client(container)

    def name(self, op, leaf):
        return "%s%s/%s" % (self.prefix, op, leaf)


@case("upload/single")
def upload_single(ctx, op):
    blob = ctx.container.get_blob_client(ctx.name(op, "single.bin"))
    body = data(300 * 1024)
    blob.upload_blob(body)
    equal(blob.download_blob().readall(), body, "bytes after a single Put Blob")
    equal(blob.get_blob_properties().size, len(body), "size")


@case("upload/chunked")
def upload_chunked(ctx, op):
    from azure.storage.blob import BlobClient
    name = ctx.name(op, "chunked.bin")
    # Small thresholds force Put Block x N + Put Block List.
    blob = BlobClient.from_connection_string(
        ctx.conn_str, ctx.container_name, name,
        max_single_put_size=1024 * 1024, max_block_size=1024 * 1024)
    body = data(3 * 1024 * 1024 + 5)
    blob.upload_blob(body, max_concurrency=2)
    committed, uncommitted = blob.get_block_list("all")
    equal(len(committed), 4, "committed blocks")
    equal(len(uncommitted), 0, "uncommitted blocks")
    got = ctx.container.get_blob_client(name).download_blob().readall()
    equal(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256 after chunked upload")


@case("download/readall")
def download_readall(ctx, op):
    from azure.storage.blob import BlobClient
    name = ctx.name(op, "big.bin")
    body = data(5 * 1024 * 1024 + 3)
    ctx.container.get_blob_client(name).upload_blob(body)
    # A small first GET plus parallel chunk GETs, as the SDK does for large blobs.
    blob = BlobClient.from_connection_string(
        ctx.conn_str, ctx.container_name, name,
        max_single_get_size=1024 * 1024, max_chunk_get_size=1024 * 1024)
    stream = blob.download_blob(max_concurrency=3)
    equal(stream.size, len(body), "StorageStreamDownloader.size")
    equal(hashlib.sha256(stream.readall()).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256")


@case("download/range")
def download_range(ctx, op):
    blob = ctx.container.get_blob_client(ctx.name(op, "range.bin"))
    body = data(64 * 1024)
    blob.upload_blob(body)
    equal(blob.download_blob(offset=1000, length=4096).readall(), body[1000:5096], "offset=1000 length=4096")
    equal(blob.download_blob(offset=0, length=1).readall(), body[:1], "first byte")
    equal(blob.download_blob(offset=len(body) - 5).readall(), body[-5:], "offset only, to the end")
    equal(blob.download_blob(offset=len(body) - 10, length=100).readall(), body[-10:], "range past the end is clamped")


@case("upload/0B")
def upload_empty(ctx, op):
    blob = ctx.container.get_blob_client(ctx.name(op, "empty.bin"))
    blob.upload_blob(b"")
    equal(blob.download_blob().readall(), b"", "0-byte download")
    equal(blob.get_blob_properties().size, 0, "size")


def dcp_layout(root):
    names = [root + "latest"]
    for step in ("step_100", "step_200"):
        names += ["%s%s/__%d_0.distcp" % (root, step, r) for r in range(4)]
        names.append("%s%s/.metadata" % (root, step))
    return names


@case("list/prefix")
def list_prefix(ctx, op):
    root = ctx.name(op, "ckpt/")
    names = dcp_layout(root)
    for n in names:
        ctx.container.get_blob_client(n).upload_blob(n.encode(), metadata={"Kind": "dcp"} if n.endswith(".metadata") else None)
    got = [b.name for b in ctx.container.list_blobs(name_starts_with=root)]
    equal(got, sorted(names), "list_blobs(name_starts_with=ckpt/)")
    got = [b.name for b in ctx.container.list_blobs(name_starts_with=root + "step_200/")]
    equal(got, sorted(n for n in names if "/step_200/" in n), "list_blobs(name_starts_with=ckpt/step_200/)")
    with_md = {b.name: b.metadata for b in ctx.container.list_blobs(name_starts_with=root + "step_100/", include=["metadata"])}
    equal(with_md[root + "step_100/.metadata"], {"Kind": "dcp"}, "include=['metadata'], key case preserved")
    pages = list(ctx.container.list_blobs(name_starts_with=root, results_per_page=4).by_page())
    equal([len(list(p)) for p in pages], [4, 4, 3], "results_per_page=4")


@case("list/hierarchy")
def walk(ctx, op):
    from azure.storage.blob import BlobPrefix
    root = ctx.name(op, "ckpt/")
    names = dcp_layout(root)
    for n in names:
        ctx.container.get_blob_client(n).upload_blob(n.encode())
    top = list(ctx.container.walk_blobs(name_starts_with=root, delimiter="/"))
    # The SDK yields a page's prefixes before its blobs, so compare each kind on its own.
    prefixes = [i for i in top if isinstance(i, BlobPrefix)]
    equal([i.name for i in prefixes], [root + "step_100/", root + "step_200/"], "walk_blobs(ckpt/, '/') prefixes")
    equal([i.name for i in top if not isinstance(i, BlobPrefix)], [root + "latest"], "walk_blobs(ckpt/, '/') blobs")
    inner = [i.name for i in prefixes[0]]  # iterating a BlobPrefix lists inside it
    equal(inner, sorted(n for n in names if "/step_100/" in n), "walk into step_100/")


@case("delete/blob")
def delete_blob(ctx, op):
    from azure.core.exceptions import ResourceNotFoundError
    blob = ctx.container.get_blob_client(ctx.name(op, "d.bin"))
    blob.upload_blob(b"x")
    blob.delete_blob()
    try:
        blob.get_blob_properties()
        raise AssertionError("get_blob_properties after delete_blob succeeded")
    except ResourceNotFoundError as e:
        equal(str(e.error_code), "BlobNotFound", "error_code after delete")
    try:
        blob.delete_blob()
        raise AssertionError("second delete_blob succeeded")
    except ResourceNotFoundError as e:
        equal(str(e.error_code), "BlobNotFound", "error_code of a second delete")
    equal(list(ctx.container.list_blobs(name_starts_with=ctx.name(op, ""))), [], "nothing listed")


@case("properties/round-trip")
def properties(ctx, op):
    from azure.storage.blob import ContentSettings
    blob = ctx.container.get_blob_client(ctx.name(op, "p.bin"))
    body = data(10000)
    settings = ContentSettings(
        content_type="application/x-torch-dcp", content_encoding="identity",
        content_language="en-US", content_disposition='attachment; filename="p.bin"',
        cache_control="no-cache")
    meta = {"CamelCase": "Value", "lower": "two", "UPPER_1": "THREE"}
    blob.upload_blob(body, content_settings=settings, metadata=meta)
    p = blob.get_blob_properties()
    equal(p.size, len(body), "size")
    equal(p.metadata, meta, "metadata (key case preserved)")
    cs = p.content_settings
    for field in ("content_type", "content_encoding", "content_language", "content_disposition", "cache_control"):
        equal(getattr(cs, field), getattr(settings, field), field)
    equal(bytes(cs.content_md5 or b""), hashlib.md5(body).digest(), "content_md5 computed by the service")
    check(p.etag and p.last_modified, "etag and last_modified")
    meta2 = {"Step": "200", "MixedCase_Key": "v"}
    blob.set_blob_metadata(meta2)
    equal(blob.get_blob_properties().metadata, meta2, "set_blob_metadata replaces, case preserved")
    blob.set_http_headers(ContentSettings(content_type="text/plain", cache_control="max-age=60"))
    cs = blob.get_blob_properties().content_settings
    equal((cs.content_type, cs.cache_control), ("text/plain", "max-age=60"), "set_http_headers")


def sdk_versions():
    import azure.storage.blob as sdk
    return {"sdk": sdk.__version__}


def connect(args):
    conn_str = os.environ.get("CKPTCACHE_CONFORMANCE_CONNECTION_STRING")
    if not conn_str:
        sys.stderr.write("CKPTCACHE_CONFORMANCE_CONNECTION_STRING is not set\n")
        sys.exit(2)
    return Ctx(conn_str, args.container, args.prefix), None


def failure_of(e):
    """The HTTP status and Azure error code of an azure-core HttpResponseError."""
    return getattr(getattr(e, "response", None), "status_code", None), getattr(e, "error_code", None)


if __name__ == "__main__":
    main(CASES, target="container", default_prefix="py/", sdk_name="azure-storage-blob",
         sdk_versions=sdk_versions, connect=connect, failure_of=failure_of)
