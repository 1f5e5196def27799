#!/usr/bin/env bash
# The consumer matrix: installs BUILD_DIR into a scratch prefix, then builds and runs consumer.c
# (a point of its own plus one in user_lib.c) the ways users link errinj: CMake find_package and
# add_subdirectory, Meson, plain pkg-config shared and static, user_lib as a static archive and as
# a shared library, bfd, gold and lld with --gc-sections, -flto, gcc and clang, C and C++. Each
# must list both points before they run and fire them, with nothing on stderr about the
# catalogue (also without the retain flag under lld --gc-sections: on x86-64 the code's own
# reference to each record keeps the section).
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
here=$src/tests/consumers
tmp=$(mktemp -d /tmp/errinj-consumers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig LD_LIBRARY_PATH=$prefix/lib
export tmp here src prefix

# check_run NAME EXPECT COMMAND...: runs the built program; EXPECT "quiet": stderr must not
# mention the catalogue.
check_run() {
  local name=$1 expect=$2; shift 2
  if ! "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || ! grep -q 'consumer ok' "$tmp/$name.out"; then
    echo "FAIL $name: run"; cat "$tmp/$name.err"; return 1
  fi
  if [[ $expect == quiet ]] && grep -q 'not in the catalogue' "$tmp/$name.err"; then
    echo "FAIL $name: $(cat "$tmp/$name.err")"; return 1
  fi
  echo "ok $name"
}

# linker NAME CC LD USERLIB(static|shared) ERRINJ(shared|static) EXTRA_FLAGS...
linker() {
  set -euo pipefail
  local name=$1 cc=$2 ld=$3 userlib=$4 errinj=$5; shift 5
  local d=$tmp/$name main=$here/consumer.c
  mkdir -p "$d"
  [[ $cc == *++ ]] && main=$here/consumer.cpp
  local flags=(-O2 -Wall -Wextra -Werror -ffunction-sections -fdata-sections "$@" $(pkg-config --cflags errinj))
  local cflags=("${flags[@]}")
  [[ $cc == *++ ]] && cflags+=(-std=c++17) || cflags+=(-std=c11 -pedantic)
  local ucc=${cc%++}; [[ $ucc == g ]] && ucc=gcc
  local uflags=("${flags[@]}" -std=c11 -pedantic)
  local libs
  if [[ $errinj == static ]]; then libs=$(pkg-config --static --libs errinj | sed 's/-lerrinj\b/-l:liberrinj.a/'); else libs=$(pkg-config --libs errinj); fi
  if [[ $userlib == static ]]; then
    "$ucc" "${uflags[@]}" -c "$here/user_lib.c" -o "$d/user_lib.o" || { echo "FAIL $name: compile"; return 1; }
    ${AR:-gcc-ar} rcs "$d/libuser.a" "$d/user_lib.o"
  else
    "$ucc" "${uflags[@]}" -fPIC -shared -fuse-ld="$ld" -Wl,--gc-sections "$here/user_lib.c" -o "$d/libuser.so" \
      $(pkg-config --libs errinj) || { echo "FAIL $name: shared user library"; return 1; }
  fi
  "$cc" "${cflags[@]}" -fuse-ld="$ld" -Wl,--gc-sections "$main" -o "$d/consumer" -L"$d" -luser $libs \
    -Wl,-rpath,"$d" 2>"$d/link.err" || { echo "FAIL $name: link"; cat "$d/link.err"; return 1; }
  check_run "$name" quiet "$d/consumer"
}

cmake_consumer() {
  set -euo pipefail
  local name=$1; shift
  local d=$tmp/$name
  cmake -S "$here/cmake" -B "$d" -DCMAKE_BUILD_TYPE=Release "$@" >"$d.log" 2>&1 &&
    cmake --build "$d" -j1 >>"$d.log" 2>&1 || { echo "FAIL $name: build"; tail -30 "$d.log"; return 1; }
  check_run "$name-shared" quiet "$d/consumer_shared" && check_run "$name-static" quiet "$d/consumer_static" &&
    if ldd "$d/consumer_static" | grep -q liberrinj; then echo "FAIL $name: errinj::errinj_static linked the shared library"; return 1; fi
}

meson_consumer() {
  set -euo pipefail
  local d=$tmp/meson
  meson setup "$d" "$here/meson" >"$d.log" 2>&1 && ninja -C "$d" >>"$d.log" 2>&1 || { echo "FAIL meson: build"; tail -30 "$d.log"; return 1; }
  check_run meson-shared quiet "$d/consumer_shared" && check_run meson-static quiet "$d/consumer_static" &&
    if ldd "$d/consumer_static" | grep -q liberrinj; then echo "FAIL meson: static build linked the shared library"; return 1; fi
}

cflags_only_own() {
  local cflags
  cflags=$(pkg-config --cflags errinj | xargs)
  if [[ $cflags != -I* || $(realpath "${cflags#-I}") != "$(realpath "$prefix/include")" ]]; then
    echo "FAIL pkg-config --cflags: '$cflags' (want only -I$prefix/include)"; return 1
  fi
  pkg-config --static --libs errinj >/dev/null && echo "ok pkg-config --cflags is only errinj's include directory"
}
export -f check_run linker cmake_consumer meson_consumer cflags_only_own

jobs=(
  "cflags_only_own"
  "cmake_consumer cmake-find-package -DCMAKE_PREFIX_PATH=$prefix"
  "cmake_consumer cmake-add-subdirectory -DERRINJ_SOURCE_DIR=$src"
  "meson_consumer"
)
for ld in bfd gold lld; do
  for cc in gcc clang; do
    jobs+=("linker $cc-$ld-archive $cc $ld static shared" "linker $cc-$ld-shlib $cc $ld shared shared")
  done
  jobs+=("linker g++-$ld-archive g++ $ld static shared" "linker clang++-$ld-static-errinj clang++ $ld static static")
done
jobs+=(
  "linker gcc-bfd-static-errinj gcc bfd static static"
  "linker gcc-flto-bfd gcc bfd static shared -flto"
  "linker gcc-flto-gold gcc gold shared shared -flto"
  "linker clang-flto-lld clang lld static static -flto"
  "linker clang++-flto-lld clang++ lld static shared -flto"
  "linker gcc-lld-no-retain gcc lld static shared -DERRINJ_NO_RETAIN"
)
printf '%s\n' "${jobs[@]}" | xargs -P "${ERRINJ_TEST_JOBS:-2}" -I{} bash -c '{}' >"$tmp/results" 2>&1 || true
cat "$tmp/results"
total=$(( ${#jobs[@]} + 3 )) # the two CMake jobs and the Meson one report shared and static each
oks=$(grep -c '^ok ' "$tmp/results" || true)
fails=$(grep -c '^FAIL' "$tmp/results" || true)
echo "consumers: $oks passed, $fails failed, of $total"
[[ $fails -eq 0 && $oks -eq $total ]]
