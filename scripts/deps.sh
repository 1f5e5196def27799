#!/usr/bin/env bash
# Installs the Debian packages errinj needs to build, test and benchmark, and nothing else:
# it asks dpkg which are missing and hands only those to apt-get, so a second run is a no-op.
# Usage: scripts/deps.sh [build|check|bench|demo|deb]   (default: check)
# build: what `make build` and `make install` need (the library, errinjctl, the man pages);
# check: also what the tests use; deb: also what `make deb` packages with.
set -euo pipefail

what=${1:-check}
build=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libwslay-dev nettle-dev libcurl4-openssl-dev lowdown)
check=(libcmocka-dev libseccomp-dev python3 python3-aiohttp python3-pytest python3-pytest-asyncio curl clang
       libclang-rt-14-dev valgrind chromium sqlite3 redis-server)
bench=(libfiu-dev fiu-utils gnuplot-nox)
deb=(dpkg-dev lintian)

case $what in
  build) want=("${build[@]}") ;;
  check|demo) want=("${build[@]}" "${check[@]}") ;;
  bench) want=("${build[@]}" "${check[@]}" "${bench[@]}") ;;
  deb) want=("${build[@]}" "${check[@]}" "${deb[@]}") ;;
  *) echo "usage: $0 [build|check|bench|demo|deb]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
# Node.js and npm may come from outside Debian's packages; only ask apt for them when absent.
if [[ $what != build && $what != deb ]]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deps.sh: installing ${missing[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The tests' npm packages (tests/integration/node: eventsource, ws, playwright-core), pinned by its
# package-lock.json and installed into its node_modules when one is missing or at another version.
# playwright-core drives Debian's chromium; it downloads no browser of its own.
if [[ $what != build && $what != deb ]]; then
  node_dir=$(cd "$(dirname "$0")/../tests/integration/node" && pwd)
  if ! node -e '
      const dir = process.argv[1];
      const want = require(dir + "/package.json").dependencies;
      for (const [name, version] of Object.entries(want)) {
        let got;
        try { got = require(dir + "/node_modules/" + name + "/package.json").version; } catch (e) { process.exit(1); }
        if (got !== version) process.exit(1);
      }' "$node_dir"; then
    echo "deps.sh: npm ci in $node_dir"
    npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
  fi
fi
