#!/usr/bin/env python3
"""RFC 6238 TOTP as Medplum uses it (HMAC-SHA1, 6 digits, 30 s steps, base32 secret).

Import:  from totp import totp; totp("ERINGREENTOTP234")            -> "123456"
         totp(secret, t=time.time() - 30)   or   totp(secret, step_offset=-1)
CLI:     python3 tests/server/totp.py SECRET [--offset-steps N] [--time EPOCH]
"""

import argparse
import base64
import hashlib
import hmac
import struct
import time

STEP = 30
DIGITS = 6


def _key(secret_b32):
    cleaned = secret_b32.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def totp_at_counter(secret_b32, counter):
    digest = hmac.new(_key(secret_b32), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** DIGITS).zfill(DIGITS)


def totp(secret_b32, t=None, step_offset=0):
    """The code for time t (default now), shifted by step_offset 30-second steps."""
    now = time.time() if t is None else t
    return totp_at_counter(secret_b32, int(now // STEP) + step_offset)


def verify(secret_b32, token, t=None, window=1):
    """True if token matches the step of t or one of the `window` steps around it."""
    if not isinstance(token, str) or not token.isdigit() or len(token) != DIGITS:
        return False
    now = time.time() if t is None else t
    counter = int(now // STEP)
    return any(hmac.compare_digest(totp_at_counter(secret_b32, counter + d), token)
               for d in range(-window, window + 1))


def main():
    parser = argparse.ArgumentParser(description="Print the current TOTP code for a base32 secret.")
    parser.add_argument("secret")
    parser.add_argument("--offset-steps", type=int, default=0)
    parser.add_argument("--time", type=float, default=None, help="epoch seconds (default: now)")
    args = parser.parse_args()
    print(totp(args.secret, args.time, args.offset_steps))


if __name__ == "__main__":
    main()
