#!/usr/bin/env python3
"""Instruction counts per request for bench/run's callgrind step.

  callgrind.py requests PORT PATH SCRIPT N PASSES [ARGS...]
      sends, over one keep-alive connection, the first N requests of a wrk
      case (SCRIPT is the case's wrk script: cookies.lua, refs.lua or
      anon.lua, ARGS its arguments), PASSES times over; every answer must
      be a 200.
  callgrind.py cost FILE
      prints "TOTAL MODULE": the instructions in a callgrind.out file, all
      of them and those of the module's own objects (the module, LMDB,
      LuaJIT, libcrypto: the libraries nginx itself does not use here).

Only the standard library: the VM reaches Debian's archive and npm only.
"""

import http.client
import re
import sys

BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
           "AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0 Safari/537.36")

MODULE_OBJECTS = re.compile(
    r"ngx_http_loyalty_module|liblmdb|libluajit|libcrypto")


def case_requests(path, script, n, args):
    """[(path, headers)]: the first n requests the wrk script would send."""
    out = []
    if script == "anon.lua":
        return [(path, {})] * n
    with open(args[0]) as f:
        for line in f:
            if len(out) == n:
                break
            cols = line.rstrip("\n").split("\t")
            if script == "cookies.lua":
                name = args[1] if len(args) > 1 else "loyalty_member"
                out.append((path, {"Cookie": name + "=" + cols[0]}))
            elif script == "refs.lua":
                name = args[1] if len(args) > 1 else "loyalty_ref"
                headers = {"User-Agent": args[2] if len(args) > 2
                           else BROWSER}
                if cols[1] != "-":
                    headers["Cookie"] = name + "=" + cols[1]
                out.append((path + "?ref=" + cols[0], headers))
            else:
                sys.exit("callgrind.py: no request model for " + script)
    if len(out) < n:
        sys.exit("callgrind.py: only %d requests in %s" % (len(out), args[0]))
    return out


def send(port, requests, passes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(passes):
        for path, headers in requests:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                sys.exit("callgrind.py: %s answered %d" % (path, r.status))
    conn.close()


def cost(path):
    """Self cost (Ir) of every object in a callgrind.out file, summed.

    Cost lines follow fn= (self cost) or calls= (the next line is the
    inclusive cost of a call, already counted in the callee: skipped).
    Names may be compressed: "(id) name" defines, "(id)" refers.
    """
    names = {}
    obj = None
    total = 0
    module = 0
    skip = False
    ob_of_fn = None
    with open(path, errors="replace") as f:
        for line in f:
            if skip:
                skip = False
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                if len(fields) >= 2:
                    ir = int(fields[1])
                    total += ir
                    if ob_of_fn and MODULE_OBJECTS.search(ob_of_fn):
                        module += ir
                continue
            if line.startswith("ob="):
                obj = resolve(names, "ob", line[3:].strip())
                ob_of_fn = obj
            elif line.startswith("fn="):
                ob_of_fn = obj
            elif line.startswith(("cob=", "cfi=", "cfn=", "cfl=")):
                key, val = line.split("=", 1)
                resolve(names, key[1:], val.strip())
            elif line.startswith(("fl=", "fi=", "fe=")):
                resolve(names, "fl", line[3:].strip())
            elif line.startswith("calls="):
                skip = True
    return total, module


def resolve(names, kind, val):
    m = re.match(r"\((\d+)\)\s*(.*)", val)
    if not m:
        return val
    key = (kind if kind != "fi" and kind != "fe" else "fl", m.group(1))
    if m.group(2):
        names[key] = m.group(2)
    return names.get(key, val)


def main():
    if len(sys.argv) >= 7 and sys.argv[1] == "requests":
        port, path, script = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        n, passes = int(sys.argv[5]), int(sys.argv[6])
        send(port, case_requests(path, script, n, sys.argv[7:]), passes)
    elif len(sys.argv) == 3 and sys.argv[1] == "cost":
        print("%d %d" % cost(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
