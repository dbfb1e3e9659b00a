//! structured-merge-diff's merge tests (merge/leaf_test.go, set_test.go, key_test.go,
//! multiple_appliers_test.go), ported as data to the served types: their leaf fields become a
//! ConfigMap's `data`, their sets `metadata.finalizers`, their keyed lists a pod template's
//! `containers` (by `name`) and their nested lists a container's `env`. Each case runs its
//! operations in order from an empty object and checks the object, every manager's fields
//! (as `fieldsV1`) and the conflicts of the operation that expects them.

use pernode_fieldmanager::encode::to_fields_v1;
use pernode_fieldmanager::updater::{ManagedSets, UpdateError};
use pernode_fieldmanager::{Schema, Set, Updater};
use serde_json::{Value, json};

enum Op {
    Apply(&'static str, Value),
    ForceApply(&'static str, Value),
    /// An apply that must fail with these conflicts (manager, path).
    ApplyConflicts(&'static str, Value, &'static [(&'static str, &'static str)]),
    Update(&'static str, Value),
}

struct Case {
    name: &'static str,
    ops: Vec<Op>,
    object: Value,
    managers: Value,
}

fn run(case: Case) {
    let updater = Updater::new(Schema::BuiltIn, Set::new());
    let mut live = json!({});
    let mut managers = ManagedSets::new();
    for (i, op) in case.ops.into_iter().enumerate() {
        let at = format!("{}: op {i}", case.name);
        match op {
            Op::Apply(m, config) => {
                live = updater
                    .apply(&live, &config, "v1", &mut managers, m, false)
                    .unwrap_or_else(|e| panic!("{at}: {e:?}"));
            }
            Op::ForceApply(m, config) => {
                live = updater
                    .apply(&live, &config, "v1", &mut managers, m, true)
                    .unwrap_or_else(|e| panic!("{at}: {e:?}"));
            }
            Op::ApplyConflicts(m, config, want) => {
                let mut attempt = managers.clone();
                match updater.apply(&live, &config, "v1", &mut attempt, m, false) {
                    Err(UpdateError::Conflicts(got)) => {
                        let got: Vec<(String, String)> = got
                            .iter()
                            .map(|c| (c.manager.clone(), c.path.to_string()))
                            .collect();
                        let want: Vec<(String, String)> = want
                            .iter()
                            .map(|(m, p)| (m.to_string(), p.to_string()))
                            .collect();
                        assert_eq!(got, want, "{at}");
                    }
                    other => panic!("{at}: expected conflicts, got {other:?}"),
                }
                // The forced apply that upstream's cases follow a conflict with.
                live = updater
                    .apply(&live, &config, "v1", &mut managers, m, true)
                    .unwrap_or_else(|e| panic!("{at}: forced: {e:?}"));
            }
            Op::Update(m, new) => {
                updater
                    .update(Some(&live), &new, "v1", &mut managers, m)
                    .unwrap_or_else(|e| panic!("{at}: {e:?}"));
                live = new;
            }
        }
    }
    assert_eq!(live, case.object, "{}: object", case.name);
    let got: serde_json::Map<String, Value> = managers
        .iter()
        .map(|(m, vs)| (m.clone(), to_fields_v1(&vs.set)))
        .collect();
    assert_eq!(Value::Object(got), case.managers, "{}: managers", case.name);
}

fn data(pairs: Value) -> Value {
    json!({ "data": pairs })
}

fn finalizers(items: &[&str]) -> Value {
    json!({ "metadata": { "finalizers": items } })
}

fn containers(items: Value) -> Value {
    json!({ "spec": { "template": { "spec": { "containers": items } } } })
}

fn cfs(inner: Value) -> Value {
    json!({ "f:spec": { "f:template": { "f:spec": { "f:containers": inner } } } })
}

#[test]
fn leaf_fields() {
    for case in [
        Case {
            name: "apply_twice",
            ops: vec![
                Op::Apply("default", data(json!({"numeric": "1", "string": "s"}))),
                Op::Apply(
                    "default",
                    data(json!({"numeric": "2", "string": "s", "bool": "false"})),
                ),
            ],
            object: data(json!({"numeric": "2", "string": "s", "bool": "false"})),
            managers: json!({"default": {"f:data": {"f:bool": {}, "f:numeric": {}, "f:string": {}}}}),
        },
        Case {
            name: "apply_update_apply_no_conflict",
            ops: vec![
                Op::Apply("default", data(json!({"numeric": "1", "string": "s"}))),
                Op::Update(
                    "controller",
                    data(json!({"numeric": "1", "string": "s", "bool": "true"})),
                ),
                Op::Apply("default", data(json!({"numeric": "2", "string": "s"}))),
            ],
            object: data(json!({"numeric": "2", "string": "s", "bool": "true"})),
            managers: json!({
                "controller": {"f:data": {"f:bool": {}}},
                "default": {"f:data": {"f:numeric": {}, "f:string": {}}}
            }),
        },
        Case {
            name: "apply_update_apply_with_conflict",
            ops: vec![
                Op::Apply("default", data(json!({"numeric": "1", "string": "s"}))),
                Op::Update(
                    "controller",
                    data(json!({"numeric": "1", "string": "controller string", "bool": "true"})),
                ),
                Op::ApplyConflicts(
                    "default",
                    data(json!({"numeric": "2", "string": "user string"})),
                    &[("controller", ".data.string")],
                ),
            ],
            object: data(json!({"numeric": "2", "string": "user string", "bool": "true"})),
            managers: json!({
                "controller": {"f:data": {"f:bool": {}}},
                "default": {"f:data": {"f:numeric": {}, "f:string": {}}}
            }),
        },
        Case {
            name: "apply_twice_dangling (unset_scalar_sole_owner)",
            ops: vec![
                Op::Apply("default", data(json!({"numeric": "1", "string": "s"}))),
                Op::Apply("default", data(json!({"string": "s"}))),
            ],
            object: data(json!({"string": "s"})),
            managers: json!({"default": {"f:data": {"f:string": {}}}}),
        },
        Case {
            name: "unset_scalar_shared_with_updater",
            ops: vec![
                Op::Update("updater", data(json!({"name": "a", "scalar": "a"}))),
                Op::Apply("applier", data(json!({"name": "a", "scalar": "a"}))),
                Op::Apply("applier", data(json!({"name": "a"}))),
            ],
            object: data(json!({"name": "a", "scalar": "a"})),
            managers: json!({
                "applier": {"f:data": {"f:name": {}}},
                "updater": {"f:data": {".": {}, "f:name": {}, "f:scalar": {}}}
            }),
        },
        Case {
            name: "force",
            ops: vec![
                Op::Apply("default", data(json!({"string": "a"}))),
                Op::Update("controller", data(json!({"string": "b"}))),
                Op::ForceApply("default", data(json!({"string": "c"}))),
            ],
            object: data(json!({"string": "c"})),
            managers: json!({"default": {"f:data": {"f:string": {}}}}),
        },
        Case {
            name: "updater_claims_field",
            ops: vec![
                Op::Apply("applier", data(json!({"name": "a", "scalar": "a"}))),
                Op::Update("updater", data(json!({"name": "a", "scalar": "b"}))),
            ],
            object: data(json!({"name": "a", "scalar": "b"})),
            managers: json!({
                "applier": {"f:data": {"f:name": {}}},
                "updater": {"f:data": {"f:scalar": {}}}
            }),
        },
    ] {
        run(case);
    }
}

#[test]
fn sets() {
    let v = |items: &[&str]| {
        let mut level = serde_json::Map::new();
        for i in items {
            level.insert(format!("v:{}", json!(i)), json!({}));
        }
        json!({"f:metadata": {"f:finalizers": level}})
    };
    for case in [
        Case {
            name: "apply_twice",
            ops: vec![
                Op::Apply("default", finalizers(&["a", "c"])),
                Op::Apply("default", finalizers(&["a", "b", "c", "d"])),
            ],
            object: finalizers(&["a", "b", "c", "d"]),
            managers: json!({"default": v(&["a", "b", "c", "d"])}),
        },
        Case {
            name: "apply_update_apply_no_overlap",
            ops: vec![
                Op::Apply("default", finalizers(&["a", "c"])),
                Op::Update("controller", finalizers(&["a", "b", "c", "d"])),
                Op::Apply("default", finalizers(&["a", "aprime", "c", "cprime"])),
            ],
            object: finalizers(&["a", "b", "aprime", "c", "d", "cprime"]),
            managers: json!({
                "controller": v(&["b", "d"]),
                "default": v(&["a", "aprime", "c", "cprime"])
            }),
        },
        Case {
            name: "apply_update_apply_with_overlap",
            ops: vec![
                Op::Apply("default", finalizers(&["a", "c"])),
                Op::Update("controller", finalizers(&["a", "b", "c", "d"])),
                Op::Apply("default", finalizers(&["a", "b", "c"])),
            ],
            object: finalizers(&["a", "b", "c", "d"]),
            managers: json!({
                "controller": v(&["b", "d"]),
                "default": v(&["a", "b", "c"])
            }),
        },
        Case {
            name: "apply_twice_reorder",
            ops: vec![
                Op::Apply("default", finalizers(&["a", "b", "c", "d"])),
                Op::Apply("default", finalizers(&["a", "d", "c", "b"])),
            ],
            object: finalizers(&["a", "d", "c", "b"]),
            managers: json!({"default": v(&["a", "b", "c", "d"])}),
        },
        Case {
            name: "apply_twice_remove",
            ops: vec![
                Op::Apply("default", finalizers(&["a", "b", "c", "d"])),
                Op::Apply("default", finalizers(&["a", "c", "e"])),
            ],
            object: finalizers(&["a", "c", "e"]),
            managers: json!({"default": v(&["a", "c", "e"])}),
        },
    ] {
        run(case);
    }
}

fn item(name: &str) -> String {
    format!("k:{{\"name\":\"{name}\"}}")
}

#[test]
fn keyed_lists_with_several_appliers() {
    let owned = |names: &[&str]| {
        let mut level = serde_json::Map::new();
        for n in names {
            level.insert(item(n), json!({".": {}, "f:name": {}}));
        }
        cfs(Value::Object(level))
    };
    for case in [
        Case {
            name: "remove_one",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a"}, {"name": "b"}])),
                ),
                Op::Apply("apply-two", containers(json!([{"name": "c"}]))),
                Op::Apply("apply-one", containers(json!([{"name": "a"}]))),
            ],
            object: containers(json!([{"name": "a"}, {"name": "c"}])),
            managers: json!({"apply-one": owned(&["a"]), "apply-two": owned(&["c"])}),
        },
        Case {
            name: "remove_one_keep_one",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                ),
                Op::Apply(
                    "apply-two",
                    containers(json!([{"name": "c"}, {"name": "d"}])),
                ),
                Op::Apply("apply-one", containers(json!([{"name": "a"}]))),
            ],
            object: containers(json!([{"name": "a"}, {"name": "c"}, {"name": "d"}])),
            managers: json!({"apply-one": owned(&["a"]), "apply-two": owned(&["c", "d"])}),
        },
        Case {
            name: "same_value_no_conflict",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a", "image": "x"}])),
                ),
                Op::Apply(
                    "apply-two",
                    containers(json!([{"name": "a", "image": "x"}])),
                ),
            ],
            object: containers(json!([{"name": "a", "image": "x"}])),
            managers: json!({
                "apply-one": cfs(json!({item("a"): {".": {}, "f:image": {}, "f:name": {}}})),
                "apply-two": cfs(json!({item("a"): {".": {}, "f:image": {}, "f:name": {}}}))
            }),
        },
        Case {
            name: "change_value_yes_conflict",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a", "image": "x"}])),
                ),
                Op::ApplyConflicts(
                    "apply-two",
                    containers(json!([{"name": "a", "image": "y"}])),
                    &[(
                        "apply-one",
                        r#".spec.template.spec.containers[name="a"].image"#,
                    )],
                ),
            ],
            object: containers(json!([{"name": "a", "image": "y"}])),
            managers: json!({
                "apply-one": cfs(json!({item("a"): {".": {}, "f:name": {}}})),
                "apply-two": cfs(json!({item("a"): {".": {}, "f:image": {}, "f:name": {}}}))
            }),
        },
        Case {
            name: "remove_one_keep_one_with_dangling_subitem",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a"}, {"name": "b", "env": [{"name": "c"}]}])),
                ),
                Op::Apply(
                    "apply-two",
                    containers(json!([{"name": "b", "env": [{"name": "d"}]}])),
                ),
                Op::Update(
                    "controller",
                    containers(json!([
                        {"name": "a"},
                        {"name": "b", "env": [{"name": "c"}, {"name": "d"}, {"name": "e"}]}
                    ])),
                ),
                Op::Apply("apply-one", containers(json!([{"name": "a"}]))),
            ],
            object: containers(json!([
                {"name": "a"},
                {"name": "b", "env": [{"name": "d"}, {"name": "e"}]}
            ])),
            managers: json!({
                "apply-one": owned(&["a"]),
                "apply-two": cfs(json!({item("b"): {".": {}, "f:env": {item("d"): {".": {}, "f:name": {}}}, "f:name": {}}})),
                "controller": cfs(json!({item("b"): {"f:env": {item("e"): {".": {}, "f:name": {}}}}}))
            }),
        },
        Case {
            name: "remove_one_with_dangling_subitem_keep_one",
            ops: vec![
                Op::Apply(
                    "apply-one",
                    containers(json!([{"name": "a"}, {"name": "b", "env": [{"name": "c"}]}])),
                ),
                Op::Apply(
                    "apply-two",
                    containers(json!([{"name": "a", "env": [{"name": "b"}]}])),
                ),
                Op::Update(
                    "controller",
                    containers(json!([
                        {"name": "a", "env": [{"name": "b"}]},
                        {"name": "b", "env": [{"name": "c"}, {"name": "d"}]}
                    ])),
                ),
                Op::Apply("apply-one", containers(json!([{"name": "a"}]))),
            ],
            object: containers(json!([{"name": "a", "env": [{"name": "b"}]}])),
            managers: json!({
                "apply-one": owned(&["a"]),
                "apply-two": cfs(json!({item("a"): {".": {}, "f:env": {item("b"): {".": {}, "f:name": {}}}, "f:name": {}}}))
            }),
        },
    ] {
        run(case);
    }
}

#[test]
fn atomic_lists_are_owned_and_replaced_whole() {
    run(Case {
        name: "args_replaced",
        ops: vec![
            Op::Apply(
                "one",
                containers(json!([{"name": "a", "args": ["x", "y"]}])),
            ),
            Op::ApplyConflicts(
                "two",
                containers(json!([{"name": "a", "args": ["z"]}])),
                &[("one", r#".spec.template.spec.containers[name="a"].args"#)],
            ),
        ],
        object: containers(json!([{"name": "a", "args": ["z"]}])),
        managers: json!({
            "one": cfs(json!({item("a"): {".": {}, "f:name": {}}})),
            "two": cfs(json!({item("a"): {".": {}, "f:args": {}, "f:name": {}}}))
        }),
    });
}

#[test]
fn duplicate_keys_in_a_configuration_are_refused() {
    let updater = Updater::new(Schema::BuiltIn, Set::new());
    let mut managers = ManagedSets::new();
    let err = updater
        .apply(
            &json!({}),
            &containers(json!([{"name": "a"}, {"name": "a"}])),
            "v1",
            &mut managers,
            "m",
            false,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#
    );
    // A container port's key defaults its protocol, as the schema's default.
    let set = pernode_fieldmanager::typed::to_field_set(
        Schema::BuiltIn,
        &containers(json!([{"name": "a", "ports": [{"containerPort": 80}]}])),
    )
    .unwrap();
    let text = to_fields_v1(&set).to_string();
    assert!(
        text.contains(r#"k:{\"containerPort\":80,\"protocol\":\"TCP\"}"#),
        "{text}"
    );
}
