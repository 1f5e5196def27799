#!/usr/bin/env bash
# Builds the Debian packages (packaging/deb.sh, lintian included), extracts them into a scratch
# root and uses them as a user would: consumer.c built against liberrinj-dev with pkg-config
# (shared and static) and with CMake's find_package, run against liberrinj0; errinjctl from
# errinj-tools; the Python client from python3-errinj imported.
# Usage: check_deb.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
tmp=$(mktemp -d /tmp/errinj-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$src/packaging/deb.sh" "$tmp/out" >"$tmp/deb.log" 2>&1 || { cat "$tmp/deb.log"; echo "FAIL: make deb"; exit 1; }
tail -1 "$tmp/deb.log"
root=$tmp/root
for p in liberrinj0 liberrinj-dev errinj-tools python3-errinj; do
  deb=$(ls "$tmp/out/${p}_"*.deb)
  dpkg-deb -x "$deb" "$root"
done
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib=$root/usr/lib/$ma
for f in usr/include/errinj.h usr/include/errinj.hpp usr/lib/$ma/liberrinj.so.0 usr/lib/$ma/liberrinj.a \
         usr/lib/$ma/pkgconfig/errinj.pc usr/lib/$ma/cmake/errinj/errinjConfig.cmake usr/bin/errinjctl \
         usr/share/man/man3/errinj.3.gz usr/share/man/man1/errinjctl.1.gz usr/lib/python3/dist-packages/errinj/__init__.py; do
  [[ -e $root/$f ]] || { echo "FAIL: no $f in the packages"; exit 1; }
done
export PKG_CONFIG_PATH=$lib/pkgconfig LD_LIBRARY_PATH=$lib
c=$src/tests/consumers
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags errinj) "$c/consumer.c" "$c/user_lib.c" -o "$tmp/shared" $(pkg-config --libs errinj)
"$tmp/shared" | grep -q 'consumer ok'
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags errinj) "$c/consumer.c" "$c/user_lib.c" -o "$tmp/static" \
  $(pkg-config --static --libs errinj | sed 's/-lerrinj\b/-l:liberrinj.a/')
env -u LD_LIBRARY_PATH "$tmp/static" | grep -q 'consumer ok'
cmake -S "$c/cmake" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$root/usr" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/consumer_shared" | grep -q 'consumer ok'
"$tmp/cmake/consumer_static" | grep -q 'consumer ok'
"$root/usr/bin/errinjctl" --help >/dev/null
PYTHONPATH=$root/usr/lib/python3/dist-packages /usr/bin/python3 -c 'import errinj, errinj.rest; print("python3-errinj imports")' |
  grep -q imports
python_file=$(PYTHONPATH=$root/usr/lib/python3/dist-packages /usr/bin/python3 -c 'import errinj; print(errinj.__file__)')
[[ $python_file == "$root"/* ]] || { echo "FAIL: imported errinj from $python_file, not the package"; exit 1; }
echo "deb packages: extracted, linked against (pkg-config shared and static, CMake), run: ok"
