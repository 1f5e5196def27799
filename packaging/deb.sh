#!/usr/bin/env bash
# Builds errinj's Debian packages into OUT_DIR and checks them with lintian:
#   liberrinj0       the shared library            (cmake --install component "runtime")
#   liberrinj-dev    headers, liberrinj.a, liberrinj.so, errinj.pc, CMake package, errinj(3)
#                                                   (component "dev")
#   errinj-tools     errinjctl, errinj-run, liberrinj-preload.so and their man pages: every
#                    other install rule (component "tools" and rules without a component), so
#                    a new install rule lands here without touching this script
#   python3-errinj   the asyncio client, python/errinj
# The packages are assembled with dpkg-deb from `cmake --install` of a release build (prefix
# /usr, no RPATH); dpkg-shlibdeps computes their dependencies.
# Usage: packaging/deb.sh OUT_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
build=$out/cmake stage=$out/stage
version=$(sed -n 's/^project(errinj VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
debver=$version-1
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
rm -rf "$stage" "$out"/*.deb
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_INSTALL_LIBDIR=lib/$multiarch -DERRINJ_TESTS=OFF -DCMAKE_SKIP_INSTALL_RPATH=ON >/dev/null
cmake --build "$build" -j"${JOBS:-2}" >/dev/null

# Every component cmake knows; everything that is not runtime or dev goes to the tools.
install_component() { # PACKAGE COMPONENT
  DESTDIR=$stage/$1 cmake --install "$build" --component "$2" >/dev/null
}
install_component liberrinj0 runtime
install_component liberrinj-dev dev
for c in $(grep -rhoE 'CMAKE_INSTALL_COMPONENT STREQUAL "[^"]+"' "$build" --include=cmake_install.cmake |
           sed 's/.*"\(.*\)"/\1/' | sort -u); do
  [[ $c == runtime || $c == dev ]] || install_component errinj-tools "$c"
done
mkdir -p "$stage/python3-errinj/usr/lib/python3/dist-packages"
cp -r "$src/python/errinj" "$stage/python3-errinj/usr/lib/python3/dist-packages/"
find "$stage/python3-errinj" -name __pycache__ -prune -exec rm -rf {} +
# The man pages are installed uncompressed; Debian wants them gzipped.
find "$stage" -path '*/share/man/*' -type f ! -name '*.gz' -exec gzip -9n {} +

# dpkg-shlibdeps wants a debian/control and, for the library it resolves itself, a shlibs line.
work=$out/work
rm -rf "$work" && mkdir -p "$work/debian"
printf 'Source: errinj\n\nPackage: errinj\nArchitecture: any\n' >"$work/debian/control"
echo "liberrinj 0 liberrinj0 (>= $version)" >"$work/debian/shlibs.local"

description_liberrinj0="error-injection points for C and C++ servers (library)
 errinj gives a server named error-injection points that tests switch on
 over HTTP (a REST API path-compatible with ScyllaDB's error injection) and
 a Server-Sent Events stream that reports each fire the moment it happens.
 .
 This package contains the shared library."
description_liberrinj_dev="error-injection points for C and C++ servers (development)
 errinj gives a server named error-injection points that tests switch on
 over HTTP and an event stream that reports each fire.
 .
 This package contains the headers errinj.h and errinj.hpp, the static library,
 the pkg-config and CMake package files and the errinj(3) manual page."
description_errinj_tools="error-injection points for C and C++ servers (tools)
 errinj gives a server named error-injection points that tests switch on
 over HTTP and an event stream that reports each fire.
 .
 This package contains errinjctl, the command-line client, and the programs and
 libraries that inject faults into programs nobody instrumented."
description_python3_errinj="error-injection points for C and C++ servers (Python client)
 errinj gives a server named error-injection points that tests switch on
 over HTTP and an event stream that reports each fire.
 .
 This package contains the asyncio Python client and its pytest plugin."

package() { # NAME SECTION ARCH EXTRA_CONTROL...
  local name=$1 section=$2 parch=$3; shift 3
  local root=$stage/$name var=description_${name//[-0-9]/_}
  var=${var%_}; [[ $name == liberrinj0 ]] && var=description_liberrinj0
  [[ $name == python3-errinj ]] && var=description_python3_errinj
  mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
  cat >"$root/usr/share/doc/$name/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: errinj
Source: https://github.com/errinj/errinj

Files: *
Copyright: the errinj authors
License: public-domain
 The errinj source tree carries no license file; it is distributed as is.
COPY
  printf 'errinj (%s) unstable; urgency=medium\n\n  * Packaged from the source tree by packaging/deb.sh.\n\n -- errinj maintainers <maintainers@errinj.invalid>  %s\n' \
    "$debver" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}")" |
    gzip -9n >"$root/usr/share/doc/$name/changelog.Debian.gz"
  local depends="" elfs
  elfs=$(find "$root" -type f \( -name '*.so*' -o -perm -u+x \) ! -path '*/DEBIAN/*' -exec sh -c 'file -b "$1" | grep -q ELF && echo "$1"' _ {} \;)
  if [[ -n $elfs ]]; then
    depends=$(cd "$work" && dpkg-shlibdeps -O -l"$stage/liberrinj0/usr/lib/$multiarch" $elfs 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  fi
  for extra in "$@"; do
    [[ $extra == Depends:* ]] && depends=${depends:+$depends, }${extra#Depends: } && continue
  done
  {
    echo "Package: $name"
    echo "Version: $debver"
    echo "Architecture: $parch"
    echo "Maintainer: errinj maintainers <maintainers@errinj.invalid>"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    [[ -n $depends ]] && echo "Depends: $depends"
    for extra in "$@"; do [[ $extra == Depends:* ]] || echo "$extra"; done
    echo "Section: $section"
    echo "Priority: optional"
    echo "Homepage: https://github.com/errinj/errinj"
    echo "Description: ${!var}"
  } >"$root/DEBIAN/control"
  [[ $name == liberrinj0 ]] && echo "liberrinj 0 liberrinj0 (>= $version)" >"$root/DEBIAN/shlibs"
  # A package that puts a shared object in the library directory triggers ldconfig (the tools
  # package ships liberrinj-preload.so there, beside liberrinj, for errinj-run).
  if find "$root" -type f -name "*.so*" -path "*/lib/*" ! -path "$root/DEBIAN/*" | grep -q .; then
    printf 'activate-noawait ldconfig\n' >"$root/DEBIAN/triggers"
  fi
  (cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0r md5sum >DEBIAN/md5sums)
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -type f ! -perm -u+x -exec chmod 0644 {} +
  find "$root" -type f -name '*.so*' -exec chmod 0644 {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${debver}_${parch}.deb" >/dev/null
}

# Debug information stays out of the packages (Debian ships it in -dbgsym packages).
find "$stage" -type f \( -name '*.so*' -o -perm -u+x \) -exec sh -c 'file -b "$1" | grep -q "ELF.*not stripped"' _ {} \; \
  -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} \;
find "$stage" -name '*.a' -exec strip --strip-debug {} \;

package liberrinj0 libs "$arch" "Multi-Arch: same"
package liberrinj-dev libdevel "$arch" "Multi-Arch: same" \
  "Depends: liberrinj0 (= $debver), libmicrohttpd-dev, libjansson-dev, libwslay-dev, nettle-dev"
package errinj-tools utils "$arch"
package python3-errinj python all "Depends: python3:any, python3-aiohttp"
rm -rf "$work"
ls "$out"/*.deb
lintian --fail-on error --suppress-tags no-manual-page,initial-upload-closes-no-bugs,no-symbols-control-file,extended-description-is-probably-too-short,embedded-library "$out"/*.deb
echo "deb: $(ls "$out"/*.deb | wc -l) packages built, lintian has no errors"
