//! Operations on objects as their schema types them: structured-merge-diff's `typed` package
//! (`ToFieldSet`, `Compare`, `Merge`, `RemoveItems`, `EnsureNamedFieldsAreMembers`) over
//! untyped JSON and a [`Schema`].
//!
//! Maps are granular (each field owned on its own) unless the schema marks them atomic; lists
//! follow their [`ListType`]; scalars, atomic maps and atomic lists are leaves. An empty map or
//! list on both sides is a leaf too, as upstream's `emptyPromoteToLeaf`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::path::{Path, PathElement};
use crate::schema::{ListType, Schema};
use crate::set::Set;

/// A value the schema cannot type: upstream's validation errors of `typed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TypeError {
    pub path: Path,
    pub message: String,
}

/// What changed between two objects, as upstream's `typed.Comparison`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

fn type_error(path: &[PathElement], message: String) -> TypeError {
    TypeError {
        path: Path(path.to_vec()),
        message,
    }
}

/// The path element of a list item (upstream's `listItemToPathElement`).
fn item_element(
    list: ListType,
    item: &Value,
    index: usize,
    path: &[PathElement],
) -> Result<PathElement, TypeError> {
    match list {
        ListType::Atomic => Ok(PathElement::Index(index)),
        ListType::Set => match item {
            Value::Object(_) | Value::Array(_) => Err(type_error(
                path,
                "associative list without keys has an element that's a map type".into(),
            )),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListType::Map(keys) => {
            let Value::Object(fields) = item else {
                return Err(type_error(
                    path,
                    "associative list with keys has an element that is not a map type".into(),
                ));
            };
            let mut key = Vec::with_capacity(keys.len());
            for k in keys {
                match (fields.get(k.name), k.default) {
                    (Some(v), _) => key.push((k.name.to_string(), v.clone())),
                    (None, Some(default)) => {
                        key.push((k.name.to_string(), Value::String(default.into())))
                    }
                    (None, None) => {
                        return Err(type_error(
                            path,
                            format!(
                                "associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                                k.name
                            ),
                        ));
                    }
                }
            }
            key.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(key))
        }
    }
}

/// A list's items by path element, in order, first occurrence kept; with the elements seen
/// more than once. `strict`: a duplicate is an error (an applied configuration).
struct Indexed<'a> {
    order: Vec<PathElement>,
    items: BTreeMap<PathElement, &'a Value>,
    duplicates: Vec<PathElement>,
}

fn index_items<'a>(
    list: ListType,
    items: &'a [Value],
    path: &[PathElement],
    strict: bool,
) -> Result<Indexed<'a>, TypeError> {
    let mut indexed = Indexed {
        order: Vec::with_capacity(items.len()),
        items: BTreeMap::new(),
        duplicates: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let pe = item_element(list, item, i, path)?;
        if indexed.items.contains_key(&pe) {
            if strict {
                return Err(type_error(path, format!("duplicate entries for key {pe}")));
            }
            if !indexed.duplicates.contains(&pe) {
                indexed.duplicates.push(pe);
            }
            continue;
        }
        indexed.items.insert(pe.clone(), item);
        indexed.order.push(pe);
    }
    Ok(indexed)
}

/// A walk's position: the field names for the schema, the path for the sets.
struct Cursor<'a> {
    schema: Schema,
    /// Whether a duplicate list key is an error (an applied configuration) or tolerated (a
    /// stored object, as upstream's).
    strict: bool,
    names: Vec<&'a str>,
    path: WalkPath,
}

/// A walk's path. The walks push a field name at every step of an object; popped elements
/// keep their strings for the next push, so a step copies the name instead of allocating it
/// (an allocation per field was most of a create's shape walk). It also tracks how much of
/// the path stayed in place since [`WalkPath::take_shared`] was last asked, for sinks that
/// hash paths prefix by prefix ([`ShapeHash`]).
struct WalkPath {
    elements: Vec<PathElement>,
    len: usize,
    shared: usize,
}

impl WalkPath {
    fn new() -> WalkPath {
        WalkPath {
            elements: Vec::new(),
            len: 0,
            shared: 0,
        }
    }

    fn push_field(&mut self, name: &str) {
        match self.elements.get_mut(self.len) {
            Some(PathElement::Field(slot)) => {
                slot.clear();
                slot.push_str(name);
            }
            Some(slot) => *slot = PathElement::Field(name.to_owned()),
            None => self.elements.push(PathElement::Field(name.to_owned())),
        }
        self.len += 1;
    }

    fn push_element(&mut self, element: &PathElement) {
        if let PathElement::Field(name) = element {
            return self.push_field(name);
        }
        match self.elements.get_mut(self.len) {
            Some(slot) => *slot = element.clone(),
            None => self.elements.push(element.clone()),
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
        self.shared = self.shared.min(self.len);
    }

    /// How many leading elements are the same as when this was last asked (nothing, the
    /// first time); from now on, all of them.
    fn take_shared(&mut self) -> usize {
        std::mem::replace(&mut self.shared, self.len)
    }
}

impl std::ops::Deref for WalkPath {
    type Target = [PathElement];

    fn deref(&self) -> &[PathElement] {
        &self.elements[..self.len]
    }
}

impl<'a> Cursor<'a> {
    fn new(schema: Schema) -> Cursor<'a> {
        Cursor {
            schema,
            strict: false,
            names: Vec::new(),
            path: WalkPath::new(),
        }
    }

    fn list_type(&self) -> ListType {
        self.schema.list_type(&self.names)
    }

    fn atomic_map(&self) -> bool {
        self.schema.atomic_map(&self.names)
    }
}

// ---- ToFieldSet ---------------------------------------------------------------------------

/// The fields an object sets (upstream's `ToFieldSet`): every leaf, every associative list
/// item, map entries of Go maps, and fields holding null or an empty map.
pub fn to_field_set(schema: Schema, object: &Value) -> Result<Set, TypeError> {
    let mut set = Set::new();
    let mut cursor = Cursor::new(schema);
    field_set(&mut cursor, object, &mut set)?;
    Ok(set)
}

/// Where the [`to_field_set`] walk puts what it finds: the [`Set`] itself, or a
/// [`ShapeHash`].
trait FieldSink {
    fn insert(&mut self, path: &mut WalkPath);
    /// A scalar or null leaf. Only the set's membership of its path matters to a set; a shape
    /// also tells null from a value, as a comparison with an empty object does.
    fn leaf(&mut self, path: &mut WalkPath, _value: &Value) {
        self.insert(path);
    }
    /// A list item (`path` ends with its element), after what is below it.
    fn item(&mut self, path: &mut WalkPath) {
        self.insert(path);
    }
    /// A list item whose element another item of the list has too.
    fn duplicate(&mut self, path: &mut WalkPath) {
        self.insert(path);
    }
}

impl FieldSink for Set {
    fn insert(&mut self, path: &mut WalkPath) {
        Set::insert(self, path);
    }
}

/// A 128-bit hash of an object's shape under a schema: the paths of its field set with the
/// values of associative-list keys left out, and which leaves are null. Two objects of one
/// shape differ in their non-null scalar values and in the key values of their list items
/// ([`ShapeHash::keyed`] lists those items' paths, in walk order), so writes that create them
/// (from an empty object) change the same fields but for the items' keys. The field manager
/// memoises those writes by shape (`crate::created`). Lists with duplicate items have no
/// shape: which items are duplicates depends on the key values.
pub struct ShapeHash {
    halves: Halves,
    /// The identity of each prefix of the last path added (`states[0]` is the empty path's):
    /// the walk adds paths in depth-first order, so most share a long prefix with the one
    /// before and only their last elements are hashed.
    states: Vec<PathHash>,
    keyed: Vec<Vec<PathElement>>,
    duplicates: bool,
}

/// The seeds of the shape hash: the same for every hash in a process, as the memo needs, and
/// unknown outside it.
static SEEDS: std::sync::LazyLock<[foldhash::fast::RandomState; 3]> =
    std::sync::LazyLock::new(Default::default);

/// Two independent 64-bit hashes (foldhash with two seeds, random per process) of the paths'
/// identities, for 128 bits. Shapes are hashed on every create, path by path: SipHash here was
/// 2% of a DaemonSet converge's instructions.
struct Halves([foldhash::fast::FoldHasher<'static>; 2]);

impl Halves {
    fn new() -> Halves {
        use std::hash::BuildHasher;
        let [a, b, _] = &*SEEDS;
        Halves([a.build_hasher(), b.build_hasher()])
    }

    fn add(&mut self, word: u64) {
        use std::hash::Hasher;
        for h in &mut self.0 {
            h.write_u64(word);
        }
    }
}

/// A path's 64-bit identity, element by element (foldhash with a third seed). Within one
/// object's paths and across the few shapes a cluster has, 64 bits tell paths apart; the
/// shape's own 128 bits ([`Halves`]) then hash the sequence of identities.
#[derive(Clone)]
struct PathHash(foldhash::fast::FoldHasher<'static>);

impl PathHash {
    fn new() -> PathHash {
        use std::hash::BuildHasher;
        PathHash(SEEDS[2].build_hasher())
    }

    /// `tag` and `bytes`' length in one word, then the bytes.
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        use std::hash::Hasher;
        self.0.write_u64(u64::from(tag) << 56 | bytes.len() as u64);
        self.0.write(bytes);
    }

    fn tag(&mut self, tag: u8) {
        self.tagged(tag, &[]);
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(0),
            Value::Bool(b) => self.tag(if *b { 1 } else { 2 }),
            Value::Number(n) => self.tagged(3, n.to_string().as_bytes()),
            Value::String(s) => self.tagged(4, s.as_bytes()),
            Value::Array(items) => {
                self.tagged(5, &items.len().to_le_bytes());
                items.iter().for_each(|i| self.value(i));
            }
            Value::Object(map) => {
                self.tagged(6, &map.len().to_le_bytes());
                for (k, v) in map {
                    self.tagged(7, k.as_bytes());
                    self.value(v);
                }
            }
        }
    }

    fn element(&mut self, pe: &PathElement) {
        match pe {
            PathElement::Field(name) => self.tagged(10, name.as_bytes()),
            PathElement::Key(fields) => {
                // The names only: the values are the shape's parameters (`keyed`).
                self.tagged(11, &fields.len().to_le_bytes());
                for (name, _) in fields {
                    self.tagged(7, name.as_bytes());
                }
            }
            PathElement::Value(v) => {
                self.tag(12);
                self.value(v);
            }
            PathElement::Index(i) => self.tagged(13, &i.to_le_bytes()),
        }
    }

    fn finish(&self) -> u64 {
        use std::hash::Hasher;
        self.0.finish()
    }
}

/// What [`ShapeHash::add_path`] adds: a field set's path, or a leaf's, null or not (a
/// comparison with an empty object tells them apart).
#[derive(Clone, Copy)]
enum Added {
    Path = 0,
    NullLeaf = 1,
    ValueLeaf = 2,
}

impl ShapeHash {
    /// A hash that starts from `seed` (what else the memoised result depends on).
    pub fn new(seed: &[&str]) -> ShapeHash {
        let mut halves = Halves::new();
        for s in seed {
            let mut part = PathHash::new();
            part.tagged(0, s.as_bytes());
            halves.add(part.finish());
        }
        ShapeHash {
            halves,
            states: vec![PathHash::new()],
            keyed: Vec::new(),
            duplicates: false,
        }
    }

    /// Adds `set`'s paths (the fields an endpoint ignores, say).
    pub fn add_set(&mut self, set: &Set) {
        for path in set.paths() {
            self.add_path(&path.0, 0, Added::Path);
        }
    }

    /// Walks `object` as [`to_field_set`] does. `None`: the object has no shape (the schema
    /// cannot type it, or a list has duplicate items).
    pub fn add_object(&mut self, schema: Schema, object: &Value) -> Option<()> {
        field_set(&mut Cursor::new(schema), object, self).ok()?;
        (!self.duplicates).then_some(())
    }

    pub fn finish(&self) -> u128 {
        use std::hash::Hasher;
        let [a, b] = &self.halves.0;
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    /// The paths of the associative-list items walked, in walk order (an item's own items
    /// before it).
    pub fn keyed(self) -> Vec<Vec<PathElement>> {
        self.keyed
    }

    /// Adds `path`, whose first `shared` elements are those of the path added before.
    fn add_path(&mut self, path: &[PathElement], shared: usize, added: Added) {
        self.states.truncate(shared + 1);
        for pe in path.iter().skip(shared) {
            let mut state = self.states.last().cloned().unwrap_or_else(PathHash::new);
            state.element(pe);
            self.states.push(state);
        }
        if let Some(state) = self.states.get(path.len()) {
            self.halves.add(state.finish().wrapping_add(added as u64));
        }
    }
}

impl FieldSink for ShapeHash {
    fn insert(&mut self, path: &mut WalkPath) {
        let shared = path.take_shared();
        self.add_path(path, shared, Added::Path);
    }

    fn leaf(&mut self, path: &mut WalkPath, value: &Value) {
        let shared = path.take_shared();
        let added = match value {
            Value::Null => Added::NullLeaf,
            _ => Added::ValueLeaf,
        };
        self.add_path(path, shared, added);
    }

    fn item(&mut self, path: &mut WalkPath) {
        self.insert(path);
        if matches!(path.last(), Some(PathElement::Key(_))) {
            self.keyed.push(path.to_vec());
        }
    }

    fn duplicate(&mut self, path: &mut WalkPath) {
        self.insert(path);
        self.duplicates = true;
    }
}

fn field_set<'a, S: FieldSink>(
    c: &mut Cursor<'a>,
    v: &'a Value,
    set: &mut S,
) -> Result<(), TypeError> {
    match v {
        Value::Object(map) => {
            if c.atomic_map() {
                set.insert(&mut c.path);
                return Ok(());
            }
            let string_map = c.schema.string_map(&c.names);
            for (k, child) in map {
                c.names.push(k);
                c.path.push_field(k);
                field_set(c, child, set)?;
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || string_map {
                    set.insert(&mut c.path);
                }
                c.path.pop();
                c.names.pop();
            }
        }
        Value::Array(items) => {
            let list = c.list_type();
            if list == ListType::Atomic {
                set.insert(&mut c.path);
                return Ok(());
            }
            let indexed = index_items(list, items, &c.path, c.strict)?;
            for pe in &indexed.duplicates {
                c.path.push_element(pe);
                set.duplicate(&mut c.path);
                c.path.pop();
            }
            for pe in &indexed.order {
                if indexed.duplicates.contains(pe) {
                    continue;
                }
                c.path.push_element(pe);
                if let Some(item) = indexed.items.get(pe) {
                    field_set(c, item, set)?;
                }
                set.item(&mut c.path);
                c.path.pop();
            }
        }
        leaf => set.leaf(&mut c.path, leaf),
    }
    Ok(())
}

/// [`to_field_set`] of an applied configuration: duplicate list keys are an error.
pub fn to_field_set_strict(schema: Schema, object: &Value) -> Result<Set, TypeError> {
    let mut set = Set::new();
    let mut cursor = Cursor::new(schema);
    cursor.strict = true;
    field_set(&mut cursor, object, &mut set)?;
    Ok(set)
}

// ---- Compare ------------------------------------------------------------------------------

/// What changed from `old` to `new` (upstream's `Compare`). `None` stands for a missing object.
pub fn compare(
    schema: Schema,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<Comparison, TypeError> {
    let mut out = Comparison::default();
    if old.is_none() && new.is_none() {
        return Ok(out);
    }
    let mut cursor = Cursor::new(schema);
    compare_at(&mut cursor, old, new, &mut out)?;
    Ok(out)
}

fn leaf(c: &Cursor<'_>, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(&c.path),
        (Some(_), None) => out.removed.insert(&c.path),
        (Some(a), Some(b)) if a != b => out.modified.insert(&c.path),
        _ => {}
    }
}

fn compare_at<'a>(
    c: &mut Cursor<'a>,
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    out: &mut Comparison,
) -> Result<(), TypeError> {
    // A null stands for an empty value of the other side's type (Go's nil map or slice):
    // present, so neither added nor removed as a whole.
    static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));
    static EMPTY_ARRAY: LazyLock<Value> = LazyLock::new(|| Value::Array(Vec::new()));
    let fill = |null: Option<&'a Value>, other: Option<&'a Value>| -> Option<&'a Value> {
        match (null, other) {
            (Some(Value::Null), Some(Value::Object(_))) => Some(&*EMPTY_OBJECT),
            (Some(Value::Null), Some(Value::Array(_))) => Some(&*EMPTY_ARRAY),
            _ => null,
        }
    };
    let (old, new) = (fill(old, new), fill(new, old));
    let shape = new.or(old);
    let descended = match (shape, old, new) {
        (Some(Value::Object(_)), _, _) => {
            let (l, r) = (
                old.and_then(Value::as_object),
                new.and_then(Value::as_object),
            );
            let type_mismatch =
                old.is_some_and(|v| !v.is_object()) || new.is_some_and(|v| !v.is_object());
            let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
            if c.atomic_map() || empty || type_mismatch {
                leaf(c, old, new, out);
                false
            } else {
                static EMPTY_MAP: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
                let (l, r) = (l.unwrap_or(&EMPTY_MAP), r.unwrap_or(&EMPTY_MAP));
                // managedFields are never owned: leave them out rather than copy objects
                // without them on every write.
                let in_metadata = c.names == ["metadata"];
                let skip = |k: &str| in_metadata && k == "managedFields";
                for (k, lv) in l {
                    if skip(k) {
                        continue;
                    }
                    c.names.push(k);
                    c.path.push_field(k);
                    compare_at(c, Some(lv), r.get(k), out)?;
                    c.path.pop();
                    c.names.pop();
                }
                for (k, rv) in r {
                    if l.contains_key(k) || skip(k) {
                        continue;
                    }
                    c.names.push(k);
                    c.path.push_field(k);
                    compare_at(c, None, Some(rv), out)?;
                    c.path.pop();
                    c.names.pop();
                }
                true
            }
        }
        (Some(Value::Array(_)), _, _) => {
            let (l, r) = (old.and_then(Value::as_array), new.and_then(Value::as_array));
            let type_mismatch =
                old.is_some_and(|v| !v.is_array()) || new.is_some_and(|v| !v.is_array());
            let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
            let list = c.list_type();
            if list == ListType::Atomic || empty || type_mismatch {
                leaf(c, old, new, out);
                false
            } else {
                compare_items(c, list, l.map_or(&[][..], Vec::as_slice), r, out)?;
                true
            }
        }
        _ => {
            leaf(c, old, new, out);
            false
        }
    };
    if descended {
        match (old, new) {
            (None, Some(_)) => out.added.insert(&c.path),
            (Some(_), None) => out.removed.insert(&c.path),
            _ => {}
        }
    }
    Ok(())
}

fn compare_items<'a>(
    c: &mut Cursor<'a>,
    list: ListType,
    old: &'a [Value],
    new: Option<&'a Vec<Value>>,
    out: &mut Comparison,
) -> Result<(), TypeError> {
    let new = new.map_or(&[][..], Vec::as_slice);
    let l = index_items(list, old, &c.path, false)?;
    let r = index_items(list, new, &c.path, false)?;
    let mut all: Vec<&PathElement> = l.order.iter().collect();
    all.extend(r.order.iter().filter(|pe| !l.items.contains_key(pe)));
    for pe in all {
        let (ld, rd) = (l.duplicates.contains(pe), r.duplicates.contains(pe));
        c.path.push_element(pe);
        if ld || rd {
            // Duplicated items are compared as one value, as upstream's.
            let count = |items: &[Value]| {
                items
                    .iter()
                    .enumerate()
                    .filter(|(i, v)| item_element(list, v, *i, &[]).ok().as_ref() == Some(pe))
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            };
            let (lv, rv) = (count(old), count(new));
            match (lv.is_empty(), rv.is_empty()) {
                (true, false) => out.added.insert(&c.path),
                (false, true) => out.removed.insert(&c.path),
                _ if lv != rv => out.modified.insert(&c.path),
                _ => {}
            }
        } else {
            compare_at(c, l.items.get(pe).copied(), r.items.get(pe).copied(), out)?;
        }
        c.path.pop();
    }
    Ok(())
}

// ---- Merge --------------------------------------------------------------------------------

/// `config` merged into `live` (upstream's `Merge`, the heart of an apply): maps field by
/// field, associative lists item by item in upstream's order, leaves from `config`.
pub fn merge(schema: Schema, live: &Value, config: &Value) -> Result<Value, TypeError> {
    let mut cursor = Cursor::new(schema);
    Ok(merge_at(&mut cursor, Some(live), Some(config))?.unwrap_or(Value::Null))
}

fn merge_at<'a>(
    c: &mut Cursor<'a>,
    lhs: Option<&'a Value>,
    rhs: Option<&'a Value>,
) -> Result<Option<Value>, TypeError> {
    match (lhs, rhs) {
        (None, None) => Ok(None),
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            if c.atomic_map() || (l.is_empty() && r.is_empty()) {
                return Ok(Some(Value::Object(r.clone())));
            }
            let mut out = Map::new();
            for (k, lv) in l {
                c.names.push(k);
                c.path.push_field(k);
                let merged = merge_at(c, Some(lv), r.get(k))?;
                c.path.pop();
                c.names.pop();
                if let Some(v) = merged {
                    out.insert(k.clone(), v);
                }
            }
            for (k, rv) in r {
                if l.contains_key(k) {
                    continue;
                }
                c.names.push(k);
                c.path.push_field(k);
                let merged = merge_at(c, None, Some(rv))?;
                c.path.pop();
                c.names.pop();
                if let Some(v) = merged {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) => {
            let list = c.list_type();
            if list == ListType::Atomic || (l.is_empty() && r.is_empty()) {
                return Ok(Some(Value::Array(r.clone())));
            }
            merge_items(c, list, l, r).map(Some)
        }
        (_, Some(Value::Array(r))) => {
            // A configured list is still checked for duplicate keys.
            let list = c.list_type();
            if list != ListType::Atomic {
                index_items(list, r, &c.path, true)?;
            }
            Ok(Some(Value::Array(r.clone())))
        }
        (_, Some(r)) => Ok(Some(r.clone())),
        (Some(l), None) => Ok(Some(l.clone())),
    }
}

/// Upstream's associative list merge: live items keep their places; configured items come in
/// the configuration's order, new ones after the shared item they follow there.
fn merge_items<'a>(
    c: &mut Cursor<'a>,
    list: ListType,
    lhs: &'a [Value],
    rhs: &'a [Value],
) -> Result<Value, TypeError> {
    let r = index_items(list, rhs, &c.path, true)?;
    let l = index_items(list, lhs, &c.path, false)?;
    let mut shared = r
        .order
        .iter()
        .filter(|pe| l.items.contains_key(pe))
        .collect::<std::collections::VecDeque<_>>();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: std::collections::BTreeSet<&PathElement> = Default::default();
    let mut out = Vec::with_capacity(l.order.len().max(r.order.len()));
    let (l_len, r_len) = (l.order.len(), r.order.len());
    let (mut li, mut ri) = (0, 0);
    let push = |c: &mut Cursor<'a>, pe: &PathElement, lv, rv, out: &mut Vec<Value>| {
        c.path.push_element(pe);
        let merged = merge_at(c, lv, rv);
        c.path.pop();
        if let Some(v) = merged? {
            out.push(v);
        }
        Ok::<_, TypeError>(())
    };
    while li < l_len || ri < r_len {
        if li < l_len && ri < r_len {
            let pe = &l.order[li];
            if *pe == r.order[ri] {
                merged_rhs.insert(pe);
                push(
                    c,
                    pe,
                    l.items.get(pe).copied(),
                    r.items.get(pe).copied(),
                    &mut out,
                )?;
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if r.items.contains_key(pe) && next_shared.is_some_and(|s| s != pe) {
                li += 1;
                continue;
            }
        }
        if li < l_len {
            let pe = &l.order[li];
            if !r.items.contains_key(pe) {
                push(c, pe, l.items.get(pe).copied(), None, &mut out)?;
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < r_len {
            let pe = &r.order[ri];
            merged_rhs.insert(pe);
            push(
                c,
                pe,
                l.items.get(pe).copied(),
                r.items.get(pe).copied(),
                &mut out,
            )?;
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(Value::Array(out))
}

// ---- RemoveItems --------------------------------------------------------------------------

/// `object` without the members of `set` (each with everything below it), as upstream's
/// `RemoveItems`. A map or list left empty by the removal is dropped, as upstream's `null`
/// decodes to an absent field.
pub fn remove_items(schema: Schema, object: &Value, set: &Set) -> Value {
    let mut cursor = Cursor::new(schema);
    remove_at(&mut cursor, object, set).unwrap_or(Value::Object(Map::new()))
}

fn remove_at<'a>(c: &mut Cursor<'a>, v: &'a Value, set: &Set) -> Option<Value> {
    match v {
        Value::Object(map) if !map.is_empty() && !c.atomic_map() => {
            let mut out = Map::new();
            for (k, child) in map {
                let pe = PathElement::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                let kept = match set.with_prefix(&pe) {
                    Some(sub) => {
                        c.names.push(k);
                        let kept = remove_at(c, child, sub);
                        c.names.pop();
                        kept
                    }
                    None => Some(child.clone()),
                };
                if let Some(kept) = kept {
                    out.insert(k.clone(), kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) if !items.is_empty() && c.list_type() != ListType::Atomic => {
            let list = c.list_type();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Ok(pe) = item_element(list, item, i, &[]) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members.contains(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(kept) = remove_at(c, item, sub) {
                            out.push(kept);
                        }
                    }
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

// ---- EnsureNamedFieldsAreMembers ------------------------------------------------------------

/// `set` with every struct field that has children made a member too (upstream's
/// `EnsureNamedFieldsAreMembers`, which prune uses so that a field emptied by pruning goes).
/// Keys of Go maps are not named fields.
pub fn ensure_named_fields_are_members(schema: Schema, set: &Set) -> Set {
    let mut names = Vec::new();
    ensure(schema, set, &mut names)
}

fn ensure<'a>(schema: Schema, set: &'a Set, names: &mut Vec<&'a str>) -> Set {
    let mut out = Set {
        members: set.members.clone(),
        children: BTreeMap::new(),
    };
    let string_map = schema.string_map(names);
    for (element, child) in &set.children {
        let pushed = match element {
            PathElement::Field(name) => {
                if !string_map {
                    out.members.insert(element.clone());
                }
                names.push(name);
                true
            }
            _ => false,
        };
        out.children
            .insert(element.clone(), ensure(schema, child, names));
        if pushed {
            names.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn a_walk_path_reuses_its_slots_and_tells_what_stayed() {
        let mut path = WalkPath::new();
        path.push_field("spec");
        path.push_field("containers");
        assert_eq!(path.take_shared(), 0, "nothing the first time");
        path.push_element(&PathElement::Index(0));
        path.pop();
        path.pop();
        path.push_field("volumes");
        assert_eq!(&*path, [field("spec"), field("volumes")]);
        assert_eq!(path.take_shared(), 1, "`spec` stayed");
        assert_eq!(path.take_shared(), 2, "all of it, when nothing moved");
        path.pop();
        path.pop();
        path.pop();
        assert!(path.is_empty());
        assert_eq!(path.take_shared(), 0);
        // A slot that held an item takes a field, and the other way round.
        path.push_field("a");
        path.push_element(&PathElement::Index(3));
        path.pop();
        path.pop();
        path.push_element(&PathElement::Index(1));
        path.push_field("b");
        assert_eq!(&*path, [PathElement::Index(1), field("b")]);
    }

    /// The shape hash of `object`, and of it with `edit` applied.
    fn same_shape(object: &Value, edit: impl FnOnce(&mut Value)) -> bool {
        let hash = |v: &Value| {
            let mut h = ShapeHash::new(&["test"]);
            h.add_object(Schema::BuiltIn, v).map(|()| h.finish())
        };
        let mut edited = object.clone();
        edit(&mut edited);
        hash(object) == hash(&edited)
    }

    #[test]
    fn shapes_differ_in_any_path_however_deep() {
        let pod = json!({"metadata": {"labels": {"a": "1"}, "name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "i",
                                                  "env": [{"name": "E", "value": "v"}]}],
                                  "nodeName": "n"}});
        // Values and keys are parameters of a shape, not part of it.
        assert!(same_shape(&pod, |p| p["spec"]["nodeName"] = json!("other")));
        assert!(same_shape(&pod, |p| p["spec"]["containers"][0]["name"] = json!("d")));
        // A field added, renamed or nulled anywhere, after the walk went deep and came back.
        assert!(!same_shape(&pod, |p| p["metadata"]["labels"]["b"] = json!("2")));
        assert!(!same_shape(&pod, |p| p["spec"]["containers"][0]["env"]
            [0]["valueFrom"] = json!({})));
        assert!(!same_shape(&pod, |p| {
            let name = p["metadata"].as_object_mut().and_then(|m| m.remove("name"));
            p["metadata"]["nam"] = name.unwrap_or_default();
        }));
        assert!(!same_shape(&pod, |p| p["spec"]["nodeName"] = Value::Null));
    }
}
