#!/usr/bin/env python3
"""Merge callgrind traces of the `sextant` binary into a symbol ordering file for lld.

usage: link_order.py BINARY TRACE.callgrind... > examples/link-order.txt

Keeps the functions of BINARY that the traces ran (callgrind's `fn=` entries under BINARY's
`ob=`), and orders them so that code every traced exporter runs (start-up, the runtime, the HTTP
server, the encoder) comes first, then each exporter's own code together; within a group the
functions that ran the most instructions come first. Prints to stderr how many of them BINARY
has and their total size: a function missing from BINARY's symbol table (renamed since the
trace was taken) is dropped.
"""

import re
import subprocess
import sys

NAME = re.compile(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$")


def functions(path, binary):
    """{mangled name: instructions} of the functions in `binary` that one trace ran."""
    objects, names, ran = {}, {}, {}
    in_binary, current = False, None
    with open(path, errors="replace") as f:
        for line in f:
            m = NAME.match(line.rstrip("\n"))
            if m:
                called, kind, key, text = m.groups()
                table = objects if kind == "ob" else names
                if text:
                    table[key] = text
                if called:
                    continue
                if kind == "ob":
                    in_binary = objects.get(key, "").endswith("/" + binary)
                else:
                    current = names[key] if in_binary else None
                    if current is not None:
                        ran.setdefault(current, 0)
                continue
            if current is None or not line[:1].isdigit() and line[:1] not in "+-*":
                continue
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                ran[current] += int(fields[1])
    return ran


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2])
    binary, traces = sys.argv[1], sys.argv[2:]
    per_trace = [functions(t, binary.rsplit("/", 1)[-1]) for t in traces]
    symbols = subprocess.run(["nm", "-S", binary], capture_output=True, text=True, check=True).stdout
    size = {}
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            size[fields[3]] = int(fields[1], 16)
    users, first, weight = {}, {}, {}
    for i, ran in enumerate(per_trace):
        for name, n in ran.items():
            users[name] = users.get(name, 0) + 1
            first.setdefault(name, i)
            weight[name] = weight.get(name, 0) + n
    kept = [n for n in users if n in size]
    kept.sort(key=lambda n: (-users[n], first[n], -weight[n], n))
    for name in kept:
        print(name)
    print(
        f"{len(kept)} functions ({sum(size[n] for n in kept) / 1e6:.2f} MB) from {len(traces)} traces; "
        f"{len(users) - len(kept)} not in {binary}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
