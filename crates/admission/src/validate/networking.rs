//! NetworkPolicy validation (`ValidateNetworkPolicy` in pkg/apis/networking/validation).

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_core::names;

use super::apps::label_selector;
use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// `ValidateNetworkPolicy`: metadata, the pod selector, every rule's ports and peers, and
/// the policy types.
pub fn network_policy(np: &NetworkPolicy) -> Vec<FieldError> {
    let mut errs = object_meta(&np.metadata, true, name_is_dns_subdomain);
    let Some(spec) = np.spec.as_ref() else {
        return errs;
    };
    if let Some(selector) = &spec.pod_selector {
        errs.extend(label_selector(selector, "spec.podSelector"));
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let path = format!("spec.ingress[{i}]");
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(policy_port(port, &format!("{path}.ports[{j}]")));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(policy_peer(peer, &format!("{path}.from[{j}]")));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let path = format!("spec.egress[{i}]");
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(policy_port(port, &format!("{path}.ports[{j}]")));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(policy_peer(peer, &format!("{path}.to[{j}]")));
        }
    }
    let types = spec.policy_types.as_deref().unwrap_or(&[]);
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                &format!("spec.policyTypes[{i}]"),
                t.as_str(),
                &["Egress", "Ingress"],
            ));
        }
    }
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            serde_json::json!(types),
            "may not specify more than two policyTypes",
        ));
    }
    errs
}

/// `ValidateNetworkPolicyUpdate`.
pub fn network_policy_update(new: &NetworkPolicy, old: &NetworkPolicy) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(network_policy(new));
    errs
}

fn policy_port(port: &NetworkPolicyPort, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(protocol) = port.protocol.as_deref()
        && !PROTOCOLS.contains(&protocol)
    {
        errs.push(FieldError::not_supported(
            &format!("{path}.protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    match &port.port {
        Some(IntOrString::Int(n)) => {
            for msg in names::is_valid_port_num(i64::from(*n)) {
                errs.push(FieldError::invalid(&format!("{path}.port"), *n, &msg));
            }
            if let Some(end) = port.end_port
                && end < *n
            {
                errs.push(FieldError::invalid(
                    &format!("{path}.endPort"),
                    end,
                    "must be greater than or equal to `port`",
                ));
            }
        }
        Some(IntOrString::String(s)) => {
            if port.end_port.is_some() {
                errs.push(FieldError::forbidden(
                    &format!("{path}.endPort"),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(
                    &format!("{path}.port"),
                    s.as_str(),
                    &msg,
                ));
            }
        }
        None => {
            if port.end_port.is_some() {
                errs.push(FieldError::required(
                    &format!("{path}.port"),
                    "must be specified when `endPort` is specified",
                ));
            }
        }
    }
    errs
}

fn policy_peer(peer: &NetworkPolicyPeer, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut set = 0;
    if let Some(s) = &peer.pod_selector {
        set += 1;
        errs.extend(label_selector(s, &format!("{path}.podSelector")));
    }
    if let Some(s) = &peer.namespace_selector {
        set += 1;
        errs.extend(label_selector(s, &format!("{path}.namespaceSelector")));
    }
    if let Some(block) = &peer.ip_block {
        set += 1;
        let cidr_path = format!("{path}.ipBlock.cidr");
        match parse_cidr(&block.cidr) {
            None => errs.push(FieldError::invalid(
                &cidr_path,
                block.cidr.as_str(),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            )),
            Some(outer) => {
                for (i, except) in block.except.iter().flatten().enumerate() {
                    let except_path = format!("{path}.ipBlock.except[{i}]");
                    match parse_cidr(except) {
                        None => errs.push(FieldError::invalid(
                            &except_path,
                            except.as_str(),
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        )),
                        Some(inner) if !contains(outer, inner) => errs.push(FieldError::invalid(
                            &except_path,
                            except.as_str(),
                            "must be a strict subset of `cidr`",
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        if set > 1 {
            errs.push(FieldError::forbidden(
                path,
                "may not specify both ipBlock and another peer",
            ));
        }
    }
    if set == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    }
    errs
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Whether `inner` is a strict subset of `outer`.
fn contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    let as_bits = |ip: IpAddr| -> (u128, u32) {
        match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((o, ow), (i, iw)) = (as_bits(outer.0), as_bits(inner.0));
    if ow != iw || inner.1 <= outer.1 {
        return false;
    }
    // Addresses sit in the top bits (IPv4 shifted up), so the prefix counts from the top.
    let prefix = u32::from(outer.1);
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    o & mask == i & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyIngressRule, NetworkPolicySpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn np(rule: NetworkPolicyIngressRule) -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta {
                name: Some("n".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(NetworkPolicySpec {
                ingress: Some(vec![rule]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn peers_and_ports() {
        let rule = NetworkPolicyIngressRule {
            from: Some(vec![
                NetworkPolicyPeer::default(),
                NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: "10.0.0.0/8".into(),
                        except: Some(vec!["10.1.0.0/16".into(), "192.168.0.0/16".into()]),
                    }),
                    ..Default::default()
                },
            ]),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(90)),
                end_port: Some(80),
                protocol: Some("ICMP".into()),
            }]),
        };
        let errs: Vec<String> = network_policy(&np(rule))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`",
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
            ]
        );
    }
}
