"""
The S3 peer of the benchmark: moto's S3 server (werkzeug, a thread per
request, objects kept by moto in process memory; bodies above moto's key
buffer size spill to temporary files under $TMPDIR).

    python3 bench/servers/moto-server.py [--host 127.0.0.1] [--port 0]

Prints `moto listening on port N (moto X, Python Y)` when ready. Per-request
log lines are off (the other servers write none either). Exits when its
standard input reaches end of file (the benchmark holds the other end, so a
benchmark that dies takes moto with it) or on SIGTERM.
"""

import argparse
import logging
import platform
import sys

import moto
from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"moto listening on port {port} (moto {moto.__version__}, Python {platform.python_version()})", flush=True)
    sys.stdin.buffer.read()  # returns at end of file: the parent is gone or closed the pipe
    server.stop()


if __name__ == "__main__":
    main()
