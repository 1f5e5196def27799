#!/bin/sh
# no_sites.sh CLANG LIBERRINJ_A OUT - builds no_sites.c with clang's UBSan against the static
# library and runs it. Exit 0: clean; 1: UBSan report; 77: could not build (skipped).
set -u
clang=$1 lib=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
"$clang" -std=gnu11 -fsanitize=undefined -fno-sanitize-recover=undefined -I"$here/../../include" \
    "$here/no_sites.c" "$lib" $(pkg-config --libs libmicrohttpd jansson) -lpthread -o "$out/no_sites" || exit 77
"$out/no_sites"
