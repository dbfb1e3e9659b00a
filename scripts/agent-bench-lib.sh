# What scripts/agent-bench.sh and scripts/agent-bench-cri.sh share (sourced, not run): the
# server and its curl client, and the measurement. The caller sets PERNODE, TMP, PODS,
# IDLE_PODS and IDLE, starts the agent (AGENT, its PID) and defines run_pod N, which creates
# pod N bound to the node and prints the milliseconds until its container ran.

# `pernode up --nodes 0` on loopback, and `api`: curl as the admin of its kubeconfig (API: its
# URL), so no client start-up is timed.
start_server() {
    "$PERNODE" up --nodes 0 --listen 127.0.0.1:0 --data-dir "$TMP/data" --kubeconfig "$TMP/kubeconfig" >/dev/null 2>"$TMP/server.log" &
    SERVER=$!
    while [ ! -s "$TMP/kubeconfig" ]; do sleep 0.1; done
    API=$(sed -n 's/^ *server: //p' "$TMP/kubeconfig")
    for f in certificate-authority-data:ca.crt client-certificate-data:admin.crt client-key-data:admin.key; do
        sed -n "s/^ *${f%%:*}: //p" "$TMP/kubeconfig" | base64 -d >"$TMP/${f#*:}"
    done
}
api() { curl -sf --cacert "$TMP/ca.crt" --cert "$TMP/admin.crt" --key "$TMP/admin.key" "$@"; }

# Waits until node $1 is Ready.
wait_ready() {
    until api "$API/api/v1/nodes/$1" | grep -q '"status":"True","type":"Ready"'; do sleep 0.1; done
}

# Times IDLE_PODS pods, measures the agent idle with them Running and Ready over IDLE seconds,
# then times the rest up to PODS and prints mean, p99 and max ("bind -> $1 running").
measure() {
    i=1
    while [ "$i" -le "$IDLE_PODS" ]; do run_pod "$i" >>"$TMP/latencies"; i=$((i + 1)); done
    until [ "$(api "$API/api/v1/namespaces/default/pods" | grep -o '"ready":true' | wc -l)" -ge "$IDLE_PODS" ]; do sleep 0.2; done
    c0=$(ticks)
    sleep "$IDLE"
    c1=$(ticks)
    hz=$(getconf CLK_TCK)
    echo "agent idle with $IDLE_PODS pods: RSS $(rss_mib) MiB, CPU $(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.3f", 100 * d / hz / s}')% of one core over ${IDLE}s ($((c1 - c0)) ticks at ${hz} Hz)"
    while [ "$i" -le "$PODS" ]; do run_pod "$i" >>"$TMP/latencies"; i=$((i + 1)); done
    sort -n "$TMP/latencies" | awk -v n="$PODS" -v what="$1" '
        { v[NR] = $1; sum += $1 }
        END {
            p99 = v[int((n * 99 + 99) / 100)]   # nearest rank
            printf "bind -> %s running over %d pods (one at a time): mean %.1f ms, p99 %d ms, max %d ms\n", what, n, sum / n, p99, v[n]
        }'
}
ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
rss_mib() { echo $(($(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status") / 1024)); }
