//! events.k8s.io/v1 with the real kubectl: events written through either API listed through
//! both (`kubectl get events.events.k8s.io`, `kubectl events`), and a MicroTime without six
//! fractional digits refused as kube-apiserver refuses it.

mod support;

use support::Cluster;

const CORE_EVENT: &str = r#"apiVersion: v1
kind: Event
metadata:
  name: ds.1
  namespace: default
involvedObject:
  apiVersion: apps/v1
  kind: DaemonSet
  name: fluentd
  namespace: default
reason: SuccessfulCreate
message: "Created pod: fluentd-x"
type: Normal
source:
  component: daemonset-controller
count: 1
"#;

const V1_EVENT: &str = r#"apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: pod.1
  namespace: default
regarding:
  apiVersion: v1
  kind: Pod
  name: fluentd-x
  namespace: default
eventTime: "2024-01-02T03:04:05.000000Z"
reportingController: example.com/checker
reportingInstance: checker-1
action: Check
reason: Checked
note: all good
type: Warning
"#;

const LEASE: &str = r#"apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: n1
  namespace: default
spec:
  holderIdentity: n1
  renewTime: "2024-01-02T03:04:05Z"
"#;

#[test]
fn events_through_both_apis_with_kubectl() {
    let c = Cluster::start("apiserver", &[]);
    let core = c.write("core.yaml", CORE_EVENT);
    assert_eq!(c.ok(&["create", "-f", &core]).trim(), "event/ds.1 created");
    let v1 = c.write("v1.yaml", V1_EVENT);
    assert_eq!(
        c.ok(&["create", "-f", &v1]).trim(),
        "event.events.k8s.io/pod.1 created"
    );

    let table = c.ok(&["get", "events.events.k8s.io", "-A"]);
    assert!(
        table.contains(
            "NAMESPACE   LAST SEEN   TYPE      REASON             OBJECT              MESSAGE"
        ),
        "{table}"
    );
    assert!(
        table.contains("SuccessfulCreate   daemonset/fluentd   Created pod: fluentd-x"),
        "{table}"
    );
    assert!(
        table.contains("Warning   Checked            pod/fluentd-x       all good"),
        "{table}"
    );

    // The core event through events.k8s.io, and the events.k8s.io event through core.
    let note = c.ok(&[
        "get",
        "events.v1.events.k8s.io",
        "ds.1",
        "-o",
        "jsonpath={.note}/{.regarding.name}/{.deprecatedSource.component}",
    ]);
    assert_eq!(note, "Created pod: fluentd-x/fluentd/daemonset-controller");
    let message = c.ok(&[
        "get",
        "events.v1.",
        "pod.1",
        "-o",
        "jsonpath={.message}/{.involvedObject.name}/{.reportingComponent}",
    ]);
    assert_eq!(message, "all good/fluentd-x/example.com/checker");

    let events = c.ok(&["events", "-A"]);
    assert!(
        events.contains(
            "NAMESPACE   LAST SEEN   TYPE      REASON             OBJECT              MESSAGE"
        ),
        "{events}"
    );
    // `kubectl events` prints the kinds as they are spelled.
    assert!(events.contains("Pod/fluentd-x       all good"), "{events}");
    assert!(
        events.contains("DaemonSet/fluentd   Created pod: fluentd-x"),
        "{events}"
    );
    let selected = c.ok(&[
        "get",
        "events.events.k8s.io",
        "--field-selector",
        "regarding.kind=Pod",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "event.events.k8s.io/pod.1");

    let lease = c.write("lease.yaml", LEASE);
    let refused = c.fails(&["create", "-f", &lease]);
    assert!(
        refused.contains(r#"Error from server (BadRequest): error when creating ""#)
            && refused.contains(
                r#"Lease in version "v1" cannot be handled as a Lease: parsing time "2024-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#
            ),
        "{refused}"
    );
}
