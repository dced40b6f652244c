#!/usr/bin/env python3
"""pam_sm_chauthtok end to end: pamtester chauthtok -> libpam (pam_wrapper) ->
pam_medplum.so (testing build) -> POST /auth/changepassword on the test server.

tests/pam/pam_authtok_probe.so stands in for the modules around pam_medplum
(pam_pwquality before it, pam_unix use_authtok after it) without touching the
real /etc/shadow: it shows which new password a later module receives.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pamtest import Runner, check, check_pam  # noqa: E402
from harness import MedplumTestServer  # noqa: E402
from pamtest import build_dir  # noqa: E402
from statehelp import StateEnv, paths  # noqa: E402
from totp import totp  # noqa: E402

OLD = "alice-password-1"
NEW = "alice-new-password-2"


class Suite:
    def __init__(self, srv, env):
        self.srv = srv
        self.env = env
        srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})
        self.capture = os.path.join(env.dir, "authtok-seen")
        self.probe = os.path.join(build_dir(), "tests", "pam", "pam_authtok_probe.so")

    def fresh(self):
        self.srv.reset()
        self.srv.control.post("/settings", hibp_unreachable=False)
        self.srv.control.post("/password", email="alice@example.com", password=OLD)
        self.env.offset = 0
        os.system(f"rm -rf '{self.env.cache_dir}/private' '{self.capture}'")
        self.env.write_config()
        self.stack()
        self.srv.clear_log()

    def stack(self, args="debug", record_after=False, set_before=None):
        m, c = self.env.module, self.env.config
        lines = [f"auth     required {m} config={c} debug",
                 f"account  required {m} config={c} debug"]
        if set_before:
            lines.append(f"password required {self.probe} set={set_before}")
        lines.append(f"password required {m} config={c} {args}")
        if record_after:
            lines.append(f"password required {self.probe} record={self.capture}")
        self.env.write_service(lines=lines)

    def passwd(self, user, *answers):
        return self.env.pamtester(user, ["chauthtok"], stdin="".join(a + "\n" for a in answers))

    def login(self, password, user="alice"):
        return self.env.pamtester(user, ["authenticate"], stdin=password + "\n")

    def seen(self):
        with open(self.capture) as f:
            return f.read().rstrip("\n").rstrip("\0")

    # ---- success ----

    def test_change_success(self):
        self.fresh()
        res = self.passwd("alice", OLD, NEW, NEW)
        check_pam(res, "PAM_SUCCESS", "change")
        check("Current Medplum password:" in res.output and "Retype new" in res.output,
              "prompts")
        check("Your Medplum password has been changed." in res.output, res.output)
        got = paths(self.srv)
        check(got == ["/auth/login", "/oauth2/token", "/auth/changepassword", "/oauth2/logout"],
              f"requests: {got}")
        change = [r for r in self.srv.requests() if r["path"] == "/auth/changepassword"][0]
        check(change["headers"].get("Authorization", "").startswith("Bearer "), "bearer")
        check(res.log_has("password changed in Medplum"), res.syslog)
        check_pam(self.login(NEW), "PAM_SUCCESS", "new password works")
        check_pam(self.login(OLD), "PAM_AUTH_ERR", "old password no longer works")

    def test_mfa_user_old_password_needs_the_code(self):
        self.fresh()
        erin = "erin-password-1"
        try:
            wrong = "%06d" % ((int(totp("ERINGREENTOTP234")) + 500000) % 1000000)
            res = self.passwd("erin", erin, wrong)
            check_pam(res, "PAM_AUTH_ERR", "wrong code: no change (no MFA bypass)")
            check("/auth/changepassword" not in paths(self.srv), "nothing changed")
            res = self.passwd("erin", erin, totp("ERINGREENTOTP234"), NEW, NEW)
            check_pam(res, "PAM_SUCCESS", "with the code")
            check("Authenticator code:" in res.output, "code asked")
        finally:
            self.srv.control.post("/password", email="erin@example.com", password=erin)

    def test_change_refreshes_offline_verifier(self):
        self.fresh()
        check_pam(self.passwd("alice", OLD, NEW, NEW), "PAM_SUCCESS", "change")
        self.env.write_config(base_url="https://127.0.0.1:9/")
        res = self.login(NEW)
        check_pam(res, "PAM_SUCCESS", "offline with the new password")
        check(res.log_has("accepted offline"), res.syslog)
        check_pam(self.login(OLD), "PAM_AUTH_ERR", "offline with the old password")

    def test_session_token_never_on_disk(self):
        self.fresh()
        check_pam(self.passwd("alice", OLD, NEW, NEW), "PAM_SUCCESS", "change")
        logout = [r for r in self.srv.requests() if r["path"] == "/oauth2/logout"][0]
        bearer = logout["headers"]["Authorization"].split(" ", 1)[1].encode()
        for root, _, files in os.walk(self.env.dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                check(bearer not in data, f"token on disk in {name}")
                check(NEW.encode() not in data and OLD.encode() not in data,
                      f"password on disk in {name}")

    def test_new_password_handed_to_later_modules(self):
        self.fresh()
        self.stack(record_after=True)
        res = self.passwd("alice", OLD, NEW, NEW)
        check_pam(res, "PAM_SUCCESS", "stacked")
        check(self.seen() == NEW, f"later module got the new password: {self.seen()!r}")

    # ---- Medplum's rules, in Medplum's words ----

    def test_new_password_too_short(self):
        self.fresh()
        res = self.passwd("alice", OLD, "short7x", "short7x")
        check_pam(res, "PAM_AUTHTOK_ERR", "too short")
        check("Medplum did not accept the new password: Invalid password, must be at least 8 "
              "characters" in res.output, res.output)
        check(paths(self.srv)[-1] == "/oauth2/logout", "session logged out anyway")
        check_pam(self.login(OLD), "PAM_SUCCESS", "password unchanged")

    def test_breached_new_password(self):
        self.fresh()
        res = self.passwd("alice", OLD, "password123", "password123")
        check_pam(res, "PAM_AUTHTOK_ERR", "breached")
        check("Password found in breach database" in res.output, res.output)

    def test_wrong_old_password(self):
        self.fresh()
        check_pam(self.login(OLD), "PAM_SUCCESS", "verifier stored")
        self.srv.clear_log()
        res = self.passwd("alice", "not-the-password", NEW, NEW)
        check_pam(res, "PAM_AUTH_ERR", "wrong old password")
        check("Authentication failed." in res.output, res.output)
        check("New Medplum password" not in res.output, "no new password asked")
        check("/auth/changepassword" not in paths(self.srv), "no change attempted")
        check(self.env.user_state("alice")["has_verifier"] == "0",
              "Medplum's no deleted the verifier")

    def test_mismatched_retype(self):
        self.fresh()
        res = self.passwd("alice", OLD, NEW, NEW + "x")
        check_pam(res, "PAM_AUTHTOK_ERR", "mismatch")
        check("passwords do not match" in res.output, res.output)
        check("/auth/changepassword" not in paths(self.srv), "no change attempted")

    def test_hibp_unreachable_500(self):
        self.fresh()
        self.srv.control.post("/settings", hibp_unreachable=True)
        try:
            res = self.passwd("alice", OLD, NEW, NEW)
        finally:
            self.srv.control.post("/settings", hibp_unreachable=False)
        check_pam(res, "PAM_AUTHTOK_ERR", "HIBP unreachable")
        check("Have I Been Pwned" in res.output and "not changed" in res.output, res.output)
        check("internet access" in res.output, res.output)
        check(res.log_has("HTTP 500"), res.syslog)
        check(self.env.backoff().get("failures", "0") == "0", "not treated as an outage")
        check_pam(self.login(OLD), "PAM_SUCCESS", "password unchanged")

    def test_server_down(self):
        self.fresh()
        self.env.write_config(base_url="https://127.0.0.1:9/")
        res = self.passwd("alice", OLD)
        check_pam(res, "PAM_TRY_AGAIN", "down")
        check("cannot be reached" in res.output, res.output)

    # ---- users we do not manage ----

    def test_local_user_passthrough(self):
        self.fresh()
        # pam_pwquality-like module first, pam_unix use_authtok-like after us.
        self.stack(args="debug use_authtok", set_before="local-new-password",
                   record_after=True)
        res = self.passwd("root")
        check_pam(res, "PAM_SUCCESS", "root through the stack")
        check("Medplum" not in res.stdout, f"no Medplum prompt: {res.stdout}")
        check(self.seen() == "local-new-password", f"PAM_AUTHTOK untouched: {self.seen()!r}")
        # Without an earlier module, we set nothing either.
        self.stack(args="debug try_first_pass", record_after=True)
        res = self.passwd("root", "typed")
        check(self.seen() == "<unset>", f"no PAM_AUTHTOK from us: {self.seen()!r}")
        check("Password" not in res.stdout, "nothing prompted by us")
        check(paths(self.srv) == [], "no network for a local user")
        check(not os.path.exists(self.env.private_dir()), "no state for a local user")

    def test_use_authtok_from_earlier_module(self):
        self.fresh()
        self.stack(args="debug use_authtok", set_before=NEW, record_after=True)
        res = self.passwd("alice", OLD)
        check_pam(res, "PAM_SUCCESS", "new password from the earlier module")
        check("New Medplum password" not in res.output, "not prompted")
        check(self.seen() == NEW, f"{self.seen()!r}")
        check_pam(self.login(NEW), "PAM_SUCCESS", "changed")

    def test_use_authtok_without_token_fails_cleanly(self):
        self.fresh()
        self.stack(args="debug use_authtok")
        res = self.passwd("alice", OLD)
        check_pam(res, "PAM_AUTHTOK_ERR", "use_authtok but no new password from earlier")
        check("/auth/changepassword" not in paths(self.srv), "nothing sent")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="run tests whose name contains this")
    args = parser.parse_args()
    runner = Runner("pam password")
    with MedplumTestServer() as srv, StateEnv(srv) as env:
        suite = Suite(srv, env)
        for name in sorted(n for n in dir(suite) if n.startswith("test_")):
            if args.k in name:
                runner.run(name, getattr(suite, name))
        srv.control.post("/password", email="alice@example.com", password=OLD)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
