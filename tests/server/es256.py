"""ES256 (ECDSA on NIST P-256 with SHA-256) in pure Python.

The standard library has no elliptic-curve crypto, and Medplum 5.0.10 signs its JWTs with
ES256, so the test server carries this small implementation. It is written for clarity and
test use only: it is not constant-time and must never guard real secrets.
"""

import base64
import hashlib
import secrets

# Curve parameters of P-256 (FIPS 186-4, D.1.2.3).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


# Points are kept in Jacobian coordinates (X, Y, Z) during multiplication so that only one
# modular inversion is needed at the end; None is the point at infinity.
def _to_jacobian(point):
    return (point[0], point[1], 1)


def _from_jacobian(jp):
    if jp is None:
        return None
    x, y, z = jp
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return (x * zinv2 % P, y * zinv2 * zinv % P)


def _double(jp):
    if jp is None:
        return None
    x, y, z = jp
    if y == 0:
        return None
    ysq = y * y % P
    s = 4 * x * ysq % P
    z2 = z * z % P
    m = (3 * (x - z2) * (x + z2)) % P  # uses a = -3
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return (nx, ny, nz)


def _add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1s = z1 * z1 % P
    z2s = z2 * z2 % P
    u1 = x1 * z2s % P
    u2 = x2 * z1s % P
    s1 = y1 * z2s * z2 % P
    s2 = y2 * z1s * z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else None
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    h2 = h * h % P
    h3 = h * h2 % P
    u1h2 = u1 * h2 % P
    nx = (r * r - h3 - 2 * u1h2) % P
    ny = (r * (u1h2 - nx) - s1 * h3) % P
    nz = h * z1 * z2 % P
    return (nx, ny, nz)


def _multiply(k, point):
    result = None
    addend = _to_jacobian(point)
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    return result


def _on_curve(point):
    x, y = point
    return (y * y - (x * x * x + A * x + B)) % P == 0


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SigningKey:
    """A P-256 key pair: sign(bytes) -> 64-byte JWS signature, verify(bytes, sig) -> bool."""

    def __init__(self, secret=None):
        self.d = secret if secret is not None else secrets.randbelow(N - 1) + 1
        self.public = _from_jacobian(_multiply(self.d, G))

    def sign(self, message):
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        while True:
            k = secrets.randbelow(N - 1) + 1
            r = _from_jacobian(_multiply(k, G))[0] % N
            if r == 0:
                continue
            s = pow(k, -1, N) * (e + r * self.d) % N
            if s != 0:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def jwk(self, kid):
        x, y = self.public
        return {"kid": kid, "alg": "ES256", "kty": "EC", "use": "sig",
                "x": _b64url(x.to_bytes(32, "big")), "y": _b64url(y.to_bytes(32, "big")),
                "crv": "P-256"}


def verify(public, message, signature):
    """Check a 64-byte r||s signature of message against the public point (x, y)."""
    if len(signature) != 64 or not _on_curve(public):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, N)
    point = _add(_multiply(e * w % N, G), _multiply(r * w % N, public))
    if point is None:
        return False
    return _from_jacobian(point)[0] % N == r


def public_from_jwk(jwk):
    return (int.from_bytes(_b64url_decode(jwk["x"]), "big"),
            int.from_bytes(_b64url_decode(jwk["y"]), "big"))
