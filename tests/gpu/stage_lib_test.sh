#!/usr/bin/env bash
# bazel test //tests/gpu:stage_lib_test: the staging scripts' shared checks
# (stage_lib.sh) against a fake ldd, under the scripts' `set -euo pipefail`.
# The fake prints a long list whose first line matches, so that a reader
# that stops early (`ldd | grep -q`) kills it with SIGPIPE: the failure
# tests/gpu/stage.sh had at random on a clean machine (issue 11).
set -euo pipefail

LIB=$(dirname "$0")/stage_lib.sh
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/stage_lib_test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/dest/fallback-libs" "$WORK/cuda/lib64" "$WORK/numa"

# The fake ldd answers by the file's name.
cat >"$WORK/bin/ldd" <<'EOF'
#!/usr/bin/env bash
long_tail() { for ((i = 0; i < 20000; i++)); do echo "	libpadding$i.so => /usr/lib/libpadding$i.so (0x00007f0000000000)"; done; }
case $(basename "$1") in
  dynamic) echo "	libcudart.so.13 => /usr/local/cuda/lib64/libcudart.so.13 (0x1)"; long_tail ;;
  static) echo "	not a dynamic executable"; exit 1 ;;
  unreadable) echo "ldd: $1: No such file or directory" >&2; exit 1 ;;
  missing) long_tail; echo "	libfoo.so.1 => not found" ;;
  solib) echo "	libbar.so => /x/_solib_k8/libbar.so (0x1)" ;;
  driver_only) echo "	libcuda.so.1 => not found"; long_tail ;;
  libegm.so) echo "	libnuma.so.1 => $FAKE_NUMA (0x1)"; long_tail ;;
esac
EOF
chmod +x "$WORK/bin/ldd"
for file in dynamic static unreadable missing solib driver_only libegm.so; do
  touch "$WORK/dest/$file"
done
echo cudart >"$WORK/cuda/lib64/libcudart.so.13"
echo numa >"$WORK/numa/libnuma.so.1"
export PATH="$WORK/bin:$PATH" FAKE_NUMA="$WORK/numa/libnuma.so.1" CUDA_PATH="$WORK/cuda"

DEST=$WORK/dest TARGETS=()
# shellcheck source=tests/gpu/stage_lib.sh
source "$LIB"

failures=0
# expect pass|fail DESCRIPTION COMMAND...: runs COMMAND in a subshell with
# the scripts' options, as stage.sh would.
expect() {
  local want=$1 what=$2 got=pass
  shift 2
  (set -euo pipefail; "$@") >"$WORK/out" 2>&1 || got=fail
  if [[ $got == "$want" ]]; then
    echo "PASS $what: $got as expected"
  else
    echo "FAIL $what: expected $want, got $got; output:"
    sed 's/^/  /' "$WORK/out"
    failures=$((failures + 1))
  fi
}

# The pattern the checks replace fails here, so this test can tell.
old_check() { ldd "$DEST/dynamic" | grep -q 'libcudart\.so\.13'; }
expect fail "old 'ldd | grep -q' under pipefail (SIGPIPE)" old_check

expect pass "a long ldd list with libcudart first is linked" \
  stage_check_links dynamic 'libcudart\.so\.13'
expect pass "it travels" stage_check_travels dynamic
expect pass "it links no libnuma" stage_check_not_links dynamic 'libnuma'
expect fail "a library not found is caught at the end of a long list" \
  stage_check_travels missing
expect fail "a library from Bazel's _solib is caught" stage_check_travels solib
expect pass "libcuda.so.1, excepted, may be missing" \
  stage_check_travels driver_only 'libcuda\.so\.1'
expect fail "libcuda.so.1, not excepted, may not" stage_check_travels driver_only
expect pass "a static executable travels" stage_check_travels static
expect pass "a static executable links no libcudart" stage_check_not_links static 'libcudart'
expect fail "a static executable links no libcudart.so.13 dynamically" \
  stage_check_links static 'libcudart\.so\.13'
expect fail "ldd failing otherwise fails the check" stage_check_travels unreadable
expect fail "a linked library that must not be" stage_check_not_links dynamic 'libcudart'

copy_and_check() {
  stage_copy_fallback_libraries &&
    cmp "$DEST/libcudart.so.13" "$CUDA_PATH/lib64/libcudart.so.13" &&
    cmp "$DEST/fallback-libs/libnuma.so.1" "$FAKE_NUMA"
}
expect pass "fallback libcudart.so.13 and libegm.so's libnuma.so.1 copied" copy_and_check

echo "stage_lib_test: $failures failing checks"
((failures == 0))
