#!/bin/sh
# Counts the instructions of one bench scenario under valgrind's callgrind, for each binary
# given: a figure that, unlike wall or CPU time on the 2-core VM, moves by about 1.5% between
# runs of the same code, so a change of a few percent shows.
#
#   scripts/bench-instructions.sh BINARY [BINARY ...]
#   NODES=1000 ONLY=converge RUNS=2 scripts/bench-instructions.sh /tmp/pernode-old target/release/pernode
#
# Each run takes about 40 s at 1,000 nodes (valgrind runs the threads one at a time, so it
# counts work, not waiting). The count covers the whole process, the cluster's setup included;
# OUT=dir keeps the callgrind files for `callgrind_annotate`.
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 BINARY [BINARY ...]" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "error: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
fi
NODES=${NODES:-1000}
ONLY=${ONLY:-converge}
RUNS=${RUNS:-2}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

printf 'run  instructions     binary (%s at %s nodes)\n' "$ONLY" "$NODES"
i=1
while [ "$i" -le "$RUNS" ]; do
    n=0
    for bin in "$@"; do
        n=$((n + 1))
        file="$OUT/callgrind.$n.$i.out"
        valgrind --tool=callgrind --callgrind-out-file="$file" \
            "$bin" bench --nodes "$NODES" --only "$ONLY" >/dev/null 2>&1
        total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ { print $1 }')
        printf '%3d  %15s  %s\n' "$i" "$total" "$bin"
    done
    i=$((i + 1))
done
