//! Deleting what a terminating namespace holds, as upstream's `deleteAllContent`
//! (pkg/controller/namespace/deletion/namespaced_resources_deleter.go).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use tracing::{debug, warn};

use super::Error;
use super::conditions::{ConditionUpdater, Remaining};

/// The wait upstream assumes for items held by finalizers (`finalizerEstimateSeconds`).
pub const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// How upstream prints a GroupVersionResource (`apps/v1, Resource=daemonsets`).
pub fn gvr_text(ar: &ApiResource) -> String {
    format!("{}/{}, Resource={}", ar.group, ar.version, ar.plural)
}

/// Order of deletion: workloads and everything else first, so their controllers stop before
/// their pods go (the garbage collector deletes the pods of a deleted owner, as upstream's
/// Background propagation); pods next; events last, so that what the others record while
/// going is removed too.
pub fn deletion_rank(ar: &ApiResource) -> u8 {
    match (ar.group.as_str(), ar.plural.as_str()) {
        ("", "pods") => 1,
        ("", "events") | ("events.k8s.io", "events") => 2,
        _ => 0,
    }
}

/// The namespaced resources discovery lists with the `delete` verb, in deletion order.
pub fn deletable(
    mut found: Vec<(ApiResource, ApiCapabilities)>,
) -> Vec<(ApiResource, ApiCapabilities)> {
    found.retain(|(_, caps)| {
        caps.scope == Scope::Namespaced && caps.supports_operation(verbs::DELETE)
    });
    found.sort_by_key(|(ar, _)| deletion_rank(ar));
    found
}

/// What is left of one resource after its pass.
#[derive(Debug, Default)]
struct ResourcePass {
    estimate: i64,
    remaining: usize,
    finalizers: BTreeMap<String, usize>,
}

/// Upstream's `estimateGracefulTerminationForPods`: the longest grace period of the pods not
/// yet finished; none once the namespace has been terminating that long.
pub fn pod_estimate(pods: &[Pod], deleting_for: std::time::Duration) -> i64 {
    let estimate = pods
        .iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded") | Some("Failed"))
        })
        .filter_map(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .max()
        .unwrap_or(0)
        .max(0);
    if deleting_for.as_secs() >= estimate.unsigned_abs() {
        0
    } else {
        estimate
    }
}

fn is_status(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(s) if codes.contains(&s.code))
}

/// Deletes everything in `ns` and writes its conditions. Returns how many seconds the content
/// left should take to go (0: none left), or the aggregated failures.
pub async fn delete_all_content(client: &kube::Client, ns: &mut Namespace) -> Result<i64, Error> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let deleted_at = ns
        .metadata
        .deletion_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |t| t.0);
    let deleting_for = std::time::Duration::try_from(Timestamp::now().duration_since(deleted_at))
        .unwrap_or_default();
    let now = Time(Timestamp::now());
    let mut updater = ConditionUpdater::default();
    let mut errors: Vec<String> = Vec::new();
    let resources = match Discovery::new(client.clone()).run().await {
        Ok(d) => d.groups().flat_map(|g| g.recommended_resources()).collect(),
        Err(e) => {
            // Not fatal upstream either: whatever was discovered is still deleted.
            errors.push(e.to_string());
            updater.discovery_failed(e.to_string(), &now);
            Vec::new()
        }
    };
    let mut estimate = 0;
    let mut remaining = Remaining::default();
    for (ar, caps) in deletable(resources) {
        match delete_resource(client, &ar, &caps, &name, deleting_for).await {
            Ok(pass) => {
                estimate = estimate.max(pass.estimate);
                if pass.remaining > 0 {
                    remaining
                        .by_resource
                        .insert(format!("{}.{}", ar.plural, ar.group), pass.remaining);
                    for (f, n) in pass.finalizers {
                        *remaining.by_finalizer.entry(f).or_default() += n;
                    }
                }
            }
            Err((pass, message)) => {
                estimate = estimate.max(pass.estimate);
                if pass.remaining > 0 {
                    remaining
                        .by_resource
                        .insert(format!("{}.{}", ar.plural, ar.group), pass.remaining);
                }
                updater.content_failed(message.clone());
                errors.push(message);
            }
        }
    }
    updater.content_totals(&remaining, &now);
    let status = ns.status.get_or_insert_with(Default::default);
    if updater.update(status, &now) {
        let api: Api<Namespace> = Api::all(client.clone());
        match api.replace_status(&name, &PostParams::default(), ns).await {
            Ok(updated) => *ns = updated,
            Err(e) => {
                warn!(namespace = %name, error = %e, "could not update the namespace's conditions")
            }
        }
    }
    debug!(namespace = %name, estimate, ?errors, "deleted namespace content");
    match errors.len() {
        0 => Ok(estimate),
        1 => Err(Error::Content(errors.remove(0))),
        _ => Err(Error::Content(format!("[{}]", errors.join(", ")))),
    }
}

/// Upstream's `deleteAllContentForGroupVersionResource`.
async fn delete_resource(
    client: &kube::Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    ns: &str,
    deleting_for: std::time::Duration,
) -> Result<ResourcePass, (ResourcePass, String)> {
    let fail = |estimate, e: kube::Error| {
        (
            ResourcePass {
                estimate,
                ..Default::default()
            },
            e.to_string(),
        )
    };
    let estimate = if ar.group.is_empty() && ar.plural == "pods" {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| fail(0, e))?;
        pod_estimate(&list.items, deleting_for)
    } else {
        0
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    // The namespace controller deletes generically: no orphaning, dependents go in the
    // background (the garbage collector), as upstream's.
    let dp = DeleteParams::background();
    let mut collection_done = false;
    if caps.supports_operation(verbs::DELETE_COLLECTION) {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collection_done = true,
            Err(e) if is_status(&e, &[404, 405]) => {}
            Err(e) => return Err(fail(estimate, e)),
        }
    }
    let listable = caps.supports_operation(verbs::LIST);
    if !collection_done && listable {
        let items = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| fail(estimate, e))?;
        for item in items.items {
            let Some(name) = item.metadata.name else {
                continue;
            };
            match api.delete(&name, &dp).await {
                Ok(_) => {}
                Err(e) if is_status(&e, &[404]) => {}
                Err(e) => return Err(fail(estimate, e)),
            }
        }
    }
    if !listable {
        return Ok(ResourcePass {
            estimate,
            ..Default::default()
        });
    }
    let left = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| fail(estimate, e))?;
    if left.items.is_empty() {
        return Ok(ResourcePass {
            estimate,
            ..Default::default()
        });
    }
    let mut finalizers = BTreeMap::new();
    for item in &left.items {
        for f in item.metadata.finalizers.iter().flatten() {
            *finalizers.entry(f.clone()).or_default() += 1;
        }
    }
    let pass = ResourcePass {
        estimate,
        remaining: left.items.len(),
        finalizers,
    };
    if estimate != 0 {
        return Ok(pass);
    }
    if !pass.finalizers.is_empty() {
        return Ok(ResourcePass {
            estimate: FINALIZER_ESTIMATE_SECONDS,
            ..pass
        });
    }
    let message = format!(
        "unexpected items still remain in namespace: {ns} for gvr: {}",
        gvr_text(ar)
    );
    Err((pass, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use std::time::Duration;

    fn ar(group: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: "v1".into(),
            api_version: if group.is_empty() {
                "v1".into()
            } else {
                format!("{group}/v1")
            },
            kind: String::new(),
            plural: plural.into(),
        }
    }

    fn caps(scope: Scope, ops: &[&str]) -> ApiCapabilities {
        ApiCapabilities {
            scope,
            subresources: Vec::new(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn owners_go_before_pods_and_events_last() {
        let all = vec![
            (
                ar("", "events"),
                caps(Scope::Namespaced, &["delete", "list"]),
            ),
            (ar("", "pods"), caps(Scope::Namespaced, &["delete", "list"])),
            (ar("", "nodes"), caps(Scope::Cluster, &["delete", "list"])),
            (ar("", "bindings"), caps(Scope::Namespaced, &["create"])),
            (
                ar("apps", "daemonsets"),
                caps(Scope::Namespaced, &["delete", "list"]),
            ),
        ];
        let order: Vec<String> = deletable(all).into_iter().map(|(a, _)| a.plural).collect();
        assert_eq!(order, ["daemonsets", "pods", "events"]);
        assert_eq!(
            gvr_text(&ar("apps", "daemonsets")),
            "apps/v1, Resource=daemonsets"
        );
        assert_eq!(gvr_text(&ar("", "pods")), "/v1, Resource=pods");
    }

    #[test]
    fn pods_estimate_their_longest_grace_until_it_has_passed() {
        let pod = |grace: i64, phase: &str| Pod {
            spec: Some(PodSpec {
                termination_grace_period_seconds: Some(grace),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pods = [pod(30, "Running"), pod(60, "Succeeded"), pod(10, "Pending")];
        assert_eq!(pod_estimate(&pods, Duration::from_secs(5)), 30);
        assert_eq!(pod_estimate(&pods, Duration::from_secs(30)), 0);
        assert_eq!(pod_estimate(&[], Duration::ZERO), 0);
    }
}
