#!/bin/sh
# Node agent figures (the process runtime): the time from a pod's binding (created with
# spec.nodeName, so bound on creation) to its container's first instruction, mean and p99 over
# PODS pods created one at a time; and the memory and CPU of the agent idle with IDLE_PODS of
# them running and Ready.
#
#   scripts/agent-bench.sh [path/to/pernode]      # PODS=100 IDLE_PODS=20 IDLE=60
#
# Starts `pernode up --nodes 0` and one `pernode agent` (as the cluster's admin) on loopback in
# a temporary directory; cleans up after itself. Requests go straight to the API server with
# curl and the admin kubeconfig's client certificate, so no client start-up is timed.
set -eu
PERNODE=${1:-target/release/pernode}
PODS=${PODS:-100}
IDLE_PODS=${IDLE_PODS:-20}
IDLE=${IDLE:-60}
[ "$IDLE_PODS" -le "$PODS" ] || { echo "IDLE_PODS must not exceed PODS" >&2; exit 2; }
TMP=$(mktemp -d)
cleanup() {
    [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    # The containers outlive a stopped agent by design; stop them by their recorded PIDs.
    for f in "$TMP"/pid-*; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    # The pods' memory-backed volumes (tokens) stay mounted after the agent: deepest first.
    awk -v d="$TMP/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/agent-bench-lib.sh"
start_server

"$PERNODE" agent --kubeconfig "$TMP/kubeconfig" --node-name bench --node-ip 127.0.0.1 \
    --address 127.0.0.1 --port 0 --root-dir "$TMP/agent" --cgroup-parent none 2>"$TMP/agent.log" &
AGENT=$!
wait_ready "bench"

now_ns() { date +%s%N; }
# Creates pod $1 bound to the node and prints the milliseconds until its container ran.
run_pod() {
    body=$(printf '{"metadata":{"name":"p%s"},"spec":{"nodeName":"bench","terminationGracePeriodSeconds":1,"containers":[{"name":"c","image":"busybox","command":["sh","-c","date +%%s%%N > %s/start-%s; echo $$$$ > %s/pid-%s; exec sleep 100000"]}]}}' \
        "$1" "$TMP" "$1" "$TMP" "$1")
    t0=$(now_ns)
    api -X POST -H 'Content-Type: application/json' --data "$body" \
        "$API/api/v1/namespaces/default/pods" >/dev/null
    while [ ! -s "$TMP/start-$1" ]; do sleep 0.002; done
    echo $(( ($(cat "$TMP/start-$1") - t0) / 1000000 ))
}

measure process
echo "agent RSS with $PODS pods: $(rss_mib) MiB"
