//! The fleet page at `/ui/`: served as a non-resource URL under RBAC (files to anyone the
//! `pernode:ui` binding names, data only through the API), announced by `pernode up`, and,
//! in headless Chromium on 1,000 simulated nodes, following a rollout: its counts (the
//! summary's data attributes) match the DaemonSet's status within 2 s at each resting point,
//! and it ends showing the final revision on every node.

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
    c.ok(VIEWER_ROLE);
    c.ok(&["create", "serviceaccount", "fleet-viewer"]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "fleet-viewer",
        "--clusterrole=fleet-viewer",
        "--serviceaccount=default:fleet-viewer",
    ]);
    let token = c.ok(&["create", "token", "fleet-viewer", "--duration=1h"]);
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
