//! Request body decoding (`pernode_apiserver::codec::decode_object`): JSON, YAML and protobuf
//! (the `k8s\0` envelope, decoded generically against upstream's descriptors).
//!
//! Input: one byte choosing the media type and the kind the body must be, then the body. Besides
//! never panicking, a refused body is a 4xx, and an accepted one is a JSON object.
use pernode_apiserver::codec::{BodyKind, decode_object};

const MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
];
const KINDS: &[BodyKind<'static>] = &[
    BodyKind {
        group: "",
        version: "v1",
        kind: "Pod",
    },
    BodyKind {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
    },
    BodyKind {
        group: "",
        version: "v1",
        kind: "Node",
    },
    BodyKind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
    },
    BodyKind::DELETE_OPTIONS,
    BodyKind {
        group: "policy",
        version: "v1",
        kind: "Eviction",
    },
    BodyKind {
        group: "",
        version: "v1",
        kind: "Binding",
    },
    BodyKind {
        group: "",
        version: "v1",
        kind: "Event",
    },
];

/// One input.
pub fn run(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let media = MEDIA_TYPES[usize::from(choice) % MEDIA_TYPES.len()];
    let expect = &KINDS[usize::from(choice / 4) % KINDS.len()];
    match decode_object(Some(media), body, expect) {
        Ok(value) => assert!(value.is_object(), "{media}: {value}"),
        Err(e) => assert!((400..500).contains(&e.code), "{media}: {} {e:?}", e.code),
    }
}
