#!/bin/sh
# Runs inside the Dockerfile's build stage: cargo build of the product and stand-in binaries
# into /out/product and /out/fakes, with target/ a cache mount shared by every build.
#
#   CARGO_PROFILE=release PRODUCT_BINARIES="..." FAKE_BINARIES="..." scripts/container-build.sh
#
# Cargo decides what to rebuild by comparing file times, and a shared target/ sees many source
# trees: a checkout whose files are older than the last build (another clone, a worktree)
# would get the previous tree's binaries without a word. So before building, every file whose
# content is the same as at the last successful build of this profile is dated in the past,
# and every file that changed or is new is dated now: cargo then rebuilds exactly what changed.
set -eu
export LC_ALL=C
cd /src
profile=${CARGO_PROFILE:?}
hashes="target/$profile/.source-hashes"

sources() { find . -path ./target -prune -o -type f -print0; }
sources | sort -z | xargs -0 sha256sum >/tmp/source-hashes
if [ -f "$hashes" ]; then
  sources | xargs -0 touch -d @1
  # sha256sum prints 64 hex digits and two spaces before the path.
  sort "$hashes" >/tmp/built-hashes
  sort /tmp/source-hashes | comm -13 /tmp/built-hashes - | cut -c67- | while IFS= read -r changed; do
    touch "$changed"
  done
else
  sources | xargs -0 touch
fi

# One invocation for both lists, so shared crates are compiled once.
binaries=$(for b in $PRODUCT_BINARIES $FAKE_BINARIES; do printf -- '--bin %s ' "$b"; done)
# shellcheck disable=SC2086
cargo build --profile "$profile" --locked $binaries
cp /tmp/source-hashes "$hashes"

mkdir -p /out/product /out/fakes
for b in $PRODUCT_BINARIES; do cp "target/$profile/$b" /out/product/; done
for b in $FAKE_BINARIES; do cp "target/$profile/$b" /out/fakes/; done
