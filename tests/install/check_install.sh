#!/usr/bin/env bash
# Installs the build into a scratch prefix, as `cmake --install` would for a user, then builds
# examples/hello.c (every call-site form) with nothing but `pkg-config --cflags --libs errinj`,
# shared, and liberrinj.a with its dependencies shared, and runs both. Checks the installed layout of SPEC section 8 too.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d /tmp/errinj-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/errinj.h lib/liberrinj.so lib/liberrinj.a lib/pkgconfig/errinj.pc bin/errinjctl; do
  [[ -e $prefix/$f ]] || { echo "missing after install: $f"; exit 1; }
done
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc=${CC:-cc}
"$cc" -std=c11 -Wall -Wextra -Werror -o "$prefix/hello" "$src/examples/hello.c" $(pkg-config --cflags --libs errinj)
LD_LIBRARY_PATH=$prefix/lib "$prefix/hello" >"$prefix/hello.out"
grep -q '"injection":"hello_' "$prefix/hello.out" || grep -q 'hello_' "$prefix/hello.out" || {
  echo "hello printed no events"; cat "$prefix/hello.out"; exit 1; }
"$cc" -std=c11 -Wall -Wextra -Werror -o "$prefix/hello-static" "$src/examples/hello.c" \
  $(pkg-config --cflags errinj) "$prefix/lib/liberrinj.a" $(pkg-config --libs libmicrohttpd jansson) -lpthread
"$prefix/hello-static" >/dev/null
"$prefix/bin/errinjctl" --help >/dev/null
echo "installed layout and pkg-config build: ok"
