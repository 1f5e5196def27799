#!/bin/sh
# run_filtered.sh PROGRAM [ARGS...] - runs a test program, keeping its exit status, and filters
# out of its stderr the one line the server logs for each client that leaves in the middle of a
# stream ("Failed to send ..."), which the stress test provokes thousands of times on purpose.
# Everything else (sanitizer reports included) is passed on; the filtered lines are counted.
log=$(mktemp "${TMPDIR:-/tmp}/errinj-stress.XXXXXX")
"$@" 2>"$log"
rc=$?
pattern='^errinj server: Failed to send'
n=$(grep -c "$pattern" "$log")
grep -v "$pattern" "$log" >&2
echo "(server log: $n lines about clients that left mid-stream, filtered)"
rm -f "$log"
exit $rc
