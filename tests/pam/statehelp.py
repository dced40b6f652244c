"""Shared by test_pam_account.py, test_pam_offline.py and test_pam_password.py.

They run the MP_TESTING build of the module (build/testing/pam_medplum.so),
whose clock honours MP_TEST_CLOCK_OFFSET, and read/write the private state
with build/tests/pam/state_tool (the way medplumctl does).
"""

import hashlib
import os
import subprocess
import time

import pamtest
from pamtest import PamEnv, build_dir

# Codes the password suite meets beyond the shared table (pamtest.py).
pamtest.PAM_TEXTS.setdefault("PAM_TRY_AGAIN", "Failed preliminary check by password service")
pamtest.PAM_TEXTS.setdefault("PAM_AUTHTOK_RECOVERY_ERR",
                             "Authentication information cannot be recovered")

HOST_ADMIN = "d0206ce7-0143-4468-8f90-7bacdf90ab84"
HOST_ADMIN_SECRET = hashlib.sha256(b"pam_medplum test secret host-sync-admin").hexdigest()
HOST_CONFIG = f"host_client_id = {HOST_ADMIN}\nhost_client_secret = {HOST_ADMIN_SECRET}\n"
ALICE_PROFILE = "Practitioner/7618b02a-aace-465e-96d6-68f936dcf006"

HOUR = 3600
DAY = 86400


def testing_module():
    return os.path.join(build_dir(), "testing", "pam_medplum.so")


def production_module():
    return os.path.join(build_dir(), "pam_medplum.so")


def state_tool(*args, check=True):
    proc = subprocess.run([os.path.join(build_dir(), "tests", "pam", "state_tool")] +
                          [str(a) for a in args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"state_tool {args}: {proc.stderr}")
    return proc


def parse_kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class StateEnv(PamEnv):
    """PamEnv on the testing module, with a movable clock."""

    def __init__(self, server):
        super().__init__(server, module=testing_module())
        self.offset = 0

    def env(self):
        env = super().env()
        env["MP_TEST_CLOCK_OFFSET"] = str(self.offset)
        return env

    def now(self):
        return int(time.time()) + self.offset

    def user_state(self, user):
        return parse_kv(state_tool("get", self.cache_dir, user).stdout)

    def backoff(self):
        return parse_kv(state_tool("backoff", self.cache_dir).stdout)

    def set_membership(self, user, state, at=None):
        state_tool("set-membership", self.cache_dir, user, state,
                   self.now() if at is None else at)

    def private_dir(self):
        return os.path.join(self.cache_dir, "private")


def paths(srv):
    return [r["path"] for r in srv.requests()]
