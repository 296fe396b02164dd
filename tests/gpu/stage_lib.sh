# shellcheck shell=bash
# The code tests/gpu/stage.sh and bench/stage.sh share, sourced by both:
# build, find bazel-bin, copy the fallback libraries, check that a staged
# file needs nothing from Bazel's output tree.
#
# The caller sets DEST (the staging folder) and TARGETS (what to build),
# runs from the repository root, under `set -euo pipefail`. Every check reads
# ldd's output from a variable: `ldd FILE | grep -q PATTERN` under pipefail
# lets grep exit at its first match and ldd die of SIGPIPE, and the check
# then fails at random (issue 11).

CUDA_ROOT=${CUDA_PATH:-/usr/local/cuda}

# bazel build of the caller's TARGETS with its flags (e.g. -c opt).
stage_build() {
  bazel build "$@" "${TARGETS[@]}"
}

# bazel-bin for the build flags given (they select the output tree).
stage_bazel_bin() {
  bazel info "$@" bazel-bin 2>/dev/null
}

# An empty $DEST with its fallback-libs/ folder.
stage_fresh_dest() {
  rm -rf "$DEST"
  mkdir -p "$DEST/fallback-libs"
}

# ldd's output for FILE; nothing for a static executable; fails (and says
# why) if ldd itself fails.
stage_libraries_of() {
  local file=$1 output
  if output=$(ldd "$file" 2>&1); then
    printf '%s\n' "$output"
    return 0
  fi
  if [[ $output == *"not a dynamic executable"* || $output == *"statically linked"* ]]; then
    return 0
  fi
  echo "stage.sh: ldd $file failed: $output" >&2
  return 1
}

# Used on the GPU machine only where its own copies are missing:
# libcudart.so.13 through the staged programs' $ORIGIN runpath (after
# /usr/local/cuda/lib64), libnuma.so.1 through LD_LIBRARY_PATH, set by the
# run scripts when ldd cannot find it for libegm.so.
stage_copy_fallback_libraries() {
  cp -L "$CUDA_ROOT/lib64/libcudart.so.13" "$DEST/"
  local libraries numa
  libraries=$(stage_libraries_of "$DEST/libegm.so")
  numa=$(awk '/libnuma\.so\.1 => \// {print $3}' <<<"$libraries")
  if [[ -n $numa ]]; then cp -L "$numa" "$DEST/fallback-libs/"; fi
}

# FILE (under $DEST) needs nothing that does not travel: no library "not
# found", none from Bazel's _solib folders. Lines matching EXCEPT (an ERE,
# e.g. 'libcuda\.so\.1', which only a GPU machine has) are not looked at.
stage_check_travels() {
  local file=$1 except=${2:-} libraries bad
  libraries=$(stage_libraries_of "$DEST/$file") || return 1
  if [[ -n $except ]]; then libraries=$(grep -Ev "$except" <<<"$libraries" || true); fi
  bad=$(grep -E 'not found|_solib' <<<"$libraries" || true)
  if [[ -n $bad ]]; then
    printf '%s\n' "$bad" >&2
    echo "stage.sh: $file depends on files that do not travel" >&2
    return 1
  fi
}

# FILE (under $DEST) links LIBRARY (an ERE) dynamically.
stage_check_links() {
  local file=$1 library=$2 libraries
  libraries=$(stage_libraries_of "$DEST/$file") || return 1
  if ! grep -Eq "$library" <<<"$libraries"; then
    echo "stage.sh: $file does not link $library dynamically" >&2
    return 1
  fi
}

# FILE (under $DEST) does not link LIBRARY (an ERE) dynamically.
stage_check_not_links() {
  local file=$1 library=$2 libraries found
  libraries=$(stage_libraries_of "$DEST/$file") || return 1
  found=$(grep -E "$library" <<<"$libraries" || true)
  if [[ -n $found ]]; then
    printf '%s\n' "$found" >&2
    echo "stage.sh: $file must not link $library dynamically" >&2
    return 1
  fi
}

# What was staged, for the log.
stage_list() {
  (cd "$DEST" && ls -l --time-style=+ . fallback-libs)
}
