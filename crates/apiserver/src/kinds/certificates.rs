//! certificates.k8s.io/v1: CertificateSigningRequest (pkg/registry/certificates/certificates).
//! A request records who made it (`spec.username`, `uid`, `groups`, `extra`, from the
//! requester, whatever the body says) and starts with an empty status; after that its spec
//! never changes. Updates of the request itself change neither spec nor status; `/status`
//! changes the status but not the Approved and Denied conditions (the signer sets the
//! certificate or a Failed condition); `/approval` changes the conditions alone (approve or
//! deny). New conditions get their timestamps here. Who may approve and sign is admission's
//! question (`crate::admission_plugins::certificates`).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use pernode_admission::validate;
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};

use super::Kind;
use crate::registry::{Operation, admit_typed, now_rfc3339};

pub static CERTIFICATE_SIGNING_REQUESTS: Kind = Kind {
    // Upstream's SelectableFields: the object's metadata and the signer.
    fields: &["metadata.name", "spec.signerName"],
    // Users cannot create pre-approved requests.
    on_create: |obj| {
        obj["status"] = json!({});
        Ok(())
    },
    on_create_by: record_requester,
    on_update: |old, new| {
        match old.get("spec") {
            Some(spec) => new["spec"] = spec.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("spec");
                }
            }
        }
        Ok(())
    },
    on_subresource_update: prepare_subresource_update,
    ..Kind::new(
        pernode_resources::CERTIFICATES,
        "certificatesigningrequests",
        |info, op, obj, v| {
            admit_typed::<CertificateSigningRequest>(info, op, obj, v, true, |csr, old| {
                match (op, old) {
                    (Operation::UpdateStatus { .. }, Some(old)) => {
                        validate::certificate_signing_request_status_update(csr, old)
                    }
                    (Operation::UpdateApproval { .. }, Some(old)) => {
                        validate::certificate_signing_request_approval_update(csr, old)
                    }
                    (Operation::Update { .. }, Some(old)) => {
                        validate::certificate_signing_request_update(csr, old)
                    }
                    // PrepareForCreate clears the status before validation upstream; here
                    // validation comes first, so the status it would clear is cleared now.
                    _ => {
                        csr.status = Some(Default::default());
                        validate::certificate_signing_request_create(csr)
                    }
                }
            })
        },
    )
};

/// PrepareForCreate's injection of the requester: `spec.username`, `uid`, `groups` and
/// `extra` are the user's, never the body's.
fn record_requester(obj: &mut Value, user: &UserInfo) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["username", "uid", "groups", "extra"] {
        spec.remove(field);
    }
    // Go's omitempty: empty values are not written.
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn type_of(condition: &Value) -> &str {
    condition.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The status and approval strategies' PrepareForUpdate, on the object the generic carry-over
/// made: `/status` keeps the stored Approved and Denied conditions (`preserveConditionInstances`;
/// one added or removed is left for validation to refuse), and both fill in the timestamps a
/// new condition lacks (`populateConditionTimestamps`).
fn prepare_subresource_update(op: &Operation<'_>, new: &mut Value) {
    let Some(old) = op.old() else {
        return;
    };
    if matches!(op, Operation::UpdateStatus { .. }) {
        for t in ["Approved", "Denied"] {
            let old_instances: Vec<&Value> =
                conditions(old).iter().filter(|c| type_of(c) == t).collect();
            let Some(list) = new
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let at: Vec<usize> = (0..list.len())
                .filter(|i| type_of(&list[*i]) == t)
                .collect();
            if at.len() == old_instances.len() {
                for (i, old_condition) in at.into_iter().zip(old_instances) {
                    list[i] = old_condition.clone();
                }
            }
        }
    }
    let now = now_rfc3339();
    let old_conditions = conditions(old);
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for condition in list.iter_mut().filter_map(Value::as_object_mut) {
        let unset = |c: &serde_json::Map<String, Value>, field: &str| {
            c.get(field)
                .is_none_or(|v| v.is_null() || v.as_str().is_some_and(str::is_empty))
        };
        if unset(condition, "lastUpdateTime") {
            condition.insert("lastUpdateTime".into(), json!(now));
        }
        if unset(condition, "lastTransitionTime") {
            // Kept from the stored condition of this type and status, else now.
            let earlier = old_conditions.iter().find_map(|o| {
                (o.get("type") == condition.get("type")
                    && o.get("status") == condition.get("status"))
                .then(|| o.get("lastTransitionTime"))
                .flatten()
                .filter(|t| t.as_str().is_some_and(|s| !s.is_empty()))
            });
            let at = earlier.cloned().unwrap_or_else(|| json!(now));
            condition.insert("lastTransitionTime".into(), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_replaces_what_the_body_claims() {
        let mut obj = json!({"spec": {"username": "admin", "groups": ["system:masters"],
            "extra": {"x": ["y"]}, "request": "LS0t"}});
        let mut user = UserInfo::new("system:bootstrap:abc", ["system:bootstrappers"]);
        user.uid = "u-1".into();
        record_requester(&mut obj, &user);
        assert_eq!(
            obj["spec"],
            json!({"username": "system:bootstrap:abc", "uid": "u-1",
                   "groups": ["system:bootstrappers"], "request": "LS0t"})
        );
    }

    #[test]
    fn status_keeps_approval_and_conditions_get_timestamps() {
        let old = json!({"status": {"conditions": [
            {"type": "Approved", "status": "True", "reason": "AutoApproved",
             "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        // A status write that rewords the approval and adds Failed.
        let mut new = json!({"status": {"conditions": [
            {"type": "Approved", "status": "True", "reason": "Forged"},
            {"type": "Failed", "status": "True", "reason": "SignerValidationFailure"}]}});
        prepare_subresource_update(&Operation::UpdateStatus { old: &old }, &mut new);
        let list = new["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(list[0], old["status"]["conditions"][0]);
        assert!(list[1]["lastUpdateTime"].is_string());
        assert_eq!(list[1]["lastTransitionTime"], list[1]["lastUpdateTime"]);
        // Through /approval, a rewritten condition of the same type and status keeps its
        // transition time.
        let mut new = json!({"status": {"conditions": [
            {"type": "Approved", "status": "True", "reason": "Again"}]}});
        prepare_subresource_update(&Operation::UpdateApproval { old: &old }, &mut new);
        assert_eq!(
            new["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(new["status"]["conditions"][0]["reason"], "Again");
    }
}
