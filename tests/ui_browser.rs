//! The fleet page at `/ui/`: served as a non-resource URL under RBAC (files to anyone the
//! `pernode:ui` binding names, data only through the API), announced by `pernode up`, and,
//! in headless Chromium on 1,000 simulated nodes, following a rollout: its counts (the
//! summary's data attributes) match the DaemonSet's status within 2 s at each resting point,
//! and it ends showing the final revision on every node; a health gate tripped by a bad image
//! shows its failed node in the grid.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::Browser;
use support::{Cluster, anonymous_get, eventually, kubeconfig_field};

/// 1,000 nodes replace their pods a fifth at a time.
const FLEET_DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fleet
spec:
  selector:
    matchLabels: {app: fleet}
  updateStrategy:
    rollingUpdate: {maxUnavailable: 20%}
  template:
    metadata:
      labels: {app: fleet}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
"#;

/// What the page reads the API with: nothing beyond these (RBAC's `view` has no nodes).
const VIEWER_ROLE: &[&str] = &[
    "create",
    "clusterrole",
    "fleet-viewer",
    "--verb=get,list,watch",
    "--resource=daemonsets.apps,controllerrevisions.apps,pods,nodes,events",
];

/// The status counters and the summary attributes that must equal them.
const COUNTERS: &[(&str, &str)] = &[
    ("desiredNumberScheduled", "desired"),
    ("currentNumberScheduled", "current"),
    ("numberReady", "ready"),
    ("updatedNumberScheduled", "updated"),
    ("numberAvailable", "available"),
    ("numberUnavailable", "unavailable"),
    ("numberMisscheduled", "misscheduled"),
];

fn server(c: &Cluster) -> String {
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    kubeconfig_field(&kubeconfig, "server:").to_string()
}

/// The summary element's data attributes, `{}` until the page has whole lists.
fn page_counts(browser: &Browser) -> Value {
    browser.eval(
        "const s = document.getElementById('summary'); \
         return s && s.dataset.synced === 'true' ? Object.assign({}, s.dataset) : {};",
    )
}

/// The DaemonSet's status counters as the page names them (absent ones are 0, as `kubectl`
/// shows them), and whether the controller has seen the latest spec.
fn api_counts(c: &Cluster) -> (Vec<(&'static str, String)>, bool) {
    let ds: Value =
        serde_json::from_str(&c.ok(&["get", "ds", "fleet", "-o", "json"])).expect("JSON");
    let status = &ds["status"];
    let counts = COUNTERS
        .iter()
        .map(|(field, name)| (*name, status[*field].as_i64().unwrap_or(0).to_string()))
        .collect();
    let observed = status["observedGeneration"] == ds["metadata"]["generation"];
    (counts, observed)
}

fn differences(page: &Value, api: &[(&str, String)]) -> Vec<String> {
    api.iter()
        .filter(|(name, value)| page[*name].as_str() != Some(value.as_str()))
        .map(|(name, value)| format!("{name}: page {} api {value}", page[*name]))
        .collect()
}

/// Polls until `rest` holds of the API's status (the controller at rest), then asserts the
/// page shows the same counters within 2 s; returns the page's attributes.
fn page_matches_api_at_rest(
    c: &Cluster,
    browser: &Browser,
    what: &str,
    rest: impl Fn(&[(&str, String)]) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    let api = loop {
        let (api, observed) = api_counts(c);
        if observed && rest(&api) {
            break api;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the API never got there: {api:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let within = Instant::now() + Duration::from_secs(2);
    loop {
        let page = page_counts(browser);
        let diff = differences(&page, &api);
        if diff.is_empty() {
            return page;
        }
        assert!(
            Instant::now() < within,
            "{what}: the page does not show the API's counts within 2 s: {diff:?}\npage: {page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(api: &[(&str, String)], name: &str) -> i64 {
    api.iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(-1)
}

/// The current revision's hash: the label of the DaemonSet's highest-numbered revision.
fn current_revision(c: &Cluster) -> String {
    let out = c.ok(&[
        "get",
        "controllerrevisions",
        "-l",
        "app=fleet",
        "--sort-by=.revision",
        "-o",
        "jsonpath={.items[-1:].metadata.labels.controller-revision-hash}",
    ]);
    out.trim().to_string()
}

/// A ServiceAccount `fleet-viewer` that may read what the page reads; its token.
fn viewer_token(c: &Cluster) -> String {
    c.ok(VIEWER_ROLE);
    c.ok(&["create", "serviceaccount", "fleet-viewer"]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "fleet-viewer",
        "--clusterrole=fleet-viewer",
        "--serviceaccount=default:fleet-viewer",
    ]);
    c.ok(&["create", "token", "fleet-viewer", "--duration=1h"])
}

#[test]
fn the_page_follows_a_rollout_on_1000_nodes() {
    let browser = Browser::start();
    let c = Cluster::start("up", &["--nodes", "1000"]);
    let url = format!("{}/ui/", server(&c));
    eventually(
        Duration::from_secs(10),
        "pernode up prints the page's address",
        || c.server_stdout().contains(&format!("fleet page: {url} ")),
    );
    let token = viewer_token(&c);
    // Three nodes the DaemonSet does not tolerate: excluded cells.
    let nodes = c.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    let tainted: Vec<&str> = nodes.split_whitespace().take(3).collect();
    let mut taint = vec!["taint", "nodes"];
    taint.extend(&tainted);
    taint.push("dedicated=db:NoSchedule");
    c.ok(&taint);
    c.ok_stdin(&["apply", "-f", "-"], FLEET_DS);
    c.ok(&["rollout", "status", "ds/fleet", "--timeout=300s"]);

    // The token goes in the fragment, which the browser never sends.
    browser.open(&format!("{url}#token={}&ds=default/fleet", token.trim()));
    let first = current_revision(&c);
    let page = page_matches_api_at_rest(&c, &browser, "before the rollout", |api| {
        count(api, "desired") == 997 && count(api, "available") == 997
    });
    assert_eq!(page["nodes"], "1000");
    assert_eq!(page["cellsExcluded"], "3");
    assert_eq!(page["cellsUpdated"], "997");
    assert_eq!(page["revision"], first.as_str());
    let address = browser.eval("return location.href");
    assert!(
        !address.to_string().contains("token"),
        "the token leaves the address bar: {address}"
    );

    // A partition holds 500 nodes on the old revision: the rollout stops half way.
    c.ok(&["annotate", "ds/fleet", "pernode.io/partition=500"]);
    c.ok(&["set", "image", "ds/fleet", "agent=busybox:1.37"]);
    let page = page_matches_api_at_rest(&c, &browser, "held by the partition", |api| {
        count(api, "updated") == 497 && count(api, "available") == 997
    });
    let second = current_revision(&c);
    assert_ne!(second, first);
    assert_eq!(page["revision"], second.as_str());
    assert_eq!(page["cellsOld"], "500");
    assert_eq!(page["partition"], "500");
    save_screenshot(&browser, "fleet-partition.png");

    // Released: every eligible node ends on the new revision.
    c.ok(&["annotate", "ds/fleet", "pernode.io/partition-"]);
    c.ok(&["rollout", "status", "ds/fleet", "--timeout=300s"]);
    let page = page_matches_api_at_rest(&c, &browser, "after the rollout", |api| {
        count(api, "updated") == 997 && count(api, "available") == 997
    });
    assert_eq!(page["cellsUpdated"], "997");
    assert_eq!(page["cellsOld"], "0");
    assert_eq!(page["cellsUnavailable"], "0");
    assert_eq!(page["cellsMissing"], "0");
    assert_eq!(page["revision"], second.as_str());
    let events = browser.eval("return document.getElementById('events').rows.length");
    assert!(
        events.as_u64().unwrap_or(0) > 0,
        "the DaemonSet's events are listed"
    );

    // The rollout's waves and soak, as the controller reads them, on the page.
    c.ok(&[
        "annotate",
        "ds/fleet",
        "pernode.io/rollout-waves=canary=true;*",
        "pernode.io/wave-soak=30s",
    ]);
    eventually(Duration::from_secs(10), "the page shows the waves", || {
        let page = page_counts(&browser);
        let header = browser.eval("return document.getElementById('strategy').textContent");
        page["waves"] == "canary=true;*"
            && page["waveSoak"] == "30s"
            && header
                .as_str()
                .is_some_and(|h| h.contains("waves canary=true;*") && h.contains("soak 30s"))
    });

    save_screenshot(&browser, "fleet.png");
}

/// Five nodes, gated at one failed node.
const GATED_DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fleet
  annotations:
    pernode.io/max-failed-nodes: "1"
spec:
  selector:
    matchLabels: {app: fleet}
  updateStrategy:
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: fleet}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
"#;

#[test]
fn the_page_shows_a_tripped_health_gate_and_its_failed_node() {
    let browser = Browser::start();
    let c = Cluster::start("up", &["--nodes", "5"]);
    let token = viewer_token(&c);
    c.ok_stdin(&["apply", "-f", "-"], GATED_DS);
    c.ok(&["rollout", "status", "ds/fleet", "--timeout=60s"]);
    c.ok(&["set", "image", "ds/fleet", "agent=busybox:1.37-bad"]);
    c.ok(&[
        "wait",
        "ds/fleet",
        "--for=condition=Progressing=False",
        "--timeout=60s",
    ]);
    let hash = current_revision(&c);
    let pods = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=fleet",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName} {.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    let bad: Vec<&str> = pods
        .lines()
        .filter(|l| l.ends_with(" busybox:1.37-bad"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(bad.len(), 1, "{pods}");
    let node = bad[0];

    browser.open(&format!(
        "{}/ui/#token={}&ds=default/fleet",
        server(&c),
        token.trim()
    ));
    eventually(Duration::from_secs(10), "the page shows the gate", || {
        let page = page_counts(&browser);
        page["gateStopped"] == "true"
            && page["gateTripped"] == hash.as_str()
            && page["maxFailedNodes"] == "1"
            && page["cellsFailed"] == "1"
            && page["failedNodes"]
                .as_str()
                .is_some_and(|f| f.starts_with(&format!("{node}:")) && f.contains("ImagePull"))
    });
    let header = browser.eval("return document.getElementById('strategy').textContent");
    assert!(
        header
            .as_str()
            .is_some_and(|h| h.contains("health gate 1 failed nodes")
                && h.contains(&format!("health gate tripped at revision {hash}"))),
        "{header}"
    );
    // The failed cell's tooltip says why (nodes in name order, one row of 16 px cells).
    let index = ["node-1", "node-2", "node-3", "node-4", "node-5"]
        .iter()
        .position(|n| *n == node)
        .expect("a simulated node");
    let tip = browser.eval(&format!(
        "const g = document.getElementById('grid'); const b = g.getBoundingClientRect(); \
         g.dispatchEvent(new MouseEvent('mousemove', {{bubbles: true, \
           clientX: b.left + {index} * 17 + 8, clientY: b.top + 8}})); \
         return document.getElementById('tip').textContent;"
    ));
    let tip = tip.as_str().unwrap_or_default();
    assert!(
        tip.starts_with(node)
            && tip.contains("failed: ")
            && tip.contains("counted by the health gate"),
        "{tip}"
    );
    save_screenshot(&browser, "fleet-health-gate.png");
}

/// Keeps what the browser shows in `target/ui-artifacts/` (not committed).
fn save_screenshot(browser: &Browser, name: &str) {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    std::fs::write(artifacts.join(name), browser.screenshot()).expect("screenshot");
}

#[test]
fn the_page_is_a_non_resource_url_under_rbac() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    let admin = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let jane = c.kubeconfig_with_certificate("jane.kubeconfig", "jane", "dev");
    let as_jane = |path: &str| c.kubectl(&["--kubeconfig", &jane, "get", "--raw", path]);

    // The files hold no data: anyone the binding names may load them.
    let page = c.ok(&["get", "--raw", "/ui/"]);
    assert!(page.contains("<canvas id=\"grid\">"), "{page}");
    assert!(
        c.ok(&["get", "--raw", "/ui/app.js"])
            .contains("requestAnimationFrame")
    );
    let run = as_jane("/ui/fleet.js");
    assert!(run.ok, "{}", run.stderr);
    let (code, body) = anonymous_get(&admin, "/ui/");
    assert_eq!((code, body.contains("login-form")), (200, true), "{body}");
    let (code, body) = anonymous_get(&admin, "/ui");
    assert_eq!(code, 301, "{body}");
    let (code, body) = anonymous_get(&admin, "/ui/absent.js");
    assert_eq!(code, 404, "{body}");
    // What the page shows is the API's, behind its authentication.
    let (code, body) = anonymous_get(&admin, "/apis/apps/v1/daemonsets");
    assert_eq!(code, 401, "{body}");

    // RBAC decides: without the binding only the admin (system:masters) may.
    c.ok(&["delete", "clusterrolebinding", "pernode:ui"]);
    eventually(
        Duration::from_secs(10),
        "the authorizer sees the binding gone",
        || anonymous_get(&admin, "/ui/").0 == 403,
    );
    let (_, body) = anonymous_get(&admin, "/ui/");
    assert!(
        body.contains(r#"forbidden: User \"system:anonymous\" cannot get path \"/ui/\""#),
        "{body}"
    );
    let refused = as_jane("/ui/app.js");
    assert!(
        refused.stderr.contains(
            r#"Error from server (Forbidden): forbidden: User "jane" cannot get path "/ui/app.js""#
        ),
        "{}",
        refused.stderr
    );
    assert!(c.ok(&["get", "--raw", "/ui/"]).contains("<canvas"));
}
