#!/usr/bin/env bash
# Prints the path of a FerretDB v1.24.2 binary, building it once into a cache folder.
# A plain `go install …@v1.24.2` binary panics at start ("Invalid build/version/version.txt"):
# the release build writes that file, so we build from the module source with it in place.
set -euo pipefail
VERSION=v1.24.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/changeledger/ferretdb-$VERSION"
if [ ! -x "$CACHE/ferretdb" ]; then
  SRC="$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$SRC" ] || { echo "could not download FerretDB $VERSION" >&2; exit 1; }
  WORK="$(mktemp -d)"
  cp -r "$SRC/." "$WORK/"
  chmod -R u+w "$WORK"
  echo "$VERSION" > "$WORK/build/version/version.txt"
  mkdir -p "$CACHE"
  (cd "$WORK" && go build -o "$CACHE/ferretdb" ./cmd/ferretdb) >&2
  rm -rf "$WORK"
fi
echo "$CACHE/ferretdb"
