#!/usr/bin/env python3
"""A Medplum 5.0.10 imitation for the pam_medplum tests (Python standard library only).

Behaviour follows the recorded exchanges of a real 5.0.10 server where they differ from the
written contract; `--variant newest` switches to the contract's newest behaviour. See
tests/server/README.md for the CLI, the fixture format and the control interface.
"""

import argparse
import base64
import datetime
import email.utils
import hashlib
import hmac
import html
import json
import math
import os
import re
import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es256  # noqa: E402
import totp  # noqa: E402

VERSION = "5.0.10-6a4145c"
MAX_BODY = 1024 * 1024
LOGIN_MIN_PASSWORD = {"5.0.10": 5, "newest": 8}
LOGIN_PASSWORD_TEXT = {"5.0.10": "Invalid password, must be at least 5 characters",
                       "newest": "Password must be at least 8 characters"}
CHANGE_PASSWORD_TEXT = "Invalid password, must be at least 8 characters"
# Newest-code MFA attempt caps (values are not published; these are the fake's choice).
MFA_LOGIN_ATTEMPT_LIMIT = 5
MFA_USER_ATTEMPT_LIMIT = 20
MFA_USER_WINDOW = 3600
REFRESH_LIFETIME = 14 * 24 * 3600
TRACING_URL = "https://medplum.com/fhir/StructureDefinition/tracing"
RATE_LIMIT_RESET_URL = "https://medplum.com/fhir/StructureDefinition/rate-limit-reset"
PROJECT_ADMIN_TYPES = {"ProjectMembership", "User", "Project", "AccessPolicy", "Cron",
                       "UserSecurityRequest"}
# Resource types the FHIR router knows; anything else is "Unknown resource type".
KNOWN_TYPES = {
    "AccessPolicy", "AuditEvent", "Binary", "Bot", "ClientApplication", "Communication",
    "Condition", "Device", "DiagnosticReport", "DocumentReference", "Encounter", "Group",
    "Login", "Observation", "Organization", "Patient", "Practitioner", "PractitionerRole",
    "Project", "ProjectMembership", "Questionnaire", "QuestionnaireResponse", "RelatedPerson",
    "SearchParameter", "ServiceRequest", "StructureDefinition", "Subscription", "Task", "User",
    "UserConfiguration", "UserSecurityRequest", "ValueSet",
}
SUBSETTED_TAG = {"system": "http://hl7.org/fhir/v3/ObservationValue", "code": "SUBSETTED"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
STANDARD_HEADERS = [
    ("Cache-Control", "no-store, no-cache, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Content-Security-Policy",
     "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none';"),
    ("Permissions-Policy", "accelerometer=(), camera=(), geolocation=(), gyroscope=(), "
     "magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("X-XSS-Protection", "1; mode=block"),
]
JSON_TYPE = "application/json; charset=utf-8"
FHIR_TYPE = "application/fhir+json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
USER_CONFIG_MENU = [{"title": "Favorites", "link": [
    {"name": n, "target": "/" + n} for n in
    ("Patient", "Practitioner", "Organization", "ServiceRequest", "DiagnosticReport",
     "Questionnaire")]}]
ADMIN_MENU = {"title": "Admin", "link": [
    {"name": "Project", "target": "/admin/project"},
    {"name": "AccessPolicy", "target": "/AccessPolicy"},
    {"name": "Subscriptions", "target": "/Subscription"},
    {"name": "Batch", "target": "/batch"},
    {"name": "Config", "target": "/admin/config"}]}


# ---------------------------------------------------------------------------------------------
# Response helpers
# ---------------------------------------------------------------------------------------------

class Reply(Exception):
    """A complete HTTP answer; raised anywhere in a handler to send it."""

    def __init__(self, status, body, content_type=FHIR_TYPE, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


def tracing():
    return [{"url": TRACING_URL, "extension": [
        {"url": "requestId", "valueId": str(uuid.uuid4())},
        {"url": "traceId", "valueId": str(uuid.uuid4())}]}]


def bad_request(text, expression=None):
    """A Medplum 'badRequest' outcome: no id; expression (if any) after details."""
    issue = {"severity": "error", "code": "invalid", "details": {"text": text}}
    if expression:
        issue["expression"] = [expression]
    return Reply(400, {"resourceType": "OperationOutcome", "issue": [issue],
                       "extension": tracing()})


def validation_error(problems):
    """express-validator failures: random UUID id, one issue per field, expression first."""
    issues = [{"severity": "error", "code": "invalid", "expression": [field],
               "details": {"text": text}} for field, text in problems]
    return Reply(400, {"resourceType": "OperationOutcome", "id": str(uuid.uuid4()),
                       "issue": issues, "extension": tracing()})


def fixed_outcome(status, oid, code, text, severity="error"):
    return Reply(status, {"resourceType": "OperationOutcome", "id": oid, "issue": [
        {"severity": severity, "code": code, "details": {"text": text}}],
        "extension": tracing()})


def unauthorized():
    return fixed_outcome(401, "unauthorized", "login", "Unauthorized")


def forbidden():
    return fixed_outcome(403, "forbidden", "forbidden", "Forbidden")


def not_found():
    return fixed_outcome(404, "not-found", "not-found", "Not found")


def all_ok(headers=None):
    reply = fixed_outcome(200, "ok", "informational", "All OK", severity="information")
    reply.headers = headers or []
    return reply


def oauth_error(error, description):
    return Reply(400, {"error": error, "error_description": description}, JSON_TYPE)


def internal_error():
    return Reply(500, {"msg": "Internal Server Error"}, JSON_TYPE)


def structure_error(text):
    return Reply(400, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "structure", "details": {"text": text}}],
        "extension": tracing()})


def express_404(method, url):
    page = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<title>Error</title>\n</head>\n<body>\n<pre>Cannot %s %s</pre>\n</body>\n'
            '</html>\n' % (method, html.escape(url, quote=False)))
    return Reply(404, page, HTML_TYPE, [("Content-Security-Policy", "default-src 'none'")])


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def iso_ms(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + "%03dZ" % int((t % 1) * 1000)


def parse_iso(text):
    """Parse a FHIR instant/dateTime to epoch seconds (None if malformed)."""
    m = re.match(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
                 r"(Z|[+-]\d{2}:\d{2})?)?)?)?$", text)
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    if hh is not None and tz is None:
        return None
    dt = datetime.datetime(int(year), int(month or 1), int(day or 1), int(hh or 0),
                           int(mm or 0), int(ss or 0), tzinfo=datetime.timezone.utc)
    value = dt.timestamp() + (float(frac) if frac else 0.0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        value -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return value


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def parse_lifetime(text, default):
    """ClientApplication lifetimes look like '30s', '5m', '2h', '1d', '1w', '1y'."""
    m = re.match(r"^(\d+)([smhdwy])$", str(text or ""))
    if not m:
        return default
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                              "y": 31536000}[m.group(2)]


def is_email(value):
    """Roughly validator.js isEmail: no spaces, sane local part, dotted domain, alpha TLD."""
    if not isinstance(value, str) or not value or len(value) > 254 or re.search(r"\s", value):
        return False
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain or len(local) > 64:
        return False
    if not re.match(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$", local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not re.match(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", label):
            return False
    return bool(re.match(r"^(?:[A-Za-z]{2,}|xn--[A-Za-z0-9-]+)$", labels[-1]))


def bcrypt_equal(stored, given):
    """bcrypt only sees the first 72 bytes of a password; emulate that comparison."""
    return hmac.compare_digest(stored.encode("utf-8")[:72], given.encode("utf-8")[:72])


def pkce_matches(method, challenge, verifier):
    if method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode("utf-8")).digest())
        return hmac.compare_digest(expected, challenge)
    return hmac.compare_digest(verifier, challenge)


def ref(resource):
    return "%s/%s" % (resource["resourceType"], resource["id"])


def display_name(resource):
    if resource["resourceType"] in ("ClientApplication", "Bot", "Project", "AccessPolicy"):
        return resource.get("name", "")
    names = resource.get("name") or []
    if names:
        n = names[0]
        if n.get("text"):
            return n["text"]
        return " ".join(n.get("given", []) + ([n["family"]] if n.get("family") else []))
    return ""


def tiny_png():
    """A valid 1x1 PNG: stands in for the QR code image (a data: URL in Medplum too)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"\x00\xff\xff\xff"
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


# ---------------------------------------------------------------------------------------------
# State: the fixture population plus Logins, all behind one lock
# ---------------------------------------------------------------------------------------------

class Login:
    def __init__(self, **kw):
        self.id = str(uuid.uuid4())
        self.user_ref = None            # "User/<id>" or "ClientApplication/<id>"
        self.client_id = None
        self.project_id = None          # project the login was scoped to (if any)
        self.membership_id = None
        self.code = secrets.token_hex(16)
        self.cookie = secrets.token_hex(16)
        self.code_challenge = None
        self.code_challenge_method = None
        self.scope = "openid"
        self.nonce = str(uuid.uuid4())
        self.auth_method = "password"
        self.mfa_verified = False
        self.mfa_attempts = 0
        self.granted = False
        self.revoked = False
        self.refresh_secret = None
        self.remote_address = None
        self.user_agent = None
        self.auth_time = None
        self.last_updated = None
        self.__dict__.update(kw)


class Store:
    def __init__(self, fixture, clock):
        self.lock = threading.RLock()
        self.clock = clock
        self.projects = {p["id"]: p for p in fixture.get("projects", [])}
        self.users = {u["id"]: dict(u) for u in fixture.get("users", [])}
        self.policies = {p["id"]: p for p in fixture.get("access_policies", [])}
        self.clients = {c["id"]: dict(c) for c in fixture.get("clients", [])}
        self.profiles = {ref(p): p for p in fixture.get("profiles", [])}
        self.memberships = {m["id"]: m for m in fixture.get("memberships", [])}
        self.breached = set(fixture.get("breached_passwords", []))
        self.hibp_unreachable = bool(fixture.get("hibp_unreachable", False))
        self.logins = {}
        self.mfa_user_attempts = {}     # user id -> [window start, count] (newest variant)

    # -- lookups -------------------------------------------------------------------------------
    def user_by_email(self, email, project_id):
        candidates = [u for u in self.users.values() if u.get("email") == email]
        if project_id:
            scoped = [u for u in candidates if u.get("project") == project_id]
            if scoped:
                return scoped[0]
        unscoped = [u for u in candidates if not u.get("project")]
        return unscoped[0] if unscoped else None

    def memberships_of(self, user_ref, project_id=None):
        found = [m for m in self.memberships.values() if m["user"]["reference"] == user_ref
                 and (project_id is None or m["project"]["reference"] == "Project/" + project_id)]
        return sorted(found, key=lambda m: (m["meta"].get("lastUpdated", ""), m["id"]))

    def client_membership(self, client_id):
        ms = self.memberships_of("ClientApplication/" + client_id)
        return ms[0] if ms else None

    def resource(self, reference):
        rtype, _, rid = reference.partition("/")
        if rtype == "User":
            return self.users.get(rid)
        if rtype == "ClientApplication":
            return self.clients.get(rid)
        if rtype == "Project":
            return self.projects.get(rid)
        if rtype == "AccessPolicy":
            return self.policies.get(rid)
        if rtype == "ProjectMembership":
            return self.memberships.get(rid)
        return self.profiles.get(reference)

    def policies_of(self, membership):
        refs = []
        if membership.get("accessPolicy"):
            refs.append(membership["accessPolicy"]["reference"])
        for entry in membership.get("access", []):
            refs.append(entry["policy"]["reference"])
        return refs

    def touch(self, resource):
        now = self.clock()
        resource.setdefault("meta", {})
        resource["meta"]["versionId"] = str(uuid.uuid4())
        resource["meta"]["lastUpdated"] = iso_ms(now)


# ---------------------------------------------------------------------------------------------
# Rate limiting (fixed 60 s windows per client IP) and faults
# ---------------------------------------------------------------------------------------------

class RateLimiter:
    WINDOW = 60.0

    def __init__(self, limits, clock):
        self.limits = dict(limits)
        self.clock = clock
        self.lock = threading.Lock()
        self.buckets = {}  # (name, key) -> [window start, consumed]

    def consume(self, name, key, points=1):
        """Count a request; returns (limit, consumed, ms_before_next, first_in_window)."""
        limit = self.limits.get(name, -1)
        now = self.clock()
        with self.lock:
            state = self.buckets.get((name, key))
            first = state is None or now >= state[0] + self.WINDOW
            if first:
                state = [now, 0]
                self.buckets[(name, key)] = state
            state[1] += points
            ms = max(0, int(round((state[0] + self.WINDOW - now) * 1000)))
            return limit, state[1], ms, first

    def reset(self):
        with self.lock:
            self.buckets.clear()


def rate_limit_header(kind, limit, consumed, ms):
    return '"%s";r=%d;t=%d' % (kind, max(0, limit - consumed), math.ceil(ms / 1000.0))


def too_many_requests(limit, consumed, ms, first):
    diagnostics = json.dumps({"_remainingPoints": 0, "_msBeforeNext": ms,
                              "_consumedPoints": consumed, "_isFirstInDuration": first,
                              "limit": limit}, separators=(",", ":"))
    return Reply(429, {"resourceType": "OperationOutcome", "id": "too-many-requests", "issue": [
        {"severity": "error", "code": "throttled", "details": {"text": "Too Many Requests"},
         "diagnostics": diagnostics}]}, JSON_TYPE)


class Faults:
    """Test-injected misbehaviour of the main port, set through the control port."""
    MODES = {"none", "delay", "status", "garbage", "drop", "redirect", "hang", "ratelimit"}

    def __init__(self):
        self.cond = threading.Condition()
        self.active = []
        self.generation = 0
        self.stopping = False

    def set(self, spec):
        mode = spec.get("mode", "none")
        if mode not in self.MODES:
            raise ValueError("unknown fault mode %r" % mode)
        with self.cond:
            self.generation += 1
            if mode == "none":
                self.active = []
            else:
                fault = dict(spec)
                fault["id"] = self.generation
                self.active.append(fault)
            self.cond.notify_all()

    def clear(self):
        self.set({"mode": "none"})

    def take(self, path):
        """The fault that applies to this request (consuming one of its `count`), or None."""
        with self.cond:
            for fault in self.active:
                if not path.startswith(fault.get("path_prefix") or "/"):
                    continue
                if fault.get("count") is not None:
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self.active.remove(fault)
                return dict(fault)
        return None

    def wait_while_active(self, fault_id):
        """Block until the fault with this id is cleared or the server stops."""
        with self.cond:
            while not self.stopping and any(f["id"] == fault_id for f in self.active):
                self.cond.wait(0.5)

    def sleep(self, seconds):
        """Sleep that ends early when the server stops."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not self.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(min(0.5, remaining))

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class RequestLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.entries = []
        self.file = open(path, "a", encoding="utf-8") if path else None

    def add(self, entry):
        line = json.dumps(entry, ensure_ascii=True)
        with self.lock:
            self.entries.append(entry)
            if self.file:
                self.file.write(line + "\n")
                self.file.flush()

    def clear(self):
        with self.lock:
            self.entries = []
            if self.file:
                self.file.truncate(0)
                self.file.seek(0)

    def snapshot(self):
        with self.lock:
            return list(self.entries)


# ---------------------------------------------------------------------------------------------
# The Medplum application
# ---------------------------------------------------------------------------------------------

class Request:
    def __init__(self, method, raw_path, headers, body, peer):
        self.method = method
        self.url = raw_path
        parsed = urllib.parse.urlsplit(raw_path)
        self.original_path = parsed.path
        self.query_string = parsed.query
        self.query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        self.headers = headers
        self.raw_body = body
        forwarded = headers.get("X-Forwarded-For")
        # Express with "trust proxy = 1": the last X-Forwarded-For hop is the client.
        self.client_ip = forwarded.split(",")[-1].strip() if forwarded else peer
        self.path = self.original_path
        if self.path.startswith("/api/"):
            self.path = self.path[4:]
        self._body = None

    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def is_form(self):
        return self.content_type() == "application/x-www-form-urlencoded"

    def body(self):
        """Parsed body like Express: JSON, form, or {} when no parser matches."""
        if self._body is None:
            ctype = self.content_type()
            if len(self.raw_body) > MAX_BODY:
                raise bad_request("File too large")
            if ctype == "application/json" or (ctype.startswith("application/")
                                               and ctype.endswith("+json")):
                if not self.raw_body.strip():
                    self._body = {}
                else:
                    try:
                        value = json.loads(self.raw_body.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        raise bad_request("Content could not be parsed")
                    if not isinstance(value, (dict, list)):
                        raise bad_request("Content could not be parsed")
                    self._body = value if isinstance(value, dict) else {}
            elif ctype == "application/x-www-form-urlencoded":
                text = self.raw_body.decode("utf-8", "replace")
                self._body = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
            else:
                self._body = {}
        return self._body


class MedplumApp:
    def __init__(self, store, limiter, variant, base_url_fn):
        self.store = store
        self.limiter = limiter
        self.variant = variant
        self.base_url = base_url_fn
        self.key = es256.SigningKey()
        self.kid = str(uuid.uuid4())
        self.verified_tokens = {}
        self.fhir_quota = RateLimiter({"fhir": 50000}, store.clock)

    def now(self):
        return self.store.clock()

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, req):
        """Returns (Reply, extra headers) for one request, after rate limiting."""
        extra = self.rate_limit(req)
        try:
            reply = self.route(req)
        except Reply as r:
            reply = r
        return reply, extra

    def rate_limit(self, req):
        path = req.original_path
        buckets = []
        if (path.startswith("/auth/") or path.startswith("/oauth2/")) and path != "/auth/me":
            buckets.append("auth")
        else:
            buckets.append("default")
        if self.variant == "newest" and path in ("/auth/login", "/auth/newuser",
                                                 "/auth/newproject"):
            buckets.insert(0, "login")
        header = None
        for name in buckets:
            limit, consumed, ms, first = self.limiter.consume(name, req.client_ip)
            if limit < 0:
                continue
            if header is None:
                header = ("RateLimit", rate_limit_header("requests", limit, consumed, ms))
            if consumed > limit:
                reply = too_many_requests(limit, consumed, ms, first)
                reply.headers = [("RateLimit", rate_limit_header("requests", limit, consumed,
                                                                 ms))]
                raise reply
        return [header] if header else []

    def route(self, req):
        m, p = req.method, req.path
        if p == "/healthcheck" and m == "GET":
            return Reply(200, {"ok": True, "version": VERSION, "platform": "linux",
                               "runtime": "v22.22.0", "postgres": True, "redis": True},
                         JSON_TYPE)
        if p in ("/.well-known/openid-configuration",
                 "/.well-known/oauth-authorization-server") and m == "GET":
            return self.openid_configuration()
        if p == "/.well-known/jwks.json" and m == "GET":
            return Reply(200, {"keys": [self.key.jwk(self.kid)]}, JSON_TYPE)
        routes = {
            ("POST", "/auth/login"): self.auth_login,
            ("POST", "/auth/profile"): self.auth_profile,
            ("POST", "/auth/mfa/verify"): self.auth_mfa_verify,
            ("POST", "/auth/mfa/login-enroll"): self.auth_mfa_login_enroll,
            ("GET", "/auth/me"): self.auth_me,
            ("POST", "/auth/changepassword"): self.auth_changepassword,
            ("POST", "/auth/revoke"): self.auth_revoke,
            ("POST", "/oauth2/token"): self.oauth_token,
            ("GET", "/oauth2/logout"): self.oauth_logout,
            ("POST", "/oauth2/logout"): self.oauth_logout,
            ("GET", "/oauth2/userinfo"): self.oauth_userinfo,
            ("POST", "/oauth2/userinfo"): self.oauth_userinfo,
        }
        handler = routes.get((m, p))
        if handler:
            return handler(req)
        if m == "GET" and p.startswith("/auth/login/"):
            return self.auth_login_status(req, p[len("/auth/login/"):])
        if p.startswith("/fhir/R4/") or p == "/fhir/R4":
            return self.fhir(req, p[len("/fhir/R4/"):])
        member = re.match(r"^/admin/projects/([^/]+)/members/([^/]+)$", p)
        if member and m in ("GET", "POST", "DELETE"):
            return self.admin_member(req, member.group(1), member.group(2))
        raise express_404(m, req.url)

    def admin_member(self, req, project_id, membership_id):
        """The admin API's member routes (read, update, delete) for project admins."""
        _, caller = self.authenticate(req)
        if not caller.get("admin") or self.project_of(caller) != project_id:
            raise forbidden()
        with self.store.lock:
            target = self.store.memberships.get(membership_id)
            if not target or self.project_of(target) != project_id:
                raise not_found()
            if req.method == "GET":
                return Reply(200, self.fhir_view(req, target), JSON_TYPE)
            if req.method == "DELETE":
                del self.store.memberships[membership_id]
                return all_ok()
            return self.update_membership(req, target)

    # -- tokens ---------------------------------------------------------------------------------
    def sign_jwt(self, claims):
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(self.key.sign(signing_input.encode("ascii")))

    def verify_jwt(self, token):
        """Claims of a token this server signed, or None (signature, issuer, nbf, exp)."""
        if not isinstance(token, str):
            return None
        claims = self.verified_tokens.get(token)
        if claims is None:
            parts = token.split(".")
            if len(parts) != 3:
                return None
            try:
                header = json.loads(b64url_decode(parts[0]))
                claims = json.loads(b64url_decode(parts[1]))
                signature = b64url_decode(parts[2])
            except (ValueError, TypeError):
                return None
            if not isinstance(header, dict) or not isinstance(claims, dict):
                return None
            if header.get("alg") != "ES256" or header.get("kid") != self.kid:
                return None
            if not es256.verify(self.key.public, (parts[0] + "." + parts[1]).encode("ascii"),
                                signature):
                return None
            self.verified_tokens[token] = claims
        now = self.now()
        if claims.get("iss") != self.base_url():
            return None
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
            return None
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + 1:
            return None
        return claims

    def issue_tokens(self, login, membership):
        store = self.store
        now = self.now()
        iat = int(now)
        client = store.clients.get(login.client_id) if login.client_id else None
        lifetime = parse_lifetime(client.get("accessTokenLifetime"), 3600) if client else 3600
        profile_ref = membership["profile"]["reference"]
        profile = store.resource(profile_ref)
        user = store.resource(login.user_ref)
        sub = login.user_ref.split("/", 1)[1]
        scopes = login.scope.split()
        wants_email = any("email" in s for s in scopes)
        email_addr = user.get("email") if login.user_ref.startswith("User/") else None

        access = {}
        if login.client_id:
            access["client_id"] = login.client_id
        access.update(login_id=login.id, sub=sub, username=sub, scope=login.scope,
                      profile=profile_ref)
        if wants_email and email_addr:
            access["email"] = email_addr
        access.update(iat=iat, nbf=iat, iss=self.base_url())
        if login.client_id:
            access["aud"] = login.client_id
        access["exp"] = iat + lifetime

        id_claims = {}
        if login.client_id:
            id_claims["client_id"] = login.client_id
        id_claims.update(login_id=login.id, fhirUser=profile_ref)
        if wants_email and email_addr:
            id_claims["email"] = email_addr
        if login.client_id:
            id_claims["aud"] = login.client_id
        id_claims["sub"] = sub
        if login.auth_method != "client":
            id_claims["nonce"] = login.nonce
        id_claims.update(auth_time=login.auth_time, iat=iat, nbf=iat, iss=self.base_url(),
                         exp=iat + 3600)

        project_id = membership["project"]["reference"].split("/", 1)[1]
        project = store.projects.get(project_id, {})
        body = {"token_type": "Bearer", "expires_in": lifetime, "scope": login.scope,
                "id_token": self.sign_jwt(id_claims), "access_token": self.sign_jwt(access)}
        if login.refresh_secret:
            refresh = {}
            if login.client_id:
                refresh["client_id"] = login.client_id
            refresh.update(login_id=login.id, refresh_secret=login.refresh_secret, iat=iat,
                           nbf=iat, iss=self.base_url())
            if login.client_id:
                refresh["aud"] = login.client_id
            refresh_lifetime = (parse_lifetime(client.get("refreshTokenLifetime"),
                                               REFRESH_LIFETIME) if client else REFRESH_LIFETIME)
            refresh["exp"] = iat + refresh_lifetime
            body["refresh_token"] = self.sign_jwt(refresh)
        body["project"] = {"reference": "Project/" + project_id, "display": project.get("name")}
        body["profile"] = {"reference": profile_ref,
                           "display": display_name(profile) if profile else ""}
        patient = profile_ref.startswith("Patient/")
        if patient:
            body["patient"] = profile_ref.split("/", 1)[1]
        body["smart_style_url"] = self.base_url() + "fhir/R4/.well-known/smart-styles.json"
        body["need_patient_banner"] = patient
        return Reply(200, body, JSON_TYPE)

    # -- authentication of protected routes ----------------------------------------------------
    def authenticate(self, req):
        """(login-or-None, membership) for Bearer or Basic credentials; raises 401."""
        auth = req.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        store = self.store
        with store.lock:
            if scheme == "Bearer":
                claims = self.verify_jwt(value.strip())
                if not claims or "login_id" not in claims or "refresh_secret" in claims:
                    raise unauthorized()
                login = store.logins.get(claims["login_id"])
                if not login or login.revoked or not login.membership_id:
                    raise unauthorized()
                membership = store.memberships.get(login.membership_id)
                if not membership:
                    raise unauthorized()
                return login, membership
            if scheme == "Basic":
                try:
                    decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
                except (ValueError, UnicodeDecodeError):
                    raise unauthorized()
                client_id, sep, secret = decoded.partition(":")
                client = store.clients.get(client_id)
                # Only the current secret works for Basic auth (the retiring one does not).
                if (not sep or not client or not client.get("secret")
                        or not hmac.compare_digest(client["secret"], secret)):
                    raise unauthorized()
                membership = store.client_membership(client_id)
                if not membership:
                    raise unauthorized()
                return None, membership
        raise unauthorized()

    # -- /auth/login and friends ----------------------------------------------------------------
    def check_membership(self, membership, ip):
        """Checks made when a membership is bound to a Login (raises 400)."""
        if membership.get("active") is False:
            raise bad_request("Profile not active")
        rules = []
        for policy_ref in self.store.policies_of(membership):
            policy = self.store.resource(policy_ref)
            if policy is None:
                raise bad_request("Cannot authenticate: Invalid access policy configuration. "
                                  "Please contact your administrator to update your project "
                                  "membership.")
            rules.extend(policy.get("ipAccessRule", []))
        if not ip_allowed(rules, ip):
            raise bad_request("IP address not allowed")

    def login_result(self, login):
        """Medplum's sendLoginResult: enroll / MFA challenge / code / membership list."""
        store = self.store
        user = store.resource(login.user_ref)
        if user.get("mfaRequired") and not user.get("mfaEnrolled"):
            secret = user.setdefault("mfaSecret", base64.b32encode(secrets.token_bytes(10))
                                     .decode())
            label = urllib.parse.quote("Medplum - " + user["email"], safe="")
            body = {"login": login.id, "mfaEnrollRequired": True,
                    "enrollUri": "otpauth://totp/medplum.com:%s?secret=%s&period=30&digits=6"
                                 "&algorithm=SHA1&issuer=medplum.com" % (label, secret),
                    "enrollQrCode": tiny_png()}
            if self.variant == "newest":
                body["allowedMfaMethods"] = ["totp"]
            return Reply(200, body, JSON_TYPE)
        if user.get("mfaEnrolled") and not login.mfa_verified:
            body = {"login": login.id, "mfaRequired": True}
            if self.variant == "newest":
                body["mfaMethods"] = ["totp"]
                body["email"] = user["email"]
            return Reply(200, body, JSON_TYPE)
        if login.membership_id:
            headers = []
            if login.client_id:
                headers.append(("Set-Cookie", "medplum-%s=%s; Max-Age=3600; Path=/; "
                                    "Expires=%s; HttpOnly; Secure; SameSite=None" % (
                                        login.client_id, login.cookie,
                                        http_date(self.now() + 3600))))
            return Reply(200, {"login": login.id, "code": login.code}, JSON_TYPE, headers)
        memberships = []
        for m in store.memberships_of(login.user_ref, login.project_id):
            entry = {"id": m["id"], "project": m["project"], "profile": m["profile"]}
            if m.get("identifier"):
                entry["identifier"] = m["identifier"]
            memberships.append(entry)
        return Reply(200, {"login": login.id, "memberships": memberships}, JSON_TYPE)

    def auth_login(self, req):
        body = req.body()
        email_addr, password = body.get("email"), body.get("password")
        # express-validator throws on non-string input: Medplum answers a bare 500.
        for value in (email_addr, password):
            if value is not None and not isinstance(value, str):
                raise internal_error()
        problems = []
        if not is_email(email_addr):
            problems.append(("email", "Valid email address is required"))
        if not isinstance(password, str) or len(password) < LOGIN_MIN_PASSWORD[self.variant]:
            problems.append(("password", LOGIN_PASSWORD_TEXT[self.variant]))
        if problems:
            raise validation_error(problems)
        store = self.store
        with store.lock:
            client_id = body.get("clientId") or None
            project_id = body.get("projectId") or None
            client = None
            if client_id:
                client = store.clients.get(client_id)
                if not client:
                    raise not_found()
                client_project = client["meta"]["project"]
                if project_id and project_id != client_project:
                    raise bad_request("Invalid projectId")
                project_id = client_project
                origin = req.headers.get("Origin")
                if client.get("allowedOrigin") and origin and origin not in client["allowedOrigin"]:
                    raise bad_request("Invalid origin")
            challenge = body.get("codeChallenge") or None
            method = body.get("codeChallengeMethod") or None
            if not (client and client.get("pkceOptional")):
                if challenge and not method:
                    raise bad_request("Invalid code challenge method", "code_challenge_method")
                if method and not challenge:
                    raise bad_request("Invalid code challenge", "code_challenge")
                if method and method not in ("plain", "S256"):
                    raise bad_request("Invalid code challenge method", "code_challenge_method")
            user = store.user_by_email(email_addr.lower(), project_id)
            if not user:
                raise bad_request("User not found")
            if not user.get("password"):
                raise bad_request("Invalid authentication method")
            if not bcrypt_equal(user["password"], password):
                raise bad_request("Email or password is invalid")
            scope = body.get("scope") or "openid"
            if body.get("remember") is True and "offline_access" not in scope.split():
                scope += " offline_access"
            login = self.new_login(req, user_ref="User/" + user["id"], client_id=client_id,
                                   project_id=project_id, code_challenge=challenge,
                                   code_challenge_method=method, scope=scope,
                                   nonce=body.get("nonce") or str(uuid.uuid4()))
            resource_type = body.get("resourceType") or ""
            candidates = [m for m in store.memberships_of(login.user_ref, project_id)
                          if m["profile"]["reference"].startswith(resource_type)]
            if not candidates:
                raise bad_request("User not found")
            if len(candidates) == 1:
                self.check_membership(candidates[0], req.client_ip)
                login.membership_id = candidates[0]["id"]
            return self.login_result(login)

    def new_login(self, req, **kw):
        now = self.now()
        login = Login(remote_address=req.client_ip, user_agent=req.headers.get("User-Agent"),
                      auth_time=round(now, 3), last_updated=now, **kw)
        if any(s in ("offline_access", "offline") for s in login.scope.split()):
            login.refresh_secret = secrets.token_hex(32)
        self.store.logins[login.id] = login
        return login

    def open_login(self, login_id):
        """The Login an /auth/profile or /auth/mfa/verify call continues, checked
        the way both routes do (caller holds the store lock)."""
        login = self.store.logins.get(login_id) if isinstance(login_id, str) else None
        if not login:
            raise not_found()
        if login.revoked:
            raise bad_request("Login revoked")
        if login.granted:
            raise bad_request("Login granted")
        return login

    def auth_profile(self, req):
        body = req.body()
        problems = []
        if not body.get("login"):
            problems.append(("login", "Missing login"))
        if not body.get("profile"):
            problems.append(("profile", "Missing profile"))
        if problems:
            raise validation_error(problems)
        store = self.store
        with store.lock:
            login = self.open_login(body["login"])
            if login.membership_id:
                raise bad_request("Login profile already set")
            membership = store.memberships.get(body["profile"]) \
                if isinstance(body["profile"], str) else None
            if not membership:
                raise bad_request("Profile not found")
            if membership["user"]["reference"] != login.user_ref:
                raise bad_request("Invalid profile")
            self.check_membership(membership, req.client_ip)
            login.membership_id = membership["id"]
            login.last_updated = self.now()
            return self.login_result(login)

    def auth_mfa_verify(self, req):
        body = req.body()
        problems = []
        if not body.get("login"):
            problems.append(("login", "Missing login"))
        if not body.get("token"):
            problems.append(("token", "Missing token"))
        if problems:
            raise validation_error(problems)
        store = self.store
        with store.lock:
            login = self.open_login(body["login"])
            if login.mfa_verified:
                raise bad_request("Login already verified")
            user = store.resource(login.user_ref)
            if not user.get("mfaEnrolled") or not user.get("mfaSecret"):
                raise bad_request("User not enrolled in MFA")
            if self.variant == "newest":
                self.mfa_attempt_limit(login, user)
            if not totp.verify(user["mfaSecret"], str(body["token"]), self.now()):
                raise bad_request("Invalid MFA token")
            if self.variant == "newest":
                # A successful verify gives its attempt back.
                login.mfa_attempts -= 1
                store.mfa_user_attempts[user["id"]][1] -= 1
            login.mfa_verified = True
            login.last_updated = self.now()
            return self.login_result(login)

    def auth_mfa_login_enroll(self, req):
        """Completes a mfaEnrollRequired login (only the unknown-login answer is recorded)."""
        body = req.body()
        with self.store.lock:
            login = self.store.logins.get(body.get("login")) \
                if isinstance(body.get("login"), str) else None
            if not login:
                raise not_found()
            if login.revoked:
                raise bad_request("Login revoked")
            user = self.store.resource(login.user_ref)
            if not user.get("mfaSecret") or not totp.verify(user["mfaSecret"],
                                                            str(body.get("token")), self.now()):
                raise bad_request("Invalid MFA token")
            user["mfaEnrolled"] = True
            login.mfa_verified = True
            return self.login_result(login)

    def mfa_attempt_limit(self, login, user):
        now = self.now()
        window = self.store.mfa_user_attempts.setdefault(user["id"], [now, 0])
        if now >= window[0] + MFA_USER_WINDOW:
            window[:] = [now, 0]
        login.mfa_attempts += 1
        window[1] += 1
        if login.mfa_attempts > MFA_LOGIN_ATTEMPT_LIMIT or window[1] > MFA_USER_ATTEMPT_LIMIT:
            reset = int(window[0] + MFA_USER_WINDOW - now)
            raise Reply(429, {"resourceType": "OperationOutcome", "id": "too-many-requests",
                              "issue": [{"severity": "error", "code": "throttled",
                                         "details": {"text": "Too Many Requests"}}],
                              "extension": [{"url": RATE_LIMIT_RESET_URL,
                                             "valueUnsignedInt": max(1, reset)}]})

    def auth_login_status(self, req, login_id):
        if not UUID_RE.match(login_id):
            raise validation_error([("login", "Login ID is required")])
        with self.store.lock:
            login = self.store.logins.get(login_id)
            if not login:
                raise not_found()
            return self.login_result(login)

    # -- /oauth2/token --------------------------------------------------------------------------
    def oauth_token(self, req):
        if not req.is_form():
            raise Reply(400, "Unsupported content type", HTML_TYPE)
        form = req.body()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise oauth_error("invalid_request", "Missing grant_type")
        grants = {"authorization_code": self.grant_authorization_code,
                  "client_credentials": self.grant_client_credentials,
                  "refresh_token": self.grant_refresh_token}
        if grant_type not in grants:
            raise oauth_error("invalid_request", "Unsupported grant_type")
        with self.store.lock:
            return grants[grant_type](req, form)

    def client_credentials(self, req, form):
        """(client_id, secret) from Basic auth or the form."""
        auth = req.headers.get("Authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme != "Basic":
                raise oauth_error("invalid_request", "Invalid authorization header")
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise oauth_error("invalid_request", "Invalid authorization header")
            client_id, _, secret = decoded.partition(":")
            return client_id or None, secret or None
        return form.get("client_id") or None, form.get("client_secret") or None

    def grant_authorization_code(self, req, form):
        store = self.store
        client_id, secret = self.client_credentials(req, form)
        code = form.get("code")
        if not code:
            raise oauth_error("invalid_request", "Missing code")
        login = next((lg for lg in store.logins.values() if lg.code == code
                      and lg.auth_method == "password"), None)
        if not login:
            raise oauth_error("invalid_request", "Invalid code")
        if client_id and login.client_id != client_id:
            raise oauth_error("invalid_request", "Invalid client")
        if not login.membership_id:
            raise oauth_error("invalid_request", "Invalid profile")
        if login.granted:
            login.revoked = True
            raise oauth_error("invalid_grant", "Token already granted")
        if login.revoked:
            raise oauth_error("invalid_grant", "Token revoked")
        client = None
        if login.client_id:
            client = store.clients.get(login.client_id)
            if not client:
                raise oauth_error("invalid_request", "Invalid client")
        if secret and (self.variant == "newest" or (client and client.get("pkceOptional"))):
            # Newest code lets a verified client secret stand in for PKCE; 5.0.10 never looks
            # at the secret here (a wrong one passes when the verifier is right).
            if not client or not client.get("secret"):
                raise oauth_error("invalid_request", "Invalid client")
            if not hmac.compare_digest(client["secret"], secret):
                raise oauth_error("invalid_request", "Invalid secret")
        elif not (client and client.get("pkceOptional")):
            verifier = form.get("code_verifier")
            if login.code_challenge:
                if not verifier:
                    raise oauth_error("invalid_request", "Missing code verifier")
                if not pkce_matches(login.code_challenge_method, login.code_challenge, verifier):
                    raise oauth_error("invalid_request", "Invalid code verifier")
            else:
                raise oauth_error("invalid_request", "Missing verification context")
        login.granted = True
        login.last_updated = self.now()
        return self.issue_tokens(login, store.memberships[login.membership_id])

    def grant_client_credentials(self, req, form):
        store = self.store
        client_id, secret = self.client_credentials(req, form)
        if not client_id:
            raise oauth_error("invalid_request", "Missing client_id")
        if not secret:
            raise oauth_error("invalid_request", "Missing client_secret")
        client = store.clients.get(client_id)
        if not client or (client.get("status") and client["status"] != "active") \
                or not client.get("secret"):
            raise oauth_error("invalid_request", "Invalid client")
        if not (hmac.compare_digest(client["secret"], secret) or (
                client.get("retiringSecret")
                and hmac.compare_digest(client["retiringSecret"], secret))):
            raise oauth_error("invalid_request", "Invalid secret")
        membership = store.client_membership(client_id)
        if not membership:
            raise oauth_error("invalid_request", "Invalid client")
        rules = []
        for policy_ref in store.policies_of(membership):
            rules.extend((store.resource(policy_ref) or {}).get("ipAccessRule", []))
        if not ip_allowed(rules, req.client_ip):
            raise oauth_error("invalid_request", "IP address not allowed")
        login = self.new_login(req, user_ref="ClientApplication/" + client_id,
                               client_id=client_id, membership_id=membership["id"],
                               scope=form.get("scope") or "openid", auth_method="client",
                               granted=True)
        login.refresh_secret = None  # client credentials never get a refresh token
        return self.issue_tokens(login, membership)

    def grant_refresh_token(self, req, form):
        store = self.store
        claims = self.verify_jwt(form.get("refresh_token"))
        if not claims or "refresh_secret" not in claims or "login_id" not in claims:
            raise oauth_error("invalid_request", "Invalid refresh token")
        login = store.logins.get(claims["login_id"])
        if not login:
            raise not_found()
        auth = req.headers.get("Authorization")
        if auth and auth.startswith("Basic "):
            client_id, secret = self.client_credentials(req, form)
            if client_id != login.client_id:
                raise oauth_error("invalid_grant", "Incorrect client")
            if not secret:
                raise oauth_error("invalid_grant", "Incorrect client secret")
        if not login.refresh_secret:
            raise oauth_error("invalid_request", "Invalid token")
        if login.revoked:
            raise oauth_error("invalid_grant", "Token revoked")
        if not hmac.compare_digest(login.refresh_secret, str(claims["refresh_secret"])):
            if self.variant == "newest":
                login.revoked = True
                raise oauth_error("invalid_grant", "Token revoked")
            raise oauth_error("invalid_request", "Invalid token")
        login.refresh_secret = secrets.token_hex(32)
        login.remote_address = req.client_ip
        login.last_updated = self.now()
        return self.issue_tokens(login, store.memberships[login.membership_id])

    # -- endpoints that need a token ------------------------------------------------------------
    def oauth_logout(self, req):
        login, _ = self.authenticate(req)
        if login is None:
            raise unauthorized()
        with self.store.lock:
            login.revoked = True
            login.last_updated = self.now()
        headers = []
        if login.client_id:
            headers.append(("Set-Cookie", "medplum-%s=; Path=/; Expires=Thu, 01 Jan 1970 "
                            "00:00:00 GMT; HttpOnly; Secure; SameSite=None" % login.client_id))
        return all_ok(headers)

    def auth_revoke(self, req):
        login, membership = self.authenticate(req)
        body = req.body()
        target = body.get("loginId")
        if not isinstance(target, str) or not UUID_RE.match(target):
            raise validation_error([("loginId", "Login ID is required.")])
        with self.store.lock:
            other = self.store.logins.get(target)
            if not other or other.user_ref != membership["user"]["reference"]:
                raise not_found()
            other.revoked = True
        return all_ok()

    def auth_changepassword(self, req):
        login, membership = self.authenticate(req)
        body = req.body()
        problems = []
        old, new = body.get("oldPassword"), body.get("newPassword")
        if not old:
            problems.append(("oldPassword", "Missing oldPassword"))
        if not isinstance(new, str) or len(new) < 8:
            problems.append(("newPassword", CHANGE_PASSWORD_TEXT))
        if problems:
            raise validation_error(problems)
        if not isinstance(old, str):
            raise internal_error()
        store = self.store
        with store.lock:
            user = store.resource(membership["user"]["reference"])
            if not user or user.get("resourceType") != "User":
                raise unauthorized()
            if not user.get("password") or not bcrypt_equal(user["password"], old):
                raise bad_request("Incorrect password", "oldPassword")
            if store.hibp_unreachable:
                # The breach check cannot reach Have I Been Pwned: Medplum fails with a 500.
                raise internal_error()
            if new in store.breached:
                raise bad_request("Password found in breach database", "newPassword")
            user["password"] = new
        return all_ok()

    def oauth_userinfo(self, req):
        login, membership = self.authenticate(req)
        store = self.store
        profile = store.resource(membership["profile"]["reference"]) or {}
        scopes = (login.scope if login else "openid").split()
        info = {"sub": profile.get("id")}
        if "profile" in scopes:
            name = (profile.get("name") or [{}])[0]
            info.update(profile=membership["profile"]["reference"], locale="en-US",
                        birthdate=profile.get("birthDate", ""),
                        updated_at=round(parse_iso(profile["meta"]["lastUpdated"]), 3),
                        name=display_name(profile),
                        given_name=" ".join(name.get("given", [])), middle_name="",
                        family_name=name.get("family", ""), website="", zoneinfo="",
                        gender=profile.get("gender", ""), preferred_username="", picture="",
                        nickname="")
        if "email" in scopes:
            emails = [t["value"] for t in profile.get("telecom", []) if t.get("system") == "email"]
            info["email"] = emails[0] if emails else ""
            info["email_verified"] = False
        phones = [t["value"] for t in profile.get("telecom", []) if t.get("system") == "phone"]
        if "phone" in scopes and phones:
            info["phone_number"] = phones[0]
            info["phone_number_verified"] = False
        if "address" in scopes and profile.get("address"):
            info["address"] = {"formatted": profile["address"][0].get("text", "")}
        return Reply(200, info, JSON_TYPE)

    def auth_me(self, req):
        login, membership = self.authenticate(req)
        store = self.store
        with store.lock:
            project_id = membership["project"]["reference"].split("/", 1)[1]
            project = store.projects[project_id]
            principal = store.resource(membership["user"]["reference"])
            is_user = membership["user"]["reference"].startswith("User/")
            body = {}
            if is_user:
                body["user"] = {"resourceType": "User", "id": principal["id"],
                                "email": principal["email"]}
            body["project"] = {"resourceType": "Project", "id": project["id"],
                               "name": project["name"], "description": project.get("description"),
                               "strictMode": project.get("strictMode", False)}
            brief = {"resourceType": "ProjectMembership", "id": membership["id"]}
            if membership.get("identifier"):
                brief["identifier"] = membership["identifier"]
            brief["user"] = membership["user"]
            brief["profile"] = membership["profile"]
            if membership.get("admin"):
                brief["admin"] = True
            body["membership"] = brief
            profile = store.resource(membership["profile"]["reference"])
            body["profile"] = self.extended(profile)
            menu = list(USER_CONFIG_MENU)
            if membership.get("admin"):
                menu.append(ADMIN_MENU)
            body["config"] = {"resourceType": "UserConfiguration", "menu": menu}
            body["accessPolicy"] = self.computed_policy(membership)
            if is_user:
                body["security"] = self.security(principal, membership)
        return Reply(200, body, JSON_TYPE)

    def security(self, user, membership):
        store = self.store
        now = self.now()
        sessions = []
        for lg in sorted(store.logins.values(), key=lambda x: x.last_updated):
            if (lg.user_ref == "User/" + user["id"] and not lg.revoked and lg.membership_id
                    and lg.last_updated >= now - 3600):
                session = {"id": lg.id, "lastUpdated": iso_ms(lg.last_updated),
                           "authMethod": lg.auth_method, "remoteAddress": lg.remote_address}
                session.update(parse_user_agent(lg.user_agent))
                sessions.append(session)
        memberships = []
        project_id = membership["project"]["reference"].split("/", 1)[1]
        for m in store.memberships_of("User/" + user["id"], project_id):
            if m.get("active") is False:
                continue
            entry = {"resourceType": "ProjectMembership", "id": m["id"]}
            if m.get("identifier"):
                entry["identifier"] = m["identifier"]
            entry["profile"] = m["profile"]
            if m.get("admin"):
                entry["admin"] = True
            memberships.append(entry)
        return {"mfaEnrolled": bool(user.get("mfaEnrolled")), "sessions": sessions,
                "memberships": memberships}

    def computed_policy(self, membership):
        """The AccessPolicy Medplum evaluates for a membership (as /auth/me shows it)."""
        store = self.store
        based_on, resources, rules = [], [], []
        for policy_ref in store.policies_of(membership):
            based_on.append({"reference": policy_ref})
            policy = store.resource(policy_ref) or {}
            for entry in policy.get("resource", []):
                entry = dict(entry)
                if entry.get("readonly") and "interaction" not in entry:
                    entry["interaction"] = ["search", "read", "history", "vread"]
                resources.append(entry)
            rules.extend(policy.get("ipAccessRule", []))
        if not based_on:
            resources.append({"resourceType": "*"})
        resources.append({"resourceType": "SearchParameter", "readonly": True})
        resources.append({"resourceType": "StructureDefinition", "readonly": True})
        if membership.get("admin"):
            project_id = membership["project"]["reference"].split("/", 1)[1]
            resources = [r for r in resources if r["resourceType"] not in PROJECT_ADMIN_TYPES]
            resources += [
                {"resourceType": "Project", "criteria": "Project?_id=" + project_id,
                 "readonlyFields": ["features", "link", "systemSetting"],
                 "hiddenFields": ["superAdmin", "systemSecret", "strictMode"]},
                {"resourceType": "ProjectMembership", "readonlyFields": ["project", "user"]},
                {"resourceType": "UserSecurityRequest", "readonly": True},
                {"resourceType": "User", "hiddenFields": ["passwordHash", "mfaSecret"],
                 "readonlyFields": ["email", "emailVerified", "mfaEnrolled", "project"]}]
        policy = {"resourceType": "AccessPolicy", "basedOn": based_on, "resource": resources}
        if rules:
            policy["ipAccessRule"] = rules
        return policy

    def extended(self, resource):
        """A stored resource with Medplum's full meta (project, author, compartment)."""
        out = json.loads(json.dumps(resource))
        meta = out.setdefault("meta", {})
        meta.setdefault("author", {"reference": "system"})
        if meta.get("project"):
            meta["compartment"] = [{"reference": "Project/" + meta["project"]}]
        out.pop("password", None)
        return out

    def openid_configuration(self):
        base = self.base_url()
        return Reply(200, {
            "issuer": base,
            "authorization_endpoint": base + "oauth2/authorize",
            "token_endpoint": base + "oauth2/token",
            "userinfo_endpoint": base + "oauth2/userinfo",
            "jwks_uri": base + ".well-known/jwks.json",
            "introspection_endpoint": base + "oauth2/introspect",
            "registration_endpoint": base + "oauth2/register",
            "id_token_signing_alg_values_supported": ["ES256", "HS256", "RS256"],
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token",
                                      "urn:ietf:params:oauth:grant-type:token-exchange"],
            "response_types_supported": ["code", "id_token", "token id_token"],
            "subject_types_supported": ["pairwise", "public"],
            "scopes_supported": ["openid", "profile", "email", "phone", "address"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post", "private_key_jwt"],
            "request_object_signing_alg_values_supported": ["none"],
            "code_challenge_methods_supported": ["S256", "plain"]}, JSON_TYPE)

    # -- FHIR R4 --------------------------------------------------------------------------------
    def fhir(self, req, rest):
        parts = [urllib.parse.unquote(p) for p in rest.split("/") if p]
        if parts == ["metadata"] and req.method == "GET":
            return Reply(200, {"resourceType": "CapabilityStatement", "id": "medplum-server",
                               "version": VERSION, "name": "MedplumCapabilityStatement",
                               "status": "active", "fhirVersion": "4.0.1",
                               "format": ["json"], "software": {"name": "medplum",
                                                                "version": VERSION},
                               "implementation": {"description": "medplum",
                                                  "url": self.base_url() + "fhir/R4/"}},
                         JSON_TYPE)
        login, membership = self.authenticate(req)
        # The FHIR interaction quota is charged (and reported) even for refused requests, but
        # not for $operations.
        points = 20 if req.method == "GET" and len(parts) == 1 else \
            1 if req.method == "GET" else 100
        quota_headers = [] if parts and parts[-1].startswith("$") else \
            self.fhir_quota_header(membership, points)
        try:
            reply = self.fhir_interaction(req, parts, membership)
        except Reply as r:
            reply = r
        reply.headers = quota_headers + reply.headers
        return reply

    def fhir_interaction(self, req, parts, membership):
        if not parts or parts[0] not in KNOWN_TYPES:
            raise structure_error("Unknown resource type")
        rtype = parts[0]
        method = req.method
        if method == "GET" and len(parts) == 1:
            interaction = "search"
        elif method == "GET" and len(parts) == 2:
            interaction = "read"
        elif method == "GET":
            interaction = "history"
        elif method == "POST" and len(parts) == 1:
            interaction = "create"
        elif method == "POST" and len(parts) == 3 and parts[2] == "$rotate-secret":
            interaction = "update"
        elif method in ("PUT", "PATCH") and len(parts) == 2:
            interaction = "update"
        elif method == "DELETE" and len(parts) == 2:
            interaction = "delete"
        else:
            raise not_found()
        if not self.fhir_allowed(membership, rtype, interaction):
            raise forbidden()
        with self.store.lock:
            if interaction == "search":
                return self.fhir_search(req, rtype, membership)
            if interaction == "read":
                return self.fhir_read(req, rtype, parts[1], membership)
            if interaction == "update" and rtype == "ProjectMembership" and method == "PUT":
                return self.fhir_update_membership(req, parts[1], membership)
            if interaction == "update" and rtype == "ClientApplication" and method == "PATCH":
                return self.patch_client(req, parts[1], membership)
            if interaction == "update" and rtype == "ClientApplication" and len(parts) == 3:
                return self.rotate_secret(req, parts[1], membership)
        raise bad_request("Operation not supported by the test server")

    def fhir_quota_header(self, membership, points):
        limit, consumed, ms, _ = self.fhir_quota.consume("fhir", membership["user"]["reference"],
                                                         points)
        return [("RateLimit", rate_limit_header("fhirInteractions", limit, consumed, ms))]

    def fhir_allowed(self, membership, rtype, interaction):
        """AccessPolicy evaluation, reduced to resource types and interactions."""
        write = interaction in ("create", "update", "delete")
        if rtype in ("SearchParameter", "StructureDefinition"):
            return not write
        if rtype in PROJECT_ADMIN_TYPES:
            # Policy entries never grant these to non-admins; admins get fixed rights.
            if not membership.get("admin"):
                return False
            return not (write and rtype in ("Project", "UserSecurityRequest"))
        if rtype == "Login":
            return False  # super admin only
        policies = [self.store.resource(r) for r in self.store.policies_of(membership)]
        if not policies:
            return True
        for policy in policies:
            for entry in (policy or {}).get("resource", []):
                if entry.get("resourceType") not in (rtype, "*"):
                    continue
                if entry.get("interaction"):
                    wanted = {"search": "search", "read": "read", "history": "history",
                              "create": "create", "update": "update", "delete": "delete"}
                    if wanted[interaction] in entry["interaction"]:
                        return True
                elif not (entry.get("readonly") and write):
                    return True
        return False

    def project_of(self, resource):
        if resource["resourceType"] == "ProjectMembership":
            return resource["project"]["reference"].split("/", 1)[1]
        if resource["resourceType"] == "Project":
            return resource["id"]
        return (resource.get("meta") or {}).get("project")

    def fhir_pool(self, rtype, project_id):
        store = self.store
        if rtype == "ProjectMembership":
            pool = store.memberships.values()
        elif rtype == "ClientApplication":
            pool = store.clients.values()
        elif rtype == "AccessPolicy":
            pool = store.policies.values()
        elif rtype == "Project":
            pool = store.projects.values()
        else:
            pool = [r for r in store.profiles.values() if r["resourceType"] == rtype]
        return [r for r in pool if self.project_of(r) == project_id]

    def fhir_view(self, req, resource, elements=None):
        """A resource as the FHIR API returns it (meta trimmed unless X-Medplum: extended)."""
        out = self.extended(resource)
        if (req.headers.get("X-Medplum") or "").lower() != "extended":
            out["meta"] = {k: v for k, v in out["meta"].items()
                           if k in ("versionId", "lastUpdated")}
        if elements is not None:
            keep = set(elements) | {"resourceType", "id", "meta"}
            if out["resourceType"] == "ProjectMembership":
                keep |= {"project", "user", "profile"}
            out = {k: v for k, v in out.items() if k in keep}
            out["meta"] = dict(out.get("meta", {}), tag=[SUBSETTED_TAG])
        return out

    def fhir_read(self, req, rtype, rid, membership):
        project_id = membership["project"]["reference"].split("/", 1)[1]
        found = [r for r in self.fhir_pool(rtype, project_id) if r["id"] == rid]
        if not found:
            raise not_found()
        return self.fhir_resource_reply(req, found[0])

    def fhir_resource_reply(self, req, resource):
        """A single resource with the ETag and Last-Modified headers of FHIR reads/writes."""
        meta = resource.get("meta", {})
        headers = [("ETag", 'W/"%s"' % meta["versionId"]),
                   ("Last-Modified", http_date(parse_iso(meta["lastUpdated"])))]
        return Reply(200, self.fhir_view(req, resource), FHIR_TYPE, headers)

    def fhir_update_membership(self, req, rid, membership):
        project_id = membership["project"]["reference"].split("/", 1)[1]
        target = self.store.memberships.get(rid)
        if not target or self.project_of(target) != project_id:
            raise not_found()
        self.update_membership(req, target)
        return self.fhir_resource_reply(req, target)

    def patch_client(self, req, rid, membership):
        """JSON Patch (add/replace/remove of top-level fields) on a ClientApplication."""
        project_id = membership["project"]["reference"].split("/", 1)[1]
        client = self.store.clients.get(rid)
        if not client or self.project_of(client) != project_id:
            raise not_found()
        try:
            ops = json.loads(req.raw_body or b"[]")
        except ValueError:
            raise bad_request("Content could not be parsed")
        protected = {"/id", "/resourceType", "/meta", "/secret", "/retiringSecret"}
        for op in ops if isinstance(ops, list) else []:
            path = op.get("path", "")
            if path in protected or not re.match(r"^/[A-Za-z]+$", path):
                raise bad_request("Unsupported patch path " + path)
            if op.get("op") in ("add", "replace"):
                client[path[1:]] = op.get("value")
            elif op.get("op") == "remove":
                client.pop(path[1:], None)
            else:
                raise bad_request("Unsupported patch operation")
        self.store.touch(client)
        return self.fhir_resource_reply(req, client)

    def update_membership(self, req, target):
        """Replace the writable fields of a membership (project and user stay read-only)."""
        body = req.body()
        if body.get("resourceType") != "ProjectMembership" or body.get("id") != target["id"]:
            raise bad_request("Incorrect resource type or id")
        for field in ("active", "admin", "userName", "externalId", "identifier", "accessPolicy",
                      "access", "profile"):
            if field in body:
                target[field] = body[field]
            else:
                target.pop(field, None)
        self.store.touch(target)
        return Reply(200, self.fhir_view(req, target), JSON_TYPE)

    def rotate_secret(self, req, rid, membership):
        project_id = membership["project"]["reference"].split("/", 1)[1]
        client = self.store.clients.get(rid)
        if not client or self.project_of(client) != project_id:
            raise not_found()
        client["retiringSecret"] = client.get("secret")
        client["secret"] = secrets.token_hex(32)
        self.store.touch(client)
        reply = self.fhir_resource_reply(req, client)
        reply.body = self.extended(client)
        return reply

    def fhir_search(self, req, rtype, membership):
        project_id = membership["project"]["reference"].split("/", 1)[1]
        params = req.query
        names = [name for name, _ in params]
        if "_cursor" in names and "_offset" in names:
            raise bad_request("Cannot use both offset and cursor")
        options = dict(params)
        try:
            count = int(options.get("_count", 20))
            offset = int(options.get("_offset", 0))
        except ValueError:
            raise bad_request("Invalid search parameter")
        count = max(0, min(count, 1000))
        if offset > 10000:
            raise bad_request("Search offset exceeds maximum (got %d, max 10000)" % offset)
        sort_rules = [s for s in options.get("_sort", "").split(",") if s]
        elements = None
        for key in ("_elements", "_fields"):
            if key in options:
                elements = [e for e in options[key].split(",") if e]
        rows = self.fhir_pool(rtype, project_id)
        for name, value in params:
            rows = self.apply_filter(rtype, name, value, rows)
        rows.sort(key=lambda r: (r.get("meta", {}).get("lastUpdated", ""), r["id"]))
        if sort_rules[:1] == ["-_lastUpdated"]:
            rows.reverse()
        total = len(rows)
        cursor = re.match(r"^2-(\d+)", options.get("_cursor", ""))
        if cursor:
            start_ms = int(cursor.group(1))
            rows = [r for r in rows if lastupdated_ms(r) >= start_ms]
            offset = 0
        page = rows[offset:offset + count]
        more = len(rows) > offset + count
        entries = [{"fullUrl": self.base_url() + "fhir/R4/%s/%s" % (rtype, r["id"]),
                    "search": {"mode": "match"}, "resource": self.fhir_view(req, r, elements)}
                   for r in page]
        entries += self.includes(req, rtype, page, options, project_id, elements)

        bundle = {"resourceType": "Bundle", "type": "searchset"}
        if entries:
            bundle["entry"] = entries
        if options.get("_total") in ("accurate", "estimate") or options.get("_summary") == "count":
            bundle["total"] = total
        link_params = [(n, v) for n, v in params if n not in ("_count", "_offset", "_elements",
                                                              "_summary")]
        if elements is not None and "_fields" not in names:
            link_params.append(("_fields", options["_elements"]))
        if options.get("_summary") == "count" and "_total" not in names:
            link_params.append(("_total", "accurate"))
        link_params.append(("_count", str(count)))

        def url(extra=(), drop=()):
            pairs = [(n, v) for n, v in link_params if n not in drop] + list(extra)
            return self.base_url() + "fhir/R4/%s?%s" % (rtype, encode_search(pairs))
        links = [{"relation": "self", "url": url([("_offset", str(offset))] if offset and
                                                 not cursor else [])}]
        if count > 0 and page:
            links.append({"relation": "first", "url": url(drop=("_cursor",) if cursor else ())})
            cursor_ok = (sort_rules == ["_lastUpdated"] and count >= 20 and offset == 0
                         and ("_cursor" not in names or cursor))
            if more and cursor_ok:
                next_row = rows[offset + count]
                links.append({"relation": "next", "url": url(
                    [("_cursor", "2-%d" % lastupdated_ms(next_row))], drop=("_cursor",))})
            elif more:
                links.append({"relation": "next", "url": url([("_offset", str(offset + count))])})
            if offset > 0 and not cursor:
                back = max(0, offset - count)
                links.append({"relation": "previous",
                              "url": url([("_offset", str(back))] if back else [])})
        bundle["link"] = links
        return Reply(200, bundle)

    def includes(self, req, rtype, page, options, project_id, elements):
        found = []
        if options.get("_include") == "ProjectMembership:profile" and rtype == "ProjectMembership":
            for m in page:
                target = self.store.resource(m["profile"]["reference"])
                if target and target not in found:
                    found.append(target)
        if (options.get("_revinclude") == "ProjectMembership:profile"
                and rtype != "ProjectMembership"):
            refs = {"%s/%s" % (rtype, r["id"]) for r in page}
            found += [m for m in self.fhir_pool("ProjectMembership", project_id)
                      if m["profile"]["reference"] in refs]
        return [{"fullUrl": self.base_url() + "fhir/R4/%s/%s" % (r["resourceType"], r["id"]),
                 "search": {"mode": "include"}, "resource": self.fhir_view(req, r)}
                for r in found]

    def apply_filter(self, rtype, name, value, rows):
        base, _, modifier = name.partition(":")
        if base in SEARCH_CONTROL:
            return rows
        if base == "_id":
            ids = set(value.split(","))
            return [r for r in rows if r["id"] in ids]
        if base == "_lastUpdated":
            return filter_last_updated(value, rows)
        matcher = SEARCH_PARAMETERS.get(rtype, {}).get(base) or \
            SEARCH_PARAMETERS["*"].get(base)
        if matcher is None:
            raise bad_request("Unknown search parameter: " + base)
        values = value.split(",")
        return [r for r in rows if any(matcher(r, v, modifier) for v in values)]


SEARCH_CONTROL = {"_count", "_offset", "_sort", "_cursor", "_total", "_elements", "_fields",
                  "_include", "_revinclude", "_summary", "_deleted"}


def lastupdated_ms(resource):
    return int(round(parse_iso(resource["meta"]["lastUpdated"]) * 1000))


def filter_last_updated(value, rows):
    prefix, text = (value[:2], value[2:]) if value[:2] in ("gt", "ge", "lt", "le", "eq", "ne") \
        else ("eq", value)
    instant = parse_iso(text)
    if instant is None:
        raise bad_request("Invalid format for date search parameter: " + text)
    ms = int(round(instant * 1000))
    tests = {"gt": lambda x: x > ms, "ge": lambda x: x >= ms, "lt": lambda x: x < ms,
             "le": lambda x: x <= ms, "eq": lambda x: x == ms, "ne": lambda x: x != ms}
    return [r for r in rows if tests[prefix](lastupdated_ms(r))]


def encode_search(pairs):
    """Medplum's link format: sorted names; plain values for _-controls, others encoded."""
    out = []
    for name, value in sorted(pairs, key=lambda p: p[0]):
        if name.startswith("_") and name != "_lastUpdated":
            out.append("%s=%s" % (name, value))
        else:
            out.append("%s=%s" % (name, urllib.parse.quote(value, safe="-_.!~*'()")))
    return "&".join(out)


def match_string(values, wanted, modifier):
    """FHIR string search as 5.0.10 does it: prefix, case-insensitive; :exact; :contains."""
    for v in values:
        if not isinstance(v, str):
            continue
        if modifier == "exact" and v == wanted:
            return True
        if modifier == "contains" and wanted.lower() in v.lower():
            return True
        if modifier == "" and v.lower().startswith(wanted.lower()):
            return True
    return False


def match_reference(reference, wanted):
    return reference == wanted or reference.split("/", 1)[-1] == wanted


def match_token(codings, wanted):
    """codings: list of (system, value); wanted: 'system|value', '|value', 'system|' or 'value'."""
    if "|" in wanted:
        system, _, value = wanted.partition("|")
        return any((not system or s == system) and (not value or v == value) for s, v in codings)
    return any(v == wanted for _, v in codings)


def identifiers(resource):
    return [(i.get("system"), i.get("value")) for i in resource.get("identifier", [])]


def human_names(resource, part):
    out = []
    for n in resource.get("name", []):
        if part in ("given", "name"):
            out += n.get("given", [])
        if part in ("family", "name"):
            out.append(n.get("family"))
        if part == "name":
            out.append(n.get("text"))
    return out


def telecoms(resource, system):
    return [(None, t.get("value")) for t in resource.get("telecom", [])
            if t.get("system") == system]


PERSON_PARAMETERS = {
    "identifier": lambda r, v, m: match_token(identifiers(r), v),
    "name": lambda r, v, m: match_string(human_names(r, "name"), v, m),
    "family": lambda r, v, m: match_string(human_names(r, "family"), v, m),
    "given": lambda r, v, m: match_string(human_names(r, "given"), v, m),
    "email": lambda r, v, m: match_token(telecoms(r, "email"), v),
    "phone": lambda r, v, m: match_token(telecoms(r, "phone"), v),
    "active": lambda r, v, m: str(r.get("active", "")).lower() == v.lower(),
}
SEARCH_PARAMETERS = {
    "*": {},
    "ProjectMembership": {
        "project": lambda r, v, m: match_reference(r["project"]["reference"], v),
        "user": lambda r, v, m: match_reference(r["user"]["reference"], v),
        "profile": lambda r, v, m: match_reference(r["profile"]["reference"], v),
        "profile-type": lambda r, v, m: r["profile"]["reference"].split("/")[0] == v,
        "user-name": lambda r, v, m: match_string([r.get("userName")], v, m),
        "external-id": lambda r, v, m: match_string([r.get("externalId")], v, m),
        "identifier": lambda r, v, m: match_token(identifiers(r), v),
        "access-policy": lambda r, v, m: any(
            match_reference(x, v) for x in ([r["accessPolicy"]["reference"]]
                                            if r.get("accessPolicy") else [])
            + [a["policy"]["reference"] for a in r.get("access", [])]),
    },
    "Practitioner": PERSON_PARAMETERS,
    "Patient": PERSON_PARAMETERS,
    "RelatedPerson": PERSON_PARAMETERS,
    "ClientApplication": {"name": lambda r, v, m: match_string([r.get("name")], v, m)},
    "AccessPolicy": {"name": lambda r, v, m: match_string([r.get("name")], v, m)},
}


def ip_allowed(rules, ip):
    """AccessPolicy.ipAccessRule: first match (exact, '*' or string prefix) decides."""
    for rule in rules:
        value = rule.get("value", "")
        if value == "*" or value == ip or (value and ip.startswith(value)):
            return rule.get("action") != "block"
    return True


def parse_user_agent(agent):
    """browser/os labels as /auth/me shows them (a rough stand-in for Bowser)."""
    if not agent:
        return {}
    out = {}
    for name in ("Firefox", "Edg", "Chrome", "Safari"):
        if name + "/" in agent:
            out["browser"] = {"Edg": "Microsoft Edge"}.get(name, name)
            break
    else:
        out["browser"] = agent.split("/")[0].split(" ")[0]
    for needle, label in (("Windows", "Windows"), ("Android", "Android"),
                          ("Mac OS", "macOS"), ("iPhone", "iOS"), ("Linux", "Linux")):
        if needle in agent:
            out["os"] = label
            break
    return out


# ---------------------------------------------------------------------------------------------
# HTTP plumbing: main port (HTTPS by default) and the plain-HTTP control port
# ---------------------------------------------------------------------------------------------

class MainHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: separate small writes meet delayed ACKs.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass  # the JSON request log replaces access logging

    def send_response(self, code, message=None):
        # Express sends no Server header; Date and Connection follow the other headers.
        self.send_response_only(code, message)

    def do_request(self):
        server = self.server
        body = self.read_body()
        req = Request(self.command, self.path, self.headers, body, self.client_address[0])
        server.request_log.add({
            "t": time.time(), "method": req.method, "path": req.original_path,
            "query": req.query_string, "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", "backslashreplace"),
            "body_b64": base64.b64encode(body).decode("ascii"), "client_ip": req.client_ip})
        fault = server.faults.take(req.original_path)
        if fault and self.apply_fault(fault):
            return
        try:
            reply, extra = server.app.handle(req)
        except Reply as r:  # rate limited
            reply, extra = r, []
        except Exception:  # never leak a traceback to the client
            traceback.print_exc(file=sys.stderr)
            reply, extra = internal_error(), []
        self.send_reply(reply, extra)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_request

    def read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def apply_fault(self, fault):
        """Apply a fault; True when the request was fully handled by it."""
        mode = fault["mode"]
        faults = self.server.faults
        if mode == "delay":
            faults.sleep(float(fault.get("seconds", 1)))
            return False
        if mode == "hang":
            faults.wait_while_active(fault["id"])
            if faults.stopping:
                self.drop()
                return True
            return False
        if mode == "drop":
            self.drop()
            return True
        if mode == "status":
            status = int(fault.get("status", 503))
            if status >= 500:
                reply = internal_error()
                reply.status = status
            else:
                reply = {401: unauthorized, 403: forbidden, 404: not_found}.get(
                    status, lambda: bad_request("Injected fault"))()
                reply.status = status
            self.send_reply(reply, [])
            return True
        if mode == "garbage":
            body = fault.get("body", "<html><body>upstream proxy error</body></html>")
            self.send_reply(Reply(200, body, fault.get("content_type", JSON_TYPE)), [])
            return True
        if mode == "redirect":
            location = fault.get("location", "/redirected" + self.path)
            self.send_reply(Reply(302, "Found. Redirecting to " + location, "text/plain; "
                                  "charset=utf-8", [("Location", location)]), [])
            return True
        if mode == "ratelimit":
            reply = too_many_requests(160, 161, 59000, False)
            self.send_reply(reply, [("RateLimit", '"requests";r=0;t=59')])
            return True
        return False

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_reply(self, reply, extra):
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body, separators=(",", ":")).encode("utf-8")
        else:
            payload = str(reply.body).encode("utf-8")
        self.send_response(reply.status)
        csp_override = dict(reply.headers).get("Content-Security-Policy")
        for name, value in STANDARD_HEADERS:
            if name == "Content-Security-Policy" and csp_override:
                value = csp_override
            self.send_header(name, value)
        if self.server.https:
            self.send_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        origin = self.headers.get("Origin")
        if origin:
            # The recorded server runs with allowedOrigins "*": any Origin is echoed.
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Expose-Headers",
                             "Content-Location,ETag,Last-Modified,Location")
        for name, value in extra:
            self.send_header(name, value)
        for name, value in reply.headers:
            if name != "Content-Security-Policy":
                self.send_header(name, value)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Date", self.date_time_string())
        self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        self.send_header("Keep-Alive", "timeout=90")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


class ControlHandler(BaseHTTPRequestHandler):
    """Plain-HTTP JSON API on loopback for tests: faults, log, clock and population changes."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/log":
            return self.answer(200, self.server.main.request_log.snapshot())
        if self.path == "/faults":
            return self.answer(200, self.server.main.faults.active)
        return self.answer(404, {"error": "unknown control route"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            spec = json.loads(self.rfile.read(length) or b"{}")
            result = self.server.control.dispatch(self.path, spec)
        except (ValueError, KeyError, TypeError) as exc:
            return self.answer(400, {"error": str(exc)})
        return self.answer(200, result)

    def answer(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Control:
    """Implementation of the control routes (documented in tests/server/README.md)."""

    def __init__(self, main):
        self.main = main
        self.store = main.app.store

    def dispatch(self, path, spec):
        routes = {"/faults": self.faults, "/reset": self.reset, "/clear-log": self.clear_log,
                  "/time": self.time, "/membership": self.membership, "/user": self.user,
                  "/password": self.password, "/settings": self.settings,
                  "/revoke-logins": self.revoke_logins}
        if path not in routes:
            raise KeyError("unknown control route " + path)
        return routes[path](spec)

    def faults(self, spec):
        self.main.faults.set(spec)
        return {"ok": True, "active": self.main.faults.active}

    def reset(self, spec):
        self.main.faults.clear()
        return {"ok": True}

    def clear_log(self, spec):
        self.main.request_log.clear()
        return {"ok": True}

    def time(self, spec):
        self.main.clock_offset[0] = float(spec.get("offset", 0))
        return {"ok": True, "offset": self.main.clock_offset[0]}

    def find_user(self, email_addr):
        users = [u for u in self.store.users.values() if u["email"] == email_addr.lower()]
        if not users:
            raise KeyError("no user " + email_addr)
        return users[0]

    def find_project(self, key):
        for p in self.store.projects.values():
            if key in (p["id"], p["name"]):
                return p
        raise KeyError("no project " + key)

    def membership(self, spec):
        """Change (active/admin/userName/accessPolicy) or delete memberships of a user."""
        store = self.store
        with store.lock:
            user = self.find_user(spec["email"])
            project = self.find_project(spec["project"]) if spec.get("project") else None
            targets = store.memberships_of("User/" + user["id"], project and project["id"])
            if not targets:
                raise KeyError("no membership")
            for m in targets:
                if spec.get("delete"):
                    del store.memberships[m["id"]]
                    continue
                for field in ("active", "admin", "userName"):
                    if field in spec:
                        if spec[field] is None:
                            m.pop(field, None)
                        else:
                            m[field] = spec[field]
                if "accessPolicy" in spec:
                    if spec["accessPolicy"]:
                        m["accessPolicy"] = {"reference": "AccessPolicy/" + spec["accessPolicy"]}
                    else:
                        m.pop("accessPolicy", None)
                store.touch(m)
            return {"ok": True, "memberships": [m["id"] for m in targets]}

    def user(self, spec):
        """Add a server-scoped user with a Practitioner profile and a membership."""
        store = self.store
        with store.lock:
            project = self.find_project(spec["project"])
            email_addr = spec["email"].lower()
            user = {"resourceType": "User", "id": spec.get("id") or str(uuid.uuid4()),
                    "email": email_addr, "password": spec.get("password")}
            for field in ("mfaSecret", "mfaEnrolled", "mfaRequired"):
                if field in spec:
                    user[field] = spec[field]
            profile = {"resourceType": spec.get("resourceType", "Practitioner"),
                       "id": str(uuid.uuid4()), "meta": {"project": project["id"]},
                       "name": [{"given": [spec.get("given", email_addr.split("@")[0])],
                                 "family": spec.get("family", "Test")}],
                       "telecom": [{"system": "email", "use": "work", "value": email_addr}]}
            store.touch(profile)
            membership = {"resourceType": "ProjectMembership", "id": str(uuid.uuid4()),
                          "project": {"reference": "Project/" + project["id"],
                                      "display": project["name"]},
                          "user": {"reference": "User/" + user["id"], "display": email_addr},
                          "profile": {"reference": ref(profile),
                                      "display": display_name(profile)},
                          "meta": {"project": project["id"]}}
            for field in ("active", "admin", "userName", "identifier"):
                if field in spec:
                    membership[field] = spec[field]
            store.touch(membership)
            store.users[user["id"]] = user
            store.profiles[ref(profile)] = profile
            store.memberships[membership["id"]] = membership
            return {"ok": True, "user": user["id"], "profile": ref(profile),
                    "membership": membership["id"]}

    def password(self, spec):
        with self.store.lock:
            self.find_user(spec["email"])["password"] = spec["password"]
        return {"ok": True}

    def settings(self, spec):
        if "hibp_unreachable" in spec:
            self.store.hibp_unreachable = bool(spec["hibp_unreachable"])
        if "rate_limits" in spec:
            self.main.limiter.limits.update(spec["rate_limits"])
            self.main.limiter.reset()
        if spec.get("reset_rate_limits"):
            self.main.limiter.reset()
        return {"ok": True}

    def revoke_logins(self, spec):
        with self.store.lock:
            user = self.find_user(spec["email"])
            count = 0
            for login in self.store.logins.values():
                if login.user_ref == "User/" + user["id"] and not login.revoked:
                    login.revoked = True
                    count += 1
        return {"ok": True, "revoked": count}


class QuickBindServer(ThreadingHTTPServer):
    """HTTPServer.server_bind resolves the host name (getfqdn), which can stall without DNS."""
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]


class MainServer(QuickBindServer):
    allow_reuse_address = True

    def __init__(self, address, handler, ssl_context, address_family):
        self.address_family = address_family
        super().__init__(address, handler)
        self.ssl_context = ssl_context
        self.https = ssl_context is not None

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # Handshake in the worker thread (do_handshake_on_connect), not in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(30)
                request.do_handshake()
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            return
        traceback.print_exc(file=sys.stderr)


def load_fixture(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Medplum 5.0.10 imitation for tests")
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--control-port-file")
    parser.add_argument("--request-log")
    parser.add_argument("--variant", choices=("5.0.10", "newest"), default="5.0.10")
    parser.add_argument("--rate-limit-auth", type=int)
    parser.add_argument("--rate-limit-login", type=int)
    parser.add_argument("--rate-limit-default", type=int)
    parser.add_argument("--base-url", help="issuer/base URL (default scheme://host:port/)")
    args = parser.parse_args(argv)
    if not args.http and not (args.cert and args.key):
        parser.error("--cert and --key are required unless --http is given")

    fixture = load_fixture(args.fixture)
    clock_offset = [0.0]

    def clock():
        return time.time() + clock_offset[0]

    limits = {"auth": 160, "login": 5, "default": 60000}
    limits.update(fixture.get("rate_limits", {}))
    for name in ("auth", "login", "default"):
        value = getattr(args, "rate_limit_" + name)
        if value is not None:
            limits[name] = value

    context = None
    if not args.http:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = MainServer((args.host, args.port), MainHandler, context, family)
    port = server.server_address[1]
    scheme = "http" if args.http else "https"
    host_text = "[%s]" % args.host if ":" in args.host else args.host
    base_url = args.base_url or "%s://%s:%d/" % (scheme, host_text, port)
    if not base_url.endswith("/"):
        base_url += "/"

    store = Store(fixture, clock)
    limiter = RateLimiter(limits, clock)
    server.app = MedplumApp(store, limiter, args.variant, lambda: base_url)
    server.limiter = limiter
    server.clock_offset = clock_offset
    server.faults = Faults()
    server.request_log = RequestLog(args.request_log)

    control = QuickBindServer(("127.0.0.1", 0), ControlHandler)
    control.main = server
    control.control = Control(server)

    def write_port(path, value):
        if path:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % value)
            os.replace(tmp, path)

    write_port(args.control_port_file, control.server_address[1])
    write_port(args.port_file, port)
    print(port, flush=True)
    print("control port %d, base %s, variant %s" % (control.server_address[1], base_url,
                                                    args.variant), file=sys.stderr, flush=True)

    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    import signal

    def stop(signum, frame):
        server.faults.stop()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.faults.stop()
        control.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
