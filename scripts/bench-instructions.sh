#!/bin/sh
# Counts the instructions of one bench scenario under valgrind's callgrind, for each binary
# given: a figure that, unlike wall or CPU time on the 2-core VM, moves by about 1.5% between
# runs of the same code, so a change of a few percent shows.
#
#   scripts/bench-instructions.sh BINARY [BINARY ...]
#   NODES=1000 ONLY=converge RUNS=2 scripts/bench-instructions.sh /tmp/pernode-old target/release/pernode
#   WINDOW=phase scripts/bench-instructions.sh /tmp/pernode-old target/release/pernode
#
# Each run takes about 40 s at 1,000 nodes (valgrind runs the threads one at a time, so it
# counts work, not waiting). The count covers the whole process, the cluster's setup included;
# WINDOW=phase counts only the measured phase, between the bench's "phase started" and
# "phase ended" log lines (callgrind_control switches instrumentation on and off): about 0.5%
# apart between runs. Work that follows the clock rather than the load (lease renewals,
# rate-limited event writes) counts for the slowed-down window, so compare builds with each
# other, not with timings.
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
WINDOW=${WINDOW:-process}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

printf 'run  instructions     binary (%s at %s nodes, %s)\n' "$ONLY" "$NODES" "$WINDOW"
i=1
while [ "$i" -le "$RUNS" ]; do
    n=0
    for bin in "$@"; do
        n=$((n + 1))
        file="$OUT/callgrind.$n.$i.out"
        if [ "$WINDOW" = phase ]; then
            log="$OUT/stderr.$n.$i.log"
            : >"$log"
            RUST_LOG=pernode::bench::phase=info valgrind --tool=callgrind --instr-atstart=no \
                --callgrind-out-file="$file" \
                "$bin" bench --nodes "$NODES" --only "$ONLY" >/dev/null 2>"$log" &
            vg=$!
            # valgrind runs the program in its own pid; tail ends with it.
            tail --pid="$vg" -n +1 -F "$log" 2>/dev/null | while read -r line; do
                case "$line" in
                *"phase started"*) callgrind_control -i on "$vg" >/dev/null 2>&1 || true ;;
                *"phase ended"*) callgrind_control -i off "$vg" >/dev/null 2>&1 || true ;;
                esac
            done
            wait "$vg"
        else
            valgrind --tool=callgrind --callgrind-out-file="$file" \
                "$bin" bench --nodes "$NODES" --only "$ONLY" >/dev/null 2>&1
        fi
        total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ { print $1 }')
        printf '%3d  %15s  %s\n' "$i" "$total" "$bin"
    done
    i=$((i + 1))
done
