#!/usr/bin/env python3
"""pam_sm_acct_mgmt end to end (pamtester -> libpam under pam_wrapper -> the
MP_TESTING build of pam_medplum.so -> HTTPS -> the Medplum test server).

The account phase is what guards SSH keys, su from root, sudo -u and cron:
pamtester running acct_mgmt without authenticate is exactly that path.

Detection stack (default): account [success=done ignore=ignore default=die]
pam_medplum, then pam_deny.  So PAM_SUCCESS = allowed, PAM_PERM_DENIED =
denied by us, PAM_AUTH_ERR (pam_deny) = we returned PAM_IGNORE.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pamtest import Runner, check, check_pam  # noqa: E402
from harness import MedplumTestServer  # noqa: E402
from statehelp import (ALICE_PROFILE, HOST_CONFIG, HOUR, StateEnv, paths,  # noqa: E402
                       state_tool)

IGNORED = "PAM_AUTH_ERR"  # pam_deny after our PAM_IGNORE
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "pam_medplum", "examples")


class Suite:
    def __init__(self, srv, env):
        self.srv = srv
        self.env = env
        srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})

    def fresh(self, host=False, extra=""):
        self.srv.reset()
        self.env.offset = 0
        for email in ("alice@example.com", "frank@example.com"):
            self.srv.control.post("/membership", email=email, active=True)
        os.system(f"rm -rf '{self.env.cache_dir}'/* '{self.env.cache_dir}'/.lock")
        self.env.write_config(extra=(HOST_CONFIG if host else "") + extra)
        self.detect_stack()
        self.srv.clear_log()

    def detect_stack(self, args="debug"):
        m, c = self.env.module, self.env.config
        self.env.write_service(lines=[
            f"auth     required {m} config={c} {args}",
            f"account  [success=done ignore=ignore default=die] {m} config={c} {args}",
            "account  required pam_deny.so"])

    def acct(self, user):
        return self.env.pamtester(user, ["acct_mgmt"])

    def login(self, user="alice", password="alice-password-1"):
        res = self.env.pamtester(user, ["authenticate"], stdin=password + "\n")
        check_pam(res, "PAM_SUCCESS", f"password login of {user}")
        self.srv.clear_log()
        return res

    def no_request(self, what):
        check(paths(self.srv) == [], f"{what}: server saw {paths(self.srv)}")

    # ---- not ours: PAM_IGNORE without any network I/O ----

    def test_local_users_ignored_without_network(self):
        self.fresh(host=True)
        self.env.offset = 10 * HOUR
        for user in ("root", "daemon", "nobody"):
            check_pam(self.acct(user), IGNORED, user)
        self.no_request("local users")
        check(not os.path.exists(self.env.private_dir()), "no state created for local users")

    def test_local_users_ignored_even_with_broken_config(self):
        self.fresh()
        self.env.write_config(extra="colour = blue\n")
        check_pam(self.acct("root"), IGNORED, "root")

    def test_never_logged_in_email_domain_user_ignored(self):
        self.fresh(host=True)
        res = self.acct("frank")
        check_pam(res, IGNORED, "frank (email_domain only, never logged in)")
        self.no_request("unmanaged")

    # ---- authenticated here ----

    def test_authenticated_in_this_transaction(self):
        self.fresh()
        res = self.env.pamtester("alice", ["authenticate", "acct_mgmt"],
                                 stdin="alice-password-1\n")
        check_pam(res, "PAM_SUCCESS", "alice")

    # ---- decided from the known state ----

    def test_fresh_state_allows_without_network(self):
        self.fresh(host=True)
        self.login()
        self.env.offset = HOUR - 60
        res = self.acct("alice")
        check_pam(res, "PAM_SUCCESS", "alice, 59 min after login")
        check(res.log_has("account allowed: membership active (known state"), res.syslog)
        self.no_request("fresh state")

    def test_revoked_by_sync_denied_at_once(self):
        self.fresh(host=True)
        self.login()
        self.srv.control.post("/membership", email="alice@example.com", active=False)
        self.env.set_membership("alice", "inactive")  # what medplumctl sync writes
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "revoked by sync")
        check("membership for this workstation's project has ended" in res.output, res.output)
        check(res.log_has("account denied: membership inactive (known state"), res.syslog)
        self.no_request("decided from state")
        # ... and the verifier went with it.
        check(self.env.user_state("alice")["has_verifier"] == "0", "verifier dropped")

    def test_revocation_learned_from_password_attempt(self):
        # Medplum says "Profile not active" to a password login: from then on
        # key logins, su and sudo -u are refused too, without waiting for a sync.
        self.fresh(host=True)
        self.login()
        self.srv.control.post("/membership", email="alice@example.com", active=False)
        res = self.env.pamtester("alice", ["authenticate"], stdin="alice-password-1\n")
        check_pam(res, "PAM_AUTH_ERR", "password login of the revoked alice")
        self.srv.clear_log()
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "account phase after the refused password")
        check(res.log_has("account denied: membership inactive (known state"), res.syslog)
        self.no_request("learned from the password attempt")

    def test_revoked_seen_by_live_check_after_max_age(self):
        self.fresh(host=True)
        self.login()
        self.srv.control.post("/membership", email="alice@example.com", active=False)
        # Within membership_max_age the workstation cannot know yet.
        self.env.offset = 30 * 60
        check_pam(self.acct("alice"), "PAM_SUCCESS", "before max age")
        self.no_request("within max age")
        self.env.offset = HOUR + 1
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "after max age")
        check(res.log_has("membership inactive (live check"), res.syslog)
        got = paths(self.srv)
        check("/fhir/R4/ProjectMembership" in got, f"live search: {got}")
        search = [r for r in self.srv.requests() if r["path"] == "/fhir/R4/ProjectMembership"][0]
        check(search["query"] == f"profile={ALICE_PROFILE}&_count=50", search["query"])
        check(self.env.user_state("alice")["membership"] == "inactive", "state updated")
        # Now known: denied without the network, even once reactivated upstream,
        # until the state is stale again.
        self.srv.control.post("/membership", email="alice@example.com", active=True)
        self.srv.clear_log()
        check_pam(self.acct("alice"), "PAM_PERM_DENIED", "known inactive")
        self.no_request("known inactive")
        self.env.offset = 2 * HOUR + 2
        check_pam(self.acct("alice"), "PAM_SUCCESS", "reactivated, rechecked")

    def test_deleted_membership_is_absent(self):
        self.fresh(host=True)
        created = self.srv.control.post("/user", email="zoe@example.com",
                                        password="zoe-password-1", project="Lab North")
        self.login("zoe", "zoe-password-1")
        self.srv.control.post("/membership", email="zoe@example.com", delete=True)
        self.env.offset = HOUR + 1
        res = self.acct("zoe")
        check_pam(res, "PAM_PERM_DENIED", f"deleted membership {created}")
        check(res.log_has("membership absent (live check"), res.syslog)

    def test_live_check_for_cache_user_never_logged_in(self):
        self.fresh(host=True)
        state_tool("cache-add", self.env.cache_dir, "asmith", 20001, "alice@example.com",
                   ALICE_PROFILE)
        res = self.acct("asmith")
        check_pam(res, "PAM_SUCCESS", "cache user, live check")
        check(res.log_has("membership active (live check"), res.syslog)
        check(self.env.user_state("asmith")["membership"] == "active", "stored")

    def test_cache_user_without_host_credentials_denied(self):
        self.fresh(host=False)
        state_tool("cache-add", self.env.cache_dir, "asmith", 20001, "alice@example.com",
                   ALICE_PROFILE)
        res = self.acct("asmith")
        check_pam(res, "PAM_PERM_DENIED", "fail closed")
        check("cannot be verified right now" in res.output, res.output)
        self.no_request("no host credentials")

    # ---- neither possible: fail closed unless account_unknown = allow ----

    def test_stale_without_host_credentials_fails_closed(self):
        self.fresh(host=False)
        self.login()
        self.env.offset = HOUR + 1
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "stale, no host credentials")
        check(res.log_has("account_unknown = deny"), res.syslog)
        self.env.write_config(extra="account_unknown = allow\n")
        check_pam(self.acct("alice"), "PAM_SUCCESS", "account_unknown = allow")
        self.no_request("no host credentials")

    def test_stale_revoked_stays_denied_even_with_allow(self):
        self.fresh(host=False, extra="account_unknown = allow\n")
        self.login()
        self.env.set_membership("alice", "absent")
        self.env.offset = 5 * HOUR
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "last known absent")
        check(res.log_has("membership absent (last known state"), res.syslog)

    def test_live_check_unreachable_denies_and_backs_off(self):
        self.fresh(host=True)
        self.login()
        self.env.write_config(extra=HOST_CONFIG, base_url="https://127.0.0.1:9/")
        self.env.offset = HOUR + 1
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "unreachable")
        check(res.log_has("live check failed: Medplum unreachable"), res.syslog)
        backoff = self.env.backoff()
        check(backoff["failures"] == "1", f"backoff recorded: {backoff}")
        res = self.acct("alice")
        check(res.log_has("no live check for"), f"second check skips the network: {res.syslog}")

    def test_host_credentials_rejected_is_not_a_revocation(self):
        self.fresh()
        self.login()
        self.env.write_config(extra=HOST_CONFIG.replace("host_client_secret = ",
                                                        "host_client_secret = 00"))
        self.env.offset = HOUR + 1
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "bad host secret")
        check("cannot be verified" in res.output, "unknown, not 'ended'")
        check(self.env.user_state("alice")["membership"] == "active", "state not touched")
        check(self.env.backoff().get("failures", "0") == "0", "no backoff for a config error")

    def test_unusable_state_is_not_permissive(self):
        self.fresh(host=False, extra="account_unknown = deny\n")
        self.login()
        path = os.path.join(self.env.private_dir(), "user-alice")
        with open(path, "w") as f:
            f.write("pam_medplum-state 1\nmembership active\nmembership_checked_at x\n")
        res = self.acct("alice")
        check_pam(res, "PAM_PERM_DENIED", "corrupt state is unknown, decided closed")
        check(res.log_has("state: user-alice is corrupt"), res.syslog)

    def test_revoked_state_without_login_or_cache_still_ours(self):
        # A sync recorded a revocation for a name that never logged in here.
        self.fresh(host=False, extra="account_unknown = allow\n")
        self.env.set_membership("frank", "inactive")
        check_pam(self.acct("frank"), "PAM_PERM_DENIED", "recorded revocation")

    def test_broken_config_denies_nonlocal(self):
        self.fresh()
        self.login()
        self.env.write_config(extra="colour = blue\n")
        check_pam(self.acct("alice"), "PAM_PERM_DENIED", "broken config")

    # ---- the shipped example stacks ----

    def example(self, name):
        with open(os.path.join(EXAMPLES, name)) as f:
            text = f.read()
        lines = []
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or not line.startswith("account"):
                continue
            line = line.replace("pam_medplum.so", f"{self.env.module} config={self.env.config}")
            line = line.replace("pam_nologin.so", f"pam_nologin.so file={self.env.dir}/nologin")
            # pam_unix answers PAM_SUCCESS for an NSS user without a shadow
            # entry; under pam_wrapper there is no NSS module, so it would
            # say user unknown: pam_permit stands in for it.
            line = line.replace("pam_unix.so", "pam_permit.so")
            lines.append(line)
        return lines

    def test_example_stack_denial_is_final(self):
        self.fresh(host=False)
        self.login()
        self.env.write_service(lines=self.example("common-account") + [])
        check_pam(self.acct("alice"), "PAM_SUCCESS", "active through the example stack")
        check_pam(self.acct("root"), "PAM_SUCCESS", "local user through the example stack")
        self.env.set_membership("alice", "inactive")
        check_pam(self.acct("alice"), "PAM_PERM_DENIED", "denial is final")

    def test_example_stack_later_modules_still_run(self):
        self.fresh(host=False)
        self.login()
        self.env.write_service(lines=self.example("common-account"))
        with open(os.path.join(self.env.dir, "nologin"), "w") as f:
            f.write("maintenance\n")
        try:
            res = self.acct("alice")
            check(res.rc != 0, "pam_nologin after pam_medplum still denies an allowed user")
            check(res.log_has("account allowed"), f"we allowed first: {res.syslog}")
        finally:
            os.unlink(os.path.join(self.env.dir, "nologin"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="run tests whose name contains this")
    args = parser.parse_args()
    runner = Runner("pam account")
    with MedplumTestServer() as srv, StateEnv(srv) as env:
        suite = Suite(srv, env)
        for name in sorted(n for n in dir(suite) if n.startswith("test_")):
            if args.k in name:
                runner.run(name, getattr(suite, name))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
