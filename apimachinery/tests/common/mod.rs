//! Helpers shared by the integration tests: the API server's pipeline (typed round trip,
//! defaults, round trip, validation) and small JSON editing tools.
#![allow(dead_code)]

use apimachinery::defaults::apply_defaults;
use apimachinery::registry::{ResourceInfo, find_kind};
use apimachinery::validation::{self, ErrorType, FieldError};
use serde_json::Value;

pub fn info(obj: &Value) -> &'static ResourceInfo {
    let av = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    find_kind(av, kind).unwrap_or_else(|| panic!("{av} {kind} is not served"))
}

/// What the API server does to a request body before validating it.
pub fn prepare(obj: &Value) -> Value {
    let info = info(obj);
    let mut v = (info.round_trip)(obj).expect("typed round trip");
    apply_defaults(info, &mut v);
    (info.round_trip)(&v).expect("defaulted objects stay typed")
}

pub fn create(obj: &Value) -> Vec<FieldError> {
    let v = prepare(obj);
    validation::validate_create(info(&v), &v)
}

/// Validates an update of (the stored form of) `old` edited by `edit`.
pub fn update(old: &Value, edit: impl FnOnce(&mut Value)) -> Vec<FieldError> {
    let stored = prepare(old);
    let mut new = stored.clone();
    edit(&mut new);
    let new = prepare(&new);
    validation::validate_update(info(&stored), &stored, &new)
}

pub fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(FieldError::message).collect()
}

/// Asserts that exactly these messages were produced.
#[track_caller]
pub fn assert_messages(errs: &[FieldError], want: &[&str]) {
    assert_eq!(messages(errs), want.iter().map(|s| s.to_string()).collect::<Vec<_>>());
}

/// Asserts that one of the errors has this field, type and detail (for values Go prints as
/// structs, whose rendering differs).
#[track_caller]
pub fn assert_has(errs: &[FieldError], field: &str, ty: ErrorType, detail: &str) {
    assert!(
        errs.iter().any(|e| e.field == field && e.error_type == ty && e.detail == detail),
        "no {ty:?} error on {field} with detail {detail:?} in {:#?}",
        messages(errs)
    );
}

#[track_caller]
pub fn assert_contains(errs: &[FieldError], message: &str) {
    assert!(messages(errs).iter().any(|m| m == message), "missing {message:?} in {:#?}", messages(errs));
}

/// A copy of `obj` with the value at the JSON pointer replaced, creating missing objects.
pub fn set(obj: &Value, pointer: &str, value: Value) -> Value {
    let mut out = obj.clone();
    set_in(&mut out, pointer, value);
    out
}

pub fn set_in(obj: &mut Value, pointer: &str, value: Value) {
    let parts: Vec<String> = pointer.trim_start_matches('/').split('/').map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
    let (last, parents) = parts.split_last().expect("pointer");
    let mut cur = obj;
    for part in parents {
        cur = match cur {
            Value::Array(arr) => &mut arr[part.parse::<usize>().expect("array index")],
            other => {
                if other.is_null() {
                    *other = Value::Object(Default::default());
                }
                other.as_object_mut().expect("object on the path").entry(part.clone()).or_insert(Value::Null)
            }
        };
    }
    match cur {
        Value::Array(arr) => {
            let i: usize = last.parse().expect("array index");
            if i == arr.len() {
                arr.push(value);
            } else {
                arr[i] = value;
            }
        }
        other => {
            if other.is_null() {
                *other = Value::Object(Default::default());
            }
            other.as_object_mut().expect("object at the end").insert(last.clone(), value);
        }
    }
}

/// A copy of `obj` without the member at the JSON pointer.
pub fn remove(obj: &Value, pointer: &str) -> Value {
    let mut out = obj.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(m) = out.pointer_mut(parent).and_then(Value::as_object_mut) {
        m.remove(key);
    }
    out
}
