#!/usr/bin/env python3
"""pam_sm_authenticate end to end: pamtester -> libpam (pam_wrapper) -> pam_medplum.so
-> HTTPS -> the Medplum-compatible test server.

Each test asserts the PAM result, and where it matters what the server received
(its request log) and what the module logged (pam_syslog lines, which pam_wrapper
prints to stderr).  Run against the recorded 5.0.10 behaviour and, with
--variant newest, against the contract's newest-release behaviour.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pamtest import (LAB_SOUTH, PamEnv, Runner, SkipTest, check, check_pam)  # noqa: E402
from harness import MedplumTestServer  # noqa: E402
from totp import totp  # noqa: E402

ALICE_PRACTITIONER = "Practitioner/7618b02a-aace-465e-96d6-68f936dcf006"
CAROL_NORTH = "Practitioner/e33739bb-453b-4230-a895-e1e73d3049c2"
ERIN_SECRET = "ERINGREENTOTP234"


def paths(srv):
    return [r["path"] for r in srv.requests()]


def login_bodies(srv):
    return [json.loads(base64.b64decode(r["body_b64"])) for r in srv.requests()
            if r["path"] == "/auth/login"]


class Suite:
    def __init__(self, srv, env):
        self.srv = srv
        self.env = env
        # Logins per minute are limited per IP (5/min in the newest release);
        # the suite logs in often, so the limit is lifted except where tested.
        self.default_limits = {"auth": -1, "login": -1}
        srv.control.post("/settings", rate_limits=self.default_limits)

    def fresh(self):
        self.srv.reset()
        self.srv.clear_log()
        self.env.write_config()
        self.env.write_service()
        # Offline verifiers and the network backoff (private state) would
        # carry one test's logins and outages into the next.
        shutil.rmtree(os.path.join(self.env.cache_dir, "private"), ignore_errors=True)

    def login(self, user, password, extra_stdin="", ops=("authenticate",)):
        return self.env.pamtester(user, list(ops), stdin=password + "\n" + extra_stdin)

    # ---- accepted ----

    def test_success(self):
        res = self.login("alice", "alice-password-1", ops=("authenticate", "acct_mgmt"))
        check_pam(res, "PAM_SUCCESS", "alice")
        check(res.log_has("user alice: accepted as alice@example.com (" + ALICE_PRACTITIONER),
              f"no accept line: {res.syslog}")
        check(paths(self.srv) == ["/auth/login", "/oauth2/token", "/oauth2/logout"],
              f"requests: {paths(self.srv)}")
        body = login_bodies(self.srv)[0]
        check(body["codeChallengeMethod"] == "S256" and len(body["codeChallenge"]) == 43,
              "PKCE S256 challenge sent")
        check(body.get("resourceType") == "Practitioner", "resourceType sent")
        logout = self.srv.requests()[2]
        check(logout["headers"].get("Authorization", "").startswith("Bearer "),
              "logout carries the token")

    def test_two_memberships_picks_our_project(self):
        res = self.login("carol", "carol-password-1")
        check_pam(res, "PAM_SUCCESS", "carol")
        check(res.log_has(CAROL_NORTH), f"Lab North profile chosen: {res.syslog}")

    def test_mfa_right_code(self):
        code = totp(ERIN_SECRET)
        res = self.login("erin", "erin-password-1", extra_stdin=code + "\n")
        check_pam(res, "PAM_SUCCESS", "erin")
        check("Authenticator code:" in res.output, "code prompt shown")
        check(res.log_has("with MFA"), f"MFA in log: {res.syslog}")
        check("/auth/mfa/verify" in paths(self.srv), "verify called")

    # ---- Medplum says no: PAM_AUTH_ERR with one identical user message ----

    def denied(self, user, password, reason, extra_stdin=""):
        res = self.login(user, password, extra_stdin)
        check_pam(res, "PAM_AUTH_ERR", user)
        check("Authentication failed." in res.output, "uniform user message")
        check(res.log_has(f"user {user}: denied: {reason}"), f"reason '{reason}': {res.syslog}")
        check(paths(self.srv).count("/auth/login") == 1, "exactly one /auth/login")
        return res

    def test_wrong_password(self):
        self.denied("alice", "not-her-password", "wrong password")

    def test_unknown_email(self):
        res = self.denied("zed", "whatever-pass", "unknown user")
        wrong = self.login("alice", "not-her-password")
        # The user cannot tell an unknown account from a wrong password.
        strip = lambda out: [l for l in out.splitlines() if "SYSLOG" not in l and "PWRAP" not in l]
        check(strip(res.output.replace("zed", "X")) == strip(wrong.output.replace("alice", "X")),
              "same user-visible output for unknown email and wrong password")

    def test_not_a_member(self):
        self.denied("southadmin", "southadmin-password-1", "unknown user or no membership")

    def test_inactive_membership(self):
        self.denied("bob", "bob-password-1", "membership inactive")

    def test_patient_only(self):
        self.denied("dave", "dave-password-1", "unknown user or no membership")

    def test_mfa_wrong_code(self):
        good = totp(ERIN_SECRET)
        wrong = "%06d" % ((int(good) + 500000) % 1000000)
        self.denied("erin", "erin-password-1", "wrong MFA code", extra_stdin=wrong + "\n")

    def test_mfa_enroll_required(self):
        res = self.login("ivan", "ivan-password-1")
        check_pam(res, "PAM_AUTH_ERR", "ivan")
        check("Enroll an authenticator" in res.output, "enrol message")
        check(res.log_has("MFA enrollment required"), f"log: {res.syslog}")

    def test_wrong_project_configured(self):
        # alice is not in Lab South: the server says User not found.
        self.env.write_config(project=LAB_SOUTH, client=None)
        self.denied("alice", "alice-password-1", "unknown user or no membership")

    # ---- refused locally: no request at all ----

    def no_request(self):
        check(paths(self.srv) == [], f"server saw requests: {paths(self.srv)}")

    def test_empty_password(self):
        res = self.login("alice", "")
        check_pam(res, "PAM_AUTH_ERR", "empty")
        check(res.log_has("empty password (not sent)"), f"log: {res.syslog}")
        self.no_request()

    def test_overlong_password(self):
        res = self.login("alice", "x" * 1025)
        check_pam(res, "PAM_AUTH_ERR", "long")
        self.no_request()

    def test_control_characters_not_sent(self):
        # sshd's stand-in password for users it does not know is
        # "\b\n\r\177INCORRECT"; nothing typed at a prompt looks like that.
        res = self.login("alice", "\b\r\x7fINCORRECT")
        check_pam(res, "PAM_AUTH_ERR", "control characters")
        check(res.log_has("control characters (not sent)"), f"log: {res.syslog}")
        self.no_request()

    def test_local_and_invalid_users_fall_through(self):
        for user in ("root", "daemon", "Alice", "al:ice", "-alice", "a..b", "al ice"):
            res = self.login(user, "anything")
            check_pam(res, "PAM_USER_UNKNOWN", user)
        self.no_request()

    def test_no_mapping_without_email_domain(self):
        self.env.write_config(extra="")
        with open(self.env.config) as f:
            text = f.read().replace("email_domain = example.com\n", "")
        with open(self.env.config, "w") as f:
            f.write(text)
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_USER_UNKNOWN", "unmapped")
        self.no_request()

    def test_bad_config_denies(self):
        self.env.write_config(extra="colour = blue\n")
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "bad key")
        check(res.log_has("unknown key 'colour'"), f"log: {res.syslog}")
        self.env.write_config(mode=0o666)
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "world-writable")
        check(res.log_has("writable by group or others"), f"log: {res.syslog}")
        self.no_request()

    def test_missing_config_denies(self):
        self.env.write_service(args=f"config={self.env.dir}/nonexistent.conf")
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "missing")
        self.no_request()

    # ---- could not ask: PAM_AUTHINFO_UNAVAIL, bounded time ----

    def unavailable(self, res, what):
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", what)
        check("cannot be reached" in res.output or "wait" in res.output, "user told")

    def test_server_down_fails_fast(self):
        # A port nobody listens on: connection refused at once.
        self.env.write_config(base_url="https://127.0.0.1:9/")
        res = self.login("alice", "alice-password-1")
        self.unavailable(res, "down")
        check(res.elapsed < 2, f"took {res.elapsed:.1f}s")
        check(res.log_has("Medplum unreachable: connection failed"), f"log: {res.syslog}")

    def test_server_never_answers(self):
        self.env.write_config(timeout=3)
        self.srv.set_fault("hang")
        res = self.login("alice", "alice-password-1")
        self.srv.reset()
        self.unavailable(res, "hang")
        check(2.5 <= res.elapsed < 6, f"took {res.elapsed:.1f}s (timeout 3)")
        check(res.log_has("timeout"), f"log: {res.syslog}")

    def test_slow_server_bounded_per_login(self):
        # Each answer comes just inside the per-request timeout; the login as
        # a whole still ends within 2 x timeout of network time.
        if os.environ.get("MP_VALGRIND"):
            raise SkipTest("timing test: valgrind's slowdown eats the budget itself")
        self.env.write_config(timeout=2, extra="offline_ttl = 0\n")
        self.srv.set_fault("delay", seconds=1.5)
        res = self.login("erin", "erin-password-1", extra_stdin=totp(ERIN_SECRET) + "\n")
        self.srv.reset()
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "slow server")
        check(res.elapsed < 5, f"took {res.elapsed:.1f}s (budget 4s)")
        check(paths(self.srv) == ["/auth/login", "/auth/mfa/verify", "/oauth2/token"],
              f"requests: {paths(self.srv)}")

    def test_tls_from_other_ca(self):
        self.env.write_config(ca_file=self.srv.other_ca_file)
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "other CA")
        check(res.log_has("TLS verification failed"), f"log: {res.syslog}")
        self.no_request()

    def test_plain_http_refused_without_option(self):
        self.env.write_config(base_url=self.srv.base_url.replace("https://", "http://"))
        with open(self.env.config) as f:
            text = f.read().replace("allow_insecure_http = yes\n", "")
        with open(self.env.config, "w") as f:
            f.write(text)
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "http")
        check(res.log_has("plain http"), f"log: {res.syslog}")
        self.no_request()

    def test_redirect_not_followed(self):
        self.srv.set_fault("redirect", path_prefix="/auth/login")
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "redirect")
        check(paths(self.srv) == ["/auth/login"], f"followed? {paths(self.srv)}")

    def test_rate_limited_no_retry(self):
        self.srv.set_fault("ratelimit", path_prefix="/auth/login")
        res = self.login("alice", "alice-password-1")
        self.unavailable(res, "429")
        check("seconds before trying again" in res.output, "told to wait")
        check(paths(self.srv) == ["/auth/login"], f"retried? {paths(self.srv)}")

    def test_server_error(self):
        self.srv.set_fault("status", status=503)
        res = self.login("alice", "alice-password-1")
        self.unavailable(res, "503")
        check(paths(self.srv) == ["/auth/login"], "no retry")

    def test_garbage_body(self):
        self.srv.set_fault("garbage", path_prefix="/auth/login")
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "garbage")
        check(res.log_has("not a JSON object"), f"log: {res.syslog}")

    def test_dropped_connection(self):
        self.srv.set_fault("drop", path_prefix="/oauth2/token")
        res = self.login("alice", "alice-password-1")
        self.unavailable(res, "drop")

    def test_oversized_body(self):
        self.srv.set_fault("garbage", path_prefix="/auth/login", body="x" * (1024 * 1024 + 10))
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTHINFO_UNAVAIL", "huge")
        check(res.log_has("response too large"), f"log: {res.syslog}")

    def test_rate_limit_bucket_real(self):
        # The server's own limiter (not a fault): the newest release's login
        # bucket, or 5.0.10's shared auth bucket (3 auth requests per login).
        if self.srv.variant == "newest":
            limits = {"login": 2}
        else:
            limits = {"auth": 6}
        self.srv.control.post("/settings", rate_limits=limits)
        # With offline login on, the third login would (rightly) fall back to
        # the verifier of the first two; this test is about the 429 itself.
        self.env.write_config(extra="offline_ttl = 0\n")
        try:
            for i in range(2):
                check_pam(self.login("alice", "alice-password-1"), "PAM_SUCCESS", f"login {i}")
            self.srv.clear_log()
            res = self.login("alice", "alice-password-1")
            self.unavailable(res, "bucket exhausted")
            check("seconds before trying again" in res.output, "told to wait")
            check(paths(self.srv) == ["/auth/login"], f"retried? {paths(self.srv)}")
        finally:
            self.srv.control.post("/settings", rate_limits=self.default_limits)

    # ---- passwords and secrets ----

    def test_password_bytes_exact(self):
        special = 'p\u00e4ss "w\\rd" \u2713 \t end '
        self.srv.control.post("/password", email="frank@example.com", password=special)
        try:
            res = self.login("frank", special)
            check_pam(res, "PAM_SUCCESS", "special password")
            raw = [base64.b64decode(r["body_b64"]) for r in self.srv.requests()
                   if r["path"] == "/auth/login"][0]
            check(json.loads(raw)["password"] == special, "password arrived byte-exact")
        finally:
            self.srv.control.post("/password", email="frank@example.com",
                                  password="frank-password-1")

    def test_no_secret_in_logs(self):
        res = self.login("alice", "alice-password-1", ops=("authenticate",))
        check_pam(res, "PAM_SUCCESS", "alice")
        check("alice-password-1" not in res.stderr + res.stdout.replace("Password: ", ""),
              "password in output")
        tokens = [r for r in self.srv.requests() if r["path"] == "/oauth2/logout"]
        bearer = tokens[0]["headers"]["Authorization"].split(" ", 1)[1]
        check(bearer not in res.output, "token in output")

    # ---- use_first_pass / try_first_pass ----

    def test_try_and_use_first_pass(self):
        m, c = self.env.module, self.env.config
        self.env.write_service(lines=[
            f"auth optional {m} config={c} try_first_pass",
            f"auth required {m} config={c} use_first_pass"])
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_SUCCESS", "stacked")
        check(res.output.count("Password:") == 1, "prompted once")
        check(paths(self.srv).count("/auth/login") == 2, "both instances logged in")

    def test_use_first_pass_without_token(self):
        self.env.write_service(lines=[
            f"auth required {self.env.module} config={self.env.config} use_first_pass"])
        res = self.login("alice", "alice-password-1")
        check_pam(res, "PAM_AUTH_ERR", "no first pass")
        check("Password:" not in res.output, "must not prompt")
        self.no_request()

    def test_setcred_and_account_only_for_our_users(self):
        res = self.login("alice", "alice-password-1", ops=("authenticate", "setcred", "acct_mgmt"))
        check_pam(res, "PAM_SUCCESS", "alice")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="5.0.10")
    parser.add_argument("-k", default="", help="run tests whose name contains this")
    args = parser.parse_args()
    runner = Runner(f"pam auth ({args.variant})")
    with MedplumTestServer(variant=args.variant) as srv, PamEnv(srv) as env:
        suite = Suite(srv, env)
        for name in sorted(n for n in dir(suite) if n.startswith("test_")):
            if args.k in name:
                suite.fresh()
                runner.run(name, getattr(suite, name))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
