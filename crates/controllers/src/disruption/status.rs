//! What a PodDisruptionBudget's status should be, from the pods it selects (upstream's
//! `getExpectedPodCount`, `getExpectedScale`, `buildDisruptedPodMap`, `countHealthyPods`,
//! `updatePdbStatus` and `failSafe`): pure functions, the controller writes the result.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use pernode_core::disruption::{self, SYNC_FAILED};

/// `DeletionTimeout`: how long a pod the eviction subresource recorded as disrupted is
/// expected to take to be marked for deletion; past it, it counts again.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// What the status computation reads of one selected pod.
#[derive(Clone, Copy, Debug)]
pub struct PodView<'a> {
    pub name: &'a str,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Its Ready condition is True.
    pub ready: bool,
    /// Its controller reference.
    pub controller: Option<&'a OwnerReference>,
}

/// The outcome of one sync of a budget.
#[derive(Debug, PartialEq)]
pub struct Sync {
    /// The status to write; `None` when the stored one is up to date.
    pub status: Option<PodDisruptionBudgetStatus>,
    /// When to sync again: the earliest deadline of a pod recorded as disrupted.
    pub recheck: Option<Duration>,
    /// Why the counts could not be computed (then `status` is `failSafe`'s).
    pub failed: Option<String>,
}

/// One sync of `pdb` over the pods its selector matches in its namespace, at `now`.
pub fn sync(pdb: &PodDisruptionBudget, pods: &[PodView<'_>], now: Timestamp) -> Sync {
    let spec = pdb.spec.clone().unwrap_or_default();
    let (expected, desired) = match expected_pod_count(&spec, pods) {
        Ok(counts) => counts,
        Err(why) => {
            return Sync {
                status: Some(fail_safe(pdb, &why, now)),
                recheck: None,
                failed: Some(why),
            };
        }
    };
    let old = pdb.status.clone().unwrap_or_default();
    let (disrupted, recheck) = build_disrupted_pod_map(pods, old.disrupted_pods.as_ref(), now);
    let current = count_healthy_pods(pods, &disrupted, now);
    Sync {
        status: new_status(pdb, current, desired, expected, disrupted, now),
        recheck,
        failed: None,
    }
}

/// `getExpectedPodCount`: `(expectedPods, desiredHealthy)`. An integer `minAvailable` counts
/// the selected pods; `maxUnavailable` and a percentage need the scale of the pods'
/// controllers ([`expected_scale`]).
pub fn expected_pod_count(
    spec: &k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec,
    pods: &[PodView<'_>],
) -> Result<(i32, i32), String> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let expected = expected_scale(pods)?;
        let max_unavailable = scaled_value(max_unavailable, expected)?;
        return Ok((expected, (expected - max_unavailable).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n)),
        Some(percent) => {
            let expected = expected_scale(pods)?;
            Ok((expected, scaled_value(percent, expected)?))
        }
        None => Ok((0, 0)),
    }
}

/// `getExpectedScale`: the sum of the scales of the selected pods' controllers; pods without
/// a controller are left out (upstream records an `UnmanagedPods` event for them).
///
/// Upstream finds a controller's scale through the ReplicationController, Deployment,
/// ReplicaSet and StatefulSet listers, then through the `scale` subresource of whatever kind
/// it is. A DaemonSet has none: the scale GET is a 404 and discovery lists no
/// `daemonsets/scale`, so upstream fails the sync with "daemonsets.apps does not implement the
/// scale subresource" (a PDB with `maxUnavailable` or a percentage over DaemonSet pods ends in
/// `failSafe`: no disruption allowed, condition `SyncFailed`). pernode serves none of the
/// scalable kinds, so every controller fails the same way: a kind it serves (DaemonSet, Node
/// for mirror pods) with that message, any other as the REST mapping's "no matches for kind".
pub fn expected_scale(pods: &[PodView<'_>]) -> Result<i32, String> {
    for pod in pods {
        let Some(controller) = pod.controller else {
            continue;
        };
        return Err(no_scale(controller));
    }
    Ok(0)
}

fn no_scale(controller: &OwnerReference) -> String {
    let group = controller
        .api_version
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    match (group, controller.kind.as_str()) {
        ("apps", "DaemonSet") => "daemonsets.apps does not implement the scale subresource".into(),
        ("", "Node") => "nodes does not implement the scale subresource".into(),
        _ => format!(
            "no matches for kind {:?} in version {:?}",
            controller.kind, controller.api_version
        ),
    }
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%') else {
                return Err(
                    "invalid value for IntOrString: invalid type: string is not a percentage"
                        .into(),
                );
            };
            let p: i64 = p
                .parse()
                .map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            let scaled = (p * i64::from(total) + 99).div_euclid(100);
            Ok(scaled as i32)
        }
    }
}

/// `buildDisruptedPodMap`: the recorded disruptions still pending (pods that exist, are not
/// being deleted yet and were recorded less than [`DELETION_TIMEOUT`] ago), and when the
/// earliest of them expires.
pub fn build_disrupted_pod_map(
    pods: &[PodView<'_>],
    recorded: Option<&BTreeMap<String, Time>>,
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Duration>) {
    let mut result = BTreeMap::new();
    let mut recheck: Option<Duration> = None;
    let Some(recorded) = recorded else {
        return (result, None);
    };
    for pod in pods {
        if pod.deleting {
            continue;
        }
        let Some(at) = recorded.get(pod.name) else {
            continue;
        };
        let expires = expiry(at);
        if expires < now {
            // Upstream records a `NotDeleted` warning on the pod here.
            continue;
        }
        let wait = Duration::try_from(expires.duration_since(now)).unwrap_or_default();
        recheck = Some(recheck.map_or(wait, |r| r.min(wait)));
        result.insert(pod.name.to_string(), at.clone());
    }
    (result, recheck)
}

fn expiry(at: &Time) -> Timestamp {
    at.0.checked_add(DELETION_TIMEOUT).unwrap_or(at.0)
}

/// `countHealthyPods`: Ready pods that are neither being deleted nor recorded as about to be.
pub fn count_healthy_pods(
    pods: &[PodView<'_>],
    disrupted: &BTreeMap<String, Time>,
    now: Timestamp,
) -> i32 {
    pods.iter()
        .filter(|p| !p.deleting)
        .filter(|p| disrupted.get(p.name).is_none_or(|at| expiry(at) <= now))
        .filter(|p| p.ready)
        .count() as i32
}

/// `updatePdbStatus`: the new status, or `None` when the stored one says the same and its
/// condition is up to date. No disruption is allowed while no pod is expected.
pub fn new_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disrupted_pods: BTreeMap<String, Time>,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let mut allowed = current_healthy - desired_healthy;
    if expected_pods <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let generation = pdb.metadata.generation.unwrap_or(0);
    let same_disrupted = old.disrupted_pods.clone().unwrap_or_default() == disrupted_pods;
    if old.current_healthy == current_healthy
        && old.desired_healthy == desired_healthy
        && old.expected_pods == expected_pods
        && old.disruptions_allowed == allowed
        && same_disrupted
        && old.observed_generation.unwrap_or(0) == generation
        && disruption::conditions_are_up_to_date(pdb)
    {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy,
        expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted_pods.is_empty()).then_some(disrupted_pods),
        observed_generation: Some(generation),
        conditions: old.conditions,
    };
    disruption::update_disruption_allowed_condition(&mut status, Time(now));
    Some(status)
}

/// `failSafe`: the stored status with no disruption allowed and `DisruptionAllowed` False
/// (`SyncFailed`, the error as message), at the generation it last observed.
pub fn fail_safe(
    pdb: &PodDisruptionBudget,
    why: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let cond = disruption::disruption_allowed_condition(
        "False",
        SYNC_FAILED,
        why.to_string(),
        status.observed_generation.unwrap_or(0),
    );
    disruption::set_status_condition(
        status.conditions.get_or_insert_with(Vec::new),
        cond,
        Time(now),
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(api_version: &str, kind: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "o".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        }
    }

    fn pdb(spec: serde_json::Value, status: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "ns", "generation": 1},
            "spec": spec, "status": status,
        }))
        .expect("pdb")
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn integer_min_available_counts_the_daemon_pods() {
        let ds = owner("apps/v1", "DaemonSet");
        let pods = [
            PodView {
                name: "a",
                deleting: false,
                ready: true,
                controller: Some(&ds),
            },
            PodView {
                name: "b",
                deleting: false,
                ready: true,
                controller: Some(&ds),
            },
            PodView {
                name: "c",
                deleting: false,
                ready: false,
                controller: Some(&ds),
            },
        ];
        let b = pdb(json!({"minAvailable": 1, "selector": {}}), json!({}));
        let out = sync(&b, &pods, at(100));
        let status = out.status.expect("written");
        assert_eq!(
            (
                status.expected_pods,
                status.desired_healthy,
                status.current_healthy,
                status.disruptions_allowed
            ),
            (3, 1, 2, 1)
        );
        assert_eq!(status.observed_generation, Some(1));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("DisruptionAllowed", "True", "SufficientPods")
        );
        // Written once: the same pods again change nothing.
        let mut stored = b.clone();
        stored.status = Some(status);
        assert_eq!(sync(&stored, &pods, at(200)).status, None);
    }

    #[test]
    fn no_disruption_while_no_pod_is_expected() {
        let b = pdb(json!({"minAvailable": 0, "selector": {}}), json!({}));
        let status = sync(&b, &[], at(1)).status.expect("written");
        assert_eq!((status.expected_pods, status.disruptions_allowed), (0, 0));
        assert_eq!(status.conditions.unwrap()[0].reason, "InsufficientPods");
    }

    #[test]
    fn percentages_and_max_unavailable_fail_for_daemon_pods_as_upstream() {
        let ds = owner("apps/v1", "DaemonSet");
        let pods = [PodView {
            name: "a",
            deleting: false,
            ready: true,
            controller: Some(&ds),
        }];
        for spec in [json!({"maxUnavailable": 1}), json!({"minAvailable": "50%"})] {
            let b = pdb(
                spec,
                json!({"observedGeneration": 0, "currentHealthy": 1, "disruptionsAllowed": 1}),
            );
            let out = sync(&b, &pods, at(1));
            assert_eq!(
                out.failed.as_deref(),
                Some("daemonsets.apps does not implement the scale subresource")
            );
            let status = out.status.expect("fail-safe status");
            assert_eq!((status.disruptions_allowed, status.current_healthy), (0, 1));
            let c = &status.conditions.unwrap()[0];
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", "SyncFailed")
            );
            assert_eq!(
                c.message,
                "daemonsets.apps does not implement the scale subresource"
            );
        }
        // Pods without a controller are left out of the scale.
        let unmanaged = [PodView {
            name: "a",
            deleting: false,
            ready: true,
            controller: None,
        }];
        let b = pdb(json!({"maxUnavailable": "50%"}), json!({}));
        assert_eq!(sync(&b, &unmanaged, at(1)).failed, None);
        let rs = owner("apps/v1", "ReplicaSet");
        assert_eq!(
            expected_scale(&[PodView {
                name: "a",
                deleting: false,
                ready: true,
                controller: Some(&rs)
            }]),
            Err("no matches for kind \"ReplicaSet\" in version \"apps/v1\"".into())
        );
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("10%".into()), 0), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(4), 3), Ok(4));
    }

    #[test]
    fn recorded_disruptions_count_until_the_pod_goes_or_the_timeout() {
        let pods = [
            PodView {
                name: "a",
                deleting: false,
                ready: true,
                controller: None,
            },
            PodView {
                name: "b",
                deleting: false,
                ready: true,
                controller: None,
            },
            PodView {
                name: "c",
                deleting: true,
                ready: true,
                controller: None,
            },
        ];
        let recorded: BTreeMap<String, Time> = [
            ("a".to_string(), Time(at(100))),
            ("b".to_string(), Time(at(0))),
            ("c".to_string(), Time(at(100))),
            ("gone".to_string(), Time(at(100))),
        ]
        .into();
        let (kept, recheck) = build_disrupted_pod_map(&pods, Some(&recorded), at(130));
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(recheck, Some(Duration::from_secs(90)));
        // a is about to go, c is going: only b is healthy.
        assert_eq!(count_healthy_pods(&pods, &kept, at(130)), 1);
        let b = pdb(
            json!({"minAvailable": 1, "selector": {}}),
            json!({"disruptedPods": {"a": "1970-01-01T00:01:40Z"}}),
        );
        let out = sync(&b, &pods, at(130));
        let status = out.status.unwrap();
        assert_eq!((status.current_healthy, status.disruptions_allowed), (1, 0));
        assert_eq!(status.disrupted_pods.unwrap().len(), 1);
        assert_eq!(out.recheck, Some(Duration::from_secs(90)));
    }
}
