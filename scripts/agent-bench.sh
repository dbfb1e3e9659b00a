#!/bin/sh
# Node agent figures: memory and CPU of an idle agent running 10 pods, and the time from a pod's
# binding (created with spec.nodeName, so bound on creation) to its process running.
#
#   cargo build --release && scripts/agent-bench.sh [path/to/pernode]
#
# Starts `pernode up --nodes 0` and one `pernode agent` on loopback in a temporary directory;
# cleans up after itself.
set -eu
PERNODE=${1:-target/release/pernode}
PODS=${PODS:-10}
IDLE=${IDLE:-30}
TMP=$(mktemp -d)
cleanup() {
    [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    # The containers outlive a stopped agent by design; stop them by their recorded PIDs.
    for f in "$TMP"/pid-*; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

"$PERNODE" up --nodes 0 --listen 127.0.0.1:0 --data-dir "$TMP/data" --kubeconfig "$TMP/kubeconfig" >/dev/null 2>"$TMP/server.log" &
SERVER=$!
while [ ! -s "$TMP/kubeconfig" ]; do sleep 0.1; done
API=$(sed -n 's/^ *server: //p' "$TMP/kubeconfig")

"$PERNODE" agent --kubeconfig "$TMP/kubeconfig" --node-name bench --node-ip 127.0.0.1 \
    --address 127.0.0.1 --port 0 --root-dir "$TMP/agent" --cgroup-parent none 2>"$TMP/agent.log" &
AGENT=$!
until curl -sf "$API/api/v1/nodes/bench" >/dev/null; do sleep 0.1; done

now_ns() { date +%s%N; }
total=0
max=0
i=1
while [ "$i" -le "$PODS" ]; do
    body=$(printf '{"metadata":{"name":"p%s"},"spec":{"nodeName":"bench","containers":[{"name":"c","image":"busybox","command":["sh","-c","date +%%s%%N > %s/start-%s; echo $$$$ > %s/pid-%s; exec sleep 100000"]}]}}' \
        "$i" "$TMP" "$i" "$TMP" "$i")
    t0=$(now_ns)
    curl -sf -X POST -H 'Content-Type: application/json' --data "$body" \
        "$API/api/v1/namespaces/default/pods" >/dev/null
    while [ ! -s "$TMP/start-$i" ]; do sleep 0.005; done
    t1=$(cat "$TMP/start-$i")
    ms=$(( (t1 - t0) / 1000000 ))
    total=$((total + ms))
    [ "$ms" -gt "$max" ] && max=$ms
    i=$((i + 1))
done
echo "bind -> process running: mean $((total / PODS)) ms, max $max ms over $PODS pods (one at a time)"

# Idle: every pod Running and Ready, then measure over $IDLE seconds.
until [ "$(curl -sf "$API/api/v1/namespaces/default/pods" | grep -o '"ready":true' | wc -l)" -ge "$PODS" ]; do sleep 0.2; done
ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
c0=$(ticks)
sleep "$IDLE"
c1=$(ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
echo "agent idle with $PODS pods: RSS $((rss / 1024)) MiB, CPU $(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.3f", 100 * d / hz / s}')% of one core over ${IDLE}s ($((c1 - c0)) ticks at ${hz} Hz)"
