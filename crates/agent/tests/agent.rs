//! The real node agent against pernode's own API server, in process, with real processes.
//! Every wait polls with a deadline.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn registers_heartbeats_runs_a_process_and_serves_logs() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let mut opts = options("n1", root.path());
    opts.labels = [("disk".to_string(), "ssd".to_string())].into();
    let agent = start(&c.client, opts);

    let nodes: Api<Node> = Api::all(c.client.clone());
    let node = eventually("the node registers and is Ready", || async {
        let n = nodes.get_opt("n1").await.ok().flatten()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await;
    let status = node.status.clone().expect("status");
    let cpu = status
        .capacity
        .as_ref()
        .and_then(|c| c.get("cpu"))
        .map(|q| q.0.clone());
    assert_eq!(
        cpu,
        Some(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .to_string()
        )
    );
    assert!(
        status
            .allocatable
            .as_ref()
            .is_some_and(|a| a.contains_key("memory"))
    );
    assert!(
        status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .is_some_and(|k| k.port > 0)
    );
    assert_eq!(
        node.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("disk"))
            .map(String::as_str),
        Some("ssd")
    );
    // The kubelet's node events, in `default`, about the node.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let reasons = eventually("the node's events are recorded", || async {
        let list = events.list(&Default::default()).await.ok()?;
        let mut reasons: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Node")
                    && e.involved_object.name.as_deref() == Some("n1")
                    && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("kubelet")
            })
            .map(|e| {
                (
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default(),
                )
            })
            .collect();
        reasons.sort();
        (reasons.len() >= 5).then_some(reasons)
    })
    .await;
    let expected: Vec<(String, String)> = [
        (
            "NodeHasNoDiskPressure",
            "Node n1 status is now: NodeHasNoDiskPressure",
        ),
        (
            "NodeHasSufficientMemory",
            "Node n1 status is now: NodeHasSufficientMemory",
        ),
        (
            "NodeHasSufficientPID",
            "Node n1 status is now: NodeHasSufficientPID",
        ),
        ("NodeReady", "Node n1 status is now: NodeReady"),
        ("Starting", "Starting kubelet."),
    ]
    .iter()
    .map(|(r, m)| (r.to_string(), m.to_string()))
    .collect();
    assert_eq!(reasons, expected);
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let first = eventually("the lease exists", || async {
        leases.get_opt("n1").await.ok().flatten()?.spec?.renew_time
    })
    .await;
    eventually("the lease is renewed", || async {
        let t = leases
            .get_opt("n1")
            .await
            .ok()
            .flatten()?
            .spec?
            .renew_time?;
        (t.0 > first.0).then_some(())
    })
    .await;

    let pids = work.path().join("pid");
    let script = format!(
        "echo started on $NODE as $POD at $IP in $(pwd); echo $$$$ > {}; exec sleep 600",
        pids.display()
    );
    let mut container = sh(&script);
    container["workingDir"] = json!(work.path());
    container["env"] = json!([
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]);
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p1", "n1", container))
        .await
        .expect("create pod");
    let running = eventually("the pod runs and is Ready", || async {
        let p = pods.get_opt("p1").await.ok().flatten()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let st = running.status.clone().expect("status");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.pod_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    let cs = status_of(&running).expect("container status");
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
    assert_eq!(cs.restart_count, 0);
    let pid = read_pid(&pids).await;
    assert!(pid_alive(pid));

    // kubectl logs, through the API server's proxy to the agent.
    let uri = "/api/v1/namespaces/default/pods/p1/log?container=c";
    let (code, text) = eventually("logs are served", || async {
        let (code, text) = get_raw(&c.router, uri).await;
        (code == 200 && !text.is_empty()).then_some((code, text))
    })
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        text,
        format!(
            "started on n1 as p1 at 127.0.0.1 in {}\n",
            work.path().display()
        )
    );
    let (code, text) = get_raw(
        &c.router,
        "/api/v1/namespaces/default/pods/p1/log?container=zz",
    )
    .await;
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("container zz is not valid for pod p1"),
        "{text}"
    );
    let (code, text) = get_raw(
        &c.router,
        "/api/v1/namespaces/default/pods/p1/log?previous=true",
    )
    .await;
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("previous terminated container \\\"c\\\" in pod \\\"p1\\\" not found"),
        "{text}"
    );

    delete_and_wait(&pods, "p1", Some(pid)).await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn crashing_containers_back_off_and_keep_previous_logs() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let agent = start(&c.client, options("n1", root.path()));
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let counter = root.path().join("count");
    let script = format!(
        "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; echo run $n; exit 3",
        counter.display()
    );
    pods.create(&PostParams::default(), &pod("crash", "n1", sh(&script)))
        .await
        .expect("create pod");
    let p = eventually(
        "the container is in CrashLoopBackOff after restarts",
        || async {
            let p = pods.get_opt("crash").await.ok().flatten()?;
            let cs = status_of(&p)?;
            let waiting =
                cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref() == Some("CrashLoopBackOff");
            (waiting && cs.restart_count >= 2).then_some(p)
        },
    )
    .await;
    let cs = status_of(&p).expect("status");
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("last state");
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let msg = cs
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.message.clone())
        .unwrap_or_default();
    assert!(
        msg.starts_with("back-off ")
            && msg.contains("restarting failed container=c pod=crash_default("),
        "{msg}"
    );
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    // The previous instance's output, and the current (last) one's.
    let (code, prev) = get_raw(
        &c.router,
        "/api/v1/namespaces/default/pods/crash/log?previous=true",
    )
    .await;
    assert_eq!(code, 200, "{prev}");
    let (_, cur) = get_raw(&c.router, "/api/v1/namespaces/default/pods/crash/log").await;
    let n = |s: &str| {
        s.trim()
            .strip_prefix("run ")
            .and_then(|n| n.parse::<u32>().ok())
    };
    let (p_n, c_n) = (
        n(&prev).expect("previous run"),
        n(&cur).expect("current run"),
    );
    assert_eq!(p_n + 1, c_n, "previous {prev:?}, current {cur:?}");
    delete_and_wait(&pods, "crash", None).await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_gate_readiness_and_restart_on_liveness_failure() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let agent = start(&c.client, options("n1", root.path()));
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let ready = work.path().join("ready");
    let dead = work.path().join("dead");
    let mut container = sh("exec sleep 600");
    container["readinessProbe"] =
        json!({"exec": {"command": ["test", "-f", ready]}, "periodSeconds": 1});
    container["livenessProbe"] = json!({"exec": {"command": ["test", "!", "-f", dead]}, "periodSeconds": 1, "failureThreshold": 1});
    container["startupProbe"] = json!({"exec": {"command": ["true"]}, "periodSeconds": 1});
    pods.create(&PostParams::default(), &pod("probed", "n1", container))
        .await
        .expect("create pod");
    eventually("running and started but not ready", || async {
        let p = pods.get_opt("probed").await.ok().flatten()?;
        let cs = status_of(&p)?;
        (cs.state.as_ref()?.running.is_some() && cs.started == Some(true) && !cs.ready)
            .then_some(())
    })
    .await;
    std::fs::write(&ready, "").expect("touch");
    let p = eventually("ready once the readiness probe passes", || async {
        let p = pods.get_opt("probed").await.ok().flatten()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    assert!(status_of(&p).is_some_and(|c| c.ready));
    std::fs::remove_file(&ready).expect("rm");
    eventually("unready again when it fails", || async {
        let p = pods.get_opt("probed").await.ok().flatten()?;
        (condition(&p, "Ready").as_deref() == Some("False")).then_some(())
    })
    .await;
    std::fs::write(&ready, "").expect("touch");
    std::fs::write(&dead, "").expect("touch");
    eventually(
        "a failing liveness probe restarts the container",
        || async {
            let p = pods.get_opt("probed").await.ok().flatten()?;
            (status_of(&p)?.restart_count >= 1).then_some(())
        },
    )
    .await;
    std::fs::remove_file(&dead).expect("rm");
    let p = eventually("running and ready after the restart", || async {
        let p = pods.get_opt("probed").await.ok().flatten()?;
        let cs = status_of(&p)?;
        (cs.state.as_ref()?.running.is_some() && cs.ready).then_some(p)
    })
    .await;
    let last = status_of(&p)
        .and_then(|c| c.last_state.clone())
        .and_then(|s| s.terminated)
        .expect("last state");
    assert_eq!(last.exit_code, 128 + 15, "killed by SIGTERM");
    delete_and_wait(&pods, "probed", None).await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_termination_sends_sigterm_first() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let agent = start(&c.client, options("n1", root.path()));
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let bye = work.path().join("bye");
    let pidfile = work.path().join("pid");
    let script = format!(
        "trap 'echo bye > {}; exit 0' TERM; echo $$$$ > {}; while true; do sleep 0.1; done",
        bye.display(),
        pidfile.display()
    );
    pods.create(&PostParams::default(), &pod("graceful", "n1", sh(&script)))
        .await
        .expect("create pod");
    let pid = read_pid(&pidfile).await;
    let started = std::time::Instant::now();
    delete_and_wait(&pods, "graceful", Some(pid)).await;
    assert_eq!(std::fs::read_to_string(&bye).ok().as_deref(), Some("bye\n"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it exited on SIGTERM, not after the grace period"
    );

    // A process that ignores SIGTERM is killed after the grace period.
    let script = format!(
        "trap '' TERM; echo $$$$ > {}; while true; do sleep 0.1; done",
        pidfile.display()
    );
    let _ = std::fs::remove_file(&pidfile);
    let mut p = pod("stubborn", "n1", sh(&script));
    if let Some(s) = p.spec.as_mut() {
        s.termination_grace_period_seconds = Some(1);
    }
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
    let pid = read_pid(&pidfile).await;
    delete_and_wait(&pods, "stubborn", Some(pid)).await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn unmapped_images_and_missing_programs_say_why() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let mut opts = options("n1", root.path());
    opts.image_map.add("tool=sh -c").expect("entry");
    let agent = start(&c.client, opts);
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let waiting = |name: &'static str| {
        let pods = pods.clone();
        async move {
            eventually("the container reports why it cannot start", || async {
                let p = pods.get_opt(name).await.ok().flatten()?;
                let w = status_of(&p)?.state.as_ref()?.waiting.clone()?;
                (w.reason.as_deref() != Some("ContainerCreating")).then_some(w)
            })
            .await
        }
    };
    pods.create(
        &PostParams::default(),
        &pod("nginx", "n1", json!({"name": "c", "image": "nginx:1.27"})),
    )
    .await
    .expect("create");
    let w = waiting("nginx").await;
    assert_eq!(w.reason.as_deref(), Some("CreateContainerError"));
    assert!(
        w.message
            .unwrap_or_default()
            .contains("image \"nginx:1.27\" has no command")
    );
    pods.create(
        &PostParams::default(),
        &pod(
            "missing",
            "n1",
            json!({"name": "c", "image": "x", "command": ["no-such-program-xyz"]}),
        ),
    )
    .await
    .expect("create");
    assert_eq!(
        waiting("missing").await.reason.as_deref(),
        Some("RunContainerError")
    );
    // A mapped image runs its entrypoint with the pod's args.
    pods.create(&PostParams::default(), &pod("mapped", "n1", json!({"name": "c", "image": "registry.example/tool:2", "args": ["echo mapped; exit 0"]})))
        .await
        .expect("create");
    eventually("the mapped image ran", || async {
        let (code, text) = get_raw(&c.router, "/api/v1/namespaces/default/pods/mapped/log").await;
        (code == 200 && text == "mapped\n").then_some(())
    })
    .await;
    for name in ["nginx", "missing", "mapped"] {
        delete_and_wait(&pods, name, None).await;
    }
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_agent_adopts_running_processes() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let agent = start(&c.client, options("n1", root.path()));
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pidfile = work.path().join("pid");
    let starts = work.path().join("starts");
    let script = format!(
        "echo x >> {}; echo $$$$ > {}; exec sleep 600",
        starts.display(),
        pidfile.display()
    );
    pods.create(&PostParams::default(), &pod("kept", "n1", sh(&script)))
        .await
        .expect("create pod");
    eventually("running", || async {
        let p = pods.get_opt("kept").await.ok().flatten()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await;
    let pid = read_pid(&pidfile).await;
    agent.abort();
    let _ = agent.await;
    assert!(
        pid_alive(pid),
        "stopping the agent leaves containers running"
    );

    let agent = start(&c.client, options("n1", root.path()));
    // The new agent reports the same process: one start, no restart.
    let ticks_before = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    eventually("the restarted agent keeps reporting it Ready", || async {
        let p = pods.get_opt("kept").await.ok().flatten()?;
        let cs = status_of(&p)?;
        (cs.ready && cs.restart_count == 0).then_some(())
    })
    .await;
    // Give the new agent's worker a full status round, then check nothing was started again.
    let (code, _) = eventually("the new agent serves the pod's logs", || async {
        let r = get_raw(&c.router, "/api/v1/namespaces/default/pods/kept/log").await;
        (r.0 == 200).then_some(r)
    })
    .await;
    assert_eq!(code, 200);
    assert_eq!(std::fs::read_to_string(&starts).expect("starts"), "x\n");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat"),
        ticks_before
    );

    // A pod deleted while no agent runs: the next agent kills its process.
    agent.abort();
    let _ = agent.await;
    pods.delete(
        "kept",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    let agent = start(&c.client, options("n1", root.path()));
    eventually("the orphaned process is killed", || async {
        (!pid_alive(pid)).then_some(())
    })
    .await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn static_pods_run_from_files_and_appear_as_mirror_pods() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let manifests = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let pidfile: PathBuf = work.path().join("pid");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: kube-system\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo $$$$ > {}; exec sleep 600']\n",
        pidfile.display()
    );
    std::fs::write(manifests.path().join("web.yaml"), manifest).expect("write manifest");
    let mut opts = options("n1", root.path());
    opts.pod_manifest_path = Some(manifests.path().to_path_buf());
    let agent = start(&c.client, opts);
    let pid = read_pid(&pidfile).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "kube-system");
    let mirror = eventually(
        "the mirror pod appears with the static pod's status",
        || async {
            let p = pods.get_opt("web-n1").await.ok().flatten()?;
            (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
        },
    )
    .await;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    assert!(annotations.contains_key("kubernetes.io/config.mirror"));
    assert_eq!(
        annotations
            .get("kubernetes.io/config.source")
            .map(String::as_str),
        Some("file")
    );
    assert_eq!(
        mirror
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].kind.as_str()),
        Some("Node")
    );
    // Deleting the mirror does not stop the static pod; the mirror comes back.
    let old_uid = mirror.metadata.uid.clone();
    pods.delete("web-n1", &DeleteParams::default())
        .await
        .expect("delete mirror");
    eventually("the mirror is re-created", || async {
        let p = pods.get_opt("web-n1").await.ok().flatten()?;
        (p.metadata.uid != old_uid && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert!(pid_alive(pid));
    // Removing the manifest stops the pod and removes its mirror.
    std::fs::remove_file(manifests.path().join("web.yaml")).expect("rm");
    eventually("the static pod stops", || async {
        (!pid_alive(pid)).then_some(())
    })
    .await;
    eventually("the mirror goes", || async {
        pods.get_opt("web-n1")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    agent.abort();
}
