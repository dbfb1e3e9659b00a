//! Namespace lifecycle, as upstream's NamespaceLifecycle admission plugin
//! (plugin/pkg/admission/namespace/lifecycle) and the namespace registry's Delete and
//! `finalize` (pkg/registry/core/namespace/storage):
//!
//! - a create into a namespace that does not exist is a 404 `namespaces "x" not found`; into
//!   a terminating one, a 403 whose cause is `NamespaceTerminating` (updates and deletes are
//!   still allowed there, so its content can go);
//! - `default`, `kube-system` and `kube-public` may not be deleted;
//! - deleting a namespace marks it (deletionTimestamp, phase `Terminating`) while
//!   `spec.finalizers` holds anything; the namespace controller empties the namespace and then
//!   removes its `kubernetes` finalizer through `namespaces/{name}/finalize`, which changes
//!   `spec.finalizers` alone; the write that leaves a terminating namespace without finalizers
//!   removes it. A namespace with no finalizers at all is deleted at once.
//!
//! The decisions are pure functions over the stored JSON; the async functions apply them.

use axum::http::StatusCode;
use axum::response::Response;
use pernode_resources::ResourceInfo;
use pernode_store::{Entry, Store, StoreError};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, Cause};
use crate::handlers::{self, DeleteOptions, Request};
use crate::registry::{self, Operation, now_rfc3339};

/// Namespaces that may never be deleted (upstream's immortal namespaces).
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The finalizer the namespace strategy puts in `spec.finalizers` on create, and the namespace
/// controller removes once the namespace is empty.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// The status cause of a create refused in a terminating namespace.
pub const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

/// What admission sees of the namespace a create goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceState {
    Missing,
    Active,
    Terminating,
}

/// The state of a stored namespace. Parsed only when it may be terminating: this runs on
/// every create of a namespaced object.
pub fn state_of(entry: Option<&Entry>) -> NamespaceState {
    let Some(entry) = entry else {
        return NamespaceState::Missing;
    };
    if memchr::memmem::find(&entry.json, b"\"Terminating\"").is_none() {
        return NamespaceState::Active;
    }
    let phase = serde_json::from_slice::<Value>(&entry.json)
        .ok()
        .and_then(|ns| {
            ns.pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    if phase.as_deref() == Some("Terminating") {
        NamespaceState::Terminating
    } else {
        NamespaceState::Active
    }
}

/// The name admission reports for an object being created: its name, else its generateName
/// (names are generated after admission), as upstream's `extractResourceName`.
pub fn admission_name(obj: &Value) -> &str {
    let meta = obj.get("metadata");
    let field = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    field("name")
        .or_else(|| field("generateName"))
        .unwrap_or("")
}

/// The lifecycle decision for a create of `obj` (a `info` object) in namespace `ns`.
pub fn check_create(
    info: &ResourceInfo,
    ns: &str,
    state: NamespaceState,
    obj: &Value,
) -> Result<(), ApiError> {
    match state {
        NamespaceState::Active => Ok(()),
        NamespaceState::Missing => Err(ApiError::not_found("", "namespaces", ns)),
        NamespaceState::Terminating => Err(ApiError::forbidden_object(
            info.group,
            info.plural,
            admission_name(obj),
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )
        .with_cause(Cause {
            reason: NAMESPACE_TERMINATING_CAUSE.into(),
            message: format!("namespace {ns} is being terminated"),
            field: "metadata.namespace".into(),
        })),
    }
}

/// Admission of a create of a namespaced object into `ns`.
pub fn admit_create(
    store: &Store,
    info: &ResourceInfo,
    ns: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    if !info.namespaced {
        return Ok(());
    }
    let entry = store.get(&format!("namespaces/{ns}"));
    check_create(info, ns, state_of(entry.as_ref()), obj)
}

/// Admission of a delete: the immortal namespaces stay.
pub fn admit_delete(info: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    if info.group.is_empty() && info.plural == "namespaces" && IMMORTAL.contains(&name) {
        return Err(ApiError::forbidden_object(
            "",
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    Ok(())
}

fn strings_at<'a>(obj: &'a Value, pointer: &str) -> Vec<&'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a namespace's `spec.finalizers` is empty (upstream's `finalized`).
pub fn finalized(ns: &Value) -> bool {
    strings_at(ns, "/spec/finalizers").is_empty()
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Upstream's `ShouldDeleteNamespaceDuringUpdate` on top of the generic rule: a namespace
/// write removes it only once `spec.finalizers` is empty too.
pub fn may_delete_during_update(info: &ResourceInfo, new: &Value) -> bool {
    !(info.group.is_empty() && info.plural == "namespaces") || finalized(new)
}

/// What the first delete of a namespace does to it: deletionTimestamp now, phase
/// `Terminating`, and the `orphan` / `foregroundDeletion` finalizers the propagation policy
/// asks for (upstream's shouldHaveOrphanFinalizer / shouldHaveDeleteDependentsFinalizer).
pub fn mark_terminating(ns: &mut Value, propagation: Option<&str>, now: &str) {
    let current: Vec<String> = strings_at(ns, "/metadata/finalizers")
        .into_iter()
        .map(str::to_string)
        .collect();
    let has = |f: &str| current.iter().any(|c| c == f);
    let orphan = propagation.map_or(has("orphan"), |p| p == "Orphan");
    let foreground = propagation.map_or(has("foregroundDeletion"), |p| p == "Foreground");
    let mut finalizers: Vec<String> = current
        .iter()
        .filter(|f| *f != "orphan" && *f != "foregroundDeletion")
        .cloned()
        .collect();
    if orphan {
        finalizers.push("orphan".into());
    }
    if foreground {
        finalizers.push("foregroundDeletion".into());
    }
    let meta = &mut ns["metadata"];
    if meta.get("deletionTimestamp").is_none_or(Value::is_null) {
        meta["deletionTimestamp"] = json!(now);
    }
    if finalizers.is_empty() {
        if let Some(m) = meta.as_object_mut() {
            m.remove("finalizers");
        }
    } else {
        meta["finalizers"] = json!(finalizers);
    }
    if !ns.get("status").is_some_and(Value::is_object) {
        ns["status"] = json!({});
    }
    ns["status"]["phase"] = json!("Terminating");
}

/// What a delete of a namespace does, given the stored one.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteStep {
    /// Mark it terminating (first delete while it has finalizers).
    Mark,
    /// Nothing more: it is terminating and waits for its finalizers (answered with it).
    Wait,
    /// The generic delete (no spec finalizers left: metadata finalizers permitting, it goes).
    Remove,
}

/// Upstream's namespace Delete, as a decision.
pub fn delete_step(ns: &Value) -> DeleteStep {
    match (deleting(ns), finalized(ns)) {
        (false, false) => DeleteStep::Mark,
        (true, false) => DeleteStep::Wait,
        (_, true) => DeleteStep::Remove,
    }
}

fn ok_json(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    handlers::json_response(status, body)
}

/// DELETE of a namespace.
pub(crate) async fn delete(
    state: &AppState,
    req: &Request,
    opts: &DeleteOptions,
) -> Result<Response, ApiError> {
    let name = req.target.name.clone().unwrap_or_default();
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    loop {
        let old = state
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found("", "namespaces", &name))?;
        let mut ns = handlers::parse_entry(&old)?;
        handlers::check_delete_preconditions(&req.target, &name, &ns, old.rv, opts)?;
        match delete_step(&ns) {
            DeleteStep::Wait => {
                return Ok(ok_json(StatusCode::OK, old.json.clone()));
            }
            DeleteStep::Remove => {
                let (status, body, _) =
                    handlers::delete_object(state, &req.target, &key, opts).await?;
                return Ok(ok_json(status, body));
            }
            DeleteStep::Mark => {}
        }
        mark_terminating(&mut ns, opts.propagation.as_deref(), &now_rfc3339());
        if opts.dry_run {
            return Ok(ok_json(StatusCode::OK, ns.to_string()));
        }
        match state.store.update(&key, ns, Some(old.rv)).await {
            Ok(entry) => return Ok(ok_json(StatusCode::OK, entry.json)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(handlers::store_error(&req.target, &name, e)),
        }
    }
}

/// The `finalize` strategy: the stored namespace with the body's `spec.finalizers`.
pub fn apply_finalize(old: &Value, body: &Value) -> Value {
    let mut new = old.clone();
    match body.pointer("/spec/finalizers") {
        Some(f) if !f.is_null() => {
            if !new.get("spec").is_some_and(Value::is_object) {
                new["spec"] = json!({});
            }
            new["spec"]["finalizers"] = f.clone();
        }
        _ => {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
    new
}

/// PUT `namespaces/{name}/finalize`: replaces `spec.finalizers` alone; the write that leaves a
/// terminating namespace without finalizers removes it.
pub(crate) async fn finalize(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let body = crate::codec::decode_object(
        handlers::content_type(req),
        &req.body,
        &crate::codec::BodyKind::of(req.target.info),
    )?;
    let name = req.target.name.clone().unwrap_or_default();
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let pinned = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    loop {
        let old = state
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found("", "namespaces", &name))?;
        if pinned.as_ref().is_some_and(|rv| *rv != old.rv.to_string()) {
            return Err(ApiError::modified("", "namespaces", &name));
        }
        let old_value = handlers::parse_entry(&old)?;
        let mut new = apply_finalize(&old_value, &body);
        new["metadata"]["resourceVersion"] = json!(old.rv.to_string());
        let op = Operation::Update { old: &old_value };
        registry::admit(req.target.info, &op, &mut new, req.query.field_validation())?;
        if registry::same_object_except(&old_value, &new, None) {
            return Ok(ok_json(StatusCode::OK, old.json.clone()));
        }
        if req.query.dry_run() {
            return Ok(ok_json(StatusCode::OK, new.to_string()));
        }
        let gone = deleting(&new)
            && finalized(&new)
            && strings_at(&new, "/metadata/finalizers").is_empty();
        let written = if gone {
            let body = new.to_string();
            state
                .store
                .delete(&key, Some(old.rv))
                .await
                .map(|_| body.into())
        } else {
            state
                .store
                .update(&key, new, Some(old.rv))
                .await
                .map(|e| e.json)
        };
        match written {
            Ok(json) => return Ok(ok_json(StatusCode::OK, json)),
            Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
            Err(e) => return Err(handlers::store_error(&req.target, &name, e)),
        }
    }
}

/// The namespace strategy's PrepareForCreate: the `kubernetes` finalizer is required on create
/// (and only then: the namespace controller removes it later), phase `Active`.
pub fn prepare_create(ns: &mut Value) {
    ns["status"] = json!({"phase": "Active"});
    if !ns.get("spec").is_some_and(Value::is_object) {
        ns["spec"] = json!({});
    }
    let spec = &mut ns["spec"];
    if !spec.get("finalizers").is_some_and(Value::is_array) {
        spec["finalizers"] = json!([]);
    }
    if let Some(list) = spec["finalizers"].as_array_mut()
        && !list.iter().any(|f| f == FINALIZER_KUBERNETES)
    {
        list.push(json!(FINALIZER_KUBERNETES));
    }
}

/// The namespace strategy's PrepareForUpdate: `spec.finalizers` (and status, as for every kind
/// with a status subresource) stay as stored on main-resource writes.
pub fn prepare_update(old: &Value, new: &mut Value) {
    let stored = old.pointer("/spec/finalizers").cloned();
    match stored {
        Some(f) => {
            if !new.get("spec").is_some_and(Value::is_object) {
                new["spec"] = json!({});
            }
            new["spec"]["finalizers"] = f;
        }
        None => {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
                if spec.is_empty()
                    && let Some(m) = new.as_object_mut()
                    && old.get("spec").is_none()
                {
                    m.remove("spec");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(plural: &str) -> &'static ResourceInfo {
        pernode_resources::RESOURCES
            .iter()
            .find(|r| r.plural == plural)
            .expect("served")
    }

    fn entry(json: Value) -> Entry {
        Entry::new(
            "namespaces/x".into(),
            1,
            json.to_string().into(),
            Default::default(),
        )
    }

    #[test]
    fn namespace_state_follows_the_phase() {
        assert_eq!(state_of(None), NamespaceState::Missing);
        let active = entry(json!({"metadata": {"name": "x"}, "status": {"phase": "Active"}}));
        assert_eq!(state_of(Some(&active)), NamespaceState::Active);
        let labelled = entry(
            json!({"metadata": {"labels": {"a": "Terminating"}}, "status": {"phase": "Active"}}),
        );
        assert_eq!(state_of(Some(&labelled)), NamespaceState::Active);
        let terminating = entry(
            json!({"metadata": {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z"},
                                       "status": {"phase": "Terminating"}}),
        );
        assert_eq!(state_of(Some(&terminating)), NamespaceState::Terminating);
    }

    #[test]
    fn creates_into_missing_or_terminating_namespaces_are_refused_as_upstream() {
        let pod = json!({"metadata": {"generateName": "agent-"}});
        let e = check_create(info("pods"), "x", NamespaceState::Missing, &pod).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "namespaces \"x\" not found")
        );
        let e = check_create(info("pods"), "x", NamespaceState::Terminating, &pod).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"agent-\" is forbidden: unable to create new content in namespace x because it is being terminated"
        );
        let status = e.to_status();
        assert_eq!(status["reason"], "Forbidden");
        assert_eq!(status["details"]["kind"], "pods");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "NamespaceTerminating"
        );
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "metadata.namespace"
        );
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "namespace x is being terminated"
        );
        let ev = json!({"metadata": {"name": "e1"}});
        let e =
            check_create(info("daemonsets"), "x", NamespaceState::Terminating, &ev).unwrap_err();
        assert!(
            e.message
                .starts_with("daemonsets.apps \"e1\" is forbidden: ")
        );
        assert!(check_create(info("pods"), "x", NamespaceState::Active, &pod).is_ok());
    }

    #[test]
    fn immortal_namespaces_may_not_be_deleted() {
        for name in IMMORTAL {
            let e = admit_delete(info("namespaces"), name).unwrap_err();
            assert_eq!(
                e.message,
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")
            );
        }
        assert!(admit_delete(info("namespaces"), "kube-node-lease").is_ok());
        assert!(admit_delete(info("pods"), "default").is_ok());
    }

    #[test]
    fn delete_marks_then_waits_then_removes() {
        let mut ns = json!({"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]},
                            "status": {"phase": "Active"}});
        assert_eq!(delete_step(&ns), DeleteStep::Mark);
        mark_terminating(&mut ns, None, "2024-01-01T00:00:00Z");
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert_eq!(ns["metadata"]["deletionTimestamp"], "2024-01-01T00:00:00Z");
        assert!(ns["metadata"].get("finalizers").is_none());
        assert_eq!(delete_step(&ns), DeleteStep::Wait);
        let done = apply_finalize(&ns, &json!({"spec": {"finalizers": []}}));
        assert!(finalized(&done));
        assert_eq!(delete_step(&done), DeleteStep::Remove);
        // No finalizers from the start: gone at once.
        assert_eq!(
            delete_step(&json!({"metadata": {"name": "y"}, "spec": {}})),
            DeleteStep::Remove
        );
    }

    #[test]
    fn propagation_policy_sets_metadata_finalizers() {
        let mut ns = json!({"metadata": {"name": "x", "finalizers": ["orphan", "other"]},
                            "spec": {"finalizers": ["kubernetes"]}});
        mark_terminating(&mut ns, Some("Foreground"), "t");
        assert_eq!(
            ns["metadata"]["finalizers"],
            json!(["other", "foregroundDeletion"])
        );
        let mut ns = json!({"metadata": {"name": "x", "finalizers": ["orphan"]}, "spec": {}});
        mark_terminating(&mut ns, None, "t");
        assert_eq!(ns["metadata"]["finalizers"], json!(["orphan"]));
    }

    #[test]
    fn finalize_changes_spec_finalizers_only() {
        let old = json!({"metadata": {"name": "x", "labels": {"a": "b"}},
                         "spec": {"finalizers": ["kubernetes", "other"]}, "status": {"phase": "Terminating"}});
        let body = json!({"metadata": {"name": "x", "labels": {}}, "spec": {"finalizers": ["other"]},
                          "status": {"phase": "Active"}});
        let new = apply_finalize(&old, &body);
        assert_eq!(new["spec"]["finalizers"], json!(["other"]));
        assert_eq!(new["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(new["status"]["phase"], "Terminating");
    }

    #[test]
    fn strategy_adds_the_finalizer_on_create_and_keeps_finalizers_on_update() {
        let mut ns = json!({"metadata": {"name": "x"}});
        prepare_create(&mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        let mut update = json!({"metadata": {"name": "x"}, "spec": {"finalizers": []}});
        prepare_update(&ns, &mut update);
        assert_eq!(update["spec"]["finalizers"], json!(["kubernetes"]));
        let mut done = json!({"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]}});
        prepare_update(&json!({"metadata": {"name": "x"}, "spec": {}}), &mut done);
        assert_eq!(done["spec"], json!({}));
    }

    #[test]
    fn only_finalized_namespaces_go_during_update() {
        let ns = info("namespaces");
        assert!(!may_delete_during_update(
            ns,
            &json!({"spec": {"finalizers": ["kubernetes"]}})
        ));
        assert!(may_delete_during_update(ns, &json!({"spec": {}})));
        assert!(may_delete_during_update(
            info("pods"),
            &json!({"spec": {"finalizers": ["x"]}})
        ));
    }
}
