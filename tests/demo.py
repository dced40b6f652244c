#!/usr/bin/env python3
"""make demo: real PAM logins against the bundled Medplum-compatible server.

Starts the test server over HTTPS with the demo project (tests/server/fixtures/
demo.json), writes a private pam_medplum.conf and a PAM service file, and runs
pamtester through the real libpam (pam_wrapper supplies the service file, so
/etc/pam.d is never touched).  For each login it prints the PAM result and the
line pam_medplum logged with the reason.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pam"))
from pamtest import PamEnv  # noqa: E402
from harness import MedplumTestServer  # noqa: E402

DEMO_PROJECT = "de300000-0000-4000-8000-000000000001"
DEMO_CLIENT = "de300000-0000-4000-8000-000000000201"
FIXTURE = os.path.join(HERE, "server", "fixtures", "demo.json")

SCENARIOS = [
    ("demo", "demo-password-1", "the demo Practitioner with the right password"),
    ("demo", "wrong-password", "the demo Practitioner with a wrong password"),
    ("nonmember", "nonmember-password-1", "a Medplum user who is not a member of the project"),
    ("inactive", "inactive-password-1", "a member whose membership is inactive"),
    ("root", "whatever", "a local account (left to pam_unix, no request to Medplum)"),
]


def main():
    with MedplumTestServer(fixture=FIXTURE) as srv, PamEnv(srv) as env:
        env.write_config(project=DEMO_PROJECT, client=DEMO_CLIENT)
        with open(env.config) as f:
            config = f.read().replace("email_domain = example.com", "email_domain = lab.example")
        with open(env.config, "w") as f:
            f.write(config)
        print(f"Medplum-compatible test server: {srv.base_url} (TLS, CA {srv.ca_file})")
        print(f"pam_medplum.conf:\n  " + "\n  ".join(config.strip().splitlines()))
        print()
        ok = True
        for user, password, what in SCENARIOS:
            res = env.pamtester(user, ["authenticate"], stdin=password + "\n")
            lines = res.syslog  # pam_medplum's pam_syslog lines, as pam_wrapper shows them
            print(f"$ pamtester medplum {user} authenticate    # {what}")
            shown = [l.replace("Password: ", "").strip() for l in res.output.splitlines()]
            shown = [l for l in shown if not l.startswith(("PWRAP", "pamtester:"))]
            print(f"  PAM result: {res.pam_error()}")
            for line in filter(None, shown):
                print(f"  user sees: {line}")
            for line in lines:
                print(f"  syslog: {line}")
            print()
            accepted = res.pam_error() == "PAM_SUCCESS"
            if accepted != (password == "demo-password-1"):
                ok = False
        if not ok:
            print("demo: unexpected result; see above")
            return 1
        print("demo: accepted the demo Practitioner, refused the others (reasons above)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
