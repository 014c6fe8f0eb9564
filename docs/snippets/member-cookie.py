# nginx-loyalty member cookie: sign it at login, verify it where needed.
# Python 3, standard library only.  Copy this file into the shop's code.
#
# The value is ID~EXPIRES~KID~MAC, MAC the unpadded base64url of
# HMAC-SHA256(secret, "member~ID~EXPIRES~KID"): docs/member-cookie.md.
#
#     keys = parse_keys(open('/etc/nginx/loyalty.keys').read())
#     value = sign(member_id, 30 * 86400, keys)
#     # Django: response.set_cookie('loyalty_member', value,
#     #     max_age=30 * 86400, secure=True, httponly=True, samesite='Lax')
#     member_id = verify(request.COOKIES.get('loyalty_member', ''), keys)

import base64
import hashlib
import hmac
import re
import time

ID = re.compile(r'[A-Za-z0-9_.-]{1,64}')
KID = re.compile(r'[A-Za-z0-9_-]{1,16}')
SECRET_HEX = re.compile(r'(?:[0-9A-Fa-f]{2}){32,128}')
COOKIE = re.compile(r'([A-Za-z0-9_.-]{1,64})~(0|[1-9][0-9]{0,11})~'
                    r'([A-Za-z0-9_-]{1,16})~[A-Za-z0-9_-]{43}')
EXPIRES_MAX = 999999999999      # 12 digits
COOKIE_MAX = 138                # 64 + 1 + 12 + 1 + 16 + 1 + 43


def parse_keys(text):
    """The keys file nginx reads (loyalty_keys): "KID SECRET_HEX" lines,
    "#" comments.  Returns [(kid, secret)], the signing key first."""
    keys = []
    for n, line in enumerate(text.split('\n'), 1):
        line = line.lstrip(' \t').rstrip(' \t\r')
        if line == '' or line.startswith('#'):
            continue
        f = re.split(r'[ \t]+', line)
        if (len(f) != 2 or not KID.fullmatch(f[0])
                or not SECRET_HEX.fullmatch(f[1])
                or f[0] in (k for k, _ in keys) or len(keys) == 16):
            raise ValueError('keys line %d: want "KID SECRET_HEX", a new '
                             'KID of [A-Za-z0-9_-], 32-128 bytes of hex' % n)
        keys.append((f[0], bytes.fromhex(f[1])))
    if not keys:
        raise ValueError('keys: none')
    return keys


def _mac(secret, payload):
    # the "member~" in front keeps other values signed with the same keys
    # from passing for a member cookie
    digest = hmac.new(secret, b'member~' + payload.encode('ascii'),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')


def sign(member, ttl, keys, now=None):
    """The cookie value for member, valid for ttl seconds; keys[0] signs.
    The member id is the shop's opaque id, never an email address."""
    now = int(time.time()) if now is None else int(now)
    if not isinstance(member, str) or not ID.fullmatch(member):
        raise ValueError('member id: 1-64 characters of [A-Za-z0-9_.-]')
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise ValueError('ttl: whole seconds')
    expires = now + ttl
    if not 0 <= expires <= EXPIRES_MAX:
        raise ValueError('expiry out of range')
    kid, secret = keys[0]
    payload = '%s~%d~%s' % (member, expires, kid)
    return payload + '~' + _mac(secret, payload)


def verify(cookie, keys, now=None):
    """The member id of a genuine cookie value not yet expired, else
    None.  Valid through its EXPIRES second, as nginx counts."""
    now = int(time.time()) if now is None else int(now)
    if not isinstance(cookie, str) or len(cookie) > COOKIE_MAX:
        return None
    m = COOKIE.fullmatch(cookie)
    if m is None:
        return None
    secret = dict(keys).get(m.group(3))
    if secret is None:
        return None
    # compare the text, in constant time: only the one encoding passes
    if not hmac.compare_digest(cookie[-43:], _mac(secret, cookie[:-44])):
        return None
    if int(m.group(2)) < now:
        return None
    return m.group(1)
