//! Cluster IPs and node ports for Services, as upstream's service REST storage allocates
//! them (pkg/registry/core/service/ipallocator and portallocator): a new Service gets a free
//! address of the service CIDR (or keeps the one it asks for, if free and in range), `None`
//! makes it headless, ExternalName gets none; NodePort and LoadBalancer ports get a free node
//! port. IPv4 single-stack only. The first address is the `kubernetes` Service's.
//!
//! Free means not held by a stored Service: the store is scanned on each create (Services are
//! few). Two concurrent creates could draw the same address; upstream serialises them through
//! its allocation bitmap, which pernode does not keep yet.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use pernode_admission::FieldError;
use pernode_resources::ResourceInfo;
use pernode_store::Store;
use rand::Rng;
use serde_json::{Value, json};

use crate::admission_plugins::added::{Added, Step};
use crate::error::ApiError;

/// The service CIDR: kubeadm's default, 10.96.0.0/12.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// The node port range, kube-apiserver's default.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;
/// The `kubernetes` Service's address: the first of the range.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

fn cidr_text() -> String {
    format!("{}/{}", SERVICE_CIDR.0, SERVICE_CIDR.1)
}

fn in_range(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SERVICE_CIDR.1);
    u32::from(ip) & mask == u32::from(SERVICE_CIDR.0)
}

/// Addresses and node ports held by stored Services.
fn in_use(store: &Store) -> (BTreeSet<String>, BTreeSet<i64>) {
    let (_, entries) = store.list("services/", |_| true);
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for entry in entries {
        let Ok(svc) = serde_json::from_slice::<Value>(&entry.json) else {
            continue;
        };
        for ip in svc
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = ip.as_str() {
                ips.insert(ip.to_string());
            }
        }
        for port in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = port.get("nodePort").and_then(Value::as_i64) {
                ports.insert(p);
            }
        }
    }
    (ips, ports)
}

fn invalid(info: &ResourceInfo, svc: &Value, field: &str, value: Value, detail: &str) -> ApiError {
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    crate::registry::invalid(info, name, &[FieldError::invalid(field, value, detail)])
}

/// Allocates a new Service's cluster IP and node ports.
pub fn allocate(
    store: &Store,
    info: &ResourceInfo,
    svc: &mut Value,
    added: &mut Added,
) -> Result<(), ApiError> {
    let Some(spec) = svc.get("spec").and_then(Value::as_object) else {
        return Ok(());
    };
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let asked = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        // `clusterIPs[0]`, which a client may send instead of `clusterIP`.
        .or_else(|| spec.get("clusterIPs")?.as_array()?.first()?.as_str())
        .unwrap_or("")
        .to_string();
    let (used_ips, used_ports) = in_use(store);
    if ty == "ExternalName" {
        return Ok(());
    }
    let ip = if asked == "None" {
        "None".to_string()
    } else if asked.is_empty() {
        let size = 1u32 << (32 - SERVICE_CIDR.1);
        let base = u32::from(SERVICE_CIDR.0);
        let mut rng = rand::rng();
        let free = (0..64)
            .map(|_| Ipv4Addr::from(base + rng.random_range(2..size - 1)).to_string())
            .find(|ip| !used_ips.contains(ip));
        free.ok_or_else(|| {
            ApiError::internal(format!(
                "failed to allocate a serviceIP: range is full ({})",
                cidr_text()
            ))
        })?
    } else {
        let field = "spec.clusterIPs";
        let Ok(parsed) = asked.parse::<Ipv4Addr>() else {
            // Validation words the bad address itself.
            return Ok(());
        };
        if !in_range(parsed) {
            return Err(invalid(
                info,
                svc,
                field,
                json!([asked]),
                &format!(
                    "failed to allocate IP {asked}: provided IP is not in the valid range. The range of valid IPs is {}",
                    cidr_text()
                ),
            ));
        }
        if used_ips.contains(&asked) {
            return Err(invalid(
                info,
                svc,
                field,
                json!([asked]),
                &format!("failed to allocate IP {asked}: provided IP is already allocated"),
            ));
        }
        asked
    };
    let spec_path = [Step::Key("spec")];
    added.insert(svc, &spec_path, "clusterIP", json!(ip));
    added.insert(svc, &spec_path, "clusterIPs", json!([ip]));
    added.insert(svc, &spec_path, "ipFamilies", json!(["IPv4"]));
    added.insert(svc, &spec_path, "ipFamilyPolicy", json!("SingleStack"));
    let spec = &svc["spec"];
    let wants_node_ports = ty == "NodePort"
        || (ty == "LoadBalancer"
            && spec
                .get("allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false));
    if wants_node_ports {
        let unset: Vec<usize> = spec
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, port)| {
                port.is_object()
                    && port
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .is_none_or(|p| p == 0)
            })
            .map(|(i, _)| i)
            .collect();
        let mut taken = used_ports;
        let mut rng = rand::rng();
        for i in unset {
            let free = (0..256)
                .map(|_| rng.random_range(NODE_PORTS))
                .find(|p| !taken.contains(p))
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a nodePort: range is full")
                })?;
            taken.insert(free);
            let port = [Step::Key("spec"), Step::Key("ports"), Step::Index(i)];
            added.insert(svc, &port, "nodePort", json!(free));
        }
    }
    Ok(())
}

/// An update keeps what was allocated when the client left it out (kubectl replace, apply
/// of a manifest without `clusterIP`), as upstream's `patchAllocatedValues`.
pub fn keep_allocated(old: &Value, new: &mut Value) {
    let Some(new_spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else {
        return;
    };
    let unset = |v: Option<&Value>| v.is_none_or(|v| v.as_str() == Some("") || v.is_null());
    if unset(new_spec.get("clusterIP")) {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if let Some(v) = old_spec.get(field)
                && (field == "clusterIP" || new_spec.get(field).is_none_or(Value::is_null))
            {
                new_spec.insert(field.into(), v.clone());
            }
        }
    }
    let old_ports = old_spec.get("ports").and_then(Value::as_array);
    for port in new_spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if port
            .get("nodePort")
            .and_then(Value::as_i64)
            .is_some_and(|p| p != 0)
        {
            continue;
        }
        let same = old_ports.into_iter().flatten().find(|o| {
            o.get("port") == port.get("port")
                && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    == port
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
        });
        if let Some(node_port) = same.and_then(|o| o.get("nodePort")) {
            port["nodePort"] = node_port.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> &'static ResourceInfo {
        pernode_resources::find("", "v1", "services").expect("services are served")
    }

    async fn store_with(svcs: &[Value]) -> Store {
        let store = Store::in_memory(crate::registry::indexer(), Default::default());
        for (i, s) in svcs.iter().enumerate() {
            store
                .create(&format!("services/ns/s{i}"), s.clone())
                .await
                .expect("stored");
        }
        store
    }

    #[tokio::test]
    async fn new_services_get_a_free_address_in_range_and_node_ports() {
        let store = store_with(&[]).await;
        let mut svc = json!({"metadata": {"name": "a"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]}});
        allocate(&store, services(), &mut svc, &mut Added::default()).expect("allocated");
        let ip: Ipv4Addr = svc["spec"]["clusterIP"]
            .as_str()
            .unwrap_or("")
            .parse()
            .expect("an IPv4");
        assert!(in_range(ip) && ip != KUBERNETES_SERVICE_IP);
        assert_eq!(svc["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
        let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
        assert!(NODE_PORTS.contains(&node_port));
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 30001);
    }

    #[tokio::test]
    async fn asked_addresses_must_be_free_and_in_range() {
        let store = store_with(&[json!({"spec": {"clusterIPs": ["10.96.0.10"]}})]).await;
        let mut taken = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.96.0.10"}});
        let e = allocate(&store, services(), &mut taken, &mut Added::default()).expect_err("taken");
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .contains("failed to allocate IP 10.96.0.10: provided IP is already allocated"),
            "{}",
            e.message
        );
        let mut outside = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "192.168.0.1"}});
        let e =
            allocate(&store, services(), &mut outside, &mut Added::default()).expect_err("outside");
        assert!(
            e.message.contains("The range of valid IPs is 10.96.0.0/12"),
            "{}",
            e.message
        );
        let mut headless = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "None"}});
        allocate(&store, services(), &mut headless, &mut Added::default()).expect("headless");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn updates_keep_what_was_allocated() {
        let old = json!({"spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"ports": [{"port": 80}]}});
        keep_allocated(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.7"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }
}
