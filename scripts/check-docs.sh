#!/usr/bin/env bash
# Checks that the docs say what the code does, and fails where they do not:
# - the crate graph drawn in ARCHITECTURE.md (the fenced `crate-graph` block: one line per crate,
#   `crate -> dep, dep`) is exactly the workspace's normal and build dependencies between its own
#   members (`cargo metadata`): an edge in Cargo.toml the diagram lacks fails, and so does an edge
#   the diagram draws that Cargo.toml does not have;
# - no Markdown file of the repository points at a path outside it (`../shared/...`, a link that
#   climbs out of the repository).
# Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --no-deps --format-version 1 --offline >"${TMPDIR:-/tmp}/provdb-metadata.json"
python3 - "${TMPDIR:-/tmp}/provdb-metadata.json" <<'PY'
import json, os, re, sys

def short(name):
    return "provdb" if name == "provdb" else name.removeprefix("provdb-")

meta = json.load(open(sys.argv[1]))
members = {p["name"] for p in meta["packages"]}
actual = set()
for p in meta["packages"]:
    for d in p["dependencies"]:
        if d["name"] in members and d.get("kind") in (None, "build"):
            actual.add((short(p["name"]), short(d["name"])))

text = open("ARCHITECTURE.md").read()
blocks = re.findall(r"```crate-graph\n(.*?)```", text, re.S)
if len(blocks) != 1:
    sys.exit("check-docs: ARCHITECTURE.md must hold exactly one ```crate-graph block")
drawn, nodes = set(), set()
for line in blocks[0].splitlines():
    line = line.split("#")[0].strip()
    if not line:
        continue
    if "->" in line:
        src, deps = (s.strip() for s in line.split("->", 1))
    else:
        src, deps = line, ""
    nodes.add(src)
    for dep in filter(None, (d.strip() for d in deps.split(","))):
        drawn.add((src, dep))

errors = []
for name in sorted(short(m) for m in members):
    if name not in nodes:
        errors.append(f"crate {name} is a workspace member the diagram does not draw")
for src, dep in sorted(actual - drawn):
    errors.append(f"{src} depends on {dep} (Cargo.toml), which the diagram does not draw")
for src, dep in sorted(drawn - actual):
    errors.append(f"the diagram draws {src} -> {dep}, which Cargo.toml does not have")

tracked = os.popen("git ls-files '*.md'").read().split()
for path in tracked:
    if path.startswith(("fuzz/corpus", "target/")):
        continue
    for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
        for target in re.findall(r"\]\(([^)#]+)", line) + re.findall(r"`(\.\./[^`]+)`", line):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if resolved.startswith(".."):
                errors.append(f"{path}:{n}: points outside the repository: {target}")
        if "../shared" in line:
            errors.append(f"{path}:{n}: points outside the repository: ../shared")

if errors:
    print("check-docs: the docs disagree with the code:", *errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"check-docs: crate graph ({len(actual)} edges) and doc paths agree")
PY
