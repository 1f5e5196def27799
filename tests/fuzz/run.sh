#!/bin/sh
# run.sh - builds and runs the libFuzzer targets (see fuzz.mk for the build).
#
#   run.sh build OUT                  build OUT/fuzz_* with clang (incremental)
#   run.sh run OUT TARGET SECONDS     fuzz TARGET for SECONDS from its seed corpus and saved crashes
#
# The repository's corpus is read, never written: new inputs go to a fresh directory under
# OUT/runs/, given first so libFuzzer writes there. A crash leaves its input in
# OUT/artifacts/ and fails the run; copy it to tests/fuzz/regressions/TARGET/ to keep it as a
# regression test (replayed by the fuzz-replay-TARGET tests of every build).
# The last line printed is a summary: executions, corpus growth and the verdict.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
mode=${1:?usage: run.sh build OUT | run.sh run OUT TARGET SECONDS}
out=${2:?OUT directory}

case $mode in
build)
    exec make --no-print-directory -s -f "$HERE/fuzz.mk" OUT="$out" -j"${JOBS:-2}"
    ;;
run)
    target=${3:?TARGET}
    seconds=${4:?SECONDS}
    bin="$out/fuzz_$target"
    [ -x "$bin" ] || { echo "run.sh: $bin not built (run.sh build $out)"; exit 1; }
    mkdir -p "$out/runs" "$out/artifacts"
    work=$(mktemp -d "$out/runs/$target.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    dict=""
    [ -f "$HERE/$target.dict" ] && dict="-dict=$HERE/$target.dict"
    set -- "$work/new"
    mkdir -p "$work/new"
    set -- "$@" "$HERE/corpus/$target"
    [ -d "$HERE/regressions/$target" ] && set -- "$@" "$HERE/regressions/$target"
    log="$work/log"
    status=0
    # -close_fd_mask=3 silences the target's own output; libFuzzer and sanitizer reports
    # still reach stderr through a duplicate descriptor.
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" $dict "$@" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    seeds=$(find "$HERE/corpus/$target" -type f | wc -l)
    found=$(find "$work/new" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz $target: FAILED (exit $status) after ${runs:-?} executions; input saved under $out/artifacts/"
        exit 1
    fi
    echo "fuzz $target: ${runs:-?} executions in ${seconds}s, $seeds seeds, $found new inputs, no crash"
    ;;
*)
    echo "run.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
