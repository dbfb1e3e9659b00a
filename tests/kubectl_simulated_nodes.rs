//! What kubectl gets for the node requests of pods on simulated nodes under `pernode up`: logs
//! answered by the API server for the simulator (with `--timestamps`, `--tail`, `--previous`
//! and `-f` ending with the pod), and exec, attach, port-forward and node proxy refused with a
//! message naming the node as simulated. The in-process test `crates/apiserver/tests/
//! node_proxy.rs` shows with a dial counter that none of these opens a connection.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{AGENT_DS as DS, Cluster, eventually};

/// The running pod of the DaemonSet on node-1.
fn running_pod(c: &Cluster) -> String {
    let mut pod = String::new();
    eventually(Duration::from_secs(60), "a Running pod on node-1", || {
        pod = c
            .kubectl(&[
                "get",
                "pods",
                "-l",
                "app=agent",
                "--field-selector",
                "spec.nodeName=node-1,status.phase=Running",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .stdout;
        !pod.is_empty()
    });
    pod
}

#[test]
fn kubectl_node_requests_of_simulated_pods_are_answered_without_the_node() {
    let c = Cluster::start("up", &["--nodes", "2"]);
    c.ok_stdin(&["apply", "-f", "-"], DS);
    let pod = running_pod(&c);

    let logs = c.ok(&["logs", &pod]);
    assert_eq!(
        logs,
        "pernode simulator: container \"agent\" started on node \"node-1\" (simulated: no process runs)\n\
         pernode simulator: image busybox:1.36\n"
    );
    let stamped = c.ok(&["logs", &pod, "--timestamps", "--tail=1"]);
    let (time, line) = stamped.split_once(' ').expect("a timestamp, then the line");
    assert!(
        time.len() == "2026-01-01T00:00:05.000000000Z".len() && time.ends_with('Z'),
        "{stamped}"
    );
    assert_eq!(line, "pernode simulator: image busybox:1.36\n");
    let e = c.fails(&["logs", &pod, "--previous"]);
    assert!(
        e.contains(&format!(
            "Error from server (BadRequest): previous terminated container \"agent\" in pod \"{pod}\" not found"
        )),
        "{e}"
    );

    let refused = |what: &str| {
        format!(
            "pods \"{pod}\" is on node \"node-1\", which is simulated by pernode: {what} needs a real node"
        )
    };
    let e = c.fails(&["exec", &pod, "--", "ls"]);
    assert!(
        e.contains(&format!(
            "Error from server (BadRequest): {}",
            refused("exec")
        )),
        "{e}"
    );
    let e = c.fails(&["attach", &pod]);
    assert!(e.contains(&refused("attach")), "{e}");
    let e = c.fails(&["port-forward", &pod, "0:80"]);
    assert!(e.contains(&refused("port-forward")), "{e}");
    let e = c.fails(&["get", "--raw", "/api/v1/nodes/node-1/proxy/stats/summary"]);
    assert!(
        e.contains("node \"node-1\" is simulated by pernode: proxy needs a real node"),
        "{e}"
    );

    // `logs -f` follows until the pod ends.
    let mut follow = c
        .command()
        .args(["logs", "-f", &pod])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(
            follow.try_wait().expect("try_wait").is_none(),
            "kubectl logs -f ended while the pod ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.ok(&["delete", "pod", &pod, "--wait=false"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = follow.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl logs -f still follows 30 s after the pod was deleted"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = follow.wait_with_output().expect("output");
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("image busybox:1.36"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
