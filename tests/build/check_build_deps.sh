#!/bin/sh
# check_build_deps.sh - `make build` and `make install` need only the build dependencies
# (scripts/deps.sh build): configures the source tree with ERRINJ_TESTS=OFF where none of the
# test dependencies can be found, and fails if the configure fails or looks for one of them.
#
# It hides the test programs (clang, valgrind, node, npm, chromium, pytest, ...) and apt-get
# and sudo (a configure installs nothing) by building a PATH of links to every other program,
# and the test libraries (cmocka, libseccomp) by a PKG_CONFIG_LIBDIR of links to every other
# .pc file. What is hidden is the check and bench lists of scripts/deps.sh, so a test
# dependency that creeps into the configure without tests shows here.
#
# Usage: check_build_deps.sh SOURCE_DIR
set -eu
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

hidden_programs='clang* llvm* valgrind* node nodejs npm npx chromium* pytest* py.test* playwright* redis-* sqlite3 curl fiu-* gnuplot* apt apt-get sudo'
hidden_modules='cmocka libseccomp libfiu'

mkdir "$work/bin" "$work/pc"
old_ifs=$IFS
IFS=:
for dir in $PATH; do
  IFS=$old_ifs
  [ -d "$dir" ] || continue
  for prog in "$dir"/*; do
    name=${prog##*/}
    [ -x "$prog" ] && [ ! -d "$prog" ] || continue
    skip=no
    for pat in $hidden_programs; do
      # shellcheck disable=SC2254
      case $name in $pat) skip=yes ;; esac
    done
    [ $skip = yes ] || [ -e "$work/bin/$name" ] || ln -s "$prog" "$work/bin/$name"
  done
done
IFS=$old_ifs

IFS=:
for dir in $(pkg-config --variable pc_path pkg-config); do
  IFS=$old_ifs
  [ -d "$dir" ] || continue
  for pc in "$dir"/*.pc; do
    [ -e "$pc" ] || continue
    name=${pc##*/}
    name=${name%.pc}
    skip=no
    for mod in $hidden_modules; do
      [ "$name" != "$mod" ] || skip=yes
    done
    [ $skip = yes ] || [ -e "$work/pc/$name.pc" ] || ln -s "$pc" "$work/pc/$name.pc"
  done
done
IFS=$old_ifs

# The hiding works: none of the hidden programs or modules is found any more.
for prog in clang valgrind node npm chromium; do
  if PATH=$work/bin command -v $prog >/dev/null 2>&1; then
    echo "check_build_deps: $prog is still on the reduced PATH" >&2
    exit 1
  fi
done
if PKG_CONFIG_LIBDIR=$work/pc pkg-config --exists cmocka; then
  echo "check_build_deps: cmocka is still found by pkg-config" >&2
  exit 1
fi

cmake=$(command -v cmake)
if ! env PATH="$work/bin" PKG_CONFIG_LIBDIR="$work/pc" "$cmake" -S "$src" -B "$work/build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DERRINJ_TESTS=OFF >"$work/configure.log" 2>&1; then
  cat "$work/configure.log" >&2
  echo "check_build_deps: configuring with ERRINJ_TESTS=OFF failed without the test dependencies" >&2
  exit 1
fi
# A configure without tests looks for no test tool: no cache entry names one.
if grep -E '^(ERRINJ_CLANG|ERRINJ_VALGRIND|CMOCKA_|SECCOMP_)' "$work/build/CMakeCache.txt" >"$work/found" 2>/dev/null; then
  cat "$work/found" >&2
  echo "check_build_deps: the configure with ERRINJ_TESTS=OFF looked for test dependencies" >&2
  exit 1
fi
echo "check_build_deps: configured with ERRINJ_TESTS=OFF with no clang, valgrind, node, npm, chromium, cmocka or libseccomp in sight"
