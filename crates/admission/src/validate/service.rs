//! Service validation (`ValidateService`, `ValidateServiceUpdate` in
//! pkg/apis/core/validation), for the fields pernode's Services use: type, ports, selector,
//! session affinity, cluster IPs and external names. Load-balancer and traffic-policy rules
//! beyond their enums are not checked.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_core::names;

use super::meta::{labels, object_meta, object_meta_update};
use crate::FieldError;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// `ValidateServiceName`: a DNS-1035 label.
fn service_name(name: &str, prefix: bool) -> Vec<String> {
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        format!("{}a", &name[..name.len() - 1])
    } else {
        name.to_string()
    };
    names::is_dns1035_label(&name)
}

/// Whether the Service is headless (`clusterIP: None`).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// `ValidateService`.
pub fn service(svc: &Service) -> Vec<FieldError> {
    let mut errs = object_meta(&svc.metadata, true, service_name);
    let Some(spec) = svc.spec.as_ref() else {
        errs.push(FieldError::required("spec.ports", ""));
        return errs;
    };
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, TYPES));
    }
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ty == "ExternalName" {
        let external = spec.external_name.as_deref().unwrap_or("");
        if external.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            for msg in names::is_dns1123_subdomain(external.trim_end_matches('.')) {
                errs.push(FieldError::invalid("spec.externalName", external, &msg));
            }
        }
    } else if ports.is_empty() && !is_headless(svc) {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut seen_names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(port, ports.len() > 1, &mut seen_names, i));
    }
    errs.extend(labels(spec.selector.as_ref(), "spec.selector"));
    if let Some(affinity) = spec.session_affinity.as_deref()
        && !["ClientIP", "None"].contains(&affinity)
    {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if ip != "None" && ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &format!("spec.clusterIPs[{i}]"),
                ip.as_str(),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    errs
}

fn service_port<'a>(
    port: &'a ServicePort,
    named: bool,
    seen: &mut Vec<&'a str>,
    i: usize,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = format!("spec.ports[{i}]");
    let name = port.name.as_deref().unwrap_or("");
    if named && name.is_empty() {
        errs.push(FieldError::required(&format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for msg in names::is_dns1123_label(name) {
            errs.push(FieldError::invalid(&format!("{path}.name"), name, &msg));
        }
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(&format!("{path}.name"), name));
        } else {
            seen.push(name);
        }
    }
    for msg in names::is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(
            &format!("{path}.port"),
            port.port,
            &msg,
        ));
    }
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            &format!("{path}.protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    match &port.target_port {
        Some(IntOrString::Int(n)) => {
            for msg in names::is_valid_port_num(i64::from(*n)) {
                errs.push(FieldError::invalid(&format!("{path}.targetPort"), *n, &msg));
            }
        }
        Some(IntOrString::String(s)) => {
            for msg in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(
                    &format!("{path}.targetPort"),
                    s.as_str(),
                    &msg,
                ));
            }
        }
        None => {}
    }
    if let Some(node_port) = port.node_port
        && node_port != 0
    {
        for msg in names::is_valid_port_num(i64::from(node_port)) {
            errs.push(FieldError::invalid(
                &format!("{path}.nodePort"),
                node_port,
                &msg,
            ));
        }
    }
    errs
}

/// `ValidateServiceUpdate`: a cluster IP, once set, stays (unless the Service becomes or
/// leaves ExternalName).
pub fn service_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    let ips = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.cluster_ips.clone())
            .unwrap_or_default()
    };
    let ty = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.type_.clone())
            .unwrap_or_default()
    };
    let (new_ips, old_ips) = (ips(new), ips(old));
    if ty(new) != "ExternalName"
        && ty(old) != "ExternalName"
        && !old_ips.is_empty()
        && let (Some(n), Some(o)) = (new_ips.first(), old_ips.first())
        && n != o
    {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            serde_json::json!(new_ips),
            "may not change once set",
        ));
    }
    errs.extend(service(new));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(spec: ServiceSpec) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("s".into()),
                namespace: Some("ns".into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn port(name: &str, port: i32) -> ServicePort {
        ServicePort {
            name: Some(name.into()).filter(|n: &String| !n.is_empty()),
            port,
            ..Default::default()
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ports_are_required_unless_headless() {
        assert_eq!(
            messages(&service(&svc(ServiceSpec::default()))),
            ["spec.ports: Required value"]
        );
        let headless = svc(ServiceSpec {
            cluster_ip: Some("None".into()),
            ..Default::default()
        });
        assert!(service(&headless).is_empty());
    }

    #[test]
    fn ports_need_names_when_several_and_valid_numbers() {
        let s = svc(ServiceSpec {
            ports: Some(vec![port("", 80), port("b", 70000), port("b", 81)]),
            ..Default::default()
        });
        assert_eq!(
            messages(&service(&s)),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[2].name: Duplicate value: \"b\""
            ]
        );
    }

    #[test]
    fn cluster_ip_may_not_change() {
        let mut old = svc(ServiceSpec {
            ports: Some(vec![port("", 80)]),
            ..Default::default()
        });
        if let Some(s) = old.spec.as_mut() {
            s.cluster_ips = Some(vec!["10.96.0.5".into()]);
        }
        let mut new = old.clone();
        if let Some(s) = new.spec.as_mut() {
            s.cluster_ips = Some(vec!["10.96.0.6".into()]);
        }
        assert_eq!(
            messages(&service_update(&new, &old)),
            ["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"]
        );
    }
}
