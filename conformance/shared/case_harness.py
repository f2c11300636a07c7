"""Harness of the conformance case scripts (the Python client of each suite).

A script registers its cases with a `Registry` and hands it to `main`, which gives every script
the same command line and output, read by conformance/shared/python-runner.ts:

  script.py --list                                    the operations, as a JSON array
  script.py --<target> NAME [--prefix P] [--only OP,OP]

and one JSON object per line on stdout:

  {"event": "env", "python": "3.11.2", "sdk": "1.2.3", ...}           once, first
  {"operation": "upload/single", "status": "pass", "ms": 12.3}        one per case
  {"operation": "...", "status": "fail", "ms": 4.5, "error": "..."}
  {"operation": "...", "status": "skip", "ms": 0, "error": "why"}

Uses the standard library only. A script finds this module by putting conformance/shared on
sys.path itself, so it runs the same from the TypeScript driver and by hand.
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback


class Registry:
    """The cases of one script, in the order they are registered."""

    def __init__(self):
        self.cases = []

    def case(self, operation):
        """Decorator: registers `fn(ctx, op)` as the case `operation`."""
        def register(fn):
            self.cases.append((operation, fn))
            return fn
        return register

    def operations(self):
        return [op for op, _ in self.cases]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def data(size):
    return os.urandom(size)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def equal(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        raise AssertionError("%s: got %s, want %s" % (what, g[:200], w[:200]))


def _elapsed_ms(t0):
    return round((time.monotonic() - t0) * 1000, 1)


def main(registry, target, default_prefix, sdk_name, sdk_versions, connect, failure_of,
         target_help=None, prefix_help=None, before_case=None):
    """Parses the command line and runs the script's cases, one result line each.

    target: the name of the required option naming where the cases work (`bucket`, `container`).
    sdk_versions(): imports the SDK and returns its versions for the env line (`{"sdk": ...}`);
        an ImportError makes every case `skip`, naming `sdk_name`.
    connect(args): returns (ctx, why_not): the context every case gets, and a reason to skip
        every case, or None. It may exit 2 for a missing setting.
    failure_of(exc): the (HTTP status, error code) of a failed call, or (None, None).
    before_case(ctx): called before each case, e.g. to reset what the context recorded.
    """
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true", help="print the operations as a JSON array and exit")
    ap.add_argument("--" + target, help=target_help)
    ap.add_argument("--prefix", default=default_prefix, help=prefix_help)
    ap.add_argument("--only", default="", help="comma-separated operations to run (default all)")
    args = ap.parse_args()
    if args.list:
        emit(registry.operations())
        return
    if not getattr(args, target):
        ap.error("--%s is required" % target)
    only = set(filter(None, args.only.split(",")))
    cases = [(op, fn) for op, fn in registry.cases if not only or op in only]

    try:
        versions = sdk_versions()
    except ImportError as e:
        emit({"event": "env", "python": platform.python_version(), "sdk": None})
        for op, _ in cases:
            emit({"operation": op, "status": "skip", "ms": 0, "error": "%s not importable: %s" % (sdk_name, e)})
        return
    env = {"event": "env", "python": platform.python_version()}
    env.update(versions)
    emit(env)

    ctx, why_not = connect(args)
    for op, fn in cases:
        if why_not:
            emit({"operation": op, "status": "skip", "ms": 0, "error": why_not})
            continue
        t0 = time.monotonic()
        if before_case:
            before_case(ctx)
        try:
            fn(ctx, op)
            emit({"operation": op, "status": "pass", "ms": _elapsed_ms(t0)})
        except Exception as e:  # noqa: BLE001 - every failure becomes a result line
            status, code = failure_of(e)
            prefix = "%s %s: " % (status, code) if status else ""
            msg = (str(e).splitlines() or [""])[0]
            emit({"operation": op, "status": "fail", "ms": _elapsed_ms(t0),
                  "error": (prefix + type(e).__name__ + ": " + msg)[:300]})
            if os.environ.get("CKPTCACHE_CONFORMANCE_DEBUG"):
                traceback.print_exc()
