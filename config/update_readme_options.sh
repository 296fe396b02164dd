#!/usr/bin/env bash
# Regenerates the README's options table from config/options.h.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //tools:egm-options
python3 - <<'PY'
import re, subprocess
table = subprocess.run(["bazel-bin/tools/egm-options", "--markdown"], check=True,
                       capture_output=True, text=True).stdout
begin = "<!-- options:begin (generated: egm-options --markdown) -->\n"
end = "<!-- options:end -->"
text = open("README.md").read()
start, stop = text.index(begin) + len(begin), text.index(end)
open("README.md", "w").write(text[:start] + table + text[stop:])
PY
