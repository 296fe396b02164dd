#!/usr/bin/env bash
# Runs metrics_test.py from the runfiles tree (the programs it runs are there),
# with the system's Python: python3-prometheus-client is a Debian package.
python=/usr/bin/python3
[[ -x $python ]] || python=python3
exec "$python" -B tests/reliability/metrics_test.py "$@"
