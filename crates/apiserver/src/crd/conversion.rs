//! Conversion between a CRD's served versions with strategy `None` (upstream's
//! nopConverter): the object is the same in every version, only its `apiVersion` names the
//! version it is read through. Objects are stored in the storage version; every read (get,
//! list, watch) and every write's answer names the version of the request
//! (`kinds::served`).

use std::borrow::Cow;

use pernode_core::json::ObjectMembers;
use pernode_resources::ResourceInfo;

/// The stored object `json` as read through `info`'s version: unchanged for built-ins and
/// for objects already in that version, else with its top-level `apiVersion` rewritten in
/// place (the rest of the bytes copied as stored).
pub fn in_version<'a>(info: &ResourceInfo, json: &'a [u8]) -> Cow<'a, [u8]> {
    if info.custom.is_none() {
        return Cow::Borrowed(json);
    }
    let Some((_, raw)) = ObjectMembers::of(json).find(|(key, _)| key == "apiVersion") else {
        return Cow::Borrowed(json);
    };
    let want = serde_json::to_string(&info.api_version()).unwrap_or_default();
    let have = raw;
    if have == want {
        return Cow::Borrowed(json);
    }
    // `raw` borrows from `json`: its offset locates the value's bytes.
    let start = have.as_ptr() as usize - json.as_ptr() as usize;
    let end = start + have.len();
    let mut out = Vec::with_capacity(json.len() + want.len());
    out.extend_from_slice(&json[..start]);
    out.extend_from_slice(want.as_bytes());
    out.extend_from_slice(&json[end..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pernode_resources::{CustomDefinition, CustomInfo, intern};

    fn widgets(version: &str) -> &'static ResourceInfo {
        intern(CustomDefinition {
            group: "conversion.test.example.com".into(),
            version: version.into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            info: CustomInfo {
                api_version: format!("conversion.test.example.com/{version}"),
                list_kind: "WidgetList".into(),
                crd_name: "widgets.conversion.test.example.com".into(),
                storage_version: "v1".into(),
                schema: None,
                printer_columns: vec![],
                status: false,
                scale: None,
                deprecation_warning: None,
            },
        })
    }

    #[test]
    fn reads_name_the_version_of_the_request() {
        let v1 = widgets("v1");
        let stored = br#"{"apiVersion":"conversion.test.example.com/v1beta1","kind":"Widget","metadata":{"name":"w"},"spec":{"apiVersion":"x"}}"#;
        assert_eq!(
            in_version(v1, stored).as_ref(),
            br#"{"apiVersion":"conversion.test.example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"apiVersion":"x"}}"#
        );
        let same = br#"{"apiVersion":"conversion.test.example.com/v1","kind":"Widget"}"#;
        assert!(matches!(in_version(v1, same), Cow::Borrowed(_)));
        let pods = pernode_resources::RESOURCES
            .iter()
            .find(|r| r.plural == "pods")
            .expect("pods");
        let pod = br#"{"apiVersion":"v2","kind":"Pod"}"#;
        assert!(matches!(in_version(pods, pod), Cow::Borrowed(_)));
    }
}
