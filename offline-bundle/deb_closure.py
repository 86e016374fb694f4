#!/usr/bin/env python3
"""Which Debian packages the offline bundle must carry.

Reads the Depends/Pre-Depends of the given .deb files (and extra package
names, e.g. skopeo for install.sh), follows them through this machine's apt
metadata (`apt-cache show`, candidate versions) and prints, one a line, every
package that a clean Debian 12 base system does not already hold. The base is
a list of package names (offline-bundle/debian12-base.packages, taken from a
debootstrap root by bundle-test, which checks that it still matches).

A dependency with alternatives is satisfied when any alternative is in the
base or already chosen; otherwise the first alternative is taken. A virtual
package is satisfied by its first real provider.

usage: deb_closure.py BASE_LIST [--deb FILE]... [PACKAGE]...
"""

import subprocess
import sys


def control_field(text, field):
    """The value of `field` in one control paragraph (continuation lines joined)."""
    value = None
    for line in text.splitlines():
        if value is not None and line.startswith((" ", "\t")):
            value += " " + line.strip()
        elif line.startswith(field + ":"):
            value = line[len(field) + 1:].strip()
        elif value is not None:
            break
    return value or ""


def parse_depends(value):
    """'a (>= 1), b | c:any' → [['a'], ['b', 'c']] (names only)."""
    groups = []
    for group in value.split(","):
        names = []
        for alt in group.split("|"):
            name = alt.strip().split(" ")[0].split("(")[0].split(":")[0]
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups


def apt_show(name):
    """Control paragraph of the candidate version, or None for a virtual package."""
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", name],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    return r.stdout.split("\n\n")[0]


def providers(name):
    """Real packages providing virtual package `name`."""
    r = subprocess.run(["apt-cache", "showpkg", name], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    out = []
    if "Reverse Provides: " in lines:
        for line in lines[lines.index("Reverse Provides: ") + 1:]:
            if line.strip():
                out.append(line.split(" ")[0])
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = {l.split("\t")[0].strip() for l in open(argv[1]) if l.strip() and not l.startswith("#")}
    queue = []
    own = set()
    args = argv[2:]
    i = 0
    while i < len(args):
        if args[i] == "--deb":
            deb = args[i + 1]
            i += 2
            info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends", "Pre-Depends"],
                                  capture_output=True, text=True, check=True).stdout
            own.add(control_field(info, "Package"))
            for field in ("Pre-Depends", "Depends"):
                queue.extend(parse_depends(control_field(info, field)))
        else:
            queue.append([args[i]])
            i += 1

    chosen = []
    seen = set()
    while queue:
        group = queue.pop(0)
        if any(n in base or n in seen or n in own for n in group):
            continue
        name = group[0]
        para = apt_show(name)
        if para is None:
            real = [p for p in providers(name)]
            if any(p in base or p in seen for p in real):
                continue
            if not real:
                print(f"deb_closure: no package provides {name}", file=sys.stderr)
                return 1
            name = real[0]
            para = apt_show(name)
            if name in base or name in seen:
                continue
        seen.add(name)
        chosen.append(name)
        for field in ("Pre-Depends", "Depends"):
            queue.extend(parse_depends(control_field(para, field)))
    for name in chosen:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
