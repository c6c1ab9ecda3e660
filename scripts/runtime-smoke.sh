#!/usr/bin/env bash
# Pack fdpass (dist/ must be built), install the tarball into a scratch project as a user would,
# and run test/runtimes/smoke.mjs and require.cjs there under each runtime given (paths of node,
# bun or deno binaries). Prints "ok - …" / "not ok - …" lines.
#   scripts/runtime-smoke.sh "$(scripts/runtime.sh bun 1.4.5)" "$(scripts/runtime.sh deno 2.9.6)"
# Under scripts/cross/run.sh ARCH (FDPASS_EMULATED set): `scripts/cross/run.sh riscv64
# scripts/runtime-smoke.sh node` runs the checks on the ARCH node; npm runs on the host's, and
# the scratch project gets the ARCH build of koffi, as the checkout does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${FDPASS_EMULATED:-}" ]; then
  # The host's node also first on npm's PATH: koffi's install script (`node cnoke.cjs`) checks
  # the prebuild for the node that runs it, and would try to compile one for ARCH.
  npm_cli=$(readlink -f "$(command -v npm)")
  npm() { PATH="$(dirname "$FDPASS_HOST_NODE"):$PATH" "$FDPASS_HOST_NODE" "$npm_cli" "$@"; }
fi
project=$(mktemp -d /tmp/fdpass-runtime-smoke.XXXXXX)
trap 'rm -rf "$project"' EXIT
chmod 755 "$project"
tarball=$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$project" | tail -1)
cd "$project"
echo '{ "name": "fdpass-runtime-smoke", "private": true, "type": "module" }' > package.json
npm install --silent --no-audit --no-fund "./$tarball" >/dev/null
[ -z "${FDPASS_EMULATED:-}" ] || "$FDPASS_HOST_NODE" "$repo/scripts/cross/native-deps.mjs" node_modules "$FDPASS_EMULATED" "$FDPASS_CROSS_NPM" >/dev/null
cp "$repo/test/runtimes/smoke.mjs" "$repo/test/runtimes/smoke-child.mjs" "$repo/test/runtimes/require.cjs" .
status=0
for runtime in "$@"; do
  case "$(basename "$runtime")" in
    deno) cmd=("$runtime" run -A smoke.mjs) ;;
    *) cmd=("$runtime" smoke.mjs) ;;
  esac
  echo "-- $runtime"
  timeout 300 "${cmd[@]}" || status=1
  case "$(basename "$runtime")" in
    deno) cjs=("$runtime" run -A require.cjs) ;;
    *) cjs=("$runtime" require.cjs) ;;
  esac
  timeout 60 "${cjs[@]}" || status=1
done
exit $status
