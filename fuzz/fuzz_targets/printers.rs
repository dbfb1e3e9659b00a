//! The Table printers (`pernode_printers::table` and `row`), which render stored objects for
//! `kubectl get`: every resource with a printer, and one without (the default Table).
//!
//! Input: one byte choosing the resource and what the rows carry, then the object's bytes, used
//! only when they are JSON (the printers' contract: they render stored objects, which the store
//! only ever holds as serialized JSON, and copy their bytes verbatim). Besides never panicking: a rendered Table is JSON with one row of as many cells as columns,
//! and `row` agrees with `table` on whether the object renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pernode_printers::{IncludeObject, row, table};
use serde_json::Value;

const RESOURCES: &[&str] = &[
    "pods",
    "nodes",
    "namespaces",
    "events",
    "daemonsets",
    "controllerrevisions",
    "leases",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "endpoints",
    "endpointslices",
    "networkpolicies",
    "rolebindings",
    "clusterrolebindings",
    "certificatesigningrequests",
    "priorityclasses",
    "poddisruptionbudgets",
    "csidrivers",
    "csinodes",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "widgets",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, object)) = data.split_first() else {
        return;
    };
    if serde_json::from_slice::<Value>(object).is_err() {
        return;
    }
    let resource = RESOURCES[usize::from(choice) % RESOURCES.len()];
    let include = match choice >> 6 {
        0 => IncludeObject::None,
        1 => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    };
    // A fixed clock: ages must not depend on when the input runs.
    let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("a valid time");
    let rendered = table(resource, &[object], include, now, "7", Some("next"));
    let single = row(resource, object, include, now);
    assert_eq!(
        rendered.is_ok(),
        single.is_ok(),
        "{resource}: table and row disagree"
    );
    let Ok(bytes) = rendered else {
        return;
    };
    let table: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{resource}: the Table is not JSON: {e}"));
    let columns = table["columnDefinitions"].as_array().map_or(0, Vec::len);
    let rows = table["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{resource}: one object, one row");
    let cells = rows[0]["cells"].as_array().map_or(0, Vec::len);
    assert_eq!(cells, columns, "{resource}: {cells} cells for {columns} columns");
});
