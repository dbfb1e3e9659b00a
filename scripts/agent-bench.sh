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

"$PERNODE" up --nodes 0 --listen 127.0.0.1:0 --data-dir "$TMP/data" --kubeconfig "$TMP/kubeconfig" >/dev/null 2>"$TMP/server.log" &
SERVER=$!
while [ ! -s "$TMP/kubeconfig" ]; do sleep 0.1; done
API=$(sed -n 's/^ *server: //p' "$TMP/kubeconfig")
field() { sed -n "s/^ *$1: //p" "$TMP/kubeconfig" | base64 -d >"$TMP/$2"; }
field certificate-authority-data ca.crt
field client-certificate-data admin.crt
field client-key-data admin.key
api() { curl -sf --cacert "$TMP/ca.crt" --cert "$TMP/admin.crt" --key "$TMP/admin.key" "$@"; }

"$PERNODE" agent --kubeconfig "$TMP/kubeconfig" --node-name bench --node-ip 127.0.0.1 \
    --address 127.0.0.1 --port 0 --root-dir "$TMP/agent" --cgroup-parent none 2>"$TMP/agent.log" &
AGENT=$!
until api "$API/api/v1/nodes/bench" | grep -q '"status":"True","type":"Ready"'; do sleep 0.1; done

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

i=1
while [ "$i" -le "$IDLE_PODS" ]; do run_pod "$i" >>"$TMP/latencies"; i=$((i + 1)); done

# Idle: those pods Running and Ready, then measured over $IDLE seconds.
until [ "$(api "$API/api/v1/namespaces/default/pods" | grep -o '"ready":true' | wc -l)" -ge "$IDLE_PODS" ]; do sleep 0.2; done
ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
c0=$(ticks)
sleep "$IDLE"
c1=$(ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
echo "agent idle with $IDLE_PODS pods: RSS $((rss / 1024)) MiB, CPU $(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.3f", 100 * d / hz / s}')% of one core over ${IDLE}s ($((c1 - c0)) ticks at ${hz} Hz)"

while [ "$i" -le "$PODS" ]; do run_pod "$i" >>"$TMP/latencies"; i=$((i + 1)); done
sort -n "$TMP/latencies" | awk -v n="$PODS" '
    { v[NR] = $1; sum += $1 }
    END {
        p99 = v[int((n * 99 + 99) / 100)]   # nearest rank
        printf "bind -> process running over %d pods (one at a time): mean %.1f ms, p99 %d ms, max %d ms\n", n, sum / n, p99, v[n]
    }'
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
echo "agent RSS with $PODS pods: $((rss / 1024)) MiB"
