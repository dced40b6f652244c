#!/usr/bin/env python3
"""Tiny client for the test server's control port (plain HTTP on 127.0.0.1).

Import:
    c = Control(port)                 # or Control.from_port_file(path)
    c.fault("hang", path_prefix="/auth/login"); c.reset(); c.log(); c.post("/time", offset=90)
CLI:
    control.py --port-file F fault hang [--seconds N] [--status N] [--path-prefix P] [--count N]
    control.py --port-file F reset | clear-log | log
    control.py --port-file F post /membership '{"email": "bob@example.com", "active": true}'
"""

import argparse
import http.client
import json
import sys


class Control:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.host, self.port, self.timeout = host, int(port), timeout

    @classmethod
    def from_port_file(cls, path):
        with open(path) as f:
            return cls(int(f.read().strip()))

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, body=payload,
                         headers={"Content-Type": "application/json"} if payload else {})
            resp = conn.getresponse()
            data = json.loads(resp.read() or b"null")
            if resp.status != 200:
                raise RuntimeError("control %s %s -> %d %s" % (method, path, resp.status, data))
            return data
        finally:
            conn.close()

    def post(self, path, **fields):
        return self.request("POST", path, fields)

    def fault(self, mode, **options):
        """mode: none|delay|status|garbage|drop|redirect|hang|ratelimit (see README)."""
        return self.post("/faults", mode=mode, **options)

    def reset(self):
        return self.post("/reset")

    def clear_log(self):
        return self.post("/clear-log")

    def log(self):
        return self.request("GET", "/log")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port-file")
    where.add_argument("--port", type=int)
    sub = parser.add_subparsers(dest="command", required=True)
    fault = sub.add_parser("fault")
    fault.add_argument("mode")
    fault.add_argument("--seconds", type=float)
    fault.add_argument("--status", type=int)
    fault.add_argument("--path-prefix")
    fault.add_argument("--count", type=int)
    sub.add_parser("reset")
    sub.add_parser("clear-log")
    sub.add_parser("log")
    post = sub.add_parser("post")
    post.add_argument("path")
    post.add_argument("json", nargs="?", default="{}")
    args = parser.parse_args()

    c = Control.from_port_file(args.port_file) if args.port_file else Control(args.port)
    if args.command == "fault":
        options = {k: v for k, v in (("seconds", args.seconds), ("status", args.status),
                                     ("path_prefix", args.path_prefix), ("count", args.count))
                   if v is not None}
        result = c.fault(args.mode, **options)
    elif args.command == "reset":
        result = c.reset()
    elif args.command == "clear-log":
        result = c.clear_log()
    elif args.command == "log":
        result = c.log()
    else:
        result = c.request("POST", args.path, json.loads(args.json))
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
