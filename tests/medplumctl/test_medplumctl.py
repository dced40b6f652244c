#!/usr/bin/env python3
"""medplumctl commands against the test server: --help and usage errors of every
command, check-config on a good and on each kind of broken configuration, status
(good, read-only client, unreachable server, wrong CA, wrong secret, after a
failed sync), test-login (password, MFA, wrong password, local user, server
down), cache list/purge, the non-root rule, and that no secret is ever printed.
"""

import os
import pty
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sync"))
from synctest import CLIENTS, Runner, SyncEnv, build_dir, check  # noqa: E402
from harness import MedplumTestServer  # noqa: E402
from totp import totp  # noqa: E402

SECRETS = [s for _, s in CLIENTS.values()]
PASSWORDS = ["alice-password-1", "erin-password-1", "not-her-password"]
OUTPUTS = []  # every output, checked for secrets at the end


def run(env, *args, **kw):
    res = env.ctl(*args, **kw)
    OUTPUTS.append((args, res.out + res.err))
    return res


class Suite:
    def __init__(self, srv, env):
        self.srv = srv
        self.env = env

    def fresh(self, **config):
        self.srv.reset()
        self.srv.clear_log()
        self.env.set_local()
        self.env.write_config(**config)
        shutil.rmtree(self.env.cache_dir, ignore_errors=True)

    def write_raw(self, text, mode=0o600):
        with open(self.env.config, "w") as f:
            f.write(text)
        os.chmod(self.env.config, mode)

    def good_text(self):
        with open(self.env.config) as f:
            return f.read()

    # ---- usage ----

    def test_help_and_usage(self):
        for cmd in (["sync"], ["status"], ["check-config"], ["test-login"], ["cache"]):
            res = run(self.env, *cmd, "--help")
            check(res.rc == 0 and "usage: medplumctl " + cmd[0] in res.out, f"{cmd}: {res!r}")
            check("exit codes" in res.out, f"{cmd}: exit codes documented")
        res = run(self.env, "--help", config=False)
        check(res.rc == 0 and all(c in res.out for c in ("sync", "status", "check-config",
                                                         "test-login", "cache")), repr(res))
        for bad in ([], ["frobnicate"], ["sync", "--bogus"], ["sync", "extra"], ["test-login"],
                    ["test-login", "a", "b"], ["cache"], ["cache", "list", "alice"],
                    ["cache", "purge"], ["cache", "purge", "alice", "--all"], ["cache", "zap"],
                    ["status", "x"], ["check-config", "--nope"]):
            res = run(self.env, *bad)
            check(res.rc == 2 and "usage:" in res.err, f"{bad}: rc {res.rc} {res.err!r}")
        res = run(self.env, "--version", config=False)
        check(res.rc == 0 and res.out.startswith("medplumctl "), repr(res))

    # ---- check-config ----

    def test_check_config_good(self):
        res = run(self.env, "check-config", "--sync")
        check(res.rc == 0 and "0 problems" in res.out, repr(res))
        res = run(self.env, "check-config", "--json")
        check(res.rc == 0 and res.json["problems"] == [], repr(res))

    def broken(self, text, expect, mode=0o600, sync=False):
        self.write_raw(text, mode)
        res = run(self.env, "check-config", *(["--sync"] if sync else []))
        check(res.rc == 1, f"{expect}: rc {res.rc}: {res!r}")
        check(expect in res.out, f"expected {expect!r} in:\n{res.out}")
        return res

    def test_check_config_broken(self):
        good = self.good_text()
        lines = good.splitlines()
        self.broken(good + "bogus = 1\n", f":{len(lines) + 1}: unknown key 'bogus'")
        self.broken(good.replace("timeout = 5", "timeout = 999"), ":9: timeout is out of range")
        self.broken("\n".join(l for l in lines if not l.startswith("base_url")) + "\n",
                    "required key base_url is missing")
        self.broken(good + "project_id = x\n", "project_id is set twice")
        res = self.broken(good, "writable by group or others (mode 0666)", mode=0o666)
        check("host_client_id is not set" not in res.out and "does not exist" not in res.out,
              f"an unread file adds no findings from defaults:\n{res.out}")
        res = self.broken(good.replace("timeout = 5", "timeout = x") + "bogus\n",
                          "timeout must be a non-negative integer")
        check("expected 'key = value'" in res.out and "2 problems" in res.out,
              "every problem, not just the first")
        self.broken(good.replace(f"host_client_secret_file = {self.env.dir}/host-secret",
                                 "host_client_secret = " + "a" * 32), "must be 0600", mode=0o644)
        os.chmod(os.path.join(self.env.dir, "host-secret"), 0o644)
        self.broken(good, "host-secret: holds a secret but is accessible by group or others")
        os.unlink(os.path.join(self.env.dir, "host-secret"))
        self.broken(good, "host-secret: cannot open")
        self.env.write_config()
        good = self.good_text()
        self.broken(good.replace(self.srv.ca_file, "/nonexistent/ca.pem"),
                    "ca_file /nonexistent/ca.pem")
        os.makedirs(os.path.join(self.env.cache_dir, "private"), mode=0o700)
        os.chmod(self.env.cache_dir, 0o777)
        self.broken(good, "cache: writable by group or others (mode 0777)")
        os.chmod(self.env.cache_dir, 0o755)
        os.chmod(os.path.join(self.env.cache_dir, "private"), 0o755)
        self.broken(good, "private: accessible by group or others (mode 0755, must be 0700)")
        os.chmod(os.path.join(self.env.cache_dir, "private"), 0o700)
        with open(os.path.join(self.env.cache_dir, "accounts.db"), "wb") as f:
            f.write(b"MPLMCACH" + b"\0" * 200)
        self.broken(good, "unsupported format version")
        os.unlink(os.path.join(self.env.cache_dir, "accounts.db"))
        no_host = "\n".join(l for l in good.splitlines() if not l.startswith("host_")) + "\n"
        self.broken(no_host, "host_client_id is not set", sync=True)
        self.write_raw(no_host)
        res = run(self.env, "check-config")
        check(res.rc == 0 and "warning:" in res.out, f"without --sync a warning only: {res!r}")

    def test_check_config_warnings(self):
        self.env.write_config(extra="host_auth = basic\nuid_min = 50000\nuid_max = 70000\n")
        res = run(self.env, "check-config", "--json")
        check(res.rc == 0 and res.json["problems"] == [], repr(res))
        w = " ".join(res.json["warnings"])
        check("rotated" in w and "regular local users" in w and "DynamicUser" in w
              and "nobody" in w, f"warnings: {w}")

    def test_check_config_missing_file(self):
        os.unlink(self.env.config)
        res = run(self.env, "check-config")
        check(res.rc == 1 and "cannot open" in res.out, repr(res))

    # ---- status ----

    def test_status_good(self):
        res = run(self.env, "status", "--json")
        j = res.json
        check(res.rc == 0 and j["problems"] == 0, repr(res))
        check(j["server"]["reachable"] and j["server"]["tls"] and "localhost" in
              j["server"]["tls_subject"] and j["server"]["version"].startswith("5.0.10"), f"{j}")
        check(j["host_credentials"]["ok"] and
              j["host_credentials"]["directory_source"] == "memberships", f"{j}")
        check(j["last_sync"]["result"] == "never", "no sync yet")
        paths = [r["path"] for r in self.srv.requests()]
        check(paths[-1] == "/oauth2/logout", f"token logged out: {paths}")
        check(run(self.env, "sync").rc == 0, "sync")
        res = run(self.env, "status")
        check(res.rc == 0 and "last sync" in res.out and ": ok;" in res.out
              and "8 users" in res.out and "TLS            verified" in res.out, repr(res))

    def test_status_readonly(self):
        self.env.write_config(client="readonly")
        res = run(self.env, "status", "--json")
        check(res.rc == 0 and res.json["host_credentials"]["directory_source"] == "practitioners",
              repr(res))

    def test_status_unreachable(self):
        self.env.write_config(base_url="https://127.0.0.1:9/")
        res = run(self.env, "status")
        check(res.rc == 1 and "UNREACHABLE" in res.out and "FAILED" in res.out, repr(res))
        res = run(self.env, "status", "--json")
        check(res.rc == 1 and not res.json["server"]["reachable"], repr(res))

    def test_status_wrong_ca(self):
        self.write_raw(self.good_text().replace(self.srv.ca_file, self.srv.other_ca_file))
        res = run(self.env, "status", "--json")
        check(res.rc == 1 and "certificate" in res.json["server"]["error"].lower(), repr(res))
        check(res.json["server"]["certificate_rejected"], repr(res))
        res = run(self.env, "status")
        check("CERTIFICATE NOT ACCEPTED" in res.out and "check ca_file" in res.out and
              "UNREACHABLE" not in res.out, repr(res))

    def test_status_wrong_secret_and_failed_sync(self):
        self.env.write_config(secret="0" * 64)
        res = run(self.env, "status")
        check(res.rc == 1 and "host credentials FAILED" in res.out and "Invalid secret" in res.out,
              repr(res))
        check(run(self.env, "sync").rc == 1, "sync fails")
        res = run(self.env, "status", "--json")
        check(res.rc == 1 and res.json["last_sync"]["result"] == "failed", repr(res))

    # ---- test-login ----

    def test_login_ok(self):
        res = run(self.env, "test-login", "alice", stdin="alice-password-1\n")
        check(res.rc == 0 and "decision: ACCEPT" in res.out, repr(res))
        for step in ("POST auth/login", "POST oauth2/token", "POST oauth2/logout"):
            check(step in res.out, f"step {step} shown")
        check("from email_domain" in res.out or "not in the cache" in res.out, "resolution shown")
        check("Password:" in res.err, "prompt shown")
        check(not os.path.exists(os.path.join(self.env.cache_dir, "accounts.db")),
              "test-login records nothing")

    def test_login_terminal(self):
        # On a terminal the password is read from /dev/tty with echo off.
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.update(self.env.env())
            os.execv(os.path.join(build_dir(), "medplumctl"),
                     ["medplumctl", "--config", self.env.config, "test-login", "alice"])
        out = b""
        try:
            deadline = time.monotonic() + 20
            while b"Password:" not in out and time.monotonic() < deadline:
                out += os.read(fd, 1024)
            os.write(fd, b"alice-password-1\n")
            while True:
                data = os.read(fd, 1024)
                if not data:
                    break
                out += data
        except OSError:
            pass  # EIO once the child has exited
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        text = out.decode("utf-8", "replace")
        OUTPUTS.append((("test-login", "tty"), text))
        check(os.waitstatus_to_exitcode(status) == 0 and "decision: ACCEPT" in text, text)

    def test_login_bound_by_cache(self):
        check(run(self.env, "sync").rc == 0, "sync")
        res = run(self.env, "test-login", "alice", stdin="alice-password-1\n")
        check(res.rc == 0 and "bound to Practitioner/7618b02a" in res.out, repr(res))

    def test_login_mfa(self):
        res = run(self.env, "test-login", "erin",
                  stdin="erin-password-1\n" + totp("ERINGREENTOTP234") + "\n")
        check(res.rc == 0 and "with MFA" in res.out and "POST auth/mfa/verify" in res.out,
              repr(res))

    def test_login_denied(self):
        res = run(self.env, "test-login", "alice", stdin="not-her-password\n")
        check(res.rc == 1 and "DENY" in res.out and "wrong password" in res.out, repr(res))
        res = run(self.env, "test-login", "bob", stdin="bob-password-1\n")
        check(res.rc == 1 and "membership inactive" in res.out, repr(res))

    def test_login_not_ours(self):
        for user in ("root", "Alice", "a:b"):
            res = run(self.env, "test-login", user, stdin="x\n")
            check(res.rc == 1 and "not a Medplum account" in res.out, f"{user}: {res!r}")
        check(self.srv.requests() == [], "no request for local or invalid names")

    def test_login_unavailable(self):
        self.env.write_config(base_url="https://127.0.0.1:9/")
        res = run(self.env, "test-login", "alice", stdin="alice-password-1\n")
        check(res.rc == 1 and "UNAVAILABLE" in res.out, repr(res))

    def test_login_no_password(self):
        res = run(self.env, "test-login", "alice", stdin="")
        check(res.rc == 1 and "not sent" in res.out, repr(res))
        check(self.srv.requests() == [], "nothing sent")

    # ---- cache ----

    def test_cache_list_and_purge(self):
        res = run(self.env, "cache", "list")
        check(res.rc == 0 and "0 users" in res.out, repr(res))
        check(run(self.env, "sync").rc == 0, "sync")
        res = run(self.env, "cache", "list")
        check(res.rc == 0 and "alice" in res.out and "active" in res.out, repr(res))
        users = self.env.users()
        check(users["alice"]["offline_verifier"] is False and
              users["alice"]["membership_state"] == "active", f"{users['alice']}")
        res = run(self.env, "cache", "purge", "alice")
        check(res.rc == 0 and "alice" in res.out, repr(res))
        check(self.env.users()["alice"]["membership_state"] == "unknown", "state purged")
        check(self.env.users()["carol"]["membership_state"] == "active", "others kept")
        res = run(self.env, "cache", "purge", "--all")
        check(res.rc == 0, repr(res))
        check(all(u["membership_state"] == "unknown" for u in self.env.users().values()),
              "all purged")
        check(len(self.env.users()) == 8, "NSS entries stay")
        res = run(self.env, "cache", "purge", "../etc")
        check(res.rc == 2, repr(res))
        res = run(self.env, "cache", "purge", "nosuchuser")
        check(res.rc == 1 and "nothing to purge" in res.err, repr(res))

    # ---- privileges ----

    def test_non_root_refused(self):
        if os.geteuid() != 0:
            return
        os.chmod(self.env.dir, 0o755)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               os.path.join(build_dir(), "medplumctl")]
        out = subprocess.run(cmd + ["status"], capture_output=True, text=True)
        check(out.returncode == 1 and "must be run as root" in out.stderr, out.stderr)
        out = subprocess.run(cmd + ["--config", self.env.config, "status"], capture_output=True,
                             text=True)
        check(out.returncode == 1 and "not a file you own" in out.stderr, out.stderr)


def main():
    if not os.path.exists(os.path.join(build_dir(), "medplumctl")):
        print("medplumctl not built")
        print("0 passed, 1 failed")
        return 1
    runner = Runner("medplumctl")
    with MedplumTestServer() as srv, SyncEnv(srv) as env:
        srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})
        suite = Suite(srv, env)
        for name in [n for n in dir(Suite) if n.startswith("test_")]:
            suite.fresh()
            runner.run(name[5:], getattr(suite, name))

    def no_secrets():
        for args, text in OUTPUTS:
            for s in SECRETS + PASSWORDS:
                check(s not in text, f"secret or password printed by {args}")
    runner.run("no_secret_printed", no_secrets)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
