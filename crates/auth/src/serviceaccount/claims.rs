//! What a service-account token says (upstream's `claims.go`): the registered JWT claims and
//! the private `kubernetes.io` claim, and the [`ServiceAccountInfo`] a valid token stands for.
//!
//! Members are declared in the order upstream's tokens carry them (go-jose writes the merged
//! claims as a Go map, so sorted), so a token issued here reads like one kube-apiserver issued.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::user::{CREDENTIAL_ID_KEY, UserInfo};

/// An object a token names: a name and a uid (upstream's `ref`; empty members omitted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

impl ObjectRef {
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> ObjectRef {
        ObjectRef {
            name: name.into(),
            uid: uid.into(),
        }
    }
}

/// What a token is bound to: it is valid only while that object exists with that uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundObject {
    /// A pod, and the node it is assigned to (recorded, not checked: upstream validates a
    /// pod-bound token by its pod alone). The node's uid is empty when the node is unknown.
    Pod {
        pod: ObjectRef,
        node: Option<ObjectRef>,
    },
    Secret(ObjectRef),
    Node(ObjectRef),
}

/// The private claim (upstream's `kubernetes`, under `kubernetes.io`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// Always written, as Go writes a struct member even under `omitempty`.
    #[serde(default)]
    pub serviceaccount: ObjectRef,
    /// For the extended tokens of pods: after this the token is stale (upstream only counts
    /// and audits such uses).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub warnafter: Option<i64>,
}

/// A token's payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Written as an array; read as an array or, as RFC 7519 allows, one string.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "audience"
    )]
    pub aud: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub exp: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io", default)]
    pub kubernetes: KubernetesClaims,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
}

/// `aud`: a string or an array of strings.
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Audience>::deserialize(d)? {
        None => Vec::new(),
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(a)) => a,
    })
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional (truncated, as go-jose
/// reads it).
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))))
}

/// Who a valid token is (upstream's `ServiceAccountInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub node_name: String,
    pub node_uid: String,
    /// `JTI=<jti>`, or empty for a token without one.
    pub credential_id: String,
}

impl ServiceAccountInfo {
    /// The user: `system:serviceaccount:<ns>:<name>` with the service account's uid, the
    /// groups `system:serviceaccounts` and `system:serviceaccounts:<ns>`, and as extra the
    /// pod (name and uid, both known or neither), the credential id, and the node (its uid
    /// only with its name).
    pub fn user_info(&self) -> UserInfo {
        let mut extra = BTreeMap::new();
        if !self.pod_name.is_empty() && !self.pod_uid.is_empty() {
            extra.insert(super::POD_NAME_KEY.to_string(), vec![self.pod_name.clone()]);
            extra.insert(super::POD_UID_KEY.to_string(), vec![self.pod_uid.clone()]);
        }
        if !self.credential_id.is_empty() {
            extra.insert(
                CREDENTIAL_ID_KEY.to_string(),
                vec![self.credential_id.clone()],
            );
        }
        if !self.node_name.is_empty() {
            extra.insert(
                super::NODE_NAME_KEY.to_string(),
                vec![self.node_name.clone()],
            );
            if !self.node_uid.is_empty() {
                extra.insert(super::NODE_UID_KEY.to_string(), vec![self.node_uid.clone()]);
            }
        }
        UserInfo {
            name: super::username(&self.namespace, &self.name),
            uid: self.uid.clone(),
            groups: super::group_names(&self.namespace),
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_written_in_upstreams_order_and_shape() {
        let claims = Claims {
            aud: vec!["https://kubernetes.default.svc.cluster.local".into()],
            exp: Some(1_700_003_600),
            iat: Some(1_700_000_000),
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            jti: "j-1".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                node: Some(ObjectRef::new("node-1", "")),
                pod: Some(ObjectRef::new("web", "pod-uid")),
                serviceaccount: ObjectRef::new("default", "sa-uid"),
                ..KubernetesClaims::default()
            },
            nbf: Some(1_700_000_000),
            sub: "system:serviceaccount:default:default".into(),
        };
        let text = serde_json::to_string(&claims).expect("json");
        assert_eq!(
            text,
            r#"{"aud":["https://kubernetes.default.svc.cluster.local"],"exp":1700003600,"iat":1700000000,"iss":"https://kubernetes.default.svc.cluster.local","jti":"j-1","kubernetes.io":{"namespace":"default","node":{"name":"node-1"},"pod":{"name":"web","uid":"pod-uid"},"serviceaccount":{"name":"default","uid":"sa-uid"}},"nbf":1700000000,"sub":"system:serviceaccount:default:default"}"#
        );
        let back: Claims = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, claims);
    }

    #[test]
    fn a_single_audience_string_and_fractional_dates_are_read() {
        let claims: Claims =
            serde_json::from_value(json!({"aud": "api", "exp": 1.5e9, "sub": "x"})).expect("x");
        assert_eq!(claims.aud, ["api"]);
        assert_eq!(claims.exp, Some(1_500_000_000));
        assert_eq!(claims.kubernetes, KubernetesClaims::default());
    }

    #[test]
    fn the_user_carries_pod_node_and_credential_as_upstream() {
        let info = ServiceAccountInfo {
            namespace: "kube-system".into(),
            name: "flannel".into(),
            uid: "sa-uid".into(),
            pod_name: "flannel-x".into(),
            pod_uid: "pod-uid".into(),
            node_name: "node-1".into(),
            node_uid: String::new(),
            credential_id: "JTI=j-1".into(),
        };
        let user = info.user_info();
        assert_eq!(user.name, "system:serviceaccount:kube-system:flannel");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system"
            ]
        );
        let extra: Vec<(&str, &str)> = user
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v[0].as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                ("authentication.kubernetes.io/credential-id", "JTI=j-1"),
                ("authentication.kubernetes.io/node-name", "node-1"),
                ("authentication.kubernetes.io/pod-name", "flannel-x"),
                ("authentication.kubernetes.io/pod-uid", "pod-uid"),
            ]
        );
        // A pod name without its uid is not recorded; a plain token has no extra.
        let plain = ServiceAccountInfo {
            pod_name: "x".into(),
            ..ServiceAccountInfo::default()
        };
        assert!(plain.user_info().extra.is_empty());
    }
}
