//! Go-compatible JSON for pod templates (R85, R100).
//!
//! `kubectl rollout undo` decides "skipped rollback" by comparing, byte for byte, a revision's
//! `data` with bytes it computes itself: Go's `json.Marshal` of the typed `appsv1.DaemonSet`,
//! decoded into `map[string]interface{}` and marshalled again. So the bytes are those of Go's
//! encoder on Go structs: every object's keys sorted, no whitespace, `<`, `>`, `&`, U+2028 and
//! U+2029 escaped, zero values dropped where the field is `omitempty` and *emitted* where it is
//! not (`"creationTimestamp":null`, `"resources":{}`, `"containers":null`, ...).
//!
//! [`normalize_pod_template`] turns the JSON of a k8s-openapi `PodTemplateSpec` (which omits
//! `None` and keeps `Some("")`, `Some(false)`, `Some(vec![])`) into the value Go would produce,
//! using a table of the Go field kinds of the core/v1 types reachable from a pod template.
//! Fields missing from the table are kept as they are (never dropped: the data is also what a
//! rollback patches back, so losing a field would lose configuration). [`write`] then prints a
//! value as Go's encoder does.

use serde_json::{Map, Value};

/// How Go encodes one struct field.
#[derive(Clone, Copy)]
enum F {
    /// Scalar, slice or map with `omitempty`: dropped when zero, null or empty.
    Omit,
    /// Pointer to a scalar with `omitempty`: dropped only when null.
    Ptr,
    /// Pointer to a struct with `omitempty`: dropped when null, else normalized as the struct.
    PtrObj(&'static [(&'static str, F)]),
    /// String without `omitempty`: emitted, `""` when absent.
    ReqStr,
    /// Integer (or IntOrString) without `omitempty`: emitted, `0` when absent.
    ReqInt,
    /// Pointer without `omitempty`: emitted, `null` when absent.
    ReqNull,
    /// Struct value: Go's `omitempty` never drops structs, so it is always emitted.
    Struct(&'static [(&'static str, F)]),
    /// Slice of structs with `omitempty`: dropped when empty, elements normalized.
    List(&'static [(&'static str, F)]),
    /// Slice of structs without `omitempty`: `null` when absent.
    ListReq(&'static [(&'static str, F)]),
    /// `metav1.Time` value: `null` when zero.
    Time,
    /// `resource.Quantity` value: `"0"` when zero.
    Quantity,
}

use F::*;

type T = &'static [(&'static str, F)];

const OWNER_REFERENCE: T = &[
    ("apiVersion", ReqStr),
    ("kind", ReqStr),
    ("name", ReqStr),
    ("uid", ReqStr),
    ("controller", Ptr),
    ("blockOwnerDeletion", Ptr),
];

const OBJECT_META: T = &[
    ("name", Omit),
    ("generateName", Omit),
    ("namespace", Omit),
    ("selfLink", Omit),
    ("uid", Omit),
    ("resourceVersion", Omit),
    ("generation", Omit),
    ("creationTimestamp", Time),
    ("deletionTimestamp", Ptr),
    ("deletionGracePeriodSeconds", Ptr),
    ("labels", Omit),
    ("annotations", Omit),
    ("ownerReferences", List(OWNER_REFERENCE)),
    ("finalizers", Omit),
    ("managedFields", Omit),
];

const LABEL_SELECTOR_REQUIREMENT: T = &[("key", ReqStr), ("operator", ReqStr), ("values", Omit)];
const LABEL_SELECTOR: T = &[
    ("matchLabels", Omit),
    ("matchExpressions", List(LABEL_SELECTOR_REQUIREMENT)),
];

const OBJECT_FIELD_SELECTOR: T = &[("apiVersion", Omit), ("fieldPath", ReqStr)];
const RESOURCE_FIELD_SELECTOR: T = &[
    ("containerName", Omit),
    ("resource", ReqStr),
    ("divisor", Quantity),
];
const KEY_SELECTOR: T = &[("name", Omit), ("key", ReqStr), ("optional", Ptr)];
const ENV_VAR_SOURCE: T = &[
    ("fieldRef", PtrObj(OBJECT_FIELD_SELECTOR)),
    ("resourceFieldRef", PtrObj(RESOURCE_FIELD_SELECTOR)),
    ("configMapKeyRef", PtrObj(KEY_SELECTOR)),
    ("secretKeyRef", PtrObj(KEY_SELECTOR)),
];
const ENV_VAR: T = &[
    ("name", ReqStr),
    ("value", Omit),
    ("valueFrom", PtrObj(ENV_VAR_SOURCE)),
];
const LOCAL_REF_OPTIONAL: T = &[("name", Omit), ("optional", Ptr)];
const ENV_FROM_SOURCE: T = &[
    ("prefix", Omit),
    ("configMapRef", PtrObj(LOCAL_REF_OPTIONAL)),
    ("secretRef", PtrObj(LOCAL_REF_OPTIONAL)),
];
const CONTAINER_PORT: T = &[
    ("name", Omit),
    ("hostPort", Omit),
    ("containerPort", ReqInt),
    ("protocol", Omit),
    ("hostIP", Omit),
];
const RESOURCE_CLAIM: T = &[("name", ReqStr), ("request", Omit)];
const RESOURCE_REQUIREMENTS: T = &[
    ("limits", Omit),
    ("requests", Omit),
    ("claims", List(RESOURCE_CLAIM)),
];
const CONTAINER_RESIZE_POLICY: T = &[("resourceName", ReqStr), ("restartPolicy", ReqStr)];
const VOLUME_MOUNT: T = &[
    ("name", ReqStr),
    ("readOnly", Omit),
    ("recursiveReadOnly", Ptr),
    ("mountPath", ReqStr),
    ("subPath", Omit),
    ("mountPropagation", Ptr),
    ("subPathExpr", Omit),
];
const VOLUME_DEVICE: T = &[("name", ReqStr), ("devicePath", ReqStr)];
const EXEC_ACTION: T = &[("command", Omit)];
const HTTP_HEADER: T = &[("name", ReqStr), ("value", ReqStr)];
const HTTP_GET_ACTION: T = &[
    ("path", Omit),
    ("port", ReqInt),
    ("host", Omit),
    ("scheme", Omit),
    ("httpHeaders", List(HTTP_HEADER)),
];
const TCP_SOCKET_ACTION: T = &[("port", ReqInt), ("host", Omit)];
const GRPC_ACTION: T = &[("port", ReqInt), ("service", ReqNull)];
const SLEEP_ACTION: T = &[("seconds", ReqInt)];
const PROBE: T = &[
    ("exec", PtrObj(EXEC_ACTION)),
    ("httpGet", PtrObj(HTTP_GET_ACTION)),
    ("tcpSocket", PtrObj(TCP_SOCKET_ACTION)),
    ("grpc", PtrObj(GRPC_ACTION)),
    ("initialDelaySeconds", Omit),
    ("timeoutSeconds", Omit),
    ("periodSeconds", Omit),
    ("successThreshold", Omit),
    ("failureThreshold", Omit),
    ("terminationGracePeriodSeconds", Ptr),
];
const LIFECYCLE_HANDLER: T = &[
    ("exec", PtrObj(EXEC_ACTION)),
    ("httpGet", PtrObj(HTTP_GET_ACTION)),
    ("tcpSocket", PtrObj(TCP_SOCKET_ACTION)),
    ("sleep", PtrObj(SLEEP_ACTION)),
];
const LIFECYCLE: T = &[
    ("postStart", PtrObj(LIFECYCLE_HANDLER)),
    ("preStop", PtrObj(LIFECYCLE_HANDLER)),
    ("stopSignal", Ptr),
];
const CAPABILITIES: T = &[("add", Omit), ("drop", Omit)];
const SE_LINUX_OPTIONS: T = &[
    ("user", Omit),
    ("role", Omit),
    ("type", Omit),
    ("level", Omit),
];
const WINDOWS_OPTIONS: T = &[
    ("gmsaCredentialSpecName", Ptr),
    ("gmsaCredentialSpec", Ptr),
    ("runAsUserName", Ptr),
    ("hostProcess", Ptr),
];
const PROFILE: T = &[("type", ReqStr), ("localhostProfile", Ptr)];
const SECURITY_CONTEXT: T = &[
    ("capabilities", PtrObj(CAPABILITIES)),
    ("privileged", Ptr),
    ("seLinuxOptions", PtrObj(SE_LINUX_OPTIONS)),
    ("windowsOptions", PtrObj(WINDOWS_OPTIONS)),
    ("runAsUser", Ptr),
    ("runAsGroup", Ptr),
    ("runAsNonRoot", Ptr),
    ("readOnlyRootFilesystem", Ptr),
    ("allowPrivilegeEscalation", Ptr),
    ("procMount", Ptr),
    ("seccompProfile", PtrObj(PROFILE)),
    ("appArmorProfile", PtrObj(PROFILE)),
];
const CONTAINER: T = &[
    ("name", ReqStr),
    ("image", Omit),
    ("command", Omit),
    ("args", Omit),
    ("workingDir", Omit),
    ("ports", List(CONTAINER_PORT)),
    ("envFrom", List(ENV_FROM_SOURCE)),
    ("env", List(ENV_VAR)),
    ("resources", Struct(RESOURCE_REQUIREMENTS)),
    ("resizePolicy", List(CONTAINER_RESIZE_POLICY)),
    ("restartPolicy", Ptr),
    ("volumeMounts", List(VOLUME_MOUNT)),
    ("volumeDevices", List(VOLUME_DEVICE)),
    ("livenessProbe", PtrObj(PROBE)),
    ("readinessProbe", PtrObj(PROBE)),
    ("startupProbe", PtrObj(PROBE)),
    ("lifecycle", PtrObj(LIFECYCLE)),
    ("terminationMessagePath", Omit),
    ("terminationMessagePolicy", Omit),
    ("imagePullPolicy", Omit),
    ("securityContext", PtrObj(SECURITY_CONTEXT)),
    ("stdin", Omit),
    ("stdinOnce", Omit),
    ("tty", Omit),
    // EphemeralContainer shares the table.
    ("targetContainerName", Omit),
];
const SYSCTL: T = &[("name", ReqStr), ("value", ReqStr)];
const POD_SECURITY_CONTEXT: T = &[
    ("seLinuxOptions", PtrObj(SE_LINUX_OPTIONS)),
    ("windowsOptions", PtrObj(WINDOWS_OPTIONS)),
    ("runAsUser", Ptr),
    ("runAsGroup", Ptr),
    ("runAsNonRoot", Ptr),
    ("supplementalGroups", Omit),
    ("supplementalGroupsPolicy", Ptr),
    ("fsGroup", Ptr),
    ("sysctls", List(SYSCTL)),
    ("fsGroupChangePolicy", Ptr),
    ("seccompProfile", PtrObj(PROFILE)),
    ("appArmorProfile", PtrObj(PROFILE)),
    ("seLinuxChangePolicy", Ptr),
];
const NODE_SELECTOR_REQUIREMENT: T = &[("key", ReqStr), ("operator", ReqStr), ("values", Omit)];
const NODE_SELECTOR_TERM: T = &[
    ("matchExpressions", List(NODE_SELECTOR_REQUIREMENT)),
    ("matchFields", List(NODE_SELECTOR_REQUIREMENT)),
];
const NODE_SELECTOR: T = &[("nodeSelectorTerms", ListReq(NODE_SELECTOR_TERM))];
const PREFERRED_SCHEDULING_TERM: T = &[
    ("weight", ReqInt),
    ("preference", Struct(NODE_SELECTOR_TERM)),
];
const NODE_AFFINITY: T = &[
    (
        "requiredDuringSchedulingIgnoredDuringExecution",
        PtrObj(NODE_SELECTOR),
    ),
    (
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(PREFERRED_SCHEDULING_TERM),
    ),
];
const POD_AFFINITY_TERM: T = &[
    ("labelSelector", PtrObj(LABEL_SELECTOR)),
    ("namespaces", Omit),
    ("topologyKey", ReqStr),
    ("namespaceSelector", PtrObj(LABEL_SELECTOR)),
    ("matchLabelKeys", Omit),
    ("mismatchLabelKeys", Omit),
];
const WEIGHTED_POD_AFFINITY_TERM: T = &[
    ("weight", ReqInt),
    ("podAffinityTerm", Struct(POD_AFFINITY_TERM)),
];
const POD_AFFINITY: T = &[
    (
        "requiredDuringSchedulingIgnoredDuringExecution",
        List(POD_AFFINITY_TERM),
    ),
    (
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(WEIGHTED_POD_AFFINITY_TERM),
    ),
];
const AFFINITY: T = &[
    ("nodeAffinity", PtrObj(NODE_AFFINITY)),
    ("podAffinity", PtrObj(POD_AFFINITY)),
    ("podAntiAffinity", PtrObj(POD_AFFINITY)),
];
const TOLERATION: T = &[
    ("key", Omit),
    ("operator", Omit),
    ("value", Omit),
    ("effect", Omit),
    ("tolerationSeconds", Ptr),
];
const HOST_ALIAS: T = &[("ip", ReqStr), ("hostnames", Omit)];
const DNS_CONFIG_OPTION: T = &[("name", Omit), ("value", Ptr)];
const DNS_CONFIG: T = &[
    ("nameservers", Omit),
    ("searches", Omit),
    ("options", List(DNS_CONFIG_OPTION)),
];
const READINESS_GATE: T = &[("conditionType", ReqStr)];
const TOPOLOGY_SPREAD_CONSTRAINT: T = &[
    ("maxSkew", ReqInt),
    ("topologyKey", ReqStr),
    ("whenUnsatisfiable", ReqStr),
    ("labelSelector", PtrObj(LABEL_SELECTOR)),
    ("minDomains", Ptr),
    ("nodeAffinityPolicy", Ptr),
    ("nodeTaintsPolicy", Ptr),
    ("matchLabelKeys", Omit),
];
const NAME_ONLY_REQ: T = &[("name", ReqStr)];
const LOCAL_OBJECT_REFERENCE: T = &[("name", Omit)];
const POD_RESOURCE_CLAIM: T = &[
    ("name", ReqStr),
    ("resourceClaimName", Ptr),
    ("resourceClaimTemplateName", Ptr),
];
const KEY_TO_PATH: T = &[("key", ReqStr), ("path", ReqStr), ("mode", Ptr)];
const HOST_PATH: T = &[("path", ReqStr), ("type", Ptr)];
const EMPTY_DIR: T = &[("medium", Omit), ("sizeLimit", Ptr)];
const SECRET_VOLUME: T = &[
    ("secretName", Omit),
    ("items", List(KEY_TO_PATH)),
    ("defaultMode", Ptr),
    ("optional", Ptr),
];
const CONFIG_MAP_VOLUME: T = &[
    ("name", Omit),
    ("items", List(KEY_TO_PATH)),
    ("defaultMode", Ptr),
    ("optional", Ptr),
];
const PVC_VOLUME: T = &[("claimName", ReqStr), ("readOnly", Omit)];
const DOWNWARD_API_FILE: T = &[
    ("path", ReqStr),
    ("fieldRef", PtrObj(OBJECT_FIELD_SELECTOR)),
    ("resourceFieldRef", PtrObj(RESOURCE_FIELD_SELECTOR)),
    ("mode", Ptr),
];
const DOWNWARD_API_VOLUME: T = &[("items", List(DOWNWARD_API_FILE)), ("defaultMode", Ptr)];
const DOWNWARD_API_PROJECTION: T = &[("items", List(DOWNWARD_API_FILE))];
const KEYS_PROJECTION: T = &[
    ("name", Omit),
    ("items", List(KEY_TO_PATH)),
    ("optional", Ptr),
];
const SA_TOKEN_PROJECTION: T = &[
    ("audience", Omit),
    ("expirationSeconds", Ptr),
    ("path", ReqStr),
];
const TRUST_BUNDLE_PROJECTION: T = &[
    ("name", Ptr),
    ("signerName", Ptr),
    ("labelSelector", PtrObj(LABEL_SELECTOR)),
    ("optional", Ptr),
    ("path", ReqStr),
];
const VOLUME_PROJECTION: T = &[
    ("secret", PtrObj(KEYS_PROJECTION)),
    ("downwardAPI", PtrObj(DOWNWARD_API_PROJECTION)),
    ("configMap", PtrObj(KEYS_PROJECTION)),
    ("serviceAccountToken", PtrObj(SA_TOKEN_PROJECTION)),
    ("clusterTrustBundle", PtrObj(TRUST_BUNDLE_PROJECTION)),
];
const PROJECTED_VOLUME: T = &[
    ("sources", ListReq(VOLUME_PROJECTION)),
    ("defaultMode", Ptr),
];
const NFS_VOLUME: T = &[("server", ReqStr), ("path", ReqStr), ("readOnly", Omit)];
const CSI_VOLUME: T = &[
    ("driver", ReqStr),
    ("readOnly", Ptr),
    ("fsType", Ptr),
    ("volumeAttributes", Omit),
    ("nodePublishSecretRef", PtrObj(LOCAL_OBJECT_REFERENCE)),
];
const VOLUME_RESOURCE_REQUIREMENTS: T = &[("limits", Omit), ("requests", Omit)];
const TYPED_LOCAL_OBJECT_REFERENCE: T = &[("apiGroup", Ptr), ("kind", ReqStr), ("name", ReqStr)];
const TYPED_OBJECT_REFERENCE: T = &[
    ("apiGroup", Ptr),
    ("kind", ReqStr),
    ("name", ReqStr),
    ("namespace", Ptr),
];
const PVC_SPEC: T = &[
    ("accessModes", Omit),
    ("selector", PtrObj(LABEL_SELECTOR)),
    ("resources", Struct(VOLUME_RESOURCE_REQUIREMENTS)),
    ("volumeName", Omit),
    ("storageClassName", Ptr),
    ("volumeMode", Ptr),
    ("dataSource", PtrObj(TYPED_LOCAL_OBJECT_REFERENCE)),
    ("dataSourceRef", PtrObj(TYPED_OBJECT_REFERENCE)),
    ("volumeAttributesClassName", Ptr),
];
const PVC_TEMPLATE: T = &[
    ("metadata", Struct(OBJECT_META)),
    ("spec", Struct(PVC_SPEC)),
];
const EPHEMERAL_VOLUME: T = &[("volumeClaimTemplate", PtrObj(PVC_TEMPLATE))];
const IMAGE_VOLUME: T = &[("reference", Omit), ("pullPolicy", Omit)];
const VOLUME: T = &[
    ("name", ReqStr),
    ("hostPath", PtrObj(HOST_PATH)),
    ("emptyDir", PtrObj(EMPTY_DIR)),
    ("secret", PtrObj(SECRET_VOLUME)),
    ("configMap", PtrObj(CONFIG_MAP_VOLUME)),
    ("persistentVolumeClaim", PtrObj(PVC_VOLUME)),
    ("projected", PtrObj(PROJECTED_VOLUME)),
    ("downwardAPI", PtrObj(DOWNWARD_API_VOLUME)),
    ("nfs", PtrObj(NFS_VOLUME)),
    ("csi", PtrObj(CSI_VOLUME)),
    ("ephemeral", PtrObj(EPHEMERAL_VOLUME)),
    ("image", PtrObj(IMAGE_VOLUME)),
];
const POD_SPEC: T = &[
    ("volumes", List(VOLUME)),
    ("initContainers", List(CONTAINER)),
    ("containers", ListReq(CONTAINER)),
    ("ephemeralContainers", List(CONTAINER)),
    ("restartPolicy", Omit),
    ("terminationGracePeriodSeconds", Ptr),
    ("activeDeadlineSeconds", Ptr),
    ("dnsPolicy", Omit),
    ("nodeSelector", Omit),
    ("serviceAccountName", Omit),
    ("serviceAccount", Omit),
    ("automountServiceAccountToken", Ptr),
    ("nodeName", Omit),
    ("hostNetwork", Omit),
    ("hostPID", Omit),
    ("hostIPC", Omit),
    ("shareProcessNamespace", Ptr),
    ("securityContext", PtrObj(POD_SECURITY_CONTEXT)),
    ("imagePullSecrets", List(LOCAL_OBJECT_REFERENCE)),
    ("hostname", Omit),
    ("subdomain", Omit),
    ("affinity", PtrObj(AFFINITY)),
    ("schedulerName", Omit),
    ("tolerations", List(TOLERATION)),
    ("hostAliases", List(HOST_ALIAS)),
    ("priorityClassName", Omit),
    ("priority", Ptr),
    ("dnsConfig", PtrObj(DNS_CONFIG)),
    ("readinessGates", List(READINESS_GATE)),
    ("runtimeClassName", Ptr),
    ("enableServiceLinks", Ptr),
    ("preemptionPolicy", Ptr),
    ("overhead", Omit),
    (
        "topologySpreadConstraints",
        List(TOPOLOGY_SPREAD_CONSTRAINT),
    ),
    ("setHostnameAsFQDN", Ptr),
    ("os", PtrObj(NAME_ONLY_REQ)),
    ("hostUsers", Ptr),
    ("schedulingGates", List(NAME_ONLY_REQ)),
    ("resourceClaims", List(POD_RESOURCE_CLAIM)),
    ("resources", PtrObj(RESOURCE_REQUIREMENTS)),
];
const POD_TEMPLATE_SPEC: T = &[
    ("metadata", Struct(OBJECT_META)),
    ("spec", Struct(POD_SPEC)),
];

/// Go's notion of an "empty" value for `omitempty`: false, 0, "", nil, and zero-length
/// slices and maps.
fn is_go_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn normalize_struct(value: Option<&Value>, table: T) -> Value {
    let empty = Map::new();
    let obj = match value {
        Some(Value::Object(o)) => o,
        _ => &empty,
    };
    let mut out = Map::new();
    // Fields unknown to the table are kept verbatim: see the module docs.
    for (k, v) in obj {
        if !table.iter().any(|(name, _)| name == k) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (name, kind) in table {
        let v = obj.get(*name);
        let present = v.filter(|v| !v.is_null());
        let normalized = match kind {
            Omit => present.filter(|v| !is_go_empty(v)).cloned(),
            Ptr => present.cloned(),
            PtrObj(t) => present.map(|v| normalize_struct(Some(v), t)),
            ReqStr => Some(
                present
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new())),
            ),
            ReqInt => Some(present.cloned().unwrap_or_else(|| Value::from(0))),
            ReqNull => Some(present.cloned().unwrap_or(Value::Null)),
            Struct(t) => Some(normalize_struct(present, t)),
            List(t) => match present {
                Some(Value::Array(items)) if !items.is_empty() => Some(Value::Array(
                    items.iter().map(|i| normalize_struct(Some(i), t)).collect(),
                )),
                Some(Value::Array(_)) => None,
                other => other.cloned(),
            },
            ListReq(t) => match present {
                Some(Value::Array(items)) => Some(Value::Array(
                    items.iter().map(|i| normalize_struct(Some(i), t)).collect(),
                )),
                Some(other) => Some(other.clone()),
                None => Some(Value::Null),
            },
            Time => Some(present.cloned().unwrap_or(Value::Null)),
            Quantity => Some(
                present
                    .cloned()
                    .unwrap_or_else(|| Value::String("0".to_owned())),
            ),
        };
        if let Some(n) = normalized {
            out.insert((*name).to_owned(), n);
        }
    }
    Value::Object(out)
}

/// The JSON Go's `json.Marshal` produces for this pod template (as serialized by k8s-openapi).
pub(crate) fn normalize_pod_template(template: &Value) -> Value {
    normalize_struct(Some(template), POD_TEMPLATE_SPEC)
}

/// Prints a value as Go's `json.Marshal` of `map[string]interface{}` does: keys sorted,
/// compact, HTML-safe escaping, numbers as float64.
pub(crate) fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sort explicitly: serde_json's map keeps insertion order when another crate in
            // the build enables `preserve_order`. Go sorts by the UTF-8 bytes of the keys.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// Go decodes JSON numbers of an `interface{}` into float64 and prints them with
/// `strconv.FormatFloat(f, 'f', -1, 64)` below 1e21 (exponent form above).
fn write_number(n: &serde_json::Number, out: &mut String) {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
        out.push_str(&u.to_string());
        return;
    }
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.push_str(&i.to_string());
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: 'e' format with the shortest mantissa and a two-digit signed exponent.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                out.push_str(mantissa);
                out.push('e');
                out.push(sign);
                if digits.len() < 2 {
                    out.push('0');
                }
                out.push_str(digits);
            }
            None => out.push_str(&s),
        }
    } else {
        out.push_str(&format!("{f}"));
    }
}

fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                let code = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((code >> shift) & 0xf) as usize] as char);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The Go bytes of a value.
pub(crate) fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_escaping_and_sorting() {
        let v = json!({"b": "<a&b>", "a": [1, 2.5, -3], "c": "\u{1}\n\u{2028}"});
        assert_eq!(
            to_string(&v),
            r#"{"a":[1,2.5,-3],"b":"\u003ca\u0026b\u003e","c":"\u0001\n\u2028"}"#
        );
    }

    #[test]
    fn go_zero_values() {
        let t = json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "hostNetwork": false,
                "tolerations": [],
                "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": ""}],
                                 "ports": [{"containerPort": 80, "hostIP": ""}],
                                 "securityContext": {"privileged": false}}],
                "volumes": [{"name": "v", "projected": {}}]
            }
        });
        assert_eq!(
            to_string(&normalize_pod_template(&t)),
            concat!(
                r#"{"metadata":{"creationTimestamp":null,"labels":{"app":"x"}},"#,
                r#""spec":{"containers":[{"env":[{"name":"A"}],"image":"i","name":"c","#,
                r#""ports":[{"containerPort":80}],"resources":{},"#,
                r#""securityContext":{"privileged":false}}],"#,
                r#""volumes":[{"name":"v","projected":{"sources":null}}]}}"#
            )
        );
    }
}
