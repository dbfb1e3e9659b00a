//! Event rows: a port of upstream's `printEvent`, which prints core/v1 and events.k8s.io/v1
//! Events alike (upstream prints the internal Event both convert to): the events.k8s.io names
//! of the renamed fields are read as aliases of the core ones.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;

lean_object! {
    struct Event<'a> {
        #[serde(default, rename = "type")]
        type_: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default, alias = "note")]
        message: Option<String>,
        #[serde(default, alias = "regarding")]
        involved_object: Option<InvolvedObject>,
        #[serde(default, alias = "deprecatedSource")]
        source: Option<Source>,
        /// `ReportingController` in Go; its JSON name is `reportingComponent`.
        #[serde(default, alias = "reportingController")]
        reporting_component: Option<String>,
        #[serde(default)]
        reporting_instance: Option<String>,
        #[serde(default, alias = "deprecatedFirstTimestamp")]
        first_timestamp: Option<Time>,
        #[serde(default, alias = "deprecatedLastTimestamp")]
        last_timestamp: Option<Time>,
        #[serde(default)]
        event_time: Option<MicroTime>,
        #[serde(default, alias = "deprecatedCount")]
        count: Option<i64>,
        #[serde(default)]
        series: Option<Series>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct InvolvedObject {
    kind: Option<String>,
    name: Option<String>,
    field_path: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Source {
    component: Option<String>,
    host: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Series {
    count: Option<i64>,
    last_observed_time: Option<MicroTime>,
}

fn micro_since(t: Option<&MicroTime>, now: Timestamp) -> String {
    age_since(t.map(|m| Time(m.0)).as_ref(), now)
}

pub(crate) fn render(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let ev: Event<'_> = serde_json::from_slice(bytes)?;
    let head = ev.head();
    let meta = Meta::parse(head.metadata)?;

    // Events written through events.k8s.io/v1 carry eventTime and series instead of the
    // legacy first/last timestamps and count.
    let first_seen = match &ev.first_timestamp {
        Some(t) => age_since(Some(t), now),
        None => micro_since(ev.event_time.as_ref(), now),
    };
    let mut last_seen = match &ev.last_timestamp {
        Some(t) => age_since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = ev.count.unwrap_or(0);
    if let Some(series) = &ev.series {
        last_seen = micro_since(series.last_observed_time.as_ref(), now);
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }

    let involved = ev.involved_object.unwrap_or_default();
    let kind = s(&involved.kind).to_lowercase();
    let target = match s(&involved.name) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };

    let source = ev.source.unwrap_or_default();
    let component = first_non_empty(s(&source.component), s(&ev.reporting_component));
    let instance = first_non_empty(s(&source.host), s(&ev.reporting_instance));
    let source_cell = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };

    let row = Row {
        cells: vec![
            last_seen.into(),
            s(&ev.type_).into(),
            s(&ev.reason).into(),
            target.into(),
            s(&involved.field_path).into(),
            source_cell.into(),
            s(&ev.message).trim().into(),
            first_seen.into(),
            count.into(),
            meta.name().into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

fn first_non_empty<'s>(a: &'s str, b: &'s str) -> &'s str {
    if a.is_empty() { b } else { a }
}
