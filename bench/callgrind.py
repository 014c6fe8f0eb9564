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
  callgrind.py split FILE
      prints "SCRIPT HANDLERS": the instructions of nginx's script engine
      (ngx_http_complex_value(), add_header's values among others) less
      the module's variable handlers it calls, and those handlers'.

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


SCRIPT_ENTRY = "ngx_http_complex_value"
VARIABLE_GETTERS = ("ngx_http_get_indexed_variable",
                    "ngx_http_get_flushed_variable", "ngx_http_get_variable")


def split(path):
    """(SCRIPT, HANDLERS): instructions of nginx's script engine and of
    the module's variable handlers it calls, in a callgrind.out file.

    SCRIPT is the inclusive cost of every call of ngx_http_complex_value()
    (add_header's values, among others), less HANDLERS, the inclusive
    cost of every call from nginx's variable getters into the module
    (in "ours" all of them come from add_header's values; a case that
    reads the module's variables elsewhere too, a log or a map, would
    have them subtracted all the same).  With constant add_header values
    (bare) SCRIPT is what copying them costs.
    """
    names = {}
    obj = fn = call_fn = call_ob = None
    script = handlers = 0
    pending = None
    with open(path, errors="replace") as f:
        for line in f:
            if pending is not None:
                fields = line.split()
                ir = int(fields[1]) if len(fields) >= 2 else 0
                if pending == "script":
                    script += ir
                elif pending == "handler":
                    handlers += ir
                pending = None
                continue
            if line.startswith("ob="):
                obj = resolve(names, "ob", line[3:].strip())
            elif line.startswith("fn="):
                fn = resolve(names, "fn", line[3:].strip())
                call_ob = None
            elif line.startswith("cob="):
                call_ob = resolve(names, "ob", line[4:].strip())
            elif line.startswith("cfn="):
                call_fn = resolve(names, "fn", line[4:].strip())
            elif line.startswith(("cfi=", "cfl=")):
                resolve(names, "fl", line[4:].strip())
            elif line.startswith(("fl=", "fi=", "fe=")):
                resolve(names, "fl", line[3:].strip())
            elif line.startswith("calls="):
                callee_ob = call_ob or obj
                if call_fn == SCRIPT_ENTRY and fn != SCRIPT_ENTRY:
                    pending = "script"
                elif (fn in VARIABLE_GETTERS and callee_ob
                      and "ngx_http_loyalty_module" in callee_ob):
                    pending = "handler"
                else:
                    pending = "skip"
                call_ob = None
    return script - handlers, handlers


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
    elif len(sys.argv) == 3 and sys.argv[1] == "split":
        print("%d %d" % split(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
