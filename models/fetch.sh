#!/usr/bin/env bash
# Fetches every file in models/manifest.tsv into WEIGHTS_DIR and verifies its SHA-256.
# Usage: models/fetch.sh [WEIGHTS_DIR]   (default: models/weights)
# MODELS_MIRROR=DIR, when set, is tried first: DIR/<dest> is used if its checksum matches.
# A file already present with the right checksum is kept; a wrong one is replaced.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/weights}
mirror=${MODELS_MIRROR:-}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sum() { sha256sum "$1" | cut -d' ' -f1; }

fetch_npm() { # spec path-in-tarball dest
  local spec=$1 inner=$2 dest=$3 pkgdir="$tmp/npm/${1//[@\/]/_}"
  if [ ! -d "$pkgdir" ]; then
    mkdir -p "$pkgdir"
    (cd "$pkgdir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  fi
  cp "$pkgdir/$inner" "$dest"
}

status=0
while IFS=$'\t' read -r dest want src _lic; do
  case "$dest" in ''|'#'*) continue ;; esac
  target="$out/$dest"
  mkdir -p "$(dirname "$target")"
  if [ -f "$target" ] && [ "$(sum "$target")" = "$want" ]; then
    echo "ok       $dest"; continue
  fi
  got=""
  if [ -n "$mirror" ] && [ -f "$mirror/$dest" ]; then
    if [ "$(sum "$mirror/$dest")" = "$want" ]; then
      cp "$mirror/$dest" "$target.part" && got=mirror
    else
      echo "mirror   $dest: checksum mismatch, ignoring the mirror copy" >&2
    fi
  fi
  if [ -z "$got" ]; then
    case "$src" in
      npm:*) rest=${src#npm:}; spec=${rest%%:*}; inner=${rest#*:}
             fetch_npm "$spec" "$inner" "$target.part" && got=$spec ;;
      https://*) curl -fsSL --retry 2 -o "$target.part" "$src" && got=url ;;
    esac || true
  fi
  if [ -z "$got" ] || [ ! -f "$target.part" ]; then
    echo "FAILED   $dest: could not fetch from ${mirror:+mirror or }$src" >&2; status=1; continue
  fi
  have=$(sum "$target.part")
  if [ "$have" != "$want" ]; then
    echo "FAILED   $dest: sha256 $have, want $want" >&2; rm -f "$target.part"; status=1; continue
  fi
  mv "$target.part" "$target"
  echo "fetched  $dest ($got)"
done < "$here/manifest.tsv"
exit $status
