//! The pods/eviction subresource, as upstream's pkg/registry/core/pod/storage/eviction.go: a
//! delete that honours the PodDisruptionBudget covering the pod.
//!
//! - A pod that is terminal, Pending or already being deleted is deleted without a budget
//!   check (a Pending one with its resourceVersion as precondition, so it cannot have become
//!   Ready meanwhile).
//! - Otherwise the budgets of its namespace whose selector (non-empty, valid) matches its
//!   labels decide: none, it is deleted; more than one, a Status of code 500 (in a 201 reply,
//!   as upstream's create handler writes a returned Status); one, it must have been observed
//!   at its generation and allow a disruption (else 429 TooManyRequests with a
//!   `DisruptionBudget` cause), and the eviction takes one: `disruptionsAllowed` − 1 and the
//!   pod in `status.disruptedPods` through the status subresource's admission, a conflicting
//!   write retried on the budget read again. The disruption controller drops the entry once
//!   the pod is gone (or after two minutes).
//! - A pod that is not Ready takes nothing from the budget when the budget's
//!   `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or (`IfHealthyBudget`, the default) when
//!   the budget is met without it; it is then deleted only at the version that was checked,
//!   and a pod that changed meanwhile gets a 429.
//! - Before the delete, the pod gets the condition `DisruptionTarget=True`
//!   (`EvictionByEvictionAPI`), as upstream since PodDisruptionConditions.
//!
//! A dry run checks all of this and writes nothing. The decisions are pure functions
//! (`can_ignore_budgets`, `budgets_of`, `unhealthy_pod_may_go`, `check_and_decrement`); `evict`
//! reads and writes the store.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pernode_core::disruption;
use pernode_store::StoreError;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, Cause};
use crate::handlers::{DeleteOptions, delete_object, json_response, parse_entry};
use crate::registry::{self, Operation, now_rfc3339};
use crate::target::Target;

/// `MaxDisruptedPodSize`: evictions approved but not yet seen by the controller beyond which
/// a budget refuses more.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;

/// How many times a write that lost a race is tried again (upstream's `EvictionsRetry`: 20
/// steps).
const RETRIES: usize = 20;

/// The message of every 429 of the subresource.
pub const VIOLATES_BUDGET: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// The message of the Status answered for a pod with several budgets.
pub const MULTIPLE_BUDGETS: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// `canIgnorePDB`: the pod has disrupted already (terminal), is not running yet (Pending) or
/// is being deleted.
pub fn can_ignore_budgets(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed" | "Pending"))
        || pod.metadata.deletion_timestamp.is_some()
}

/// `shouldEnforceResourceVersion`: for a pod deleted without a budget check, whether the
/// delete must be at the version checked (not for terminal or deleting pods).
pub fn should_enforce_resource_version(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// `getPodDisruptionBudgets`: the budgets of the pod's namespace that cover it.
pub fn budgets_of(pod: &Pod, budgets: Vec<PodDisruptionBudget>) -> Vec<PodDisruptionBudget> {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    budgets
        .into_iter()
        .filter(|b| b.metadata.namespace == pod.metadata.namespace)
        .filter(|b| disruption::budget_selects_for_eviction(b, labels))
        .collect()
}

/// For a pod that is not Ready: whether it may go without taking a disruption from `pdb`
/// (`AlwaysAllow`; or, by default and with `IfHealthyBudget`, a budget met without it).
pub fn unhealthy_pod_may_go(pdb: &PodDisruptionBudget) -> bool {
    let policy = pdb
        .spec
        .as_ref()
        .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
    if policy == Some("AlwaysAllow") {
        return true;
    }
    let status = pdb.status.clone().unwrap_or_default();
    status.current_healthy >= status.desired_healthy && status.desired_healthy > 0
}

/// The 429 of a budget the controller has not observed at its generation yet, or of a pod
/// that changed while its eviction was decided (`createTooManyRequestsError`).
pub fn still_processing(pdb_name: &str) -> ApiError {
    ApiError::too_many_requests(
        VIOLATES_BUDGET,
        10,
        vec![budget_cause(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        ))],
    )
}

fn budget_cause(message: String) -> Cause {
    Cause {
        reason: "DisruptionBudget".into(),
        message,
        field: String::new(),
    }
}

/// `checkAndDecrement`: refuses when `pdb` allows no disruption (or cannot be trusted), else
/// takes one and, unless `dry_run`, records `pod` as disrupted at `now`. Returns whether
/// `pdb`'s status must be written.
pub fn check_and_decrement(
    pdb: &mut PodDisruptionBudget,
    pod: &str,
    dry_run: bool,
    now: Time,
) -> Result<bool, ApiError> {
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let status = pdb.status.get_or_insert_with(Default::default);
    if status.observed_generation.unwrap_or(0) < pdb.metadata.generation.unwrap_or(0) {
        return Err(still_processing(&name));
    }
    if status.disruptions_allowed < 0 {
        return Err(ApiError::forbidden_object(
            "policy",
            "poddisruptionbudget",
            &name,
            "pdb disruptions allowed is negative",
        ));
    }
    if status.disrupted_pods.as_ref().map_or(0, BTreeMap::len) > MAX_DISRUPTED_POD_SIZE {
        return Err(ApiError::forbidden_object(
            "policy",
            "poddisruptionbudget",
            &name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if status.disruptions_allowed == 0 {
        return Err(ApiError::too_many_requests(
            VIOLATES_BUDGET,
            0,
            vec![budget_cause(format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status.desired_healthy, status.current_healthy
            ))],
        ));
    }
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        disruption::update_disruption_allowed_condition(status, now.clone());
    }
    if dry_run {
        return Ok(false);
    }
    status
        .disrupted_pods
        .get_or_insert_with(BTreeMap::new)
        .insert(pod.to_string(), now);
    Ok(true)
}

fn now() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn pdb_info() -> &'static pernode_resources::ResourceInfo {
    pernode_resources::find("policy", "v1", "poddisruptionbudgets")
        .expect("poddisruptionbudgets are served")
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(format!("stored object: {e}")))
}

/// The eviction of the pod at `key` (`target` is the pod), with the eviction's delete options.
pub(crate) async fn evict(
    state: &AppState,
    target: &Target,
    key: &str,
    opts: DeleteOptions,
) -> Result<Response, ApiError> {
    let name = key.rsplit('/').next().unwrap_or("").to_string();
    let client_pinned_version = opts.precondition_rv.is_some();
    let pod_not_found = || ApiError::not_found("", "pods", &name);

    // Pods whose eviction needs no budget are deleted at once (a lost race retried unless the
    // client pinned a version).
    let mut tries = 0;
    let (pod, pod_rv) = loop {
        let entry = state.store.get(key).ok_or_else(pod_not_found)?;
        let pod: Pod = decode(parse_entry(&entry)?)?;
        if !can_ignore_budgets(&pod) {
            break (pod, entry.rv);
        }
        let mut o = opts.clone();
        if should_enforce_resource_version(&pod) && !client_pinned_version {
            o.precondition_rv = Some(entry.rv.to_string());
        }
        match condition_and_delete(state, target, key, o).await {
            Ok(()) => return Ok(success()),
            Err(e) if e.code == 409 && !client_pinned_version && tries < RETRIES => tries += 1,
            Err(e) => return Err(e),
        }
    };

    let (_, entries) = state.store.list(
        &format!(
            "poddisruptionbudgets/{}/",
            pod.metadata.namespace.as_deref().unwrap_or("")
        ),
        |_| true,
    );
    let budgets = entries
        .iter()
        .map(|e| parse_entry(e).and_then(decode::<PodDisruptionBudget>))
        .collect::<Result<Vec<_>, _>>()?;
    let mut budgets = budgets_of(&pod, budgets);
    if budgets.len() > 1 {
        // Upstream returns this Status as the eviction's result: the create handler writes it
        // with 201, and clients read its code.
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": MULTIPLE_BUDGETS, "code": 500});
        return Ok(json_response(StatusCode::CREATED, status.to_string()));
    }

    let mut at_checked_version = false;
    let mut pdb_name = String::new();
    if let Some(pdb) = budgets.pop() {
        pdb_name = pdb.metadata.name.clone().unwrap_or_default();
        let ready = pernode_core::pod::is_pod_ready(&pod);
        if !ready && unhealthy_pod_may_go(&pdb) {
            at_checked_version = true;
        } else {
            take_disruption(state, pdb, &name, opts.dry_run).await?;
        }
    }

    let mut o = opts.clone();
    if at_checked_version && !client_pinned_version {
        o.precondition_rv = Some(pod_rv.to_string());
    }
    match condition_and_delete(state, target, key, o).await {
        Ok(()) => Ok(success()),
        Err(e) if e.code == 409 && at_checked_version && !client_pinned_version => {
            Err(still_processing(&pdb_name))
        }
        Err(e) => Err(e),
    }
}

/// Takes a disruption from `pdb` (as stored when it is written) for `pod` and writes its
/// status, reading the budget again after a lost race.
async fn take_disruption(
    state: &AppState,
    pdb: PodDisruptionBudget,
    pod: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let info = pdb_info();
    let pdb_name = pdb.metadata.name.clone().unwrap_or_default();
    let key = format!(
        "poddisruptionbudgets/{}/{pdb_name}",
        pdb.metadata.namespace.as_deref().unwrap_or("")
    );
    let mut last = None;
    for _ in 0..RETRIES {
        let stored = state
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found("policy", "poddisruptionbudgets", &pdb_name))?;
        let old = parse_entry(&stored)?;
        // The budget as stored now: the write is made at this version.
        let mut pdb: PodDisruptionBudget = decode(old.clone())?;
        if !check_and_decrement(&mut pdb, pod, dry_run, now())? {
            return Ok(());
        }
        // UpdateStatus through the status subresource's strategy and validation.
        let mut new = old.clone();
        new["status"] =
            serde_json::to_value(&pdb.status).map_err(|e| ApiError::internal(e.to_string()))?;
        let op = Operation::UpdateStatus { old: &old };
        registry::prepare_update(info, &op, &mut new)?;
        registry::admit(info, &op, &mut new, crate::params::FieldValidation::Ignore)?;
        registry::prepare_update(info, &op, &mut new)?;
        match state.store.update(&key, new, Some(stored.rv)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => {
                last = Some(ApiError::modified(
                    "policy",
                    "poddisruptionbudgets",
                    &pdb_name,
                ));
            }
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Err(last.unwrap_or_else(|| ApiError::modified("policy", "poddisruptionbudgets", &pdb_name)))
}

/// `addConditionAndDeletePod`: unless a dry run, the pod gets `DisruptionTarget=True` (at the
/// version the options pin, if any, which then moves to the version written), then the delete.
async fn condition_and_delete(
    state: &AppState,
    target: &Target,
    key: &str,
    mut opts: DeleteOptions,
) -> Result<(), ApiError> {
    let name = key.rsplit('/').next().unwrap_or("").to_string();
    if !opts.dry_run {
        loop {
            let entry = state
                .store
                .get(key)
                .ok_or_else(|| ApiError::not_found("", "pods", &name))?;
            let mut pod = parse_entry(&entry)?;
            precondition(&pod, entry.rv, &opts, &name)?;
            if !add_disruption_target(&mut pod) {
                break;
            }
            match state.store.update(key, pod, Some(entry.rv)).await {
                Ok(written) => {
                    if opts.precondition_rv.is_some() {
                        opts.precondition_rv = Some(written.rv.to_string());
                    }
                    break;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => return Err(ApiError::not_found("", "pods", &name)),
                Err(e) => return Err(ApiError::internal(e.to_string())),
            }
        }
    }
    delete_object(state, target, key, &opts).await.map(|_| ())
}

/// The delete's preconditions checked against the pod about to get its condition.
fn precondition(pod: &Value, rv: u64, opts: &DeleteOptions, name: &str) -> Result<(), ApiError> {
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(want) = opts.precondition_uid.as_deref()
        && !want.is_empty()
        && want != uid
    {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    if let Some(want) = opts.precondition_rv.as_deref()
        && !want.is_empty()
        && want != rv.to_string()
    {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    Ok(())
}

/// `UpdatePodCondition` with `DisruptionTarget=True` (`EvictionByEvictionAPI`): whether the
/// pod changed (an equal condition is kept, its transition time too).
pub fn add_disruption_target(pod: &mut Value) -> bool {
    let mut condition = json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
    });
    let conditions: Vec<Value> = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(existing) = conditions.iter().find(|c| c["type"] == "DisruptionTarget") {
        let same = |k: &str| existing.get(k) == condition.get(k);
        if same("status") && same("reason") && same("message") {
            return false;
        }
        if same("status")
            && let Some(t) = existing.get("lastTransitionTime")
        {
            condition["lastTransitionTime"] = t.clone();
        }
    }
    let conditions = crate::edit::with_condition(conditions, condition);
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    pod["status"]["conditions"] = Value::Array(conditions);
    true
}

/// Upstream's eviction result: a success Status, its code set by the create handler.
fn success() -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    json_response(StatusCode::CREATED, status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, ready: bool, labels: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": labels},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .expect("pod")
    }

    fn pdb(generation: i64, status: Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "budget", "namespace": "ns", "generation": generation},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "a"}}},
            "status": status,
        }))
        .expect("pdb")
    }

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn terminal_pending_and_deleting_pods_skip_the_budget() {
        for phase in ["Succeeded", "Failed", "Pending"] {
            assert!(can_ignore_budgets(&pod(phase, false, json!({}))), "{phase}");
        }
        let running = pod("Running", true, json!({}));
        assert!(!can_ignore_budgets(&running));
        let mut deleting = running.clone();
        deleting.metadata.deletion_timestamp = Some(at(1));
        assert!(can_ignore_budgets(&deleting));
        assert!(!should_enforce_resource_version(&deleting));
        assert!(should_enforce_resource_version(&pod(
            "Pending",
            false,
            json!({})
        )));
        assert!(!should_enforce_resource_version(&pod(
            "Failed",
            false,
            json!({})
        )));
    }

    #[test]
    fn budgets_cover_pods_of_their_namespace_by_selector() {
        let p = pod("Running", true, json!({"app": "a"}));
        let mut other_ns = pdb(1, json!({}));
        other_ns.metadata.namespace = Some("elsewhere".into());
        let mut other_app = pdb(1, json!({}));
        other_app.spec.as_mut().unwrap().selector =
            Some(serde_json::from_value(json!({"matchLabels": {"app": "b"}})).unwrap());
        let found = budgets_of(&p, vec![pdb(1, json!({})), other_ns, other_app]);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_budget_without_disruptions_refuses_with_upstreams_429() {
        let mut b = pdb(
            1,
            json!({"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 2}),
        );
        let e = check_and_decrement(&mut b, "p", false, at(5)).expect_err("refused");
        assert_eq!(e.code, 429);
        assert_eq!(
            e.to_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "reason": "TooManyRequests", "code": 429,
                "details": {"causes": [{"reason": "DisruptionBudget",
                    "message": "The disruption budget budget needs 2 healthy pods and has 2 currently"}]}})
        );
        assert_eq!(e.retry_after_seconds(), None);
    }

    #[test]
    fn a_budget_not_yet_observed_refuses_for_now() {
        let mut b = pdb(2, json!({"observedGeneration": 1, "disruptionsAllowed": 3}));
        let e = check_and_decrement(&mut b, "p", false, at(5)).expect_err("refused");
        assert_eq!((e.code, e.retry_after_seconds()), (429, Some(10)));
        assert_eq!(
            e.to_status()["details"]["causes"][0]["message"],
            "The disruption budget budget is still being processed by the server."
        );
        let mut negative = pdb(
            1,
            json!({"observedGeneration": 1, "disruptionsAllowed": -1}),
        );
        let e = check_and_decrement(&mut negative, "p", false, at(5)).expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "poddisruptionbudget.policy \"budget\" is forbidden: pdb disruptions allowed is negative"
        );
    }

    #[test]
    fn an_eviction_takes_one_disruption_and_records_the_pod() {
        let mut b = pdb(
            1,
            json!({"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
                   "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "", "lastTransitionTime": "1970-01-01T00:00:01Z"}]}),
        );
        let mut dry = b.clone();
        assert!(!check_and_decrement(&mut dry, "p", true, at(5)).unwrap());
        assert_eq!(dry.status.as_ref().unwrap().disrupted_pods, None);
        assert!(check_and_decrement(&mut b, "p", false, at(5)).unwrap());
        let status = b.status.unwrap();
        assert_eq!(status.disruptions_allowed, 0);
        assert_eq!(status.disrupted_pods.unwrap()["p"], at(5));
        let c = &status.conditions.unwrap()[0];
        assert_eq!(
            (
                c.status.as_str(),
                c.reason.as_str(),
                c.last_transition_time.clone()
            ),
            ("False", "InsufficientPods", at(5))
        );
    }

    #[test]
    fn unready_pods_go_freely_when_the_budget_allows_it() {
        let healthy = json!({"currentHealthy": 2, "desiredHealthy": 2});
        let short = json!({"currentHealthy": 1, "desiredHealthy": 2});
        assert!(unhealthy_pod_may_go(&pdb(1, healthy.clone())));
        assert!(!unhealthy_pod_may_go(&pdb(1, short.clone())));
        assert!(!unhealthy_pod_may_go(&pdb(
            1,
            json!({"currentHealthy": 0, "desiredHealthy": 0})
        )));
        let mut always = pdb(1, short);
        always.spec.as_mut().unwrap().unhealthy_pod_eviction_policy = Some("AlwaysAllow".into());
        assert!(unhealthy_pod_may_go(&always));
        let mut if_healthy = pdb(1, healthy);
        if_healthy
            .spec
            .as_mut()
            .unwrap()
            .unhealthy_pod_eviction_policy = Some("IfHealthyBudget".into());
        assert!(unhealthy_pod_may_go(&if_healthy));
    }

    #[test]
    fn the_disruption_target_condition_is_added_once() {
        let mut p = json!({"metadata": {"name": "p"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(add_disruption_target(&mut p));
        let conds = p["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 2);
        assert_eq!(conds[1]["reason"], "EvictionByEvictionAPI");
        assert_eq!(conds[1]["message"], "Eviction API: evicting");
        assert!(!add_disruption_target(&mut p));
    }
}
