//! The node agent's volumes, mounts and API-object environment, in process against pernode's
//! own API server, with real processes in their own mount namespaces (these tests run as
//! root, as CI does). Every wait polls with a deadline.

mod common;

use std::path::Path;

use common::*;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn require_mount_namespaces() {
    if let Err(e) = pernode_agent::agent::mounts::probe() {
        panic!(
            "these tests mount volumes into containers' own mount namespaces and need root (CI runs as root): {e}"
        );
    }
}

async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let obj: K = serde_json::from_value(value).expect("object literal");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().filter(|s| !s.is_empty())
}

/// Whether anything is mounted at or under `dir` in this process's mount namespace.
fn mounted_under(dir: &Path) -> bool {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&dir)))
}

fn waiting(p: &Pod) -> Option<(String, String)> {
    let w = status_of(p)?.state.as_ref()?.waiting.as_ref()?;
    Some((
        w.reason.clone().unwrap_or_default(),
        w.message.clone().unwrap_or_default(),
    ))
}

async fn events_of(client: &kube::Client, pod: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn volumes_are_projected_mounted_and_kept_current() {
    require_mount_namespaces();
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let agent = start(&c.client, options("n1", root.path()));
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    create(
        &cms,
        json!({"metadata": {"name": "app"}, "data": {"greeting": "hello", "other": "x"}}),
    )
    .await;
    create(
        &secrets,
        json!({"metadata": {"name": "creds"}, "stringData": {"password": "s3cr3t"}}),
    )
    .await;
    let m = work.path().join("m");
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    let script = format!(
        r#"M={m}; O={out}
echo $$$$ > $O/pid
cp /var/run/secrets/kubernetes.io/serviceaccount/token $O/token.tmp && mv $O/token.tmp $O/token
cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > $O/namespace
cat $M/sec/password > $O/password
stat -c %a $M/sec/..data/password > $O/mode
cat $M/info/labels > $O/labels
echo hi > $M/scratch/x && cat $M/scratch/x > $O/scratch
touch $M/cfg/new 2>/dev/null && echo writable > $O/ro || echo read-only > $O/ro
cat $M/single > $O/single
while true; do cat $M/cfg/greeting > $O/g.tmp; mv $O/g.tmp $O/greeting; sleep 0.1; done"#,
        m = m.display(),
        out = out.display(),
    );
    let mount = |name: &str, path: &str| json!({"name": name, "mountPath": m.join(path)});
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "vols", "namespace": "default", "labels": {"app": "v"}},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "cfg", "configMap": {"name": "app"}},
                {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "scratch", "emptyDir": {"medium": "Memory"}},
            ],
            "containers": [{
                "name": "c", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [
                    mount("cfg", "cfg"), mount("sec", "sec"), mount("info", "info"),
                    mount("scratch", "scratch"),
                    {"name": "cfg", "mountPath": m.join("single"), "subPath": "greeting"},
                ],
            }],
        },
    }))
    .expect("pod literal");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");

    let greeting = out.join("greeting");
    eventually("the container reads its ConfigMap", || async {
        (read(&greeting).as_deref() == Some("hello")).then_some(())
    })
    .await;
    assert_eq!(read(&out.join("password")).as_deref(), Some("s3cr3t"));
    assert_eq!(read(&out.join("mode")).as_deref(), Some("400\n"));
    assert_eq!(read(&out.join("labels")).as_deref(), Some("app=\"v\""));
    assert_eq!(read(&out.join("scratch")).as_deref(), Some("hi\n"));
    assert_eq!(read(&out.join("ro")).as_deref(), Some("read-only\n"));
    assert_eq!(read(&out.join("single")).as_deref(), Some("hello"));
    assert_eq!(read(&out.join("namespace")).as_deref(), Some("default"));

    // The projected token is the pod's, bound to it.
    let token = read(&out.join("token")).expect("token");
    let reviews: Api<TokenReview> = Api::all(c.client.clone());
    let review: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token}})).expect("review literal");
    let reviewed = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("token review");
    let status = reviewed.status.expect("review status");
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    let user = status.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:default")
    );
    let extra = user.extra.unwrap_or_default();
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-name"),
        Some(&vec!["vols".to_string()])
    );

    // On the host the mount points stay empty, the volumes live under the root directory, and
    // the memory-backed ones are tmpfs mounts there.
    for dir in ["cfg", "sec", "info", "scratch"] {
        let entries = std::fs::read_dir(m.join(dir)).expect("mount point").count();
        assert_eq!(entries, 0, "{dir} leaked to the host");
    }
    assert!(
        !mounted_under(&m),
        "nothing is mounted on the host's mount points"
    );
    let uid = pods
        .get("vols")
        .await
        .expect("pod")
        .metadata
        .uid
        .expect("uid");
    let volumes = root.path().join("pods").join(&uid).join("volumes");
    let data =
        std::fs::read_link(volumes.join("kubernetes.io~configmap/cfg/..data")).expect("..data");
    assert!(data.to_string_lossy().starts_with(".."), "{data:?}");
    assert!(mounted_under(&volumes.join("kubernetes.io~secret/sec")));
    assert!(mounted_under(
        &volumes.join("kubernetes.io~empty-dir/scratch")
    ));
    assert!(!mounted_under(&volumes.join("kubernetes.io~configmap")));

    // A ConfigMap change reaches the running container through its mount.
    cms.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"greeting": "bye"}})),
    )
    .await
    .expect("patch config map");
    eventually("the container sees the new content", || async {
        (read(&greeting).as_deref() == Some("bye")).then_some(())
    })
    .await;
    let after =
        std::fs::read_link(volumes.join("kubernetes.io~configmap/cfg/..data")).expect("..data");
    assert_ne!(data, after, "..data was swapped");

    // A new agent adopts the process, which keeps its namespace and mounts: the next change
    // reaches it too.
    let pid = read_pid(&out.join("pid")).await;
    agent.abort();
    let _ = agent.await;
    let agent = start(&c.client, options("n1", root.path()));
    cms.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"greeting": "again"}})),
    )
    .await
    .expect("patch config map");
    eventually("the adopted container sees the next content", || async {
        (read(&greeting).as_deref() == Some("again")).then_some(())
    })
    .await;
    assert_eq!(read_pid(&out.join("pid")).await, pid, "the same process");

    delete_and_wait(&pods, "vols", Some(pid)).await;
    eventually("the pod's directory and mounts are gone", || async {
        (!volumes.exists() && !mounted_under(root.path())).then_some(())
    })
    .await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_config_map_holds_the_pod_until_it_appears() {
    require_mount_namespaces();
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let work = tempfile::tempdir().expect("tempdir");
    let agent = start(&c.client, options("n1", root.path()));
    let out = work.path().join("out");
    let mnt = work.path().join("late");
    let script = format!(
        "cat {mnt}/key > {out}.tmp; ls {opt} > {out}.opt; mv {out}.tmp {out}; exec sleep 600",
        mnt = mnt.display(),
        opt = work.path().join("opt").display(),
        out = out.display()
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "late", "namespace": "default"},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 1,
            "volumes": [
                {"name": "cfg", "configMap": {"name": "late-config"}},
                {"name": "opt", "configMap": {"name": "never", "optional": true}},
            ],
            "containers": [{
                "name": "c", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": mnt},
                    {"name": "opt", "mountPath": work.path().join("opt")},
                ],
            }],
        },
    }))
    .expect("pod literal");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let message =
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"late-config\" not found";
    let event = eventually("a FailedMount event", || async {
        events_of(&c.client, "late").await.into_iter().find(|e| {
            e.reason.as_deref() == Some("FailedMount") && e.message.as_deref() == Some(message)
        })
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.source.and_then(|s| s.component).as_deref(),
        Some("kubelet")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("Pod"));
    eventually("the retries bump the event's count", || async {
        events_of(&c.client, "late")
            .await
            .into_iter()
            .any(|e| e.message.as_deref() == Some(message) && e.count.unwrap_or(0) > 1)
            .then_some(())
    })
    .await;
    let p = pods.get("late").await.expect("pod");
    assert_eq!(
        waiting(&p).map(|w| w.0).as_deref(),
        Some("ContainerCreating")
    );
    assert!(read(&out).is_none(), "nothing ran");

    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    create(
        &cms,
        json!({"metadata": {"name": "late-config"}, "data": {"key": "finally"}}),
    )
    .await;
    eventually("the pod starts once the ConfigMap exists", || async {
        (read(&out).as_deref() == Some("finally")).then_some(())
    })
    .await;
    // The optional ConfigMap that does not exist is an empty volume.
    assert_eq!(
        std::fs::read_to_string(format!("{}.opt", out.display()))
            .ok()
            .as_deref(),
        Some("")
    );
    eventually("the pod is Running", || async {
        let p = pods.get("late").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    delete_and_wait(&pods, "late", None).await;
    agent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn env_reads_config_maps_and_secrets_and_names_the_api_server() {
    let c = cluster().await;
    let root = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(root.path().to_path_buf());
    let mut opts = options("n1", root.path());
    // Only printed by the container: nothing connects to it.
    opts.api_server = Some(("127.0.0.1".into(), 16443));
    let agent = start(&c.client, opts);
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    create(
        &cms,
        json!({"metadata": {"name": "settings"}, "data": {"LEVEL": "debug", "MODE": "fast"}}),
    )
    .await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "envs", "namespace": "default"},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "c", "image": "busybox",
                "command": ["sh", "-c", "echo $APP_LEVEL $MODE $PASSWORD $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT $KUBERNETES_PORT_16443_TCP; exec sleep 600"],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "APP_"}],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                ],
            }],
        },
    }))
    .expect("pod literal");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let (reason, message) = eventually("the container waits for its Secret", || async {
        let p = pods.get("envs").await.ok()?;
        waiting(&p).filter(|w| w.0 == "CreateContainerConfigError")
    })
    .await;
    assert_eq!(reason, "CreateContainerConfigError");
    assert_eq!(message, "secret \"db\" not found");
    eventually("a Failed event says why", || async {
        events_of(&c.client, "envs")
            .await
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("Failed")
                    && e.message.as_deref() == Some("Error: secret \"db\" not found")
            })
            .then_some(())
    })
    .await;

    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    create(
        &secrets,
        json!({"metadata": {"name": "db"}, "stringData": {"password": "pw"}}),
    )
    .await;
    let uri = "/api/v1/namespaces/default/pods/envs/log";
    let text = eventually("the container starts once the Secret exists", || async {
        let (code, text) = get_raw(&c.router, uri).await;
        (code == 200 && !text.is_empty()).then_some(text)
    })
    .await;
    assert_eq!(
        text,
        "debug fast pw 127.0.0.1:16443 tcp://127.0.0.1:16443\n"
    );
    delete_and_wait(&pods, "envs", None).await;
    agent.abort();
}
