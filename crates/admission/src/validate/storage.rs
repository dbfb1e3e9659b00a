//! CSIDriver and CSINode validation (pkg/apis/storage/validation) and CSIDriver's defaults.

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode};
use pernode_core::names;

use super::immutable;
use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

const CSI_NODE_ID_MAX_LENGTH: usize = 256;
const LIFECYCLE_MODES: &[&str] = &["Ephemeral", "Persistent"];
const FS_GROUP_POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];

/// `ValidateCSIDriverName`: a DNS subdomain of at most 63 characters.
fn csi_driver_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    for msg in names::is_dns1123_subdomain(&name.to_lowercase()) {
        errs.push(FieldError::invalid(path, name, &msg));
    }
    errs
}

/// `SetDefaults_CSIDriver`.
pub fn default_csi_driver(d: &mut CSIDriver) {
    let spec = &mut d.spec;
    spec.attach_required.get_or_insert(true);
    spec.pod_info_on_mount.get_or_insert(false);
    spec.storage_capacity.get_or_insert(false);
    spec.requires_republish.get_or_insert(false);
    spec.fs_group_policy
        .get_or_insert_with(|| "ReadWriteOnceWithFSType".into());
    if spec
        .volume_lifecycle_modes
        .as_ref()
        .is_none_or(Vec::is_empty)
    {
        spec.volume_lifecycle_modes = Some(vec!["Persistent".into()]);
    }
}

/// `ValidateCSIDriver`.
pub fn csi_driver(d: &CSIDriver) -> Vec<FieldError> {
    let mut errs = object_meta(&d.metadata, false, name_is_dns_subdomain);
    errs.extend(csi_driver_name(
        d.metadata.name.as_deref().unwrap_or(""),
        "metadata.name",
    ));
    let spec = &d.spec;
    for (i, mode) in spec.volume_lifecycle_modes.iter().flatten().enumerate() {
        if !LIFECYCLE_MODES.contains(&mode.as_str()) {
            errs.push(FieldError::not_supported(
                &format!("spec.volumeLifecycleModes[{i}]"),
                mode.as_str(),
                LIFECYCLE_MODES,
            ));
        }
    }
    if let Some(policy) = spec.fs_group_policy.as_deref()
        && !FS_GROUP_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            "spec.fsGroupPolicy",
            policy,
            FS_GROUP_POLICIES,
        ));
    }
    errs
}

/// `ValidateCSIDriverUpdate`: attachRequired, fsGroupPolicy and volumeLifecycleModes are
/// immutable.
pub fn csi_driver_update(new: &CSIDriver, old: &CSIDriver) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(immutable(
        &new.spec.attach_required,
        &old.spec.attach_required,
        "spec.attachRequired",
    ));
    errs.extend(immutable(
        &new.spec.volume_lifecycle_modes,
        &old.spec.volume_lifecycle_modes,
        "spec.volumeLifecycleModes",
    ));
    errs.extend(csi_driver(new));
    errs
}

/// `ValidateCSINode`: driver names valid and unique, node IDs present and bounded.
pub fn csi_node(n: &CSINode) -> Vec<FieldError> {
    let mut errs = object_meta(&n.metadata, false, name_is_dns_subdomain);
    let mut seen: Vec<&str> = Vec::new();
    for (i, driver) in n.spec.drivers.iter().enumerate() {
        let path = format!("spec.drivers[{i}]");
        errs.extend(csi_driver_name(&driver.name, &format!("{path}.name")));
        if seen.contains(&driver.name.as_str()) {
            errs.push(FieldError::duplicate(
                &format!("{path}.name"),
                driver.name.as_str(),
            ));
        } else {
            seen.push(&driver.name);
        }
        if driver.node_id.is_empty() {
            errs.push(FieldError::required(&format!("{path}.nodeID"), ""));
        } else if driver.node_id.len() > CSI_NODE_ID_MAX_LENGTH {
            errs.push(FieldError::invalid(
                &format!("{path}.nodeID"),
                driver.node_id.as_str(),
                &format!("must be {CSI_NODE_ID_MAX_LENGTH} characters or less"),
            ));
        }
        if let Some(count) = driver.allocatable.as_ref().and_then(|a| a.count)
            && count < 0
        {
            errs.push(FieldError::invalid(
                &format!("{path}.allocatable.count"),
                count,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

/// `ValidateCSINodeUpdate`: a driver's node ID does not change.
pub fn csi_node_update(new: &CSINode, old: &CSINode) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    for (i, driver) in new.spec.drivers.iter().enumerate() {
        if let Some(was) = old.spec.drivers.iter().find(|d| d.name == driver.name) {
            errs.extend(immutable(
                &driver.node_id,
                &was.node_id,
                &format!("spec.drivers[{i}].nodeID"),
            ));
        }
    }
    errs.extend(csi_node(new));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::storage::v1::{CSINodeDriver, CSINodeSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn csi_nodes_need_unique_drivers_with_ids() {
        let driver = |name: &str, id: &str| CSINodeDriver {
            name: name.into(),
            node_id: id.into(),
            ..Default::default()
        };
        let node = CSINode {
            metadata: ObjectMeta {
                name: Some("n".into()),
                ..Default::default()
            },
            spec: CSINodeSpec {
                drivers: vec![
                    driver("csi.example.com", "n1"),
                    driver("csi.example.com", ""),
                ],
            },
        };
        let errs: Vec<String> = csi_node(&node).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.drivers[1].name: Duplicate value: \"csi.example.com\"",
                "spec.drivers[1].nodeID: Required value"
            ]
        );
    }

    #[test]
    fn csi_drivers_are_defaulted_then_checked() {
        let mut d = CSIDriver {
            metadata: ObjectMeta {
                name: Some("csi.example.com".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        default_csi_driver(&mut d);
        assert_eq!(d.spec.attach_required, Some(true));
        assert_eq!(
            d.spec.volume_lifecycle_modes,
            Some(vec!["Persistent".to_string()])
        );
        assert!(csi_driver(&d).is_empty());
        d.spec.volume_lifecycle_modes = Some(vec!["Forever".into()]);
        assert_eq!(csi_driver(&d).len(), 1);
    }
}
