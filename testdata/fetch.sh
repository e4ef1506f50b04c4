#!/usr/bin/env bash
# testdata/fetch.sh [--check] DEST
#
# Fills DEST with the public test data sets the tests read (VISAGE_TESTDATA) and verifies every
# file against testdata/manifest.sha256. A local mirror (TESTDATA_MIRROR, e.g. ../shared/testdata)
# is tried first, then each set's public source (testdata/README.md). A file whose SHA-256 does
# not match is deleted, never used.
#
# --check only says which sets are missing from DEST and how to get them (existence, no hashing:
# it runs before every `make test`); it exits 1 for missing data only when
# VISAGE_REQUIRE_TESTDATA=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
manifest="$here/manifest.sha256"
mode=fetch
if [ "${1:-}" = --check ]; then mode=check; shift; fi
dest=${1:?usage: testdata/fetch.sh [--check] DEST}
sets="lfw-view1 nuaa-train pointing04 replay samples video webhooks"

# How to get each set when no mirror has it.
how() {
  case $1 in
    lfw-view1) echo "downloaded by this script from the LFW site (deep-funneled images and the View 1 pair lists)" ;;
    pointing04) echo "downloaded by this script from the Pointing'04 page at INRIA (persons 01-10; labels.csv is derived from the file names)" ;;
    samples) echo "downloaded by this script from minivision-ai/Silent-Face-Anti-Spoofing (Apache-2.0)" ;;
    nuaa-train) echo "NUAA Photograph Imposter Database: request it from its authors (X. Tan et al., ECCV 2010); the set is subjects 0001-0009 of the training split, every fifth image; copy it to $dest/nuaa-train" ;;
    replay|video) echo "recordings by the authors of Apfol/liveness-detection-opencv and tranvanluyt2203/face_anti_spoofing, for internal testing only: not redistributed; get the team's copy (../shared/testdata/$1) and point TESTDATA_MIRROR at it" ;;
    webhooks) echo "signature vectors made by the team: take ../shared/testdata/webhooks (TESTDATA_MIRROR)" ;;
  esac
}

# missing_in SET: manifest files of SET absent from DEST.
present() { [ -d "$dest" ] && (cd "$dest" && find . -type f | sed 's#^\./##') || true; }
missing_in() { awk -v s="$1/" 'FILENAME == ARGV[1] {p[$0] = 1; next} index($2, s) == 1 && !($2 in p) {print $2}' <(present) "$manifest"; }

report() {
  local any=0 n total
  for s in $sets; do
    total=$(awk -v s="$s/" 'index($2, s) == 1' "$manifest" | wc -l)
    n=$(missing_in "$s" | wc -l)
    if [ "$n" -gt 0 ]; then
      any=1
      echo "testdata: $s: $n of $total files missing from $dest: $(how "$s")" >&2
    fi
  done
  return $any
}

if [ "$mode" = check ]; then
  if report; then exit 0; fi
  echo "testdata: tests that need the missing sets are skipped; run 'make testdata' (TESTDATA_MIRROR=DIR tries a copy first), or set VISAGE_TESTDATA" >&2
  if [ "${VISAGE_REQUIRE_TESTDATA:-}" = 1 ]; then
    echo "testdata: VISAGE_REQUIRE_TESTDATA=1: missing test data is an error" >&2
    exit 1
  fi
  exit 0
fi

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

# verify: delete every present file whose hash is wrong; exit status 1 if any was.
verify() {
  local bad=0
  awk 'FILENAME == ARGV[1] {p[$0] = 1; next} $2 in p' <(present) "$manifest" >"$dest/.present.sha256"
  if ! (cd "$dest" && sha256sum --quiet -c .present.sha256 >"$dest/.verify.log" 2>&1); then
    grep ': FAILED' "$dest/.verify.log" | sed 's/: FAILED.*//' | while read -r f; do
      echo "testdata: $f: SHA-256 mismatch, deleted" >&2
      rm -f "$dest/$f"
    done
    bad=1
  fi
  rm -f "$dest/.present.sha256" "$dest/.verify.log"
  return $bad
}
verify || true

# 1. The mirror: copy what DEST lacks (or held with a wrong hash, deleted just above).
if [ -n "${TESTDATA_MIRROR:-}" ] && [ -d "$TESTDATA_MIRROR" ]; then
  mirror=$(cd "$TESTDATA_MIRROR" && pwd)
  if [ "$mirror" != "$dest" ]; then
    for s in $sets; do missing_in "$s"; done >"$dest/.want"
    awk 'FILENAME == ARGV[1] {p[$0] = 1; next} $0 in p' <(cd "$mirror" && find . -type f | sed 's#^\./##') "$dest/.want" >"$dest/.copy"
    if [ -s "$dest/.copy" ]; then
      (cd "$mirror" && tar -cf - -T "$dest/.copy") | (cd "$dest" && tar -xf - --no-same-owner --no-same-permissions)
    fi
    rm -f "$dest/.want" "$dest/.copy"
  fi
fi
verify || true

# 2. Public sources for what is still missing.
get() { # URL FILE
  if command -v curl >/dev/null; then curl -fsSL --retry 2 -o "$2" "$1"; else wget -q -O "$2" "$1"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$(missing_in lfw-view1 | head -1)" ]; then
  echo "testdata: lfw-view1: fetching from the LFW site" >&2
  if get http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz "$tmp/lfw.tgz" &&
     get http://vis-www.cs.umass.edu/lfw/pairsDevTrain.txt "$tmp/pairsDevTrain.txt" &&
     get http://vis-www.cs.umass.edu/lfw/pairsDevTest.txt "$tmp/pairsDevTest.txt"; then
    mkdir -p "$dest/lfw-view1/images"
    cp "$tmp"/pairsDev*.txt "$dest/lfw-view1/"
    missing_in lfw-view1 | sed -n 's#^lfw-view1/images/#lfw-deepfunneled/#p' >"$tmp/want"
    tar -xzf "$tmp/lfw.tgz" -C "$tmp" -T "$tmp/want"
    (cd "$tmp/lfw-deepfunneled" && cp -r . "$dest/lfw-view1/images/")
  else
    echo "testdata: lfw-view1: download failed" >&2
  fi
fi
if [ -n "$(missing_in pointing04 | head -1)" ]; then
  echo "testdata: pointing04: fetching from INRIA" >&2
  if get http://www-prima.inrialpes.fr/perso/Gourier/Faces/HeadPoseImageDatabase.tar.gz "$tmp/hp.tgz"; then
    mkdir -p "$tmp/hp" "$dest/pointing04"
    tar -xzf "$tmp/hp.tgz" -C "$tmp/hp"
    for p in 01 02 03 04 05 06 07 08 09 10; do
      src=$(find "$tmp/hp" -type d -name "Person$p" | head -1)
      [ -n "$src" ] && cp -r "$src" "$dest/pointing04/"
    done
    readme=$(find "$tmp/hp" -name README.txt | head -1)
    [ -n "$readme" ] && cp "$readme" "$dest/pointing04/README.txt"
    (cd "$dest/pointing04" && {
      echo "path,person,series,number,tilt_deg,pan_deg"
      for d in Person*; do LC_ALL=C ls "$d"/*.jpg; done |
        sed -E 's#^(Person[0-9]+)/person([0-9]{2})([0-9])([0-9]{2})([+-][0-9]+)([+-][0-9]+)\.jpg$#\1/person\2\3\4\5\6.jpg,\2,\3,\4,\5,\6#' |
        awk -F, 'BEGIN{OFS=","}{$5=$5+0;$6=$6+0;print}'
    } | sed 's/$/\r/' >labels.csv)
  else
    echo "testdata: pointing04: download failed" >&2
  fi
fi
if [ -n "$(missing_in samples | head -1)" ]; then
  echo "testdata: samples: fetching from Silent-Face-Anti-Spoofing" >&2
  mkdir -p "$dest/samples"
  missing_in samples | while read -r f; do
    if get "https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/master/images/sample/${f#samples/}" "$tmp/sample"; then
      mv "$tmp/sample" "$dest/$f"
    else
      echo "testdata: $f: download failed" >&2
    fi
  done
fi

verify || true
if report; then
  echo "testdata: all $(wc -l <"$manifest") files present in $dest and verified" >&2
  exit 0
fi
exit 1
