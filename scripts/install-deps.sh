#!/usr/bin/env bash
# Installs the system packages hero needs (`make run`: git bwrap, where bwrap
# also brings slirp4netns, iproute2 and e2fsprogs) and its
# tests need (`make test`) when they are missing.
# Idempotent: a machine that already has them is left alone. Needs root
# (or sudo) only when something is actually missing.
#
#   scripts/install-deps.sh [bwrap] [mariadb] [chromium] [git] [image]   (default: git bwrap mariadb)
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(git bwrap mariadb)

pkgs=()
for w in "${want[@]}"; do
  case "$w" in
    git)      command -v git >/dev/null || pkgs+=(git) ;;
    bwrap)    command -v bwrap >/dev/null || pkgs+=(bubblewrap)
              # mkfs.ext4: kernel-enforced disk limits (loop-mounted sandbox volumes)
              [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || pkgs+=(e2fsprogs)
              # the user-mode network of sandboxes allowed network (installs)
              command -v slirp4netns >/dev/null || [ -x /usr/bin/slirp4netns ] || pkgs+=(slirp4netns)
              [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /usr/bin/ip ] || pkgs+=(iproute2)
              [ -x /usr/bin/nsenter ] || [ -x /bin/nsenter ] || pkgs+=(util-linux) ;;
    mariadb)  { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; } || pkgs+=(mariadb-server) ;;
    chromium) command -v chromium >/dev/null || pkgs+=(chromium) ;;
    # `make image-check`: build and run the container image without Docker.
    image)    command -v buildah >/dev/null || pkgs+=(buildah)
              command -v podman >/dev/null || pkgs+=(podman)
              command -v runc >/dev/null || [ -x /usr/sbin/runc ] || pkgs+=(runc)
              [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null || pkgs+=(debootstrap)
              command -v curl >/dev/null || pkgs+=(curl) ;;
    *) echo "install-deps: unknown component $w" >&2; exit 2 ;;
  esac
done
[ ${#pkgs[@]} -gt 0 ] || exit 0

echo "install-deps: installing ${pkgs[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: ${pkgs[*]} missing and this is not root (and there is no sudo): run as root: apt-get install ${pkgs[*]}" >&2
    exit 1
  fi
  sudo="sudo"
fi
if ! command -v apt-get >/dev/null; then
  echo "install-deps: ${pkgs[*]} missing and there is no apt-get here: install them with this system's package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# The Debian mariadb-server package tries to start a system service; the
# tests start their own server, so keep it from starting one here.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
