#!/usr/bin/env bash
# Builds and runs the C++ and C site suites with every compiler and standard they cover:
# sites.cpp with g++ and clang++ for C++11, 14, 17, 20 and 23 (c++2b); sites_c.c + sites_c2.c with gcc and clang
# for C99, C11, C17 and C2x; each -Wall -Wextra -Werror -pedantic, once with points (linked with
# liberrinj from BUILD_DIR) and once with -DERRINJ_DISABLE (linked without it: the link must
# need no errinj symbol, and the binary must not contain the points' names).
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
out=$(mktemp -d /tmp/errinj-cxx.XXXXXX)
trap 'rm -rf "$out"' EXIT
jobs=()
for cxx in g++ clang++; do for std in c++11 c++14 c++17 c++20 c++2b; do for mode in on off; do
  jobs+=("$cxx $std $mode $src/tests/cxx/sites.cpp")
done; done; done
for cc in gcc clang; do for std in c99 c11 c17 c2x; do for mode in on off; do
  jobs+=("$cc $std $mode $src/tests/cxx/sites_c.c $src/tests/cxx/sites_c2.c")
done; done; done

one() {
  set -euo pipefail
  local compiler=$1 std=$2 mode=$3; shift 3
  local exe="$out/$compiler-$std-$mode" flags=(-std="$std" -O2 -Wall -Wextra -Werror -pedantic -I"$src/include")
  if [[ $mode == off ]]; then
    "$compiler" "${flags[@]}" -DERRINJ_DISABLE "$@" -o "$exe" 2>"$exe.log" || { cat "$exe.log"; echo "FAIL build $compiler $std $mode"; return 1; }
    if nm -u "$exe" | grep -q errinj; then echo "FAIL $compiler $std: disabled build needs errinj symbols"; nm -u "$exe" | grep errinj; return 1; fi
    if grep -qa -e cxx_free_exception -e c_static_exception "$exe"; then echo "FAIL $compiler $std: disabled build contains point names"; return 1; fi
    "$exe"
  else
    "$compiler" "${flags[@]}" "$@" -o "$exe" -L"$build" -lerrinj -Wl,-rpath,"$build" 2>"$exe.log" || { cat "$exe.log"; echo "FAIL build $compiler $std $mode"; return 1; }
    "$exe"
  fi
}
export -f one
export out src build
printf '%s\n' "${jobs[@]}" | xargs -P "${ERRINJ_TEST_JOBS:-2}" -I{} bash -c 'one {}' >"$out/results" 2>&1 || true
cat "$out/results"
fails=$(grep -c '^FAIL' "$out/results" || true)
oks=$(grep -c '^ok:' "$out/results" || true)
echo "site suites: $oks passed, $fails failed, of ${#jobs[@]}"
[[ $fails -eq 0 && $oks -eq ${#jobs[@]} ]]
