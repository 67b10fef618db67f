#!/usr/bin/env python3
"""Reads GStreamer symbol names on stdin and fails if any was introduced after MAX.

Usage: gst-since.py MAX GIR_DIR < symbols. The .gir files of the -dev packages carry a
version="1.x" attribute on every function added after 1.0; that is the only machine-readable
"since" GStreamer ships, because its libraries have no ELF symbol versions.
"""
import glob
import re
import sys


def as_tuple(v):
    return tuple(int(x) for x in v.split("."))


def main():
    limit, gir_dir = as_tuple(sys.argv[1]), sys.argv[2]
    since = {}
    pat = re.compile(r'c:identifier="(gst_\w+)"[^>]*?version="([0-9.]+)"|version="([0-9.]+)"[^>]*?c:identifier="(gst_\w+)"')
    for path in glob.glob(f"{gir_dir}/Gst*.gir"):
        with open(path, encoding="utf-8") as f:
            for m in pat.finditer(f.read()):
                name, ver = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
                since[name] = ver
    symbols = sorted({s.strip() for s in sys.stdin if s.strip()})
    too_new = [(s, since[s]) for s in symbols if s in since and as_tuple(since[s]) > limit]
    print(f"{len(symbols)} GStreamer symbols checked against {len(since)} versioned .gir entries")
    for s, v in too_new:
        print(f"  {s} needs GStreamer {v}", file=sys.stderr)
    sys.exit(1 if too_new else 0)


if __name__ == "__main__":
    main()
