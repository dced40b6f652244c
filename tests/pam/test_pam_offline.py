#!/usr/bin/env python3
"""Offline login and network backoff end to end (pamtester -> libpam under
pam_wrapper -> the MP_TESTING build of pam_medplum.so -> the Medplum test
server, with its fault switches, or nothing listening at all).

The taxonomy under test (mp_status.h): Medplum's explicit "no" denies and
deletes the verifier; only "could not ask" (connect failure, timeout, 5xx,
429) may fall back to the verifier; anything else (TLS failure, 404, garbage)
just denies.
"""

import argparse
import os
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pamtest import Runner, check, check_pam  # noqa: E402
from harness import MedplumTestServer  # noqa: E402
from statehelp import DAY, StateEnv, production_module, testing_module  # noqa: E402
from totp import totp  # noqa: E402

ALICE_PW = "alice-password-1"
ERIN_SECRET = "ERINGREENTOTP234"
DOWN_URL = "https://127.0.0.1:9/"  # nothing listens: connection refused at once


class Blackhole:
    """A port whose accept queue is full: SYNs are dropped, so a client's
    connect() hangs until its own connect timeout (a host that went away)."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(c)
        time.sleep(0.1)
        self.url = f"https://127.0.0.1:{self.port}/"
        return self

    def __exit__(self, *exc):
        for c in self.fillers:
            c.close()
        self.sock.close()


class Suite:
    def __init__(self, srv, env):
        self.srv = srv
        self.env = env
        srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})

    def fresh(self):
        self.srv.reset()
        self.env.offset = 0
        self.env.module = testing_module()
        self.srv.control.post("/membership", email="alice@example.com", active=True)
        subprocess.run(["rm", "-rf", self.env.cache_dir + "/private",
                        self.env.cache_dir + "/accounts.db"], check=True)
        self.env.write_config()
        self.env.write_service()
        self.srv.clear_log()

    def login(self, password=ALICE_PW, user="alice", extra=""):
        return self.env.pamtester(user, ["authenticate", "acct_mgmt"],
                                  stdin=password + "\n" + extra)

    def online(self, user="alice", password=ALICE_PW, extra=""):
        res = self.login(password, user, extra)
        check_pam(res, "PAM_SUCCESS", f"online login of {user}")
        check(res.log_has(f"user {user}: accepted as"), f"online: {res.syslog}")
        return res

    def down(self, extra=""):
        self.env.write_config(base_url=DOWN_URL, extra=extra)

    def offline_ok(self, res, what):
        check_pam(res, "PAM_SUCCESS", what)
        check(res.log_has("accepted offline"), f"{what}: {res.syslog}")
        check("you are logged in offline" in res.output, f"{what}: user told: {res.output}")

    def unavailable(self, res, what, reason):
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", what)
        check(res.log_has(reason), f"{what}: expected '{reason}' in {res.syslog}")
        check("cannot be reached" in res.output or "wait" in res.output, "user told")

    # ---- the happy path ----

    def test_offline_success_after_online_login(self):
        self.fresh()
        self.online()
        self.down()
        self.offline_ok(self.login(), "server down")
        st = self.env.user_state("alice")
        check(st["offline_failures"] == "0", f"counter reset: {st}")

    def test_verifier_file_is_root_only_and_holds_no_secret(self):
        self.fresh()
        res = self.online()
        private = self.env.private_dir()
        check(stat.S_IMODE(os.stat(private).st_mode) == 0o700, "private/ is 0700")
        path = os.path.join(private, "user-alice")
        st = os.lstat(path)
        check(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, "file is 0600")
        check(st.st_uid == os.geteuid(), "owned by the module's user (root in production)")
        with open(path) as f:
            text = f.read()
        check("verifier $y$" in text, f"yescrypt verifier: {text}")
        token = [r for r in self.srv.requests() if r["path"] == "/oauth2/logout"][0]
        bearer = token["headers"]["Authorization"].split(" ", 1)[1]
        for root, _, files in os.walk(self.env.cache_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                check(ALICE_PW.encode() not in data, f"password in {name}")
                check(bearer.encode() not in data, f"token in {name}")
        check(res.log_has("accepted as"), "sanity")

    # ---- bounded by time, failures, revocation, MFA ----

    def test_offline_expires_after_ttl(self):
        self.fresh()
        self.online()
        self.down()
        self.env.offset = 3 * DAY - 120
        self.offline_ok(self.login(), "just inside offline_ttl")
        self.env.offset = 3 * DAY + 1
        self.unavailable(self.login(), "past offline_ttl", "older than offline_ttl")

    def test_offline_ttl_zero_disables_and_keeps_no_verifier(self):
        self.fresh()
        self.env.write_config(extra="offline_ttl = 0\n")
        self.online()
        check(self.env.user_state("alice")["has_verifier"] == "0", "no verifier kept")
        self.down(extra="offline_ttl = 0\n")
        self.unavailable(self.login(), "disabled", "offline_ttl = 0")

    def test_offline_failure_limit(self):
        self.fresh()
        self.online()
        self.down()
        for i in range(5):
            res = self.login("wrong-password-%d" % i)
            check_pam(res, "PAM_AUTH_ERR", f"offline failure {i + 1}")
            check("Authentication failed." in res.output, "uniform message")
        res = self.login()
        self.unavailable(res, "right password after 5 failures", "too many offline failures")
        # The next online success (once the backoff has run out) re-opens
        # the offline path.
        self.env.offset = 121
        self.env.write_config()
        self.online()
        self.down()
        self.offline_ok(self.login(), "after an online success")

    def test_explicit_no_deletes_verifier(self):
        self.fresh()
        self.online()
        res = self.login("not-her-password")
        check_pam(res, "PAM_AUTH_ERR", "wrong password online")
        check(self.env.user_state("alice")["has_verifier"] == "0", "verifier deleted")
        self.down()
        self.unavailable(self.login(), "after Medplum's no", "no verifier")

    def test_inactive_membership_deletes_verifier(self):
        self.fresh()
        self.online()
        self.srv.control.post("/membership", email="alice@example.com", active=False)
        check_pam(self.login(), "PAM_AUTH_ERR", "membership inactive")
        check(self.env.user_state("alice")["has_verifier"] == "0", "verifier deleted")

    def test_revoked_by_sync_blocks_offline(self):
        self.fresh()
        self.online()
        self.env.set_membership("alice", "absent")
        self.down()
        self.unavailable(self.login(), "revoked", "no verifier")

    def test_mfa_user_offline_refused_by_default(self):
        self.fresh()
        self.online("erin", "erin-password-1", totp(ERIN_SECRET) + "\n")
        self.down()
        self.unavailable(self.login("erin-password-1", "erin"), "MFA user",
                         "offline_allow_mfa_users = no")
        self.down(extra="offline_allow_mfa_users = yes\n")
        self.offline_ok(self.login("erin-password-1", "erin"), "MFA user, allowed by config")

    # ---- what may fall back ----

    def test_5xx_falls_back(self):
        self.fresh()
        self.online()
        self.srv.set_fault("status", status=503, path_prefix="/auth/login")
        self.offline_ok(self.login(), "503")
        check(self.srv.requests()[-1]["path"] == "/auth/login", "asked once")

    def test_429_falls_back(self):
        self.fresh()
        self.online()
        self.srv.set_fault("ratelimit", path_prefix="/auth/login")
        self.offline_ok(self.login(), "429")
        # A 429 answers at once: no host-wide backoff (anyone can cause one).
        backoff = self.env.backoff()
        check(backoff["failures"] == "0", f"no backoff from a 429: {backoff}")
        self.srv.clear_log()
        self.offline_ok(self.login(), "second login during the rate limit")
        check("/auth/login" in [r["path"] for r in self.srv.requests()], "asked Medplum again")

    def test_429_cannot_reopen_a_revoked_account(self):
        # Found in review: failed logins for made-up names exhaust Medplum's
        # per-IP limit; the 429 must not let a revoked member in offline once
        # the known membership state is older than membership_max_age.
        self.fresh()
        self.online()
        self.srv.control.post("/membership", email="alice@example.com", active=False)
        self.srv.set_fault("ratelimit", path_prefix="/auth/login")
        self.env.offset = 3601
        res = self.login()
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "rate limited, stale state")
        check(res.log_has("rate limiting this host"), f"reason: {res.syslog}")

    def test_timeout_falls_back(self):
        self.fresh()
        self.online()
        self.env.write_config(timeout=2)
        self.srv.set_fault("hang", path_prefix="/auth/login")
        try:
            res = self.login()
        finally:
            self.srv.reset()
        self.offline_ok(res, "hang")
        check(res.elapsed < 3.5, f"bounded by timeout: {res.elapsed:.1f}s")

    def test_400_does_not_fall_back(self):
        self.fresh()
        self.online()
        self.srv.set_fault("status", status=400, path_prefix="/auth/login")
        res = self.login()
        check_pam(res, "PAM_AUTH_ERR", "400 is Medplum's no")
        check(not res.log_has("offline"), f"no offline attempt: {res.syslog}")
        check(self.env.user_state("alice")["has_verifier"] == "0", "and it deletes the verifier")

    def test_other_errors_neither_fall_back_nor_delete(self):
        self.fresh()
        self.online()
        for mode, options in (("status", {"status": 404}), ("garbage", {})):
            self.srv.reset()
            self.srv.set_fault(mode, path_prefix="/auth/login", **options)
            res = self.login()
            check_pam(res, "PAM_AUTHINFO_UNAVAIL", f"{mode} {options}")
            check(not res.log_has("offline"), f"no offline attempt: {res.syslog}")
        self.srv.reset()
        self.env.write_config(ca_file=self.srv.other_ca_file)
        res = self.login()
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "TLS failure")
        check(not res.log_has("offline"), f"a wrong peer is no outage: {res.syslog}")
        check(self.env.user_state("alice")["has_verifier"] == "1", "verifier kept")
        check(self.env.backoff().get("failures", "0") == "0", "no backoff either")

    # ---- backoff: one timeout per outage, not one per login ----

    def test_outage_costs_one_connect_timeout(self):
        self.fresh()
        self.online()
        with Blackhole() as hole:
            self.env.write_config(base_url=hole.url, connect_timeout=1, timeout=10)
            first = self.login()
            self.offline_ok(first, "first login of the outage")
            check(0.9 <= first.elapsed < 1.8,
                  f"first login waits connect_timeout (1 s): {first.elapsed:.2f}s")
            times = []
            for i in range(3):
                res = self.login()
                self.offline_ok(res, f"login {i + 2}")
                check(res.log_has("network skipped"), f"no network: {res.syslog}")
                times.append(res.elapsed)
            check(max(times) < 0.1, f"later logins offline at once: {times}")
        # A local user is never slowed down by the outage either.
        res = self.env.pamtester("root", ["authenticate"], stdin="x\n")
        check_pam(res, "PAM_USER_UNKNOWN", "root")
        check(res.elapsed < 0.1, f"local user: {res.elapsed:.2f}s")

    def test_backoff_doubles_then_success_clears(self):
        self.fresh()
        self.online()
        self.down()
        check_pam(self.login(), "PAM_SUCCESS", "offline 1")
        b1 = self.env.backoff()
        check(b1["failures"] == "1", f"{b1}")
        d1 = int(b1["until"]) - int(b1["last_failure"])
        check(45 <= d1 <= 60, f"first delay 60 s minus jitter: {d1}")
        self.env.offset = 61
        check_pam(self.login(), "PAM_SUCCESS", "offline 2 (network tried again)")
        b2 = self.env.backoff()
        d2 = int(b2["until"]) - int(b2["last_failure"])
        check(b2["failures"] == "2" and 90 <= d2 <= 120, f"doubled: {b2}")
        self.env.offset = 61 + 121
        self.env.write_config()
        self.online()
        check(self.env.backoff().get("failures", "0") == "0", "cleared by a success")

    def test_backoff_capped_at_max(self):
        self.fresh()
        self.online()
        self.down(extra="offline_backoff = 60\noffline_backoff_max = 100\n")
        offset = 0
        for _ in range(4):
            self.env.offset = offset
            self.login()
            b = self.env.backoff()
            offset = int(b["until"]) - int(time.time()) + 1
        d = int(b["until"]) - int(b["last_failure"])
        check(b["failures"] == "4" and 75 <= d <= 100, f"capped at 100: {b}")

    # ---- the test clock cannot move a production module ----

    def test_production_module_has_no_test_clock(self):
        self.fresh()
        with open(production_module(), "rb") as f:
            check(b"MP_TEST_CLOCK_OFFSET" not in f.read(), "production module reads no clock env")
        self.env.module = production_module()
        self.env.write_service()
        self.online()
        self.down()
        self.env.offset = 10 * DAY  # would expire the verifier if it were honoured
        self.offline_ok(self.login(), "production module ignores MP_TEST_CLOCK_OFFSET")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="run tests whose name contains this")
    args = parser.parse_args()
    runner = Runner("pam offline")
    with MedplumTestServer() as srv, StateEnv(srv) as env:
        suite = Suite(srv, env)
        for name in sorted(n for n in dir(suite) if n.startswith("test_")):
            if args.k in name:
                suite.fresh()
                runner.run(name, getattr(suite, name))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
