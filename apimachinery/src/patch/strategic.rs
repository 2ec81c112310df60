//! Strategic merge patch, following `strategicpatch.StrategicMergeMapPatch` (parallel lists
//! merged, unmatched nulls ignored), including its list ordering rules.
//!
//! Where the Go code copies a patch value into the object untouched (a field the object lacks, a
//! list replaced wholesale, the items of `$patch: replace`), the Go apiserver relies on decoding
//! into typed structs to drop leftover directive keys and nulls. Here the result is JSON, so such
//! values are merged into an empty value instead, which applies and removes their directives.
//!
//! Deliberate differences from the Go code, all on patches it mishandles or rejects:
//! - `$patch: merge` is accepted on maps and list items as the explicit default (Go rejects it,
//!   though the API conventions document it).
//! - `$deleteFromPrimitiveList` on a field the object lacks removes nothing (Go adds the values);
//!   on a field without merge strategy it is an error (Go replaces the list with the values).

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::PatchMeta;
use super::schema::Ty;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// A rule of strategic merge patch the patch breaks, and where in the patch.
#[derive(Debug)]
pub(super) struct SmpError {
    /// Innermost segment first: errors collect their location while propagating outwards.
    segments: Vec<String>,
    pub(super) message: String,
}

impl SmpError {
    fn new(message: impl Into<String>) -> SmpError {
        SmpError { segments: Vec::new(), message: message.into() }
    }

    /// `spec.template.spec.containers[name=web].env`
    pub(super) fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.segments.iter().rev() {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
        }
        path
    }
}

type Result<T> = std::result::Result<T, SmpError>;

trait At<T> {
    fn at(self, segment: impl FnOnce() -> String) -> Result<T>;
}

impl<T> At<T> for Result<T> {
    fn at(self, segment: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|mut e| {
            e.segments.push(segment());
            e
        })
    }
}

/// How one field is patched, from its [`PatchMeta`].
#[derive(Debug, Clone, Copy, Default)]
struct Strategy {
    merge: bool,
    replace: bool,
    merge_key: Option<&'static str>,
}

impl Strategy {
    fn of(meta: Option<PatchMeta>) -> Strategy {
        let Some(meta) = meta else {
            return Strategy::default();
        };
        let mut strategy = Strategy { merge_key: meta.merge_key, ..Strategy::default() };
        for part in meta.strategy.split(',') {
            match part.trim() {
                "merge" => strategy.merge = true,
                "replace" => strategy.replace = true,
                _ => {}
            }
        }
        strategy
    }
}

/// Merges `patch` into `original`, an object of type `ty`.
pub(super) fn merge_map(mut original: Map<String, Value>, mut patch: Map<String, Value>, ty: Ty) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.shift_remove(DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => return new_map(patch, ty),
            // Kubernetes leaves an empty map, not an absent field.
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => return Err(SmpError::new(format!("invalid {DIRECTIVE} directive {directive}: expected \"replace\", \"delete\" or \"merge\""))),
        }
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_order(&mut original, &mut patch, ty)?;

    for (key, patch_value) in patch {
        if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let field = directive_field(DELETE_FROM_PRIMITIVE_LIST, rest)?;
            delete_from_primitive_list(&mut original, field, patch_value, ty).at(|| key.clone())?;
            continue;
        }
        if key.starts_with('$') && !ty.has_property(&key) {
            return Err(SmpError::new(format!("unknown directive {key}")));
        }
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let field_ty = ty.field(&key);
        let strategy = Strategy::of(ty.meta(&key));
        match original.get_mut(&key) {
            Some(slot) if !slot.is_null() => {
                let current = std::mem::take(slot);
                *slot = merge_value(Some(current), patch_value, field_ty, strategy).at(|| key.clone())?;
            }
            _ => {
                let value = merge_value(None, patch_value, field_ty, strategy).at(|| key.clone())?;
                original.insert(key, value);
            }
        }
    }
    Ok(original)
}

/// A map built from patch content alone, with its directives applied.
fn new_map(patch: Map<String, Value>, ty: Ty) -> Result<Map<String, Value>> {
    merge_map(Map::new(), patch, ty)
}

/// A list taken from the patch as it is (no merge strategy, or `$patch: replace`), with the
/// directives inside its items applied.
fn new_list(items: Vec<Value>, item_ty: Ty) -> Result<Vec<Value>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => new_map(map, item_ty).map(Value::Object).at(|| format!("[{i}]")),
            Value::Array(list) => new_list(list, item_ty.items()).map(Value::Array).at(|| format!("[{i}]")),
            scalar => Ok(scalar),
        })
        .collect()
}

/// Merges a patch value into the object's current value of a field (`None` when absent). A type
/// mismatch between the two replaces the current value.
fn merge_value(original: Option<Value>, patch: Value, ty: Ty, strategy: Strategy) -> Result<Value> {
    match patch {
        Value::Object(patch) => match original {
            Some(Value::Object(original)) if !strategy.replace => merge_map(original, patch, ty).map(Value::Object),
            _ => new_map(patch, ty).map(Value::Object),
        },
        Value::Array(patch) if strategy.merge => {
            let original = match original {
                Some(Value::Array(original)) => original,
                _ => Vec::new(),
            };
            merge_list(original, patch, ty.items(), strategy.merge_key).map(Value::Array)
        }
        Value::Array(patch) => new_list(patch, ty.items()).map(Value::Array),
        scalar => Ok(scalar),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// The one kind all items of both lists share; Kubernetes refuses mixed lists and lists of lists.
fn item_kind(original: &[Value], patch: &[Value]) -> Result<Option<ItemKind>> {
    let mut kind = None;
    for item in original.iter().chain(patch) {
        let this = match item {
            Value::Null => ItemKind::Null,
            Value::Bool(_) => ItemKind::Bool,
            Value::Number(_) => ItemKind::Number,
            Value::String(_) => ItemKind::String,
            Value::Object(_) => ItemKind::Object,
            Value::Array(_) => return Err(SmpError::new("lists of lists cannot be merged")),
        };
        match kind {
            None => kind = Some(this),
            Some(seen) if seen != this => return Err(SmpError::new(format!("list items are not all of one type: found {seen:?} and {this:?} items"))),
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// Merges a list with merge strategy. Items of the patch replace or merge into the items with
/// the same merge key (or are the same primitive); the result keeps the patch's relative order
/// for its items and the object's for the rest, the patch's items first where the two orders do
/// not say otherwise (which is why a new item lands at the front).
fn merge_list(original: Vec<Value>, patch: Vec<Value>, item_ty: Ty, merge_key: Option<&'static str>) -> Result<Vec<Value>> {
    match item_kind(&original, &patch)? {
        None => Ok(original),
        Some(ItemKind::Object) => {
            let Some(key) = merge_key else {
                return Err(SmpError::new("this list of objects has no merge key, so its items cannot be merged"));
            };
            let (original, patch) = match split_special_items(original, patch, key)? {
                SpecialItems::Replace(items) => return new_list(items, item_ty),
                SpecialItems::Merge { original, patch } => (original, patch),
            };
            let server_order = Positions::of(&original, Some(key));
            let patch_order = Positions::of(&patch, Some(key));
            let merged = merge_items(original, patch, item_ty, key)?;
            Ok(order_merged(merged, &patch_order, &server_order, Some(key)))
        }
        Some(_) => {
            let server_order = Positions::of(&original, None);
            let patch_order = Positions::of(&patch, None);
            let mut seen = HashSet::with_capacity(original.len() + patch.len());
            let merged: Vec<Value> = original.into_iter().chain(patch).filter(|item| seen.insert(item.to_string())).collect();
            Ok(order_merged(merged, &patch_order, &server_order, None))
        }
    }
}

enum SpecialItems {
    /// `$patch: replace` appeared in the list: these items are the whole new list.
    Replace(Vec<Value>),
    /// The object's items after `$patch: delete`s, and the patch's items still to merge.
    Merge { original: Vec<Value>, patch: Vec<Value> },
}

fn split_special_items(mut original: Vec<Value>, patch: Vec<Value>, key: &str) -> Result<SpecialItems> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    let mut deleted = HashSet::new();
    for (i, item) in patch.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(SmpError::new("list item is not an object")).at(|| format!("[{i}]"));
        };
        let Some(directive) = item.shift_remove(DIRECTIVE) else {
            rest.push(Value::Object(item));
            continue;
        };
        let segment = || item_segment(&item, key, i);
        match directive.as_str() {
            Some("delete") => {
                let Some(value) = item.get(key) else {
                    return Err(SmpError::new(format!("{DIRECTIVE}: delete needs the merge key {key:?} to find the item to delete"))).at(segment);
                };
                deleted.insert(value.to_string());
            }
            // The marker item only says what to do with the list; it is not an item itself.
            Some("replace") => replace = true,
            Some("merge") => {
                if item.contains_key(key) {
                    rest.push(Value::Object(item));
                }
            }
            _ => {
                return Err(SmpError::new(format!("invalid {DIRECTIVE} directive {directive}: expected \"replace\", \"delete\" or \"merge\""))).at(segment);
            }
        }
    }
    if !deleted.is_empty() {
        original.retain(|item| !item.get(key).is_some_and(|v| deleted.contains(&v.to_string())));
    }
    Ok(if replace { SpecialItems::Replace(rest) } else { SpecialItems::Merge { original, patch: rest } })
}

fn merge_items(mut merged: Vec<Value>, patch: Vec<Value>, item_ty: Ty, key: &str) -> Result<Vec<Value>> {
    let mut by_key: HashMap<String, usize> = HashMap::with_capacity(merged.len() + patch.len());
    for (i, item) in merged.iter().enumerate() {
        if let Some(value) = item.get(key) {
            by_key.entry(value.to_string()).or_insert(i);
        }
    }
    for (i, item) in patch.into_iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(SmpError::new("list item is not an object")).at(|| format!("[{i}]"));
        };
        let Some(value) = item.get(key).cloned() else {
            return Err(SmpError::new(format!("list item has no merge key {key:?}"))).at(|| format!("[{i}]"));
        };
        let segment = || format!("[{key}={}]", scalar_text(&value));
        let id = value.to_string();
        match by_key.get(&id).and_then(|&i| merged.get_mut(i)) {
            Some(slot) => {
                let current = std::mem::take(slot);
                let result = match current {
                    Value::Object(current) => merge_map(current, item, item_ty),
                    _ => new_map(item, item_ty),
                };
                *slot = Value::Object(result.at(segment)?);
            }
            None => {
                by_key.insert(id, merged.len());
                merged.push(Value::Object(new_map(item, item_ty).at(segment)?));
            }
        }
    }
    Ok(merged)
}

/// What identifies an item of a merged list: its merge key's value, or the primitive itself.
/// `None` (an item without its merge key) matches only other such items, as nil == nil in Go.
fn identity<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(key) => item.get(key),
        None => Some(item),
    }
}

/// Where each identity first occurs in a list, so ordering long lists stays linear-ish. JSON text
/// stands in for the value: equal values print equally, as `1` and `1.0` differ in both.
struct Positions(HashMap<Option<String>, usize>);

impl Positions {
    fn of(items: &[Value], key: Option<&str>) -> Positions {
        let mut positions = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            positions.entry(identity(item, key).map(Value::to_string)).or_insert(i);
        }
        Positions(positions)
    }

    fn get(&self, item: &Value, key: Option<&str>) -> Option<usize> {
        self.0.get(&identity(item, key).map(Value::to_string)).copied()
    }
}

/// Orders a merged list (Go's `normalizeElementOrder`): the items named in `patch_order` follow
/// it, the others follow `server_order`, and the two runs are interleaved so that a server item
/// only goes before a patch item when the server's order puts it first.
fn order_merged(merged: Vec<Value>, patch_order: &Positions, server_order: &Positions, key: Option<&str>) -> Vec<Value> {
    // Each item with its place in the patch and on the server, computed once.
    let (mut from_patch, mut server_only): (Vec<_>, Vec<_>) = merged
        .into_iter()
        .map(|item| (patch_order.get(&item, key), server_order.get(&item, key), item))
        .partition(|(in_patch, _, _)| in_patch.is_some());
    from_patch.sort_by_key(|(in_patch, _, _)| *in_patch);
    server_only.sort_by_key(|(_, on_server, _)| on_server.unwrap_or(usize::MAX));

    let mut left = VecDeque::from(server_only);
    let mut right = VecDeque::from(from_patch);
    let mut ordered = Vec::with_capacity(left.len() + right.len());
    loop {
        let take_server_item = match (left.front(), right.front()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l, _)), Some((_, r, _))) => matches!((l, r), (Some(li), Some(ri)) if li < ri),
        };
        let next = if take_server_item { left.pop_front() } else { right.pop_front() };
        ordered.extend(next.map(|(_, _, item)| item));
    }
    ordered
}

/// `$retainKeys`: the fields of the object not listed are cleared, and the patch may only set
/// listed fields.
fn retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<()> {
    let Some(directive) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = directive else {
        return Err(SmpError::new(format!("{RETAIN_KEYS} must be a list of field names, found {directive}")));
    };
    let mut keep = Vec::with_capacity(list.len());
    for name in list {
        match name {
            Value::String(name) => keep.push(name),
            other => return Err(SmpError::new(format!("{RETAIN_KEYS} must be a list of field names, found {other}"))),
        }
    }
    for (key, value) in patch.iter() {
        if value.is_null() || key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if !keep.contains(key) {
            return Err(SmpError::new(format!("the patch sets {key:?}, which is not in {RETAIN_KEYS} {keep:?}")));
        }
    }
    original.retain(|key, _| keep.contains(key));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list (if the patch has one) and orders the
/// result by the directive, the object's remaining items interleaved by their current order.
fn set_element_order(original: &mut Map<String, Value>, patch: &mut Map<String, Value>, ty: Ty) -> Result<()> {
    let directives: Vec<(String, String)> =
        patch.keys().filter_map(|k| Some((k.clone(), k.strip_prefix(SET_ELEMENT_ORDER)?.to_string()))).collect();
    for (directive, rest) in directives {
        let Some(order) = patch.shift_remove(&directive) else {
            continue;
        };
        let field = directive_field(SET_ELEMENT_ORDER, &rest)?;
        set_order_of(original, patch, field, order, ty).at(|| directive.clone())?;
    }
    Ok(())
}

fn set_order_of(original: &mut Map<String, Value>, patch: &mut Map<String, Value>, field: &str, order: Value, ty: Ty) -> Result<()> {
    let Value::Array(order) = order else {
        return Err(SmpError::new(format!("must be a list, found {order}")));
    };
    let strategy = Strategy::of(ty.meta(field));
    let key = strategy.merge_key;
    if let Some(key) = key {
        if order.iter().any(|item| item.get(key).is_none()) {
            return Err(SmpError::new(format!("every item must be an object with the merge key {key:?}")));
        }
    }
    let current = match original.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items.clone()),
        Some(_) => return Err(SmpError::new(format!("{field:?} is not a list in the object"))),
    };
    let patched = match patch.get(field) {
        None => None,
        // The patch deletes the list; there is nothing left to order.
        Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => Some(items.clone()),
        Some(_) => return Err(SmpError::new(format!("{field:?} is not a list in the patch"))),
    };
    if let Some(patched) = &patched {
        check_patch_follows_order(patched, &order, key)?;
    }
    let current = match (current, patched) {
        (None, None) => return Ok(()),
        (Some(current), None) => current,
        (current, Some(patched)) => {
            patch.shift_remove(field);
            let current = current.unwrap_or_default();
            let server_order = Positions::of(&current, key);
            let item_ty = ty.field(field).items();
            let merged = if strategy.merge { merge_list(current, patched, item_ty, key) } else { new_list(patched, item_ty) };
            let merged = merged.at(|| field.to_string())?;
            original.insert(field.to_string(), Value::Array(order_merged(merged, &Positions::of(&order, key), &server_order, key)));
            return Ok(());
        }
    };
    let server_order = Positions::of(&current, key);
    original.insert(field.to_string(), Value::Array(order_merged(current, &Positions::of(&order, key), &server_order, key)));
    Ok(())
}

/// The patch's own items must appear in the order list, in the same relative order (Go's
/// `validatePatchWithSetOrderList`); deletions and directive items are exempt.
fn check_patch_follows_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<()> {
    let items: Vec<&Value> = patch.iter().filter(|item| item.get(DIRECTIVE).is_none()).collect();
    let mut next = 0;
    for wanted in order {
        let Some(item) = items.get(next) else {
            break;
        };
        if identity(item, key).is_some() && identity(item, key) == identity(wanted, key) {
            next += 1;
        }
    }
    if next < items.len() {
        return Err(SmpError::new("the items of the patch list are missing from, or ordered differently than in, the order list"));
    }
    Ok(())
}

fn delete_from_primitive_list(original: &mut Map<String, Value>, field: &str, patch_value: Value, ty: Ty) -> Result<()> {
    let Value::Array(remove) = patch_value else {
        return Err(SmpError::new(format!("must be a list of the values to remove, found {patch_value}")));
    };
    if remove.iter().any(|v| v.is_object() || v.is_array()) {
        return Err(SmpError::new("can only remove primitive values"));
    }
    let strategy = Strategy::of(ty.meta(field));
    if !strategy.merge || strategy.merge_key.is_some() {
        return Err(SmpError::new(format!("{field:?} is not a list of primitives with patch strategy merge")));
    }
    if let Some(Value::Array(items)) = original.get_mut(field) {
        let remove: HashSet<String> = remove.iter().map(Value::to_string).collect();
        items.retain(|item| !remove.contains(&item.to_string()));
    }
    Ok(())
}

/// The field a `$directive/<field>` key names.
fn directive_field<'a>(directive: &str, rest: &'a str) -> Result<&'a str> {
    match rest.strip_prefix('/') {
        Some(field) if !field.is_empty() => Ok(field),
        _ => Err(SmpError::new(format!("malformed directive {directive}{rest}: expected {directive}/<field>"))),
    }
}

fn item_segment(item: &Map<String, Value>, key: &str, index: usize) -> String {
    match item.get(key) {
        Some(value) => format!("[{key}={}]", scalar_text(value)),
        None => format!("[{index}]"),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
