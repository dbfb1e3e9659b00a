//! core/v1 (pkg/registry/core/<resource>): Namespace, Node, Pod, Event, ConfigMap, Endpoints,
//! Secret, ServiceAccount, Service; and discovery.k8s.io/v1 EndpointSlice, which upstream
//! keeps beside Endpoints.

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, PodStatus, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use pernode_admission::{defaults, validate};
use serde_json::{Value, json};

use super::Kind;
use crate::registry::{Operation, admit_meta, admit_status, admit_typed};

/// The indexed field of a pod's node (what a binding changes).
pub const POD_NODE_NAME: &str = "spec.nodeName";

pub static NAMESPACES: Kind = Kind {
    fields: &["metadata.name", "status.phase"],
    on_create: |obj| {
        crate::namespace_lifecycle::prepare_create(obj);
        Ok(())
    },
    on_update: |old, new| {
        crate::namespace_lifecycle::prepare_update(old, new);
        Ok(())
    },
    ..Kind::new("", "namespaces", |info, op, obj, v| {
        admit_typed::<Namespace>(info, op, obj, v, true, |ns, old| {
            defaults::namespace(ns);
            match old {
                None => validate::namespace(ns),
                Some(old) => validate::namespace_update(ns, old),
            }
        })
    })
};

pub static NODES: Kind = Kind {
    fields: &["metadata.name", "spec.unschedulable"],
    ..Kind::new("", "nodes", |info, op, obj, v| {
        admit_typed::<Node>(info, op, obj, v, true, |node, old| {
            defaults::node(node);
            match old {
                None => validate::node(node),
                Some(old) => validate::node_update(node, old),
            }
        })
    })
};

pub static PODS: Kind = Kind {
    fields: &[
        "metadata.name",
        "metadata.namespace",
        POD_NODE_NAME,
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ],
    on_create: |obj| {
        let qos = qos_class(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        Ok(())
    },
    status_alone: true,
    ..Kind::new("", "pods", |info, op, obj, v| {
        if matches!(op, Operation::UpdateStatus { .. }) {
            return admit_status::<PodStatus>(info, obj, v);
        }
        admit_typed::<Pod>(info, op, obj, v, true, |pod, old| match old {
            None => {
                defaults::pod(pod);
                validate::pod_create(pod)
            }
            Some(old) => validate::pod_update(pod, old),
        })
    })
};

pub static EVENTS: Kind = Kind {
    fields: &[
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ],
    micro_times: &["eventTime", "series.lastObservedTime"],
    ..Kind::new("", "events", |info, op, obj, v| {
        admit_typed::<Event>(info, op, obj, v, false, |ev, _| validate::event(ev))
    })
};

pub static CONFIG_MAPS: Kind = Kind::new("", "configmaps", |info, op, obj, v| {
    admit_typed::<ConfigMap>(info, op, obj, v, true, |cm, old| match old {
        None => validate::config_map(cm),
        Some(old) => validate::config_map_update(cm, old),
    })
});

pub static SECRETS: Kind = Kind {
    fields: &["metadata.name", "metadata.namespace", "type"],
    ..Kind::new("", "secrets", |info, op, obj, v| {
        fold_string_data(obj);
        admit_typed::<Secret>(info, op, obj, v, true, |secret, old| {
            if secret.type_.as_deref().is_none_or(str::is_empty) {
                secret.type_ = Some("Opaque".into());
            }
            match old {
                None => validate::secret(secret),
                Some(old) => validate::secret_update(secret, old),
            }
        })
    })
};

/// v1 Secret's conversion: each `stringData` entry is written into `data` (base64), winning
/// over a `data` entry of the same key, and `stringData` is not stored.
fn fold_string_data(obj: &mut Value) {
    use base64::Engine;
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (key, value) in strings {
        let text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        data[key.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

pub static SERVICE_ACCOUNTS: Kind = Kind::new("", "serviceaccounts", |info, op, obj, v| {
    admit_typed::<ServiceAccount>(info, op, obj, v, true, |sa, old| match old {
        None => validate::service_account(sa),
        Some(old) => validate::service_account_update(sa, old),
    })
});

pub static SERVICES: Kind = Kind {
    on_update: |old, new| {
        crate::service_alloc::keep_allocated(old, new);
        Ok(())
    },
    ..Kind::new("", "services", |info, op, obj, v| {
        admit_typed::<Service>(info, op, obj, v, true, |svc, old| {
            defaults::service(svc);
            match old {
                None => validate::service(svc),
                Some(old) => validate::service_update(svc, old),
            }
        })
    })
};

pub static ENDPOINTS: Kind = Kind::new("", "endpoints", |info, op, obj, v| {
    admit_meta::<Endpoints>(info, op, obj, v)
});

pub static ENDPOINT_SLICES: Kind =
    Kind::new("discovery.k8s.io", "endpointslices", |info, op, obj, v| {
        admit_meta::<EndpointSlice>(info, op, obj, v)
    });

/// Pod QoS class from the containers' requests and limits (upstream's GetPodQOS, simplified to
/// cpu and memory).
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "c"}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
            ),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}})
            ),
            "Burstable"
        );
    }

    #[test]
    fn string_data_is_folded_into_data() {
        let mut s =
            json!({"data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "hi", "c": "yo"}});
        fold_string_data(&mut s);
        assert_eq!(s, json!({"data": {"a": "eA==", "b": "aGk=", "c": "eW8="}}));
    }
}
