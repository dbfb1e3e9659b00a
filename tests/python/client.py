"""Drives a cluster with the official Kubernetes Python client as an application would.

The kubeconfig named by KUBECONFIG, as `pernode up` wrote it (HTTPS, the cluster CA, the
admin's client certificate), loaded with `config.load_kube_config()`, and the generated typed
APIs. Prints one JSON object on stdout: each step's result, or the error the client raised,
for tests/python_client.rs to check. Exits non-zero only when the script itself breaks.

Environment: KUBECONFIG (required), PY_NAMESPACE (default `py-client`), PY_NODES (simulated
nodes to create, comma-separated).
"""

import json
import os
import sys
import time

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

NAMESPACE = os.environ.get("PY_NAMESPACE", "py-client")
NODES = os.environ.get("PY_NODES", "py-node-1,py-node-2").split(",")
DAEMONSET = "py-agent"
CONFIGMAP = "py-settings"
# How long the DaemonSet may take to be available on every node.
ROLLOUT_DEADLINE_S = 90

results = {}


def describe_error(err):
    """What the client raised, in a form the Rust test can assert on."""
    if isinstance(err, ApiException):
        try:
            body = json.loads(err.body) if err.body else None
        except ValueError:
            body = err.body
        return {"code": err.status, "body": body}
    return {"message": str(err)}


def step(name, run):
    """Runs one step: its value under results[name], or the error it raised."""
    try:
        results[name] = {"ok": True, "value": run()}
    except Exception as err:  # noqa: BLE001 - every failure is reported to the test
        results[name] = {"ok": False, "error": describe_error(err)}
    return results[name]


def eventually(seconds, what, probe):
    """Polls `probe` until it returns a value other than None, or fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds} s")
        time.sleep(0.2)


def main():
    config.load_kube_config()
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    step("version", lambda: client.VersionApi().get_code().git_version)
    step(
        "listNamespaces",
        lambda: [ns.metadata.name for ns in core.list_namespace().items],
    )
    step(
        "createNamespace",
        lambda: core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        ).status.phase,
    )

    def create_nodes():
        names = []
        for name in NODES:
            node = core.create_node(
                client.V1Node(
                    metadata=client.V1ObjectMeta(
                        name=name,
                        labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                        annotations={"pernode.io/simulated": "true"},
                    )
                )
            )
            names.append(node.metadata.name)
        return names

    step("createNodes", create_nodes)

    def default_service_account():
        def probe():
            try:
                return core.read_namespaced_service_account("default", NAMESPACE).metadata.name
            except ApiException as err:
                if err.status == 404:
                    return None
                raise

        return eventually(30, "the default ServiceAccount", probe)

    step("defaultServiceAccount", default_service_account)

    def create_config_map():
        cm = core.create_namespaced_config_map(
            NAMESPACE,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=CONFIGMAP), data={"level": "info"}
            ),
        )
        return {"uid": cm.metadata.uid, "resourceVersion": cm.metadata.resource_version}

    step("createConfigMap", create_config_map)

    def read_config_map():
        cm = core.read_namespaced_config_map(CONFIGMAP, NAMESPACE)
        return {"uid": cm.metadata.uid, "data": cm.data}

    step("readConfigMap", read_config_map)

    step(
        "createInvalidConfigMap",
        lambda: core.create_namespaced_config_map(
            NAMESPACE, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Not_Valid"))
        ).metadata.name,
    )

    # A watch from the ConfigMap's resourceVersion sees the merge patch that follows.
    def watch_a_patch():
        start = results["createConfigMap"]["value"]["resourceVersion"]
        core.patch_namespaced_config_map(CONFIGMAP, NAMESPACE, {"data": {"level": "debug"}})
        w = watch.Watch()
        seen = []
        for event in w.stream(
            core.list_namespaced_config_map,
            NAMESPACE,
            resource_version=start,
            timeout_seconds=20,
        ):
            obj = event["object"]
            seen.append([event["type"], getattr(getattr(obj, "metadata", None), "name", str(obj))])
            if obj.metadata.name == CONFIGMAP and event["type"] == "MODIFIED":
                w.stop()
                return {"type": event["type"], "data": obj.data}
        raise TimeoutError(f"no MODIFIED event for the patch; saw {seen}")

    step("watchPatch", watch_a_patch)

    # Server-side apply through the client's dynamic client (which discovers the API first, as
    # kubectl does), a field manager, and the managedFields entry the server records for it.
    def server_side_apply():
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
            "data": {"level": "warn", "format": "json"},
        }
        config_maps = dynamic.DynamicClient(client.ApiClient()).resources.get(
            api_version="v1", kind="ConfigMap"
        )
        cm = config_maps.server_side_apply(
            body=body,
            name=CONFIGMAP,
            namespace=NAMESPACE,
            field_manager="py-client",
            force_conflicts=True,
        ).to_dict()
        managers = sorted(
            {(m["manager"], m["operation"]) for m in cm["metadata"].get("managedFields") or []}
        )
        return {"data": cm["data"], "managers": [list(m) for m in managers]}

    step("serverSideApply", server_side_apply)

    def create_daemon_set():
        labels = {"app": DAEMONSET}
        ds = apps.create_namespaced_daemon_set(
            NAMESPACE,
            client.V1DaemonSet(
                metadata=client.V1ObjectMeta(name=DAEMONSET),
                spec=client.V1DaemonSetSpec(
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(
                            containers=[client.V1Container(name="agent", image="busybox:1.36")]
                        ),
                    ),
                ),
            ),
        )
        return {
            "generation": ds.metadata.generation,
            "updateStrategy": ds.spec.update_strategy.type,
        }

    step("createDaemonSet", create_daemon_set)

    def available_everywhere():
        def probe():
            ds = apps.read_namespaced_daemon_set(DAEMONSET, NAMESPACE)
            status = ds.status
            if status and status.number_available == len(NODES) and (
                status.desired_number_scheduled == len(NODES)
            ):
                return {
                    "desired": status.desired_number_scheduled,
                    "available": status.number_available,
                }
            return None

        return eventually(ROLLOUT_DEADLINE_S, "the DaemonSet available on every node", probe)

    step("availableEverywhere", available_everywhere)

    step(
        "podsOnNodes",
        lambda: sorted(
            pod.spec.node_name
            for pod in core.list_namespaced_pod(
                NAMESPACE, label_selector=f"app={DAEMONSET}"
            ).items
        ),
    )

    step(
        "deleteConfigMap",
        lambda: core.delete_namespaced_config_map(CONFIGMAP, NAMESPACE).status,
    )

    def read_deleted():
        core.read_namespaced_config_map(CONFIGMAP, NAMESPACE)
        return "still there"

    step("readDeletedConfigMap", read_deleted)

    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
