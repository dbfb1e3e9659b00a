#!/bin/sh
# Node agent figures through a CRI runtime: the time from a pod's binding (created with
# spec.nodeName) to its container's first instruction, mean and p99 over PODS pods created one
# at a time, and the agent idle with IDLE_PODS of them running and Ready.
#
#   cargo build --release --features cri && scripts/agent-bench-cri.sh [path/to/pernode]
#                                                   # PODS=50 IDLE_PODS=20 IDLE=60
#
# Needs root, Debian's containerd, runc and busybox-static. Starts its own containerd (its own
# root, state and socket in a temporary directory, as tests/agent_cri_e2e.rs does), imports a
# pause image and an app image it builds from the host's busybox, then `pernode up --nodes 0`
# and one `pernode agent --container-runtime-endpoint` on loopback; cleans up after itself.
# The pods are hostNetwork (no CNI) with a hostPath volume: the container's `sh` creates a file
# there first thing, and that file's modification time is when it ran.
set -eu
PERNODE=${1:-target/release/pernode}
PODS=${PODS:-50}
IDLE_PODS=${IDLE_PODS:-20}
IDLE=${IDLE:-60}
[ "$IDLE_PODS" -le "$PODS" ] || { echo "IDLE_PODS must not exceed PODS" >&2; exit 2; }
for p in containerd runc ctr busybox; do
    command -v "$p" >/dev/null || { echo "$p is missing (apt-get install containerd runc busybox-static)" >&2; exit 2; }
done
TMP=$(mktemp -d)
# The pods' cgroups go under /pernode-<node>: a name of this run's own.
NODE=bench-cri-$$
SOCK=$TMP/containerd/c.sock
ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
cleanup() {
    [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    if [ -n "${CONTAINERD:-}" ]; then
        # Tasks outlive containerd (their shims stay): kill and delete them first.
        for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" 2>/dev/null || true; done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            tasks=$(ctr_ tasks ls -q 2>/dev/null || true)
            [ -z "$tasks" ] && break
            for t in $tasks; do ctr_ tasks delete "$t" >/dev/null 2>&1 || true; done
            sleep 0.2
        done
        for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$c" >/dev/null 2>&1 || true; done
        kill "$CONTAINERD" 2>/dev/null || true
        wait "$CONTAINERD" 2>/dev/null || true
    fi
    find /sys/fs/cgroup -depth -type d -path "*/pernode-$NODE*" -exec rmdir {} + 2>/dev/null || true
    awk -v d="$TMP/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# An OCI image layout tarball of busybox and a few applets, with the given Cmd.
image() { # name cmd-json
    dir=$TMP/images/$(echo "$1" | tr '/:' '__')
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/proc" \
        "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/layout/blobs/sha256"
    cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
    for a in sh sleep cat echo true; do ln -s busybox "$dir/rootfs/bin/$a"; done
    tar --numeric-owner --owner=0 --group=0 -C "$dir/rootfs" -cf "$dir/layer.tar" .
    blob() { # file -> prints "digest size", stores the blob
        d=$(sha256sum "$1" | cut -d' ' -f1)
        cp "$1" "$dir/layout/blobs/sha256/$d"
        echo "sha256:$d $(stat -c %s "$1")"
    }
    set -- "$1" "$2" $(blob "$dir/layer.tar")
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
        "$2" "$3" >"$dir/config.json"
    set -- "$@" $(blob "$dir/config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
        "$5" "$6" "$3" "$4" >"$dir/manifest.json"
    set -- "$@" $(blob "$dir/manifest.json")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
        "$7" "$8" "$1" >"$dir/layout/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/layout/oci-layout"
    tar -C "$dir/layout" -cf "$dir/image.tar" .
    ctr_ images import "$dir/image.tar" >/dev/null
}

PAUSE=localhost/pernode-bench/pause:1
APP=localhost/pernode-bench/app:1
mkdir -p "$TMP/containerd/cni"
cat >"$TMP/containerd/config.toml" <<EOF
version = 2
root = "$TMP/containerd/root"
state = "$TMP/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  disable_tcp_service = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$TMP/containerd/cni"
EOF
containerd --config "$TMP/containerd/config.toml" >/dev/null 2>"$TMP/containerd.log" &
CONTAINERD=$!
until ctr_ version >/dev/null 2>&1; do sleep 0.1; done
image "$PAUSE" '["/bin/sleep","2147483647"]'
image "$APP" '["/bin/sh"]'

. "$(dirname "$0")/agent-bench-lib.sh"
start_server

"$PERNODE" agent --kubeconfig "$TMP/kubeconfig" --node-name "$NODE" --node-ip 127.0.0.1 \
    --address 127.0.0.1 --port 0 --root-dir "$TMP/agent" --pod-logs-dir "$TMP/pod-logs" \
    --container-runtime-endpoint "unix://$SOCK" 2>"$TMP/agent.log" &
AGENT=$!
wait_ready "$NODE"

mkdir -p "$TMP/marks"
# Creates pod $1 bound to the node and prints the milliseconds until its container ran.
run_pod() {
    body=$(printf '{"metadata":{"name":"p%s"},"spec":{"nodeName":"%s","hostNetwork":true,"terminationGracePeriodSeconds":1,"containers":[{"name":"c","image":"%s","imagePullPolicy":"IfNotPresent","command":["sh","-c",": > /marks/start-%s; exec sleep 100000"],"volumeMounts":[{"name":"marks","mountPath":"/marks"}]}],"volumes":[{"name":"marks","hostPath":{"path":"%s","type":"Directory"}}]}}' \
        "$1" "$NODE" "$APP" "$1" "$TMP/marks")
    t0=$(date +%s%N)
    api -X POST -H 'Content-Type: application/json' --data "$body" \
        "$API/api/v1/namespaces/default/pods" >/dev/null
    while [ ! -e "$TMP/marks/start-$1" ]; do sleep 0.002; done
    t1=$(stat -c %.9Y "$TMP/marks/start-$1" | tr -d .)
    echo $(( (t1 - t0) / 1000000 ))
}

measure container
