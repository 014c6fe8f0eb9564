# Runs docs/snippets/member-cookie.py for t/cookie-snippets.t:
#   driver.py SNIPPET vectors FILE     one JSON line per vector, see
#                                      t/cookie-snippets.t
#   driver.py SNIPPET sign KEYS ID TTL a cookie value, signed now
#   driver.py SNIPPET verify KEYS VALUE the member id, or "REFUSED"

import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location('member_cookie', sys.argv[1])
mc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mc)


def out(obj):
    print(json.dumps(obj))


def signs(member, ttl, keys, now):
    try:
        return mc.sign(member, ttl, keys, now)
    except ValueError:
        return None


def parses(text):
    try:
        return mc.parse_keys(text)
    except ValueError:
        return None


def vectors(path):
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    keys = parses(doc['keys_file']) or []
    out({'keys': [[k, s.hex()] for k, s in keys]})
    for i, v in enumerate(doc['valid']):
        signer = [k for k in keys if k[0] == v['kid']]
        out({'valid': i,
             'signed': signs(v['member'], v['ttl'], signer, v['now']),
             'at_now': mc.verify(v['cookie'], keys, v['now']),
             'at_expiry': mc.verify(v['cookie'], keys, v['expires']),
             'after': mc.verify(v['cookie'], keys, v['expires'] + 1)})
    for i, v in enumerate(doc['invalid']):
        out({'invalid': i, 'verified': mc.verify(v['cookie'], keys, v['now'])})
    for i, v in enumerate(doc['unsignable']):
        out({'unsignable': i,
             'signed': signs(v['member'], v['ttl'], keys, v['now'])})
    for i, v in enumerate(doc['bad_keys_files']):
        out({'bad_keys': i, 'parsed': parses(v['text']) is not None})


def keys_of(path):
    with open(path, encoding='utf-8') as f:
        return mc.parse_keys(f.read())


if sys.argv[2] == 'vectors':
    vectors(sys.argv[3])
elif sys.argv[2] == 'sign':
    print(mc.sign(sys.argv[4], int(sys.argv[5]), keys_of(sys.argv[3])))
else:
    print(mc.verify(sys.argv[4], keys_of(sys.argv[3])) or 'REFUSED')
