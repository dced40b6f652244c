#!/usr/bin/env python3
"""medplumctl sync end to end: medplumctl -> HTTPS -> the Medplum-compatible test
server, with a private config, cache directory and passwd/group files.

Each test checks the exit code, what the sync reported (--json), the cache as
`medplumctl cache list --json` reads it back, and where it matters what the
server received (its request log).  The paging test runs against a fixture
generated at test time (lab.json plus 2,500 members).
"""

import base64
import copy
import json
import os
import time
import resource
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synctest import (CLIENTS, LAB_NORTH, LAB_NORTH_USERS, Runner, SkipTest, SyncEnv,  # noqa: E402
                      build_dir, check, expected_uids)
from harness import DEFAULT_FIXTURE, MedplumTestServer  # noqa: E402

with open(DEFAULT_FIXTURE) as f:
    LAB = json.load(f)


def lab_north_members():
    """{practitioner id: email} of the active Practitioner members of Lab North."""
    out = {}
    for m in LAB["memberships"]:
        ref = m["profile"]["reference"]
        if (m["project"]["reference"] == "Project/" + LAB_NORTH and ref.startswith("Practitioner/")
                and m.get("active", True)):
            out[ref.split("/")[1]] = m["user"]["display"]
    return out


def fhir_requests(srv):
    return [r for r in srv.requests() if r["path"].startswith("/fhir/")]


def fhir(srv, method, path, body=None, client="admin", want_status=False):
    """A FHIR call with a client's Basic credentials (test setup, not the code under test)."""
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    req = urllib.request.Request(srv.base_url + "fhir/R4/" + path, method=method,
                                 data=json.dumps(body).encode() if body else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(
        ("%s:%s" % CLIENTS[client]).encode()).decode())
    req.add_header("Content-Type", "application/fhir+json")
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            out = (resp.status, json.loads(resp.read()))
    except urllib.error.HTTPError as e:
        out = (e.code, None)
    if want_status:
        return out
    check(out[0] == 200, f"{method} {path}: HTTP {out[0]}")
    return out[1]


def sync_ok(env, *args):
    res = env.ctl("sync", "--json", *args)
    check(res.rc == 0 and res.json and res.json["result"] == "ok", "sync failed: %r" % res)
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
        if os.path.isdir(self.env.cache_dir):
            subprocess.run(["rm", "-rf", self.env.cache_dir], check=True)

    # ---- the admin client: ProjectMembership search ----

    def test_admin_sync(self):
        res = sync_ok(self.env)
        j = res.json
        check(j["source"] == "memberships" and j["membership_state_known"], f"source: {j}")
        check({a["name"] for a in j["added"]} == LAB_NORTH_USERS, f"added: {j['added']}")
        check(j["inactive_memberships"] == 1, "bob's inactive membership counted")
        users = self.env.users()
        check(set(users) == LAB_NORTH_USERS, f"cache users: {sorted(users)}")
        want = expected_uids(lab_north_members())
        for u in users.values():
            pid = u["profile"].split("/")[1]
            check(u["uid"] == want[pid], f"{u['name']}: uid {u['uid']} != {want[pid]}")
            check(u["gid"] == u["uid"], "private group gid = uid")
            check(u["home"] == "/home/" + u["name"] and u["shell"] == "/bin/bash", "home/shell")
            check(u["membership_state"] == "active", f"{u['name']} state {u['membership_state']}")
        alice = users["alice"]
        check(alice["email"] == "alice@example.com" and alice["gecos"] == "Alice Smith",
              f"alice: {alice}")
        check(users["labadmin"]["admin"] and not alice["admin"], "admin flag from membership")
        groups = {g["name"]: g for g in self.env.cache_list()["groups"]}
        check(set(groups) == LAB_NORTH_USERS, f"private groups: {sorted(groups)}")

    def test_admin_requests(self):
        sync_ok(self.env)
        log = self.srv.requests()
        paths = [(r["method"], r["path"]) for r in log]
        check(paths == [("POST", "/oauth2/token"), ("GET", "/fhir/R4/ProjectMembership"),
                        ("POST", "/oauth2/logout")], f"requests: {paths}")
        form = parse_qs(log[0]["body"])
        check(form["grant_type"] == ["client_credentials"]
              and form["client_id"] == [CLIENTS["admin"][0]], f"token form: {form.keys()}")
        q = parse_qs(log[1]["query"])
        check(q["profile-type"] == ["Practitioner"] and q["_include"] == ["ProjectMembership:profile"]
              and int(q["_count"][0]) <= 500 and q["_sort"] == ["_lastUpdated"], f"query: {q}")
        check("active" not in q and "admin" not in q, "no active/admin search parameters (400 on 5.0.10)")
        bearer = log[1]["headers"]["Authorization"]
        check(bearer.startswith("Bearer ") and log[2]["headers"]["Authorization"] == bearer,
              "search and logout with the same client-credentials token")

    def test_dry_run_writes_nothing(self):
        res = self.env.ctl("sync", "--dry-run", "--json")
        check(res.rc == 0 and res.json["dry_run"] and len(res.json["added"]) == 8, repr(res))
        check(not os.path.exists(self.env.cache_dir), "dry run created the cache directory")

    def test_text_output(self):
        res = self.env.ctl("sync")
        check(res.rc == 0 and "added    alice" in res.out and "sync ok" in res.out, repr(res))
        secret = CLIENTS["admin"][1]
        check(secret not in res.out + res.err, "secret printed")

    # ---- the read-only client: 403, then the Practitioner search ----

    def test_readonly_fallback(self):
        self.fresh(client="readonly")
        res = sync_ok(self.env)
        j = res.json
        check(j["source"] == "practitioners" and not j["membership_state_known"], f"source: {j}")
        check("403" in j["fallback_reason"], f"fallback reason: {j['fallback_reason']}")
        fhir = [r["path"] for r in fhir_requests(self.srv)]
        check(fhir == ["/fhir/R4/ProjectMembership", "/fhir/R4/Practitioner"], f"requests: {fhir}")
        users = self.env.users()
        # bob's membership is inactive, but the Practitioner search cannot tell.
        check(set(users) == LAB_NORTH_USERS | {"bob"}, f"users: {sorted(users)}")
        check(all(u["membership"] is None and not u["admin"] for u in users.values()),
              "no membership data in read-only mode")
        check(users["alice"]["membership_state"] == "unknown", "state not invented")
        want = expected_uids(lab_north_members())
        alice_pid = users["alice"]["profile"].split("/")[1]
        check(users["alice"]["uid"] == want[alice_pid], "same uid function in both modes")

    def test_recommended_policy(self):
        """The documented host setup: admin membership + Practitioner-readonly policy
        (pam-directory-sync): memberships readable, anything else refused."""
        ro_id = CLIENTS["readonly"][0]
        found = fhir(self.srv, "GET", "ProjectMembership?profile=ClientApplication/" + ro_id)
        membership = found["entry"][0]["resource"]
        check(membership.get("accessPolicy"), "fixture: the client has the policy")
        membership["admin"] = True
        fhir(self.srv, "PUT", "ProjectMembership/" + membership["id"], membership)
        self.fresh(client="readonly")
        j = sync_ok(self.env).json
        check(j["source"] == "memberships" and j["users"] == len(LAB_NORTH_USERS), f"{j}")
        status, _ = fhir(self.srv, "GET", "Patient", client="readonly", want_status=True)
        check(status == 403, f"Patient search with the host client: {status}")

    # ---- Basic auth and secret rotation ----

    def test_basic_auth(self):
        self.fresh(extra="host_auth = basic\n")
        sync_ok(self.env)
        log = self.srv.requests()
        check([r["path"] for r in log] == ["/fhir/R4/ProjectMembership"], "no token, no logout")
        check(log[0]["headers"]["Authorization"].startswith("Basic "), "Basic header")

    def test_wrong_secret(self):
        self.fresh(secret="0" * 64)
        res = self.env.ctl("sync", "--json")
        check(res.rc == 1 and res.json["result"] == "failed"
              and "Invalid secret" in res.json["message"], repr(res))
        check(not os.path.exists(os.path.join(self.env.cache_dir, "accounts.db")),
              "nothing written")

    # ---- mapping rules ----

    def test_local_name_collisions(self):
        self.env.set_local(passwd="alice:x:1000:1000::/home/alice:/bin/sh\n",
                           group="carol:x:1001:\n")
        j = sync_ok(self.env).json
        skipped = {s.get("name"): s["reason"] for s in j["skipped"]}
        check("passwd" in skipped.get("alice", "") and "group" in skipped.get("carol", ""),
              f"skipped: {skipped}")
        check(set(self.env.users()) == LAB_NORTH_USERS - {"alice", "carol"}, "others synced")

    def test_local_uid_is_avoided(self):
        want = expected_uids(lab_north_members())
        alice_pid = [p for p, e in lab_north_members().items() if e.startswith("alice@")][0]
        taken = want[alice_pid]
        self.env.set_local(passwd=f"local:x:{taken}:{taken}::/home/local:/bin/sh\n")
        sync_ok(self.env)
        alice = self.env.users()["alice"]
        check(alice["uid"] != taken, "a uid of the local passwd file was given out")
        check(alice["uid"] == expected_uids(lab_north_members(), taken=[taken])[alice_pid],
              "next probe taken")

    def test_uid_collisions_small_range(self):
        # 8 users in 10 uids: collisions are certain; resolution follows the model.
        self.fresh(extra="uid_min = 200000\nuid_max = 200009\n")
        sync_ok(self.env)
        users = self.env.users()
        want = expected_uids(lab_north_members(), 200000, 200009)
        got = {u["profile"].split("/")[1]: u["uid"] for u in users.values()}
        check(got == want, f"uids {got} != {want}")
        check(len(set(got.values())) == len(got), "duplicate uid")

    def test_username_collision(self):
        self.srv.control.post("/user", email="dup@one.example", password="dup-password-1",
                              project=LAB_NORTH)
        j = sync_ok(self.env).json
        check("dup" in self.env.users(), "first dup synced")
        first = self.env.users()["dup"]["profile"]
        self.srv.control.post("/user", email="dup@two.example", password="dup-password-2",
                              project=LAB_NORTH)
        j = sync_ok(self.env).json
        skipped = [s for s in j["skipped"] if s.get("name") == "dup"]
        check(len(skipped) == 1 and "current holder" in skipped[0]["reason"], f"{j['skipped']}")
        check(self.env.users()["dup"]["profile"] == first, "the holder keeps the name")
        # On a host that never saw the first one, neither gets it.
        self.fresh()
        j = sync_ok(self.env).json
        check(len([s for s in j["skipped"] if s.get("name") == "dup"]) == 2, f"{j['skipped']}")
        check("dup" not in self.env.users(), "ambiguous name given out")

    def test_invalid_name_skipped(self):
        self.srv.control.post("/user", email="o'brien+lab@example.com", password="xx-password-1",
                              project=LAB_NORTH)
        j = sync_ok(self.env).json
        check(any("not a valid" in s["reason"] for s in j["skipped"]), f"{j['skipped']}")
        check(not any("brien" in n for n in self.env.users()), "altered name synced")

    def test_gecos_sanitised(self):
        self.srv.control.post("/user", email="eve@example.com", password="eve-password-1",
                              project=LAB_NORTH, given="Eve:Mallory\nroot::0:0", family="Ünïcode")
        sync_ok(self.env)
        gecos = self.env.users()["eve"]["gecos"]
        check(gecos == "Eve Mallory root 0 0 Ünïcode", f"gecos {gecos!r}")

    def test_pinned_uid(self):
        self.fresh(extra="uid_source = identifier:https://example.org/linux-uid\n"
                         "uid_min = 20000\nuid_max = 29999\n")
        j = sync_ok(self.env).json
        users = self.env.users()
        check(set(users) == {"alice", "carol"} and users["alice"]["uid"] == 20001
              and users["carol"]["uid"] == 20003, f"users {users}")
        check(len(j["skipped"]) == 6 and all("no identifier" in s["reason"] for s in j["skipped"]),
              f"skipped {j['skipped']}")

    def test_shared_and_admin_groups(self):
        self.fresh(extra="primary_group = medstaff\nprimary_gid = 5000\n"
                         "admin_group = medadmin\nadmin_gid = 5001\n")
        sync_ok(self.env)
        listing = self.env.cache_list()
        groups = {g["name"]: g for g in listing["groups"]}
        check(set(groups) == {"medstaff", "medadmin"}, f"groups {sorted(groups)}")
        check(groups["medadmin"]["members"] == ["labadmin"], f"admins {groups['medadmin']}")
        check(all(u["gid"] == 5000 for u in listing["users"]), "shared primary gid")

    # ---- departures, returns, reservations ----

    def test_departed_and_return(self):
        sync_ok(self.env)
        before = self.env.users()
        self.srv.control.post("/membership", email="carol@example.com", project=LAB_NORTH,
                              active=False)
        j = sync_ok(self.env).json
        check([r["name"] for r in j["removed"]] == ["carol"], f"removed {j['removed']}")
        listing = self.env.cache_list()
        resv = {r["profile"]: r["uid"] for r in listing["reserved_uids"]}
        check(resv[before["carol"]["profile"]] == before["carol"]["uid"], "uid stays reserved")
        self.srv.control.post("/membership", email="carol@example.com", project=LAB_NORTH,
                              active=True)
        sync_ok(self.env)
        check(self.env.users()["carol"]["uid"] == before["carol"]["uid"], "same uid on return")
        self.srv.control.post("/membership", email="frank@example.com", project=LAB_NORTH,
                              delete=True)
        j = sync_ok(self.env).json
        check([r["name"] for r in j["removed"]] == ["frank"], f"removed {j['removed']}")
        check(len(self.env.cache_list()["reserved_uids"]) == 8, "frank's uid stays reserved")

    def test_reserved_uid_not_reused(self):
        # A newcomer whose probe sequence starts at a departed user's uid skips it.
        self.fresh(extra="uid_min = 200000\nuid_max = 200001\n")
        # Two slots: the first two Practitioners in id order get them.
        members = sorted(lab_north_members())
        j = sync_ok(self.env).json
        check(len(self.env.users()) == 2 and len(j["skipped"]) == 6, f"{j}")
        holders = {u["profile"] for u in self.env.users().values()}
        check(holders == {"Practitioner/" + p for p in members[:2]}, f"holders {holders}")
        email = lab_north_members()[members[0]]
        self.srv.control.post("/membership", email=email, project=LAB_NORTH, delete=True)
        j = sync_ok(self.env).json
        check(len(self.env.users()) == 1, "nobody took the departed user's uid")
        check(sum("no free uid" in s["reason"] for s in j["skipped"]) == 6, f"{j['skipped']}")

    # ---- the cache is never lost ----

    def test_empty_result_refused(self):
        sync_ok(self.env)
        before = self.env.cache_bytes()
        empty = {"resourceType": "Bundle", "type": "searchset", "entry": [],
                 "link": [{"relation": "self", "url": self.srv.base_url + "fhir/R4/x"}]}
        self.srv.set_fault("garbage", path_prefix="/fhir/R4/ProjectMembership",
                           body=json.dumps(empty), content_type="application/fhir+json")
        res = self.env.ctl("sync", "--json")
        check(res.rc == 1 and res.json["result"] == "refused" and "--force" in res.json["message"],
              repr(res))
        check(self.env.cache_bytes() == before, "cache changed")
        res = self.env.ctl("sync", "--json", "--force")
        check(res.rc == 0 and res.json["users"] == 0, repr(res))
        listing = self.env.cache_list()
        check(listing["users"] == [] and len(listing["reserved_uids"]) == 8,
              "reservations survive an empty result")

    def test_revocation_recorded_even_when_write_refused(self):
        # Every member deactivated: the NSS write is refused (it would empty the
        # cache), but Medplum's explicit "inactive" still reaches the account phase.
        sync_ok(self.env)
        before = self.env.cache_bytes()
        emails = list(lab_north_members().values())
        try:
            for email in emails:
                self.srv.control.post("/membership", email=email, project=LAB_NORTH,
                                      active=False)
            res = self.env.ctl("sync", "--json")
            check(res.rc == 1 and res.json["result"] == "refused", repr(res))
            check(self.env.cache_bytes() == before, "cache changed")
            states = {u["name"]: u.get("membership_state") for u in self.env.cache_list()["users"]}
            check(states.get("alice") == "inactive", f"alice's state: {states}")
        finally:
            for email in emails:
                self.srv.control.post("/membership", email=email, project=LAB_NORTH, active=True)

    def test_successful_sync_ends_the_login_backoff(self):
        # Medplum answered the sync: PAM logins need not skip the network
        # for the rest of the backoff.
        sync_ok(self.env)
        private = os.path.join(self.env.cache_dir, "private")
        now = int(time.time())
        path = os.path.join(private, "backoff")
        with open(path, "w") as f:
            f.write(f"pam_medplum-state 1\nfailures 3\nfirst_failure {now - 300}\n"
                    f"last_failure {now - 10}\nuntil {now + 600}\nreason test_outage\n")
        os.chmod(path, 0o600)
        res = self.env.ctl("status", "--json")
        check(res.json["backoff"]["failures"] == 3, f"backoff seen: {res.json['backoff']}")
        sync_ok(self.env)
        res = self.env.ctl("status", "--json")
        check(res.json["backoff"]["failures"] == 0, f"backoff cleared: {res.json['backoff']}")

    def test_failed_fetch_keeps_cache(self):
        sync_ok(self.env)
        before = self.env.cache_bytes()
        for fault in ({"mode": "status", "status": 500}, {"mode": "drop"},
                      {"mode": "garbage"}, {"mode": "status", "status": 401}):
            self.srv.reset()
            self.srv.set_fault(path_prefix="/fhir/", **fault)
            res = self.env.ctl("sync", "--json")
            check(res.rc == 1 and res.json["result"] == "failed", f"{fault}: {res!r}")
            check(self.env.cache_bytes() == before, f"{fault}: cache changed")

    def test_failed_write_keeps_cache(self):
        sync_ok(self.env)
        before = self.env.cache_bytes()
        for i in range(60):
            self.srv.control.post("/user", email=f"bulk{i:02d}@example.com",
                                  password="bulk-password-1", project=LAB_NORTH)

        def small_files():
            # A file size limit makes the bigger cache's write fail with EFBIG.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 512, len(before) + 512))
        res = self.env.ctl("sync", "--json", preexec=small_files)
        check(res.rc == 1 and "previous cache is kept" in res.json["message"], repr(res))
        check(self.env.cache_bytes() == before, "cache changed after a failed write")
        check(not [n for n in os.listdir(self.env.cache_dir) if n.startswith(".accounts")],
              "temp file left behind")
        check(len(sync_ok(self.env).json["added"]) == 60, "next sync writes")

    # ---- NSS reads what sync wrote ----

    def test_nss_getent(self):
        module = os.path.join(build_dir(), "libnss_medplum.so.2")
        if not os.path.exists(module):
            raise SkipTest("no libnss_medplum.so.2 in the build")
        if subprocess.run(["sh", "-c", "ldconfig -p | grep -q libnss_wrapper.so"]).returncode:
            raise SkipTest("libnss_wrapper.so not installed")
        sync_ok(self.env)
        users = self.env.users()
        empty = os.path.join(self.env.dir, "empty")
        open(empty, "w").close()
        env = dict(os.environ, LD_PRELOAD="libnss_wrapper.so", NSS_WRAPPER_PASSWD=empty,
                   NSS_WRAPPER_GROUP=empty, NSS_WRAPPER_MODULE_SO_PATH=module,
                   NSS_WRAPPER_MODULE_FN_PREFIX="medplum", NSS_MEDPLUM_CACHE_DIR=self.env.cache_dir)
        out = subprocess.run(["getent", "passwd", "alice"], capture_output=True, text=True,
                             env=env)
        a = users["alice"]
        fields = out.stdout.strip().split(":")
        want = ["alice", str(a["uid"]), str(a["gid"]), "Alice Smith", "/home/alice", "/bin/bash"]
        check(out.returncode == 0 and fields[:1] + fields[2:] == want,
              f"getent: {out.stdout!r} {out.stderr}")
        out = subprocess.run(["getent", "passwd"], capture_output=True, text=True, env=env)
        check({line.split(":")[0] for line in out.stdout.splitlines()} == LAB_NORTH_USERS,
              f"enumeration: {out.stdout}")
        out = subprocess.run(["getent", "group", str(a["gid"])], capture_output=True, text=True,
                             env=env)
        check(out.stdout.startswith("alice:"), f"group: {out.stdout!r}")


def big_fixture(path, count):
    """lab.json plus `count` Practitioner members of Lab North, distinct lastUpdated."""
    fx = copy.deepcopy(LAB)
    project = [p for p in fx["projects"] if p["id"] == LAB_NORTH][0]
    for i in range(count):
        stamp = "2027-01-01T%02d:%02d:%02d.%03dZ" % (i // 3600000, i // 60000 % 60,
                                                      i // 1000 % 60, i % 1000)
        meta = {"project": LAB_NORTH, "versionId": str(uuid.uuid4()), "lastUpdated": stamp}
        email = "member%04d@big.example" % i
        uid, pid, mid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        fx["users"].append({"resourceType": "User", "id": uid, "email": email,
                            "password": "member-password-1"})
        fx["profiles"].append({"resourceType": "Practitioner", "id": pid, "meta": dict(meta),
                               "name": [{"given": ["Member"], "family": "%04d" % i}],
                               "telecom": [{"system": "email", "value": email}]})
        fx["memberships"].append({"resourceType": "ProjectMembership", "id": mid, "meta": dict(meta),
                                  "project": {"reference": "Project/" + LAB_NORTH,
                                              "display": project["name"]},
                                  "user": {"reference": "User/" + uid, "display": email},
                                  "profile": {"reference": "Practitioner/" + pid,
                                              "display": "Member %04d" % i}})
    with open(path, "w") as f:
        json.dump(fx, f)


def paging_suite(runner, variant):
    count = 2500
    tmp = tempfile.mkdtemp(prefix="medplum-big-")
    path = os.path.join(tmp, "big.json")
    big_fixture(path, count)

    def test_paging(srv, env):
        res = sync_ok(env)
        j = res.json
        total = count + len(LAB_NORTH_USERS) + 1  # + bob (inactive)
        check(j["entries"] == total, f"entries {j['entries']} != {total}")
        check(j["pages"] == -(-total // 200), f"pages {j['pages']}")
        check(j["users"] == count + len(LAB_NORTH_USERS), f"users {j['users']}")
        listing = env.cache_list()
        uids = [u["uid"] for u in listing["users"]]
        check(len(set(uids)) == len(uids), "duplicate uids")
        check(all(200000 <= u <= 299999 for u in uids), "uid out of range")
        fhir = fhir_requests(srv)
        check(len(fhir) == j["pages"], "one request per page")
        check(all("_cursor=" in r["query"] for r in fhir[1:]), "cursor paging (next links)")
        check(all("_offset" not in r["query"] for r in fhir), "no offset paging")
        check(res.elapsed < 30, f"sync took {res.elapsed:.1f}s")

    def test_paging_readonly(srv, env):
        env.write_config(client="readonly")
        j = sync_ok(env).json
        check(j["source"] == "practitioners", "fallback")
        # Lab North Practitioners only (Lab South's fillers are another project's).
        check(j["users"] == count + len(LAB_NORTH_USERS) + 1, f"users {j['users']}")

    try:
        with MedplumTestServer(fixture=path, variant=variant) as srv, SyncEnv(srv) as env:
            srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})
            runner.run("paging_2500_members", test_paging, srv, env)
            subprocess.run(["rm", "-rf", env.cache_dir], check=True)
            srv.clear_log()
            runner.run("paging_2500_practitioners", test_paging_readonly, srv, env)
    finally:
        subprocess.run(["rm", "-rf", tmp], check=True)


def rotation_suite(runner, variant):
    """After $rotate-secret the retiring secret still works for client_credentials,
    not for Basic auth: the sync says which to use."""
    def test(srv, env):
        admin_id, old = CLIENTS["admin"]
        out = subprocess.run(
            ["curl", "-sS", "--cacert", srv.ca_file, "-u", f"{admin_id}:{old}", "-X", "POST",
             srv.base_url + f"fhir/R4/ClientApplication/{admin_id}/$rotate-secret"],
            capture_output=True, text=True)
        check(out.returncode == 0 and '"secret"' in out.stdout, f"rotate: {out.stderr}")
        env.write_config(secret=old)
        sync_ok(env)
        env.write_config(secret=old, extra="host_auth = basic\n")
        res = env.ctl("sync", "--json")
        check(res.rc == 1 and "client_credentials" in res.json["message"], repr(res))

    with MedplumTestServer(variant=variant) as srv, SyncEnv(srv) as env:
        runner.run("secret_rotation", test, srv, env)


def main():
    variant = sys.argv[sys.argv.index("--variant") + 1] if "--variant" in sys.argv else "5.0.10"
    if not os.path.exists(os.path.join(build_dir(), "medplumctl")):
        print("medplumctl not built")
        print("0 passed, 1 failed")
        return 1
    runner = Runner("sync (%s)" % variant)
    with MedplumTestServer(variant=variant) as srv, SyncEnv(srv) as env:
        srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})
        suite = Suite(srv, env)
        for name in [n for n in dir(Suite) if n.startswith("test_")]:
            # Every test starts from the recorded population and an empty cache.
            srv.stop()
            srv.start()
            srv.control.post("/settings", rate_limits={"auth": -1, "login": -1})
            env.server = srv
            suite.fresh()
            runner.run(name[5:], getattr(suite, name))
    paging_suite(runner, variant)
    rotation_suite(runner, variant)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
