//! events.k8s.io/v1: Event (pkg/registry/events/event). Upstream stores one internal Event
//! that both core/v1 and events.k8s.io/v1 convert to and from; pernode stores the core/v1
//! form under `events/` and serves it here converted (`regarding`↔`involvedObject`,
//! `note`↔`message`, `reportingController`↔`reportingComponent`, the `deprecated*` fields
//! ↔ `source`, `firstTimestamp`, `lastTimestamp`, `count`), so an event written through
//! either API is visible through both. Admission decodes the events.k8s.io form, converts it,
//! validates the result with upstream's rules for this group version, and stores it.

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSeries as CoreEventSeries};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use pernode_admission::validate;
use pernode_resources::ResourceInfo;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Conversion, Kind};
use crate::error::ApiError;
use crate::params::FieldValidation;
use crate::registry::{Operation, go_omit_empty, invalid, unknown_field_warnings};

pub static EVENTS: Kind = Kind {
    // Upstream's field label conversion for events.k8s.io/v1 Events.
    fields: &[
        "metadata.name",
        "metadata.namespace",
        "reason",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reportingController",
        "source",
        "type",
    ],
    conversion: Some(&Conversion {
        from_stored,
        field_label,
    }),
    micro_times: &["eventTime", "series.lastObservedTime"],
    ..Kind::new("events.k8s.io", "events", admit)
};

/// The stored (core) label an events.k8s.io/v1 field selector label selects.
fn field_label(label: &str) -> &'static str {
    match label {
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        "reportingController" => "reportingComponent",
        "metadata.name" => "metadata.name",
        "metadata.namespace" => "metadata.namespace",
        "reason" => "reason",
        "source" => "source",
        "type" => "type",
        // `Filter` admits only the kind's fields.
        _ => "",
    }
}

/// Go's zero `time.Time` (what an unset MicroTime of a Go struct holds).
fn zero_time() -> MicroTime {
    MicroTime(Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn set(t: Option<MicroTime>) -> Option<MicroTime> {
    t.filter(|t| *t != zero_time())
}

/// Upstream's `Convert_v1_Event_To_core_Event`. Go's zero values and absent fields are one:
/// a zero count or time is left unset, and the source always present, as Go's structs are.
pub fn to_core(e: Event) -> CoreEvent {
    CoreEvent {
        metadata: e.metadata,
        involved_object: e.regarding.unwrap_or_default(),
        source: Some(e.deprecated_source.unwrap_or_default()),
        message: e.note,
        first_timestamp: e.deprecated_first_timestamp,
        last_timestamp: e.deprecated_last_timestamp,
        count: e.deprecated_count.filter(|c| *c != 0),
        action: e.action,
        event_time: set(e.event_time),
        reason: e.reason,
        related: e.related,
        reporting_component: e.reporting_controller,
        reporting_instance: e.reporting_instance,
        series: e.series.map(|s| CoreEventSeries {
            count: Some(s.count).filter(|c| *c != 0),
            last_observed_time: set(Some(s.last_observed_time)),
        }),
        type_: e.type_,
    }
}

/// Upstream's `Convert_core_Event_To_v1_Event`.
pub fn from_core(e: CoreEvent) -> Event {
    Event {
        metadata: e.metadata,
        regarding: Some(e.involved_object),
        deprecated_source: Some(e.source.unwrap_or_default()),
        note: e.message,
        deprecated_first_timestamp: e.first_timestamp,
        deprecated_last_timestamp: e.last_timestamp,
        deprecated_count: e.count.filter(|c| *c != 0),
        action: e.action,
        event_time: set(e.event_time),
        reason: e.reason,
        related: e.related,
        reporting_controller: e.reporting_component,
        reporting_instance: e.reporting_instance,
        series: e.series.map(|s| EventSeries {
            count: s.count.unwrap_or(0),
            last_observed_time: s.last_observed_time.unwrap_or_else(zero_time),
        }),
        type_: e.type_,
    }
}

/// A stored core/v1 Event as events.k8s.io/v1 serves it.
fn from_stored(stored: &Value) -> Result<Value, String> {
    let core = CoreEvent::deserialize_from(stored)?;
    let mut v = serde_json::to_value(from_core(core)).map_err(|e| e.to_string())?;
    // Go writes a zero MicroTime as null (which Go's omitempty then drops here).
    if v.pointer("/series/lastObservedTime") == Some(&json!(zero_time())) {
        v["series"]["lastObservedTime"] = Value::Null;
    }
    go_omit_empty(&mut v);
    v["kind"] = json!("Event");
    v["apiVersion"] = json!("events.k8s.io/v1");
    Ok(v)
}

trait FromValue: Sized {
    fn deserialize_from(v: &Value) -> Result<Self, String>;
}

impl<T: DeserializeOwned> FromValue for T {
    fn deserialize_from(v: &Value) -> Result<Self, String> {
        T::deserialize(v).map_err(|e| e.to_string())
    }
}

/// Decodes an events.k8s.io/v1 Event as Go does: members of `series` left out are zero
/// (k8s-openapi's type requires them), for validation to name.
fn decode(info: &ResourceInfo, obj: &Value) -> Result<Event, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("{} in body is invalid: {e}", info.kind));
    let incomplete_series = obj
        .get("series")
        .and_then(Value::as_object)
        .is_some_and(|s| {
            !s.contains_key("count") || s.get("lastObservedTime").is_none_or(Value::is_null)
        });
    if !incomplete_series {
        return Event::deserialize_from(obj).map_err(bad);
    }
    let mut filled = obj.clone();
    let series = &mut filled["series"];
    if series.get("count").is_none() {
        series["count"] = json!(0);
    }
    if series.get("lastObservedTime").is_none_or(Value::is_null) {
        series["lastObservedTime"] = json!(zero_time());
    }
    Event::deserialize_from(&filled).map_err(bad)
}

/// events.k8s.io/v1 admission: decode, convert, validate as upstream's `ValidateEventCreate`
/// / `ValidateEventUpdate` for this group version, and leave the stored core/v1 form in
/// `obj`.
fn admit(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let event = decode(info, obj)?;
    let typed = serde_json::to_value(&event).map_err(|e| ApiError::internal(e.to_string()))?;
    let warnings = unknown_field_warnings("", obj, &typed, validation)?;
    let core = to_core(event);
    let errors = match op {
        Operation::Create => validate::event_v1_create(&core),
        Operation::Update { old }
        | Operation::UpdateStatus { old }
        | Operation::UpdateApproval { old } => {
            let old = CoreEvent::deserialize_from(old).map_err(ApiError::internal)?;
            validate::event_v1_update(&core, &old)
        }
    };
    if !errors.is_empty() {
        let name = core.metadata.name.clone().unwrap_or_default();
        return Err(invalid(info, &name, &errors));
    }
    let mut stored = serde_json::to_value(&core).map_err(|e| ApiError::internal(e.to_string()))?;
    go_omit_empty(&mut stored);
    stored["kind"] = json!("Event");
    stored["apiVersion"] = json!("v1");
    *obj = stored;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_event() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default", "uid": "u"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "pu",
                          "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
            "related": {"kind": "Node", "name": "n1"},
            "note": "Pulled", "reason": "Pulled", "type": "Normal", "action": "Pull",
            "reportingController": "kubelet", "reportingInstance": "n1",
            "eventTime": "2024-01-02T03:04:05.123456Z",
            "series": {"count": 3, "lastObservedTime": "2024-01-02T03:05:05.000001Z"},
            "deprecatedSource": {"component": "kubelet", "host": "n1"},
            "deprecatedFirstTimestamp": "2024-01-02T03:04:05Z",
            "deprecatedLastTimestamp": "2024-01-02T03:05:05Z", "deprecatedCount": 3})
    }

    fn stored(v1: &Value) -> Value {
        let event = Event::deserialize_from(v1).expect("events.k8s.io Event");
        let mut v = serde_json::to_value(to_core(event)).expect("json");
        go_omit_empty(&mut v);
        v
    }

    #[test]
    fn events_k8s_io_fields_land_on_their_core_names() {
        let core = stored(&v1_event());
        assert_eq!(core["involvedObject"]["fieldPath"], "spec.containers{c}");
        assert_eq!(core["message"], "Pulled");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(core["reportingInstance"], "n1");
        assert_eq!(
            core["source"],
            json!({"component": "kubelet", "host": "n1"})
        );
        assert_eq!(core["firstTimestamp"], "2024-01-02T03:04:05Z");
        assert_eq!(core["lastTimestamp"], "2024-01-02T03:05:05Z");
        assert_eq!(core["count"], 3);
        assert_eq!(core["eventTime"], "2024-01-02T03:04:05.123456Z");
        assert_eq!(
            core["series"],
            json!({"count": 3, "lastObservedTime": "2024-01-02T03:05:05.000001Z"})
        );
        assert_eq!(core["related"], json!({"kind": "Node", "name": "n1"}));
        for gone in [
            "regarding",
            "note",
            "reportingController",
            "deprecatedSource",
        ] {
            assert!(core.get(gone).is_none(), "{gone}");
        }
    }

    #[test]
    fn events_k8s_io_round_trips_through_core() {
        let v1 = v1_event();
        assert_eq!(from_stored(&stored(&v1)).expect("converts"), v1);
        // The smallest event: no source or counts, which Go's zero values leave out (the
        // source and the regarding object are structs, always written).
        let small = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"}, "regarding": {},
            "deprecatedSource": {}, "eventTime": "2024-01-02T03:04:05.000000Z"});
        assert_eq!(from_stored(&stored(&small)).expect("converts"), small);
    }

    #[test]
    fn core_round_trips_through_events_k8s_io() {
        let core = json!({"metadata": {"name": "ds.17a", "namespace": "default"},
            "involvedObject": {"kind": "DaemonSet", "name": "ds", "namespace": "default"},
            "reason": "SuccessfulCreate", "message": "Created pod: ds-x", "type": "Normal",
            "source": {"component": "daemonset-controller"},
            "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:05Z",
            "count": 1, "reportingComponent": "daemonset-controller"});
        let v1 = from_stored(&core).expect("converts");
        assert_eq!(v1["regarding"]["name"], "ds");
        assert_eq!(v1["note"], "Created pod: ds-x");
        assert_eq!(v1["deprecatedCount"], 1);
        assert_eq!(v1["reportingController"], "daemonset-controller");
        assert!(v1.get("eventTime").is_none());
        let mut back = stored(&v1);
        back.as_object_mut().map(|m| {
            m.remove("kind");
            m.remove("apiVersion")
        });
        assert_eq!(back, core);
    }

    #[test]
    fn a_series_without_its_time_is_served_without_it() {
        let core = json!({"metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {}, "series": {"count": 2}});
        let v1 = from_stored(&core).expect("converts");
        assert_eq!(v1["series"], json!({"count": 2}));
    }

    #[test]
    fn micro_times_as_pernode_writes_them_have_six_digits() {
        // Every pernode writer of a MicroTime (scheduler events, the simulator's and the
        // agent's lease renewals) serializes k8s-openapi's MicroTime: it must stay decodable.
        for (secs, nanos) in [(0, 0), (1_700_000_000, 123_456_789), (1_700_000_000, 1_000)] {
            let t = Timestamp::new(secs, nanos).expect("timestamp");
            let text = serde_json::to_value(MicroTime(t)).expect("json");
            let text = text.as_str().expect("string");
            assert_eq!(
                pernode_core::microtime::parse_rfc3339_micro(text),
                Ok(()),
                "{text}"
            );
        }
    }

    #[test]
    fn selector_labels_map_to_the_core_index() {
        for label in EVENTS.fields {
            let stored = field_label(label);
            assert!(
                super::super::core::EVENTS.fields.contains(&stored),
                "{label} → {stored}"
            );
        }
    }
}
