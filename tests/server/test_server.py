#!/usr/bin/env python3
"""Self-test of the test server's own machinery (not covered by the recordings): faults, the
control port, the request log, clock shifts, runtime population changes, plain-HTTP mode and
the certificates. Run: python3 tests/server/test_server.py"""

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import totp  # noqa: E402
from harness import MedplumTestServer  # noqa: E402

PAM_LOGIN = "4eb5fd55-d38f-4205-89b4-13c4b49e3288"


def call(srv, method, path, body=None, headers=None, timeout=10):
    """(status, parsed body or text, headers); raises on connection problems."""
    if srv.http:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", srv.port, timeout=timeout,
            context=ssl.create_default_context(cafile=srv.ca_file))
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, parsed, resp.getheaders()
    finally:
        conn.close()


def login(srv, email, password, **extra):
    return call(srv, "POST", "/auth/login", dict(email=email, password=password, **extra))


def check_faults(srv):
    srv.set_fault("status", status=503, count=1)
    assert call(srv, "GET", "/healthcheck")[:2] == (503, {"msg": "Internal Server Error"})
    assert call(srv, "GET", "/healthcheck")[0] == 200, "count=1 fault must expire"
    srv.set_fault("garbage", path_prefix="/auth/login")
    status, body, _ = login(srv, "alice@example.com", "alice-password-1")
    assert status == 200 and isinstance(body, str), body
    assert call(srv, "GET", "/healthcheck")[0] == 200, "path_prefix must limit the fault"
    srv.reset()
    srv.set_fault("redirect")
    status, _, headers = call(srv, "GET", "/healthcheck")
    assert status == 302 and dict(headers)["Location"] == "/redirected/healthcheck"
    srv.reset()
    srv.set_fault("ratelimit")
    status, body, headers = login(srv, "alice@example.com", "alice-password-1")
    diagnostics = json.loads(body["issue"][0]["diagnostics"])
    assert status == 429 and body["id"] == "too-many-requests" and "_msBeforeNext" in diagnostics
    assert dict(headers)["RateLimit"].startswith('"requests";r=0;')
    srv.reset()
    srv.set_fault("drop")
    try:
        call(srv, "GET", "/healthcheck")
        raise AssertionError("drop must close the connection without an answer")
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
        pass
    srv.reset()
    srv.set_fault("delay", seconds=0.5)
    started = time.monotonic()
    assert call(srv, "GET", "/healthcheck")[0] == 200 and time.monotonic() - started >= 0.5
    srv.reset()
    srv.set_fault("hang")
    try:
        call(srv, "GET", "/healthcheck", timeout=0.5)
        raise AssertionError("hang must not answer")
    except socket.timeout:
        pass
    threading.Timer(0.3, srv.reset).start()
    assert call(srv, "GET", "/healthcheck", timeout=5)[0] == 200, "cleared hang answers"


def check_log(srv):
    srv.clear_log()
    password = "caf\u00e9-\u00fc-password-1"
    login(srv, "nobody@example.com", password, clientId=PAM_LOGIN)
    entries = srv.requests()
    assert len(entries) == 1 and entries[0]["path"] == "/auth/login"
    raw = base64.b64decode(entries[0]["body_b64"])
    assert json.loads(raw)["password"] == password
    with open(srv.log_file) as f:
        assert json.loads(f.readlines()[-1])["body_b64"] == entries[0]["body_b64"]


def check_control(srv):
    assert login(srv, "alice@example.com", "alice-password-1")[0] == 200
    srv.control.post("/membership", email="alice@example.com", active=False)
    status, body, _ = login(srv, "alice@example.com", "alice-password-1")
    assert status == 400 and body["issue"][0]["details"]["text"] == "Profile not active"
    srv.control.post("/membership", email="alice@example.com", active=None)
    srv.control.post("/password", email="alice@example.com", password="new-alice-pass-1")
    assert login(srv, "alice@example.com", "new-alice-pass-1")[0] == 200
    added = srv.control.post("/user", email="zoe@example.com", password="zoe-password-1",
                             project="Lab North", given="Zoe", family="Test")
    status, body, _ = login(srv, "zoe@example.com", "zoe-password-1", clientId=PAM_LOGIN)
    assert status == 200 and "code" in body, body
    srv.control.post("/membership", email="zoe@example.com", delete=True)
    status, body, _ = login(srv, "zoe@example.com", "zoe-password-1")
    assert body["issue"][0]["details"]["text"] == "User not found", added
    # MFA codes follow the shifted clock.
    srv.set_time_offset(3600)
    status, body, _ = login(srv, "erin@example.com", "erin-password-1")
    verify = {"login": body["login"], "token": totp.totp("ERINGREENTOTP234")}
    assert call(srv, "POST", "/auth/mfa/verify", verify)[0] == 400, "code of the real clock"
    verify["token"] = totp.totp("ERINGREENTOTP234", time.time() + 3600)
    assert call(srv, "POST", "/auth/mfa/verify", verify)[0] == 200
    srv.set_time_offset(0)


def check_type_confused_input(srv):
    status, body, _ = call(srv, "POST", "/auth/login", {"email": ["x"], "password": "abcdef"})
    assert (status, body) == (500, {"msg": "Internal Server Error"})


def check_plain_http():
    with MedplumTestServer(http=True) as srv:
        assert srv.base_url.startswith("http://")
        assert call(srv, "GET", "/healthcheck")[0] == 200


def check_certificates(srv):
    for name in ("ca.pem", "server.pem", "server.key", "other-ca.pem"):
        assert os.path.exists(os.path.join(srv.dir, name)), name
    out = subprocess.run(["openssl", "x509", "-in", os.path.join(srv.dir, "server.pem"),
                          "-noout", "-ext", "subjectAltName"], capture_output=True, text=True)
    for san in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"):
        assert san in out.stdout, out.stdout
    other = ssl.create_default_context(cafile=srv.other_ca_file)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            other.wrap_socket(sock, server_hostname="localhost")
        raise AssertionError("a certificate from another CA must not verify")
    except ssl.SSLCertVerificationError:
        pass


def main():
    checks = [check_faults, check_log, check_control, check_type_confused_input, check_certificates]
    passed = failed = 0
    with MedplumTestServer() as srv:
        for check in checks:
            try:
                check(srv)
                passed += 1
                print("PASS", check.__name__)
            except Exception as exc:  # report and go on with the next check
                failed += 1
                print("FAIL %s: %s: %s" % (check.__name__, type(exc).__name__, exc))
            finally:
                srv.reset()
    try:
        check_plain_http()
        passed += 1
        print("PASS check_plain_http")
    except Exception as exc:
        failed += 1
        print("FAIL check_plain_http: %s" % exc)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
