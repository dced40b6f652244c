"""Run the real pam_medplum.so through real libpam (pamtester under pam_wrapper).

Shared by the PAM integration suites.  Nothing here touches /etc: pam_wrapper
reads service files from a private directory, and the module reads a private
config and cache directory.

    with PamEnv(server) as env:
        env.write_config(extra="...")
        res = env.pamtester("alice", ["authenticate"], stdin="alice-password-1\n")
        res.rc, res.pam_error, res.syslog, res.output, res.elapsed
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))

LAB_NORTH = "ce04dfeb-96a9-49e7-abb8-098580eeed12"
LAB_SOUTH = "1fc16d77-8591-4505-a1fe-3d126c1e1f6b"
PAM_LOGIN_CLIENT = "4eb5fd55-d38f-4205-89b4-13c4b49e3288"

# pam_strerror texts pamtester prints, by PAM code name.
PAM_TEXTS = {
    "PAM_AUTH_ERR": "Authentication failure",
    "PAM_AUTHINFO_UNAVAIL": "Authentication service cannot retrieve authentication info",
    "PAM_USER_UNKNOWN": "User not known to the underlying authentication module",
    "PAM_PERM_DENIED": "Permission denied",
    "PAM_CRED_INSUFFICIENT": "Insufficient credentials to access authentication data",
    "PAM_ACCT_EXPIRED": "User account has expired",
    "PAM_AUTHTOK_ERR": "Authentication token manipulation error",
}


def build_dir():
    return os.path.abspath(os.environ.get("MP_BUILD", os.path.join(ROOT, "build")))


class Result:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr
        self.elapsed = elapsed
        # "SYSLOG(5): medplum: pam_medplum(medplum:auth): user alice: ..." (PAM_WRAPPER_DEBUGLEVEL=2)
        self.syslog = [m.group(1) for m in re.finditer(r"SYSLOG\(\d+\): (.*)", self.stderr)]

    def pam_error(self):
        """The PAM code name pamtester reported, or PAM_SUCCESS."""
        for marker in ("Sanitizer", "runtime error:", "Invalid read", "Invalid write",
                       "definitely lost", "uninitialised"):
            if marker in self.stderr:
                return "memory error: " + self.stderr[-3000:]
        if self.rc == 0:
            return "PAM_SUCCESS"
        for name, text in PAM_TEXTS.items():
            if "pamtester: " + text in self.stderr:
                return name
        return "unknown: " + self.stderr.strip()[-300:]

    def log_has(self, fragment):
        return any(fragment in line for line in self.syslog)


class PamEnv:
    """A private service directory, config file and cache directory."""

    def __init__(self, server, module=None, preload=None):
        self.server = server
        self.module = module or os.path.join(build_dir(), "pam_medplum.so")
        # ASan runs need the sanitizer runtime first in LD_PRELOAD.
        self.preload = preload if preload is not None else os.environ.get("MP_PRELOAD", "")

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="pam-medplum-test-")
        self.services = os.path.join(self.dir, "services")
        self.cache_dir = os.path.join(self.dir, "cache")
        os.mkdir(self.services)
        os.mkdir(self.cache_dir, 0o755)
        self.config = os.path.join(self.dir, "pam_medplum.conf")
        with open(os.path.join(self.services, "other"), "w") as f:
            f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
        self.write_service()
        self.write_config()
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_service(self, name="medplum", lines=None, args="debug"):
        if lines is None:
            lines = [f"auth     required {self.module} config={self.config} {args}",
                     f"account  required {self.module} config={self.config} {args}"]
        with open(os.path.join(self.services, name), "w") as f:
            f.write("\n".join(lines) + "\n")

    def write_config(self, extra="", base_url=None, ca_file=None, project=LAB_NORTH,
                     client=PAM_LOGIN_CLIENT, mode=0o600, timeout=4, connect_timeout=2):
        base_url = base_url or self.server.base_url
        lines = [f"base_url = {base_url}", f"project_id = {project}",
                 f"ca_file = {ca_file or self.server.ca_file}",
                 "email_domain = example.com",
                 f"cache_dir = {self.cache_dir}",
                 f"timeout = {timeout}", f"connect_timeout = {connect_timeout}"]
        if client:
            lines.append(f"client_id = {client}")
        if base_url.startswith("http://"):
            lines.append("allow_insecure_http = yes")
        text = "\n".join(lines) + "\n" + extra
        with open(self.config, "w") as f:
            f.write(text)
        os.chmod(self.config, mode)

    def env(self):
        env = dict(os.environ)
        preload = "libpam_wrapper.so"
        if self.preload:
            preload = self.preload + ":" + preload
        env.update({"LD_PRELOAD": preload, "PAM_WRAPPER": "1",
                    "PAM_WRAPPER_SERVICE_DIR": self.services,
                    "PAM_WRAPPER_DEBUGLEVEL": "2"})
        return env

    def pamtester(self, user, operations, stdin="", service="medplum", timeout=60, env=None):
        cmd = ["pamtester", "-v", service, user] + list(operations)
        if os.environ.get("MP_VALGRIND"):
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + cmd
        # pam_wrapper copies the service files to /tmp/pam.<one character
        # picked from the pid>; when another run holds that name it gives up
        # before libpam is even loaded.  That is the harness, not the module:
        # run again (the pid, and so the name, changes).
        for _ in range(5):
            start = time.monotonic()
            proc = subprocess.run(cmd, input=stdin.encode("utf-8", "surrogateescape"),
                                  capture_output=True, env=env or self.env(), timeout=timeout)
            elapsed = time.monotonic() - start
            if b"pwrap_init: Failed to create pam_wrapper config dir" not in proc.stderr:
                break
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
        return Result(proc, elapsed)


class Runner:
    """A minimal test runner that prints 'N passed, N failed' at the end."""

    def __init__(self, title):
        self.title = title
        self.passed = 0
        self.failed = []
        self.skipped = 0

    def run(self, name, fn, *args):
        start = time.monotonic()
        try:
            fn(*args)
        except SkipTest as e:
            self.skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
            return
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            return
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - start:.2f}s)", flush=True)

    def finish(self):
        print(f"{self.title}: {self.passed} passed, {len(self.failed)} failed, "
              f"{self.skipped} skipped", flush=True)
        if self.failed:
            print("failed: " + ", ".join(self.failed))
        return 1 if self.failed else 0


class SkipTest(Exception):
    pass


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def check_pam(res, expected, what=""):
    got = res.pam_error()
    if got != expected:
        raise AssertionError(f"{what}: expected {expected}, got {got}\nsyslog: {res.syslog}\n"
                             f"output: {res.output[-1500:]}")
