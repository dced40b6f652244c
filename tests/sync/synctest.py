"""Shared helpers of the medplumctl/sync integration suites.

    with MedplumTestServer() as srv, SyncEnv(srv) as env:
        env.write_config(client="admin")
        res = env.ctl("sync", "--json")        # res.rc, res.out, res.err, res.json
        env.users()                            # {name: entry} from `cache list --json`

Nothing here touches /etc: medplumctl gets a private config, cache directory and
passwd/group files (MEDPLUM_PASSWD_FILE / MEDPLUM_GROUP_FILE, test-only).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pam"))
# One runner and one set of assertions for every Python suite.
from pamtest import Runner, SkipTest, check  # noqa: E402,F401

LAB_NORTH = "ce04dfeb-96a9-49e7-abb8-098580eeed12"
PAM_LOGIN_CLIENT = "4eb5fd55-d38f-4205-89b4-13c4b49e3288"
CLIENTS = {
    "admin": ("d0206ce7-0143-4468-8f90-7bacdf90ab84",
              "5df98e0b6f5dfa065a4be3cd2890d4afe414768222f6e4426e269a231f1987eb"),
    "readonly": ("2fb05f78-71ec-4981-a060-f45cbf291987",
                 "2503e21c9a85a6d960ded75e491bcf217febd2c62adddd6a9f8fd69ab240d897"),
    "iprestricted": ("c5c439be-9cc0-457d-9985-24e9b0ca845e",
                     "1ccaa78b2451f93de822c39127c53ae90ffd3905519aac27d236587ab6f81369"),
}
# Active Practitioner members of Lab North in lab.json (bob is inactive).
LAB_NORTH_USERS = {"alice", "carol", "erin", "frank", "gina", "hana", "ivan", "labadmin"}
BASE_PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n"
BASE_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def build_dir():
    return os.path.abspath(os.environ.get("MP_BUILD", os.path.join(ROOT, "build")))


def uid_probe(practitioner_id, lo, hi, k):
    """The documented uid function (core/mp_idmap.h), independently."""
    h = int.from_bytes(hashlib.sha256(practitioner_id.lower().encode()).digest()[:8], "big")
    n = hi - lo + 1
    return lo + ((h % n) + k % n) % n


def expected_uids(practitioner_ids, lo=200000, hi=299999, taken=()):
    """uids of a first sync: Practitioners in id order, first free probe each."""
    used = set(taken) | {0, 65534, 65535}
    out = {}
    for pid in sorted(practitioner_ids):
        k = 0
        while uid_probe(pid, lo, hi, k) in used:
            k += 1
        out[pid] = uid_probe(pid, lo, hi, k)
        used.add(out[pid])
    return out


class Result:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed
        try:
            self.json = json.loads(self.out)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "rc=%s\nstdout: %s\nstderr: %s" % (self.rc, self.out[-3000:], self.err[-3000:])


class SyncEnv:
    def __init__(self, server):
        self.server = server

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="medplumctl-test-")
        self.cache_dir = os.path.join(self.dir, "cache")
        self.config = os.path.join(self.dir, "pam_medplum.conf")
        self.passwd = os.path.join(self.dir, "passwd")
        self.group = os.path.join(self.dir, "group")
        self.set_local()
        self.write_config()
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def set_local(self, passwd="", group=""):
        with open(self.passwd, "w") as f:
            f.write(BASE_PASSWD + passwd)
        with open(self.group, "w") as f:
            f.write(BASE_GROUP + group)

    def secret_file(self, secret, name="host-secret", mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, mode)
        return path

    def write_config(self, client="admin", extra="", base_url=None, mode=0o600, secret=None,
                     timeout=5):
        client_id, client_secret = CLIENTS[client]
        secret_path = self.secret_file(secret or client_secret)
        lines = [f"base_url = {base_url or self.server.base_url}",
                 f"project_id = {LAB_NORTH}",
                 f"ca_file = {self.server.ca_file}",
                 f"client_id = {PAM_LOGIN_CLIENT}", "email_domain = example.com",
                 f"cache_dir = {self.cache_dir}",
                 f"host_client_id = {client_id}",
                 f"host_client_secret_file = {secret_path}",
                 f"timeout = {timeout}", "connect_timeout = 2"]
        text = "\n".join(lines) + "\n" + extra
        with open(self.config, "w") as f:
            f.write(text)
        os.chmod(self.config, mode)

    def env(self, extra=None):
        env = dict(os.environ)
        env["MEDPLUM_PASSWD_FILE"] = self.passwd
        env["MEDPLUM_GROUP_FILE"] = self.group
        env.update(extra or {})
        return env

    def ctl(self, *args, stdin="", env=None, config=True, preexec=None, timeout=120):
        cmd = [os.path.join(build_dir(), "medplumctl")]
        if os.environ.get("MP_VALGRIND"):
            # Memory errors and definite leaks fail the command (exit 99).
            cmd = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                   "--error-exitcode=99"] + cmd
        if config:
            cmd += ["--config", self.config]
        cmd += list(args)
        start = time.monotonic()
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              env=self.env(env), timeout=timeout, preexec_fn=preexec)
        return Result(proc, time.monotonic() - start)

    def cache_list(self):
        res = self.ctl("cache", "list", "--json")
        if res.rc != 0 or res.json is None:
            raise AssertionError("cache list failed: %r" % res)
        return res.json

    def users(self):
        return {u["name"]: u for u in self.cache_list()["users"]}

    def cache_bytes(self):
        path = os.path.join(self.cache_dir, "accounts.db")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return f.read()
