#!/usr/bin/env bash
# Prepares, without a registry, every public image compose.yaml and the Dockerfile name:
#   debian:bookworm-slim             debootstrap (minbase) from the mirror apt already uses,
#                                    with the machine's CAs from /usr/local/share/ca-certificates
#   postgres, rabbitmq, redis        scripts/compose/images/*/Containerfile, Debian's packages
#   rust builder                     the machine's own toolchain, without its docs
# each tagged with the name the files expect (see scripts/compose/images/README.md).
#
#   scripts/compose/images.sh        (CONTAINERS_CONF as scripts/compose/podman.sh sets it)
#
# Cached between runs: the base image is made again only when this script changed; the others
# are podman builds whose layers are reused, and the toolchain is copied again only when
# `rustc --version` changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
images=scripts/compose/images

say() { printf '[images] %s\n' "$*"; }

base=localhost/debian:bookworm-slim
# The base is made again when this script changes (its hash is the image's label).
recipe=$(sha256sum "$0" | cut -c1-16)
if [ "$(podman image inspect --format '{{index .Labels "io.steadfast.recipe"}}' "$base" 2>/dev/null)" = "$recipe" ]; then
  say "$base: present"
else
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /^http/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/steadfast-debootstrap.XXXXXX)
  say "$base: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log"; rm -rf "$root"; exit 1; }
  # As slim as the official image: no package archives left by debootstrap, and dpkg told
  # to skip documentation, manuals and translations of whatever is installed later.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
  # The machine's own CAs (e.g. of a TLS-inspecting proxy between it and crates.io), as a
  # company's base image carries them; trusted wherever the image installs ca-certificates.
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  tar -C "$root" -c . | podman import --change "LABEL io.steadfast.recipe=$recipe" - "$base" >/dev/null 2>&1
  rm -rf "$root" "$root.log"
fi

# The Dockerfile's runtime stage starts from the official name.
podman tag "$base" docker.io/library/debian:bookworm-slim

# build DIR TAG: a podman build of scripts/compose/images/DIR, quiet unless it fails.
build() {
  local dir=$1 tag=$2 context=${3:-$images/$1} log
  log=$(mktemp)
  if podman build --layers -t "localhost/steadfast-stand-in-$dir" -f "$images/$dir/Containerfile" "$context" >"$log" 2>&1; then
    podman tag "localhost/steadfast-stand-in-$dir" "$tag"
    say "$tag: built ($(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) )"
  else
    tail -30 "$log"
    say "$tag: build failed"
    return 1
  fi
  rm -f "$log"
}

build postgres docker.io/library/postgres:16
build rabbitmq docker.io/library/rabbitmq:3.13-management
build redis docker.io/library/redis:7

# The Rust builder: the toolchain is 600 MB, so its context is kept (outside the repository)
# and refreshed only when the toolchain changed.
rust_tag=docker.io/library/rust:1.95-bookworm
toolchain_context=/var/tmp/steadfast-rust-builder
version=$(rustc --version)
if [ "$(cat "$toolchain_context/version" 2>/dev/null)" != "$version" ]; then
  say "$rust_tag: copying the toolchain ($version)"
  rm -rf "$toolchain_context"
  mkdir -p "$toolchain_context"
  sysroot=$(rustc --print sysroot)
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$toolchain_context" --one-top-level=toolchain -x
  echo "$version" >"$toolchain_context/version"
fi
build rust "$rust_tag" "$toolchain_context"
