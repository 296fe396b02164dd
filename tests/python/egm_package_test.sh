#!/usr/bin/env bash
# Runs egm_package_test.py with the package, libegm.so and the fakes from the runfiles.
set -euo pipefail
ROOT=${TEST_SRCDIR:?run under bazel test}/egm_shim
export PACKAGE_TEST_LIB=$ROOT/shim/libegm.so
export PACKAGE_TEST_FAKES=$ROOT/tests/doubles
export PYTHONPATH=$ROOT/python
export LD_LIBRARY_PATH=$PACKAGE_TEST_FAKES
exec python3 "$ROOT/tests/python/egm_package_test.py" -v
