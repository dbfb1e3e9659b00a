#!/bin/sh
# Compares two builds on one bench scenario with interleaved runs: old, new, old, new, ...
#
#   scripts/bench-pairs.sh OLD_BINARY NEW_BINARY [PAIRS]
#   NODES=10000 ONLY=converge TMPDIR=/dev/shm scripts/bench-pairs.sh /tmp/pernode-old target/release/pernode 4
#
# Why pairs: on the 2-core VM the same binary's converge moves by half between minutes (and its
# CPU seconds with it), while two runs taken back to back track each other. Compare each pair,
# not the best or the mean of separate series. TMPDIR=/dev/shm puts the store on tmpfs, which
# takes the disk's fsync out of the comparison.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 OLD_BINARY NEW_BINARY [PAIRS]" >&2
    exit 2
fi
OLD=$1
NEW=$2
PAIRS=${3:-3}
NODES=${NODES:-10000}
ONLY=${ONLY:-converge}

# The scenario's row: wall ms, requests, commits and CPU s (columns of `pernode bench`).
row() {
    "$1" bench --nodes "$NODES" --only "$ONLY" 2>/dev/null |
        awk -v scenario="$ONLY" '$1 == scenario { print $4 " ms  " $7 " requests  " $8 " commits  " $NF " CPU s" }'
}

printf 'pair  build  %s at %s nodes\n' "$ONLY" "$NODES"
i=1
while [ "$i" -le "$PAIRS" ]; do
    printf '%4d  old    %s\n' "$i" "$(row "$OLD")"
    printf '%4d  new    %s\n' "$i" "$(row "$NEW")"
    i=$((i + 1))
done
