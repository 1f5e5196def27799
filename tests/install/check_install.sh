#!/usr/bin/env bash
# Installs the build into a scratch prefix, as `cmake --install` would for a user, then builds
# examples/hello.c (every call-site form) with nothing but `pkg-config --cflags --libs errinj`,
# shared, and liberrinj.a with its dependencies shared, and runs both. Checks the installed
# layout too: the header, both libraries, errinj.pc, errinjctl and, with the preload, errinj-run.
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
  $(pkg-config --cflags errinj) "$prefix/lib/liberrinj.a" $(pkg-config --libs libmicrohttpd jansson nettle) -lwslay -lpthread
"$prefix/hello-static" >/dev/null
"$prefix/bin/errinjctl" --help >/dev/null
# errinj-run finds the preload beside liberrinj in the prefix, and the preload finds liberrinj by
# its RUNPATH ($ORIGIN): no LD_LIBRARY_PATH.
if [[ -e $build/preload/errinj-run ]]; then
  for f in bin/errinj-run lib/liberrinj-preload.so share/man/man1/errinj-run.1; do
    [[ -e $prefix/$f ]] || { echo "missing after install: $f"; exit 1; }
  done
  out=$(env -u LD_LIBRARY_PATH -u ERRINJ_PRELOAD "$prefix/bin/errinj-run" --listen 127.0.0.1:0 -- /bin/echo preloaded 2>&1)
  grep -q 'errinj-run: listening on port' <<<"$out" && grep -q '^preloaded$' <<<"$out" || {
    echo "installed errinj-run did not run its program with the server: $out"; exit 1; }
fi
echo "installed layout and pkg-config build: ok"
