#!/usr/bin/env bash
# Builds hero's image from deploy/docker/Dockerfile without a Docker daemon
# (buildah, chroot isolation) and runs it with podman the way an operator
# would start it (`make image-check`):
#   - `hero version` prints the version stamped at build time;
#   - `hero serve` with the image's defaults answers /healthz and /readyz on
#     the published port 8080, runs as the non-root user, and the image's
#     HEALTHCHECK passes;
#   - with the security_opt of compose.yaml's local-sandbox profile, /readyz
#     reports a working bubblewrap sandbox.
#
# Needs root on Debian or Ubuntu: it installs buildah, podman, runc and
# debootstrap when missing. No container registry is needed: a base image the
# Dockerfile names that is neither here nor pullable is made locally —
# debian:<suite>-slim with debootstrap (minbase) from the Debian mirror, and
# golang:<version>-<suite> from it plus this machine's Go toolchain (which must
# be that version) and CA certificates (a proxy's own CA included). The first
# run takes a few minutes; later ones reuse the base images and build layers.
#
#   scripts/image-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

image=localhost/hero:check
# The image's HEALTHCHECK probes 127.0.0.1:8080, and the containers share
# the host's network namespace: port 8080 on loopback must be free.
port=8080
mirror=${HERO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
dockerfile=deploy/docker/Dockerfile
version="check-$(git describe --tags --always --dirty 2>/dev/null || echo dev)"

say() { echo "image-check: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (buildah and podman store images in /var/lib/containers): sudo make image-check"
scripts/install-deps.sh image

# The container runtime may not raise resource limits (no CAP_SYS_RESOURCE in
# some VMs and containers), and crun refuses cgroup v1 hybrid setups: run with
# runc and limits no higher than this shell's.
# The HEALTHCHECK is run by hand below, not by a timer.
run_opts=(--runtime runc --ulimit "nofile=4096:4096" --ulimit "nproc=4096:4096" --health-interval disable)

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# debian:<suite>-slim from debootstrap.
make_debian() { # name suite
  local dir ctr
  dir=$(mktemp -d /var/tmp/hero-image-check.XXXXXX)
  say "making $1 with debootstrap --variant=minbase $2 (no registry reachable)"
  debootstrap --variant=minbase "$2" "$dir/rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
    { tail -20 "$dir/debootstrap.log" >&2; die "debootstrap $2 failed (log above)"; }
  tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$dir/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
  buildah commit -q "$ctr" "docker.io/library/$1" >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$dir"
}

# golang:<version>-<suite>: Debian plus this machine's Go toolchain.
make_golang() { # name version suite
  local goroot ctr have
  have=$(go env GOVERSION)
  case "$have" in
    "go$2" | "go$2".*) ;;
    *) die "$1 cannot be pulled, and this machine's Go is $have, not $2: install Go $2 or make $1 available" ;;
  esac
  ensure "debian:$3-slim"
  goroot=$(go env GOROOT)
  say "making $1 from debian:$3-slim and $goroot ($have)"
  ctr=$(buildah from --pull-never "docker.io/library/debian:$3-slim")
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    buildah copy "$ctr" /usr/local/share/ca-certificates /usr/local/share/ca-certificates >/dev/null
  fi
  buildah run --isolation chroot "$ctr" -- sh -c 'apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates git >/dev/null &&
    rm -rf /var/lib/apt/lists/*'
  buildah copy "$ctr" "$goroot" /usr/local/go >/dev/null
  buildah config --env GOPATH=/go --env GOTOOLCHAIN=local \
    --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --workingdir /go "$ctr"
  buildah commit -q "$ctr" "docker.io/library/$1" >/dev/null
  buildah rm "$ctr" >/dev/null
}

ensure() { # a base image as the Dockerfile names it
  local name=$1
  have_image "$name" && return
  buildah pull -q "$name" >/dev/null 2>&1 && return
  case "$name" in
    debian:*-slim) local suite=${name#debian:}; make_debian "$name" "${suite%-slim}" ;;
    golang:*-*) local tag=${name#golang:}; make_golang "$name" "${tag%%-*}" "${tag#*-}" ;;
    *) die "the base image $name can be neither pulled nor made here" ;;
  esac
}

for base in $(awk 'toupper($1) == "FROM" { print $2 }' "$dockerfile"); do
  ensure "$base"
done

say "building $image from $dockerfile (VERSION=$version)"
start=$SECONDS
# docker format: OCI images drop HEALTHCHECK.
buildah bud --isolation chroot --pull-never --layers --format docker -q \
  -f "$dockerfile" --build-arg "VERSION=$version" -t "$image" . >/dev/null
say "built in $((SECONDS - start)) s"

# remove name: kill first; `podman rm -f` alone has left a running
# container behind when its network namespace could not be torn down.
remove() {
  podman kill "$1" >/dev/null 2>&1 || true
  podman rm -f "$1" >/dev/null 2>&1 || true
  ! podman container exists "$1" || say "warning: could not remove the container $1: podman rm -f $1"
}
# prun: podman run; without systemd, podman logs an error for the
# HEALTHCHECK timer it cannot make (the check is run by hand below), so its
# messages are shown only when the run fails.
prun() {
  local err rc=0
  err=$(mktemp)
  podman run "$@" 2>"$err" || rc=$?
  [ $rc -eq 0 ] || cat "$err" >&2
  rm -f "$err"
  return $rc
}
containers=()
cleanup() { for c in "${containers[@]}"; do remove "$c"; done; }
trap cleanup EXIT

out=$(prun --rm "${run_opts[@]}" "$image" version)
[[ "$out" == *"$version"* ]] || die "hero version printed \"$out\", want the stamped $version"
say "ok: hero version: $out"

# wait_http url: the body once it answers 200, within 60 s.
wait_http() {
  local body
  for _ in $(seq 120); do
    if body=$(curl -fsS -m 2 "$1" 2>/dev/null); then
      printf '%s' "$body"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# serve name [podman options…]: starts `hero serve` as the image does by
# default, in the host's network namespace on 127.0.0.1:$port (a published
# port goes through the container network's NAT, which proved flaky here;
# the image's own HERO_ADDR is checked from its configuration).
serve() {
  local name=$1
  shift
  if podman container exists "$name"; then remove "$name"; fi
  containers+=("$name")
  prun -d --name "$name" "${run_opts[@]}" --network host -e "HERO_ADDR=127.0.0.1:$port" "$@" "$image" >/dev/null
  wait_http "http://127.0.0.1:$port/healthz" >/dev/null ||
    { podman logs "$name" >&2 || true; die "$name: /healthz did not answer within 60 s (logs above)"; }
}

config=$(podman image inspect --format '{{json .Config.Env}} {{json .Config.User}} {{json .Config.Volumes}}' "$image")
for want in '"HERO_ADDR=0.0.0.0:8080"' '"HERO_DATA_DIR=/data"' '"hero"' '"/data"'; do
  [[ "$config" == *"$want"* ]] || die "the image's configuration lacks $want: $config"
done
say "ok: the image sets HERO_ADDR=0.0.0.0:8080, HERO_DATA_DIR=/data (a volume) and USER hero"

if curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/"; then
  die "something already listens on 127.0.0.1:$port; stop it first (the image's HEALTHCHECK probes that port)"
fi
serve hero-image-check
[ "$(curl -fsS "http://127.0.0.1:$port/healthz")" = ok ] || die "/healthz does not say ok"
curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || die "/readyz is not 200"
uid=$(podman exec hero-image-check id -u)
[ "$uid" != 0 ] || die "hero runs as root in the image"
podman healthcheck run hero-image-check || die "the image's HEALTHCHECK fails"
say "ok: hero serve answers /healthz and /readyz as uid $uid; the image's HEALTHCHECK passes"
remove hero-image-check

# The local-sandbox profile's settings, read from compose.yaml.
opts=()
for o in $(awk '/^  hero-local-1:/ { s = 1 } s && /security_opt:/ { gsub(/[][",]/, " "); for (i = 2; i <= NF; i++) print $i; exit }' deploy/compose.yaml); do
  opts+=(--security-opt "$o")
done
[ ${#opts[@]} -gt 0 ] || die "found no security_opt for hero-local-1 in deploy/compose.yaml"
serve hero-image-check-local -e HERO_SANDBOX=local "${opts[@]}"
ready=$(curl -fsS "http://127.0.0.1:$port/readyz")
[[ "$ready" == *"sandbox: ok"* ]] || die "with compose's local-sandbox settings (${opts[*]}) the sandbox does not work; /readyz says:
$ready"
say "ok: with ${opts[*]} /readyz reports a working bubblewrap sandbox"
say "passed"
