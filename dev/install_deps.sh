#!/usr/bin/env bash
# Installs what building and testing egm-shim needs, from Debian/Ubuntu
# packages (idempotent; run as root or with sudo). The CUDA toolkit is
# expected at $CUDA_PATH (default /usr/local/cuda).
set -euo pipefail
packages=(
  bazel-bootstrap bazel-rules-java bazel-platforms
  g++ libspdlog-dev libfmt-dev libnuma-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
  clang lld python3 python3-prometheus-client
)
missing=()
for package in "${packages[@]}"; do
  # No `| grep -q` under pipefail: it can kill dpkg-query with SIGPIPE.
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ $status == *"ok installed"* ]] || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cuda="${CUDA_PATH:-/usr/local/cuda}"
[[ -f "$cuda/include/cuda.h" ]] || { echo "CUDA toolkit headers not found in $cuda (set CUDA_PATH)" >&2; exit 1; }
