#!/usr/bin/env bash
# Runs a command in a Debian 13 environment that has Orthanc >= 1.12, its plugin SDK
# and framework, libnode and DCMTK.
#
#   scripts/debian13.sh [--private-network] [--] COMMAND [ARG...]
#
# Native mode: a host that already has every tool runs COMMAND directly.
# Sandbox mode: anywhere else (Debian 12), a Debian 13 root filesystem is built once with
# mmdebstrap, cached under /var/cache keyed by its package list, and COMMAND runs inside it
# with the checkout bind-mounted at the same path, in private mount and pid namespaces
# (and a private loopback-only network with --private-network). Every mount and process
# dies with the namespaces.
#
# MTD_ENVIRONMENT=native|sandbox forces a mode.
#
# Test runs (--private-network), as root, also get MTD_CLEAN_ROOTFS: a second, minimal
# Debian 13 root filesystem (the "clean environment" of test/package/debian-package.test.ts),
# built once with mmdebstrap and cached beside the sandbox, keyed by its own package list.
# In sandbox mode it is bind-mounted read-only at /mnt/mtd-clean-rootfs; on a native host it
# is the cached directory itself. Tests copy it and never write into it.
set -euo pipefail

packages=(
  orthanc orthanc-dev liborthancframework-dev libnode-dev nodejs npm
  g++ cmake make python3 dcmtk libdcmtk-dev
  libjsoncpp-dev libboost-thread-dev libboost-filesystem-dev libboost-locale-dev
  libboost-iostreams-dev libboost-regex-dev libboost-date-time-dev
  libpugixml-dev uuid-dev libssl-dev libpng-dev libjpeg-dev zlib1g-dev
  iproute2 procps curl ca-certificates openssl
  postgresql orthanc-postgresql chromium-headless-shell
)

private_network=0
while [ $# -gt 0 ]; do
  case "$1" in
    --private-network) private_network=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--private-network] [--] COMMAND [ARG...]" >&2; exit 2; }

project_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=${MTD_SANDBOX_CACHE:-/var/cache/orthanc-multitenant-dicom}

# Package triggers (procps, pulled by postgresql) run `sysctl --system`: with the host's
# /proc that would change the host kernel's settings. While mmdebstrap installs packages,
# sysctl is diverted to true (essential hook), and restored afterwards (customize hook).
sysctl_divert_hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/sysctl && ln -s /bin/true "$1/usr/sbin/sysctl"'
sysctl_restore_hook='rm "$1/usr/sbin/sysctl" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/sysctl'

# The clean environment: Debian's orthanc (with its stock MultitenantDicom plugin) and
# nothing of this project, for the test that installs our .deb into a copy of it.
# libnode115 is there only so that the package's Depends are satisfied offline (tests have
# no network); orthanc's own .deb is kept in /root/debs so that the test can reinstall it
# over our diversion. Everything else the test uses (echoscu, curl) runs outside it.
clean_packages=(orthanc libnode115)
clean_key=$(printf '%s\n' "${clean_packages[@]}" | sha256sum | cut -c1-16)
clean_rootfs="$cache_dir/clean-trixie-$clean_key"
clean_rootfs_mountpoint=/mnt/mtd-clean-rootfs

install_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return 0
  echo "debian13.sh: installing mmdebstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
}

build_clean_rootfs() {
  [ "$(id -u)" = 0 ] || return 0  # the test says why it is skipped
  mkdir -p "$cache_dir"
  exec 8>"$cache_dir/.lock"
  flock 8
  if [ ! -f "$clean_rootfs/.complete" ]; then
    install_mmdebstrap
    local started=$SECONDS partial="$clean_rootfs.partial"
    rm -rf "$partial"
    echo "debian13.sh: building the clean Debian 13 environment in $clean_rootfs (once)" >&2
    mmdebstrap --quiet --variant=apt --include="$(IFS=,; echo "${clean_packages[*]}")" \
      --essential-hook="$sysctl_divert_hook" \
      --customize-hook='mkdir -p "$1/root/debs" && cp "$1"/var/cache/apt/archives/orthanc_*.deb "$1/root/debs/"' \
      --customize-hook="$sysctl_restore_hook" \
      trixie "$partial" >&2
    touch "$partial/.complete"
    mv "$partial" "$clean_rootfs"
    echo "debian13.sh: clean environment built in $((SECONDS - started)) s" >&2
    # Older clean environments (another package list) are no longer used.
    find "$cache_dir" -mindepth 1 -maxdepth 1 -type d -name 'clean-trixie-*' ! -path "$clean_rootfs" \
      -exec rm -rf {} + || true
  fi
  exec 8>&-
}

has_native_tools() {
  [ -f /usr/include/orthanc/OrthancCPlugin.h ] &&
    [ -f /usr/lib/libOrthancFramework.a ] &&
    [ -f /usr/include/node/node.h ] &&
    [ -f /usr/share/orthanc/plugins/libMultitenantDicom.so ] &&
    [ -f /usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so ] &&
    [ -x /usr/lib/postgresql/17/bin/initdb ] &&
    command -v chromium-headless-shell >/dev/null && command -v openssl >/dev/null &&
    command -v Orthanc >/dev/null && command -v storescu >/dev/null &&
    command -v cmake >/dev/null && command -v g++ >/dev/null
}

# Already inside (nested npm scripts), or on a host with everything: run as is.
if [ "${MTD_IN_DEBIAN13:-}" = 1 ] ||
   { [ "${MTD_ENVIRONMENT:-}" != sandbox ] && has_native_tools; }; then
  if [ "${MTD_IN_DEBIAN13:-}" != 1 ] && [ "$private_network" = 1 ]; then
    build_clean_rootfs
    [ -f "$clean_rootfs/.complete" ] && export MTD_CLEAN_ROOTFS="$clean_rootfs"
  fi
  export MTD_IN_DEBIAN13=1
  if [ "$private_network" = 1 ] && [ "$(id -u)" = 0 ] && [ -z "${MTD_NETWORK_PRIVATE:-}" ]; then
    export MTD_NETWORK_PRIVATE=1
    exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
  fi
  exec "$@"
fi
if [ "${MTD_ENVIRONMENT:-}" = native ]; then
  echo "debian13.sh: MTD_ENVIRONMENT=native, but this host lacks Orthanc >= 1.12, orthanc-dev," \
       "liborthancframework-dev, libnode-dev or dcmtk" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "debian13.sh: sandbox mode needs root (mmdebstrap, mount and pid namespaces)" >&2
  exit 1
fi

key=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)
rootfs="$cache_dir/trixie-$key"

# Under the cache's lock, released before build_clean_rootfs takes it again (through
# another descriptor, which a held lock would block for ever).
build_rootfs() {
  mkdir -p "$cache_dir"
  exec 9>"$cache_dir/.lock"
  flock 9
  [ -f "$rootfs/.complete" ] || build_rootfs_locked
  exec 9>&-
}

build_rootfs_locked() {
  install_mmdebstrap
  local started=$SECONDS partial="$rootfs.partial"
  rm -rf "$partial"
  echo "debian13.sh: building the Debian 13 sandbox in $rootfs (about a minute, once)" >&2
  local include
  include=$(IFS=,; echo "${packages[*]}")
  mmdebstrap --quiet --variant=apt --include="$include" \
    --essential-hook="$sysctl_divert_hook" --customize-hook="$sysctl_restore_hook" \
    trixie "$partial" >&2
  touch "$partial/.complete"
  mv "$partial" "$rootfs"
  echo "debian13.sh: sandbox built in $((SECONDS - started)) s" >&2
  # Older sandboxes (another package list) are no longer used.
  find "$cache_dir" -mindepth 1 -maxdepth 1 -type d -name 'trixie-*' ! -path "$rootfs" -exec rm -rf {} + || true
}
[ -f "$rootfs/.complete" ] || build_rootfs
clean_mount=
if [ "$private_network" = 1 ]; then
  build_clean_rootfs
  [ -f "$clean_rootfs/.complete" ] && clean_mount=$clean_rootfs
fi

unshare_flags=(--mount --propagation private --pid --fork --kill-child)
[ "$private_network" = 1 ] && unshare_flags+=(--net)

env_vars=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
          HOME=/tmp/home LANG=C.UTF-8 MTD_IN_DEBIAN13=1 "TERM=${TERM:-dumb}")
while IFS='=' read -r name _; do
  case "$name" in
    MTD_CLEAN_ROOTFS) ;;
    CI|TCP_NODELAY|MTD_*|VITEST_*) env_vars+=("$name=${!name}") ;;
  esac
done < <(env)
[ "$private_network" = 1 ] && env_vars+=(MTD_NETWORK_PRIVATE=1)
[ -n "$clean_mount" ] && env_vars+=("MTD_CLEAN_ROOTFS=$clean_rootfs_mountpoint")

exec unshare "${unshare_flags[@]}" -- /bin/bash -c '
  set -e
  rootfs=$1 project=$2 cwd=$3 private_network=$4 clean=$5 clean_at=$6 env_count=$7; shift 7
  env_vars=("${@:1:$env_count}"); shift "$env_count"
  mount -t proc proc "$rootfs/proc"
  mount --rbind /dev "$rootfs/dev"
  mount --rbind /sys "$rootfs/sys"
  mount -t tmpfs -o mode=1777 tmpfs "$rootfs/tmp"
  mkdir -p "$rootfs$project"
  mount --bind "$project" "$rootfs$project"
  if [ -n "$clean" ]; then
    mkdir -p "$rootfs$clean_at"
    mount --bind "$clean" "$rootfs$clean_at"
    mount -o remount,bind,ro "$rootfs$clean_at"
  fi
  exec chroot "$rootfs" /usr/bin/env -i "${env_vars[@]}" /bin/bash -c "
    mkdir -p /tmp/home
    if [ $private_network = 1 ]; then ip link set lo up; fi
    cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' debian13 "$rootfs" "$project_dir" "$PWD" "$private_network" "$clean_mount" "$clean_rootfs_mountpoint" \
  "${#env_vars[@]}" "${env_vars[@]}" "$@"
