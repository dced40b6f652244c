#!/usr/bin/env python3
"""Shows that the negative tests can fail: each mutant breaks one protective
behaviour in a copy of the tree, rebuilds, and runs the tests that guard it.
A mutant "passes" only if those tests FAIL against it (the mutant is killed).

A mutant whose source text is no longer found also fails, so this file is
kept in step with the code it mutates.
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (name, file, original text, mutated text, pam test filters, run unit tests)
MUTANTS = [
    ("local accounts sent to Medplum", "core/mp_account.c",
     "switch (mp_passwd_file_lookup(MP_PASSWD_FILE, username)) {",
     "switch (0 * mp_passwd_file_lookup(MP_PASSWD_FILE, username)) {",
     ["test_local_and_invalid_users_fall_through"], False),
    ("invalid user names accepted", "core/mp_account.c",
     "if (!mp_is_valid_username(username)) {",
     "if (username == NULL) {",
     ["test_local_and_invalid_users_fall_through"], False),
    ("redirects followed", "core/mp_http.c",
     "CURLOPT_FOLLOWLOCATION, 0L", "CURLOPT_FOLLOWLOCATION, 1L",
     ["test_redirect_not_followed"], False),
    ("TLS peer not verified", "core/mp_http.c",
     "CURLOPT_SSL_VERIFYPEER, 1L", "CURLOPT_SSL_VERIFYPEER, 0L",
     ["test_tls_from_other_ca"], False),
    ("429 treated as a no", "core/mp_status.c",
     "if (http_status == 429 ||", "if (http_status == 1429 ||",
     ["test_rate_limited_no_retry"], True),
    ("empty password sent", "pam_medplum/pam_auth.c",
     "if (password == NULL || password[0] == '\\0') {", "if (password == NULL) {",
     ["test_empty_password"], False),
    ("wrong project in the token accepted", "core/mp_login.c",
     "if (!is_our_project(f->cfg, project)) {", "if (!is_our_project(f->cfg, project) && 0) {",
     [], True),
    ("Practitioner binding ignored", "core/mp_login.c",
     "if (f->params->expected_profile && strcmp(profile, f->params->expected_profile) != 0) {\n"
     "        decide(f, MP_DENIED, \"token profile",
     "if (0) {\n        decide(f, MP_DENIED, \"token profile",
     [], True),
    ("use_first_pass prompts anyway", "pam_medplum/pam_glue.c",
     "        if (use_first_pass)\n            return PAM_AUTH_ERR;",
     "        (void)use_first_pass;",
     ["test_use_first_pass_without_token"], False),
    ("oversized answers accepted", "core/mp_http.h",
     "#define MP_HTTP_MAX_BODY (1024 * 1024)", "#define MP_HTTP_MAX_BODY (64 * 1024 * 1024)",
     ["test_oversized_body"], False),
    ("no network budget per login", "core/mp_http.c",
     "http->budget_ms = (int64_t)cfg->timeout * 2000;",
     "http->budget_ms = (int64_t)cfg->timeout * 200000;",
     ["test_slow_server_bounded_per_login"], False),
    ("offline verifier of a previous name holder accepted", "core/mp_offline.c",
     "else if (req->expected_profile != NULL && strcmp(st->profile, req->expected_profile) != 0)",
     "else if (0)", [], True),
    ("rate limit reopens offline login without fresh state", "core/mp_offline.c",
     "else if (req->rate_limited && !fresh_active(cfg, st, now))",
     "else if (req->rate_limited && 0 && !fresh_active(cfg, st, now))", [], True),
    ("world-writable config accepted", "core/mp_config.c",
     "if (st.st_mode & (S_IWGRP | S_IWOTH)) {", "if (0) {",
     ["test_bad_config_denies"], True),
]


def copy_tree(dest):
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        f = f.decode()
        src = os.path.join(ROOT, f)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, f))


def killed(tree, name, path, old, new, pam_tests, unit):
    target = os.path.join(tree, path)
    with open(target) as f:
        text = f.read()
    if text.count(old) != 1:
        return False, f"source text not found exactly once in {path}: update the mutant"
    with open(target, "w") as f:
        f.write(text.replace(old, new))
    try:
        build = subprocess.run(["make", "-s", "-j2", "O=build-mutant", "build-mutant/pam_medplum.so",
                                "build-mutant/libmpcore.a"], cwd=tree, capture_output=True, text=True)
        if build.returncode != 0:
            return False, "mutant did not build: " + build.stderr[-500:]
        if unit:
            res = subprocess.run(["make", "-s", "O=build-mutant", "check-unit"], cwd=tree,
                                 capture_output=True, text=True)
            if res.returncode != 0:
                return True, "unit tests failed"
        for test in pam_tests:
            res = subprocess.run([sys.executable, "tests/pam/test_pam_auth.py", "-k", test],
                                 cwd=tree, capture_output=True, text=True,
                                 env=dict(os.environ, MP_BUILD=os.path.join(tree, "build-mutant")))
            if res.returncode != 0:
                return True, f"{test} failed"
        return False, "every guarding test still passed"
    finally:
        with open(target, "w") as f:
            f.write(text)


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="pam-medplum-mutants-") as tree:
        copy_tree(tree)
        for name, path, old, new, pam_tests, unit in MUTANTS:
            ok, why = killed(tree, name, path, old, new, pam_tests, unit)
            print(f"{'ok  ' if ok else 'FAIL'} mutant '{name}': {why}", flush=True)
            passed += ok
            failed += not ok
    print(f"mutants: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
