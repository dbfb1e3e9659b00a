//! Label and field selector parsing and matching (`pernode_core::labels`, `pernode_core::fields`).
//!
//! The input is a selector string, then (after the first newline) `key=value` label lines to
//! match against. Besides never panicking, a parsed selector must print (`Selector.String()`)
//! as a selector that parses back to the same terms, as upstream's does: the API server and
//! the controllers hand printed selectors to each other.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pernode_core::{FieldSelector, LabelSelector};

/// The terms of a selector, in a fixed order. Upstream orders field terms by their text as
/// written and label terms by key only, so printing and parsing again may reorder them
/// (`in!=notin, a==notin, a=b`); the set of terms must not change.
fn terms<T: std::fmt::Display>(requirements: &[T]) -> Vec<String> {
    let mut terms: Vec<String> = requirements.iter().map(ToString::to_string).collect();
    terms.sort();
    terms
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (selector, rest) = text.split_once('\n').unwrap_or((text, ""));
    let labels: BTreeMap<String, String> = rest
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    if let Ok(parsed) = pernode_core::labels::parse(selector) {
        let matched = parsed.matches(&labels);
        let printed = parsed.to_string();
        let reparsed: LabelSelector = printed
            .parse()
            .unwrap_or_else(|e| panic!("{selector:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(
            terms(reparsed.requirements()),
            terms(parsed.requirements()),
            "{selector:?}"
        );
        assert_eq!(reparsed.matches(&labels), matched, "{selector:?}");
        for key in labels.keys() {
            let _ = parsed.requires_exact_match(key);
        }
    }

    if let Ok(parsed) = pernode_core::fields::parse(selector) {
        let matched = parsed.matches_map(&labels);
        let printed = parsed.to_string();
        let reparsed: FieldSelector = printed
            .parse()
            .unwrap_or_else(|e| panic!("{selector:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(
            terms(reparsed.requirements()),
            terms(parsed.requirements()),
            "{selector:?}"
        );
        assert_eq!(reparsed.matches_map(&labels), matched, "{selector:?}");
    }

    // The same text as a `metav1.LabelSelector` (matchLabels / matchExpressions), when it is one.
    if let Ok(sel) = serde_json::from_str::<
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    >(selector)
    {
        if let Ok(parsed) = pernode_core::labels::from_k8s(&sel) {
            let _ = parsed.matches(&labels);
            let printed = parsed.to_string();
            assert!(
                printed.parse::<LabelSelector>().is_ok(),
                "{selector:?} printed as {printed:?}, which fails"
            );
        }
        let _ = pernode_core::labels::format_label_selector(&sel);
    }
});
