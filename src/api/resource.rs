//! The verbs on resources: create, get, list, update, patch, delete, deletecollection, and the
//! status / scale / binding / eviction / finalize subresources.
//!
//! Every write is a conditional transaction on the replicated store: create fails if the key is
//! live, update and delete carry the revision they read and fail with Conflict if it moved (the
//! check happens inside Raft's apply). A request without a resourceVersion of its own retries
//! on such conflicts (Kubernetes' GuaranteedUpdate); one that names a resourceVersion gets 409.

use std::collections::HashMap;

use apimachinery::registry::{self, ResourceInfo};
use apimachinery::selector::{self, FieldSelector, LabelSelector};
use apimachinery::status::{ApiError, Cause};
use apimachinery::{defaults, fields, patch, validation};
use serde_json::{Value, json};
use storage::{Op, OpResult};

use super::Api;
use super::meta::{self, meta_mut};
use super::objects::{ReadAt, already_exists, conflict, decode, encode, not_found, set_rv, store_error};
use super::request::{RequestInfo, Verb};

/// The outcome of a verb: HTTP status, body, and warnings for the `Warning` header.
pub struct Outcome {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Outcome {
    fn ok(body: Value) -> Outcome {
        Outcome { code: 200, body, warnings: Vec::new() }
    }
}

const MAX_CONFLICT_RETRIES: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

fn field_validation(q: &HashMap<String, String>) -> Result<FieldValidation, ApiError> {
    match q.get("fieldValidation").map(|s| s.as_str()) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::BadRequest(format!("fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"))),
    }
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(|s| s.as_str()) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!("dryRun must be All, not {other:?}"))),
    }
}

/// Parses a JSON request body; other encodings are refused with 415 by the caller.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest("the request body is empty: send the object as JSON".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn invalid(info: &ResourceInfo, name: &str, errs: Vec<validation::FieldError>) -> ApiError {
    ApiError::Invalid {
        group: info.group.to_string(),
        kind: info.kind.to_string(),
        name: name.to_string(),
        causes: errs.iter().map(|e| Cause { reason: e.reason().to_string(), message: e.body(), field: e.field.clone() }).collect(),
    }
}

fn invalid_one(info: &ResourceInfo, name: &str, reason: &str, field: &str, message: String) -> ApiError {
    ApiError::Invalid {
        group: info.group.to_string(),
        kind: info.kind.to_string(),
        name: name.to_string(),
        causes: vec![Cause { reason: reason.into(), message, field: field.into() }],
    }
}

/// Checks apiVersion/kind, decodes through the typed schema (wrong types → 400), and applies the
/// field validation policy to unknown fields. Returns the normalized object and warnings.
pub fn admit_body(info: &ResourceInfo, obj: Value, fv: FieldValidation, expect: (&str, &str)) -> Result<(Value, Vec<String>), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    let (want_api, want_kind) = expect;
    let mut obj = obj;
    // A body without apiVersion/kind takes the endpoint's, as kube-apiserver's decoder does
    // (the Python client omits them).
    let api_version = obj.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let kind = obj.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if api_version.is_empty() {
        obj["apiVersion"] = json!(want_api);
    }
    if kind.is_empty() {
        obj["kind"] = json!(want_kind);
    }
    if (!kind.is_empty() && kind != want_kind) || (!api_version.is_empty() && api_version != want_api) {
        return Err(ApiError::BadRequest(format!(
            "the object in the request is a {kind} ({api_version}), but this endpoint takes {want_kind} ({want_api})"
        )));
    }
    let kind = want_kind;
    // The body of a subresource may be another kind (Scale, Binding): decode it as that kind.
    let round_trip = if want_kind == info.kind {
        info.round_trip
    } else {
        registry::find_kind(want_api, want_kind)
            .map(|r| r.round_trip)
            .or_else(|| registry::subresource_round_trip(want_api, want_kind))
            .ok_or_else(|| ApiError::Internal(format!("no decoder for {want_kind} ({want_api}) bodies")))?
    };
    let typed = round_trip(&obj).map_err(|e| {
        ApiError::BadRequest(format!("{kind} in version \"{}\" cannot be handled as a {kind}: {e}", want_api.rsplit('/').next().unwrap_or(want_api)))
    })?;
    let mut warnings = Vec::new();
    if fv != FieldValidation::Ignore {
        let unknown = fields::unknown_fields(&obj, &typed);
        if !unknown.is_empty() {
            if fv == FieldValidation::Strict {
                let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(ApiError::BadRequest(format!(".{}: strict decoding error: {}", "", list.join(", ")).replacen(".: ", "", 1)));
            }
            warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
        }
    }
    Ok((typed, warnings))
}

fn labels_match(sel: &LabelSelector, fsel: &FieldSelector, obj: &Value) -> bool {
    sel.matches_object(obj) && fsel.matches(obj)
}

pub fn selectors(info: &ResourceInfo, q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = match q.get("labelSelector") {
        Some(s) => selector::parse_label_selector(s).map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?,
        None => LabelSelector::default(),
    };
    let fs = match q.get("fieldSelector") {
        Some(s) => selector::parse_field_selector(s, info.kind).map_err(ApiError::BadRequest)?,
        None => FieldSelector::default(),
    };
    Ok((ls, fs))
}

fn list_kind(info: &ResourceInfo) -> String {
    format!("{}List", info.kind)
}

/// A continue token: the revision of the first page and the last key returned.
fn encode_continue(rev: u64, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key})).expect("json"))
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::BadRequest(format!("continue key {token:?} is not valid: start a new list without it"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rev = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    Ok((rev, start))
}

impl Api {
    // --------------------------------------------------------------------------------------
    // Reads
    // --------------------------------------------------------------------------------------

    pub async fn get(&self, ri: &RequestInfo, q: &HashMap<String, String>) -> Result<Outcome, ApiError> {
        let name = ri.name.as_deref().expect("get has a name");
        let at = ReadAt::from_query(q.get("resourceVersion").map(|s| s.as_str()), q.get("resourceVersionMatch").map(|s| s.as_str()))?;
        let obj = self.objects.get(ri.info, ri.namespace.as_deref(), name, at).await?;
        match ri.subresource.as_deref() {
            None | Some("status") => Ok(Outcome::ok(obj)),
            Some("scale") if ri.info.has_scale => Ok(Outcome::ok(scale_of(ri.info, &obj))),
            Some(sub) => Err(self.subresource_unavailable(ri.info, sub)),
        }
    }

    /// Lists objects (one page when `limit` is set), filtered by selectors.
    pub async fn list_objects(&self, ri: &RequestInfo, q: &HashMap<String, String>) -> Result<(Vec<Value>, u64, Option<String>), ApiError> {
        let (ls, fs) = selectors(ri.info, q)?;
        let limit: usize = match q.get("limit").filter(|s| !s.is_empty()) {
            Some(l) => l.parse().map_err(|_| ApiError::BadRequest(format!("limit must be a non-negative integer, not {l:?}")))?,
            None => 0,
        };
        let prefix = ri.info.list_prefix(ri.namespace.as_deref());
        let (at_rev, mut start_after) = match q.get("continue").filter(|s| !s.is_empty()) {
            Some(token) => {
                let (rev, start) = decode_continue(token)?;
                if rev < self.node.store.compacted_revision() {
                    return Err(ApiError::Gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                    ));
                }
                (Some(rev), Some(start))
            }
            None => {
                let at = ReadAt::from_query(q.get("resourceVersion").map(|s| s.as_str()), q.get("resourceVersionMatch").map(|s| s.as_str()))?;
                self.objects.prepare_read(at).await?;
                match at {
                    ReadAt::Exact(r) => (Some(r), None),
                    _ => (None, None),
                }
            }
        };
        let mut items = Vec::new();
        let mut rev = at_rev;
        let mut next = None;
        loop {
            let want = if limit > 0 { limit - items.len() } else { 1000 };
            let page = self.node.store.list(&prefix, start_after.as_deref(), want, rev).map_err(store_error)?;
            rev = Some(page.rev);
            for kv in &page.items {
                let obj = decode(kv)?;
                if labels_match(&ls, &fs, &obj) {
                    items.push(obj);
                }
            }
            let last = page.items.last().map(|kv| kv.key.clone());
            if !page.more {
                break;
            }
            start_after = last;
            if limit > 0 && items.len() >= limit {
                next = start_after.as_ref().map(|k| encode_continue(page.rev, k));
                break;
            }
        }
        Ok((items, rev.unwrap_or(0), next))
    }

    pub async fn list(&self, ri: &RequestInfo, q: &HashMap<String, String>) -> Result<(Value, Vec<Value>), ApiError> {
        let (items, rev, next) = self.list_objects(ri, q).await?;
        let mut metadata = json!({"resourceVersion": rev.to_string()});
        if let Some(c) = next {
            metadata["continue"] = json!(c);
        }
        let list = json!({
            "kind": list_kind(ri.info),
            "apiVersion": ri.info.api_version(),
            "metadata": metadata,
            "items": items,
        });
        Ok((list, Vec::new()))
    }

    // --------------------------------------------------------------------------------------
    // Create
    // --------------------------------------------------------------------------------------

    pub async fn create(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Value) -> Result<Outcome, ApiError> {
        match ri.subresource.as_deref() {
            None => {}
            Some("binding") if ri.info.plural == "pods" => return Box::pin(self.bind(ri, q, body)).await,
            Some("eviction") if ri.info.plural == "pods" => return Box::pin(self.evict(ri, q, body)).await,
            Some(sub) => return Err(self.subresource_unavailable(ri.info, sub)),
        }
        if ri.name.is_some() {
            return Err(ApiError::MethodNotAllowed(format!("POST creates {} in a collection: drop the name from the URL", ri.info.plural)));
        }
        let info = ri.info;
        let fv = field_validation(q)?;
        let dry = dry_run(q)?;
        let api_version = info.api_version();
        let (mut obj, warnings) = admit_body(info, body, fv, (&api_version, info.kind))?;
        // Namespace: the URL's; an object naming another is refused as Kubernetes does.
        if info.namespaced {
            let ns = ri.namespace.clone().ok_or_else(|| ApiError::BadRequest(format!("{} must be created in a namespace: POST to /namespaces/<ns>/{}", info.plural, info.plural)))?;
            if let Some(body_ns) = meta::meta_str(&obj, "namespace")
                && body_ns != ns
            {
                return Err(ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()));
            }
            meta_mut(&mut obj).insert("namespace".into(), json!(ns));
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        // Name: given, or generated from generateName.
        let name = match meta::name(&obj) {
            Some(n) => n.to_string(),
            None => match meta::meta_str(&obj, "generateName") {
                Some(prefix) => {
                    let base = if prefix.len() > 58 { &prefix[..58] } else { prefix };
                    format!("{base}{}", meta::name_suffix())
                }
                None => {
                    return Err(invalid_one(info, "", "FieldValueRequired", "metadata.name", "Required value: name or generateName is required".into()));
                }
            },
        };
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), json!(name));
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"] {
                m.remove(f);
            }
        }
        if obj.get("spec").is_some() {
            meta_mut(&mut obj).insert("generation".into(), json!(1));
        }
        reset_status_on_create(info, &mut obj);
        defaults::apply_defaults(info, &mut obj);
        let errs = validation::validate_create(info, &obj);
        if !errs.is_empty() {
            return Err(invalid(info, &name, errs));
        }
        if info.namespaced {
            self.check_namespace_accepts(ri.namespace.as_deref().expect("namespaced")).await?;
        }
        for _attempt in 0..MAX_CONFLICT_RETRIES {
            let mut ops = vec![Op::Create { key: info.key(ri.namespace.as_deref(), &name), value: bytes::Bytes::new() }];
            let claims = self.admit_create(info, &mut obj, &name).await?;
            if let Op::Create { value, .. } = &mut ops[0] {
                *value = encode(&obj);
            }
            let n_claims = claims.len();
            ops.extend(claims);
            if dry {
                return Ok(Outcome { code: 201, body: obj, warnings });
            }
            let (rev, results) = self.objects.txn(ops, true).await?;
            match &results[0] {
                OpResult::Ok { .. } => {
                    set_rv(&mut obj, rev);
                    return Ok(Outcome { code: 201, body: obj, warnings });
                }
                OpResult::AlreadyExists { .. } => return Err(already_exists(info, &name)),
                OpResult::Aborted if n_claims > 0 => {
                    // An allocated IP or port was taken concurrently: allocate again.
                    continue;
                }
                other => return Err(ApiError::Internal(format!("create of {name}: unexpected result {other:?}"))),
            }
        }
        Err(ApiError::ServiceUnavailable("could not allocate a free address or port after many attempts".into()))
    }

    async fn check_namespace_accepts(&self, ns: &str) -> Result<(), ApiError> {
        let nsinfo = registry::find("", "v1", "namespaces").expect("namespaces registered");
        let (kv, _) = self.node.store.get(&nsinfo.key(None, ns), None).map_err(store_error)?;
        match kv {
            None => Err(ApiError::NotFound { group_resource: "namespaces".into(), name: ns.to_string() }),
            Some(kv) => {
                let obj = decode(&kv)?;
                if meta::is_deleting(&obj) {
                    Err(ApiError::Forbidden(format!("unable to create new content in namespace {ns} because it is being terminated")))
                } else {
                    Ok(())
                }
            }
        }
    }

    // --------------------------------------------------------------------------------------
    // Update and patch
    // --------------------------------------------------------------------------------------

    pub async fn update(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Value) -> Result<Outcome, ApiError> {
        let info = ri.info;
        let name = ri.name.clone().expect("update has a name");
        let fv = field_validation(q)?;
        match ri.subresource.as_deref() {
            Some("scale") if info.has_scale => {
                let (scale, warnings) = admit_body(info, body, fv, ("autoscaling/v1", "Scale"))?;
                let replicas = scale.pointer("/spec/replicas").and_then(|r| r.as_i64()).unwrap_or(0);
                let pinned = meta::rv(&scale);
                let out = self.guaranteed_update(ri, q, pinned, |cur| {
                    let mut new = cur.clone();
                    new["spec"]["replicas"] = json!(replicas);
                    Ok(new)
                }).await?;
                return Ok(Outcome { code: 200, body: scale_of(info, &out.body), warnings });
            }
            None | Some("status") | Some("finalize") => {}
            Some(sub) => return Err(self.subresource_unavailable(info, sub)),
        }
        let api_version = info.api_version();
        let (obj, warnings) = admit_body(info, body, fv, (&api_version, info.kind))?;
        if let Some(n) = meta::name(&obj)
            && n != name
        {
            return Err(ApiError::BadRequest(format!("the name of the object ({n}) does not match the name on the URL ({name})")));
        }
        if let (Some(ns), Some(body_ns)) = (ri.namespace.as_deref(), meta::meta_str(&obj, "namespace"))
            && ns != body_ns
        {
            return Err(ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()));
        }
        let pinned = meta::rv(&obj);
        let mut out = self.guaranteed_update(ri, q, pinned, |_| Ok(obj.clone())).await?;
        out.warnings.extend(warnings);
        Ok(out)
    }

    pub async fn patch(&self, ri: &RequestInfo, q: &HashMap<String, String>, content_type: &str, body: &[u8]) -> Result<Outcome, ApiError> {
        let info = ri.info;
        let Some(pt) = patch::patch_type_for(content_type) else {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            )));
        };
        if matches!(pt, patch::PatchType::Apply) {
            return self.server_side_apply(ri, q, body).await;
        }
        let raw: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the patch is not valid JSON: {e}")))?;
        let pinned = patch_pins_rv(&raw);
        let fv = field_validation(q)?;
        if ri.subresource.as_deref() == Some("scale") && info.has_scale {
            let out = self
                .guaranteed_update(ri, q, pinned, |cur| {
                    let scale = scale_of(info, cur);
                    let patched = patch::apply_patch("io.k8s.api.autoscaling.v1.Scale", &scale, pt_clone(&pt), body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    let mut new = cur.clone();
                    new["spec"]["replicas"] = patched.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                    Ok(new)
                })
                .await?;
            return Ok(Outcome::ok(scale_of(info, &out.body)));
        }
        let definition = info.definition;
        let mut warnings = Vec::new();
        let api_version = info.api_version();
        let out = self
            .guaranteed_update(ri, q, pinned, |cur| {
                let patched = patch::apply_patch(definition, cur, pt_clone(&pt), body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                let (typed, w) = admit_body(info, patched, fv, (&api_version, info.kind))?;
                warnings = w;
                Ok(typed)
            })
            .await?;
        Ok(Outcome { code: 200, body: out.body, warnings })
    }

    /// Server-side apply, simplified: creates the object when absent, otherwise merges the
    /// applied configuration into it (as a JSON merge patch). Field ownership (managedFields and
    /// conflicts between managers) is not tracked.
    async fn server_side_apply(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: &[u8]) -> Result<Outcome, ApiError> {
        let applied: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::UnsupportedMediaType(format!("server-side apply takes the configuration as JSON (kubectl sends JSON): {e}")))?;
        let name = ri.name.clone().expect("patch has a name");
        match self.objects.get_current(ri.info, ri.namespace.as_deref(), &name).await {
            Err(ApiError::NotFound { .. }) => {
                let create_ri = RequestInfo { name: None, subresource: None, verb: Verb::Create, ..ri.clone() };
                let mut applied = applied;
                meta_mut(&mut applied).insert("name".into(), json!(name));
                Box::pin(self.create(&create_ri, q, applied)).await
            }
            Err(e) => Err(e),
            Ok(_) => {
                let fv = field_validation(q)?;
                let api_version = ri.info.api_version();
                let info = ri.info;
                self.guaranteed_update(ri, q, None, |cur| {
                    let merged = patch::apply_patch(info.definition, cur, patch::PatchType::Merge, body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    let (typed, _) = admit_body(info, merged, fv, (&api_version, info.kind))?;
                    Ok(typed)
                })
                .await
            }
        }
    }

    /// Read, modify, conditionally write; retried on conflicts unless the caller pinned a
    /// resourceVersion (then a moved object is a 409).
    pub async fn guaranteed_update<F>(&self, ri: &RequestInfo, q: &HashMap<String, String>, pinned: Option<u64>, mut mutate: F) -> Result<Outcome, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let info = ri.info;
        let name = ri.name.clone().expect("update has a name");
        let dry = dry_run(q)?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (current, cur_rev) = match self.objects.get_current(info, ri.namespace.as_deref(), &name).await {
                Ok(c) => c,
                Err(ApiError::NotFound { .. }) if ri.subresource.is_none() && matches!(info.plural, "endpoints" | "events") && ri.verb == Verb::Update => {
                    // These kinds are created by a PUT to their name, as in Kubernetes.
                    let create_ri = RequestInfo { name: None, verb: Verb::Create, ..ri.clone() };
                    let obj = mutate(&json!({}))?;
                    return Box::pin(self.create(&create_ri, q, obj)).await;
                }
                Err(e) => return Err(e),
            };
            if let Some(p) = pinned
                && p != cur_rev
            {
                return Err(conflict(info, &name));
            }
            let requested = mutate(&current)?;
            // A uid in the request is a precondition, as in Kubernetes.
            if let Some(uid) = meta::meta_str(&requested, "uid")
                && Some(uid) != meta::meta_str(&current, "uid")
            {
                return Err(ApiError::Conflict {
                    group_resource: info.group_resource(),
                    name: name.clone(),
                    message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::meta_str(&current, "uid").unwrap_or("")),
                });
            }
            let mut new = merge_for_update(info, ri.subresource.as_deref(), &current, requested);
            let binding = ri.subresource.as_deref() == Some("binding");
            // A binding assigns the node, as the scheduler's in-process bindings do: no new
            // generation, and not subject to the pod spec's immutability.
            if new.get("spec") != current.get("spec") && !binding {
                let g = current.pointer("/metadata/generation").and_then(|g| g.as_i64()).unwrap_or(0);
                meta_mut(&mut new).insert("generation".into(), json!(g + 1));
            }
            defaults::apply_defaults(info, &mut new);
            let claims = self.admit_update(info, &current, &mut new)?;
            let errs = if binding { Vec::new() } else { validation::validate_update(info, &current, &new) };
            if !errs.is_empty() {
                return Err(invalid(info, &name, errs));
            }
            // Clearing the last finalizer of an object being deleted completes the deletion
            // (a namespace also waits for its spec finalizers; a pod in graceful termination waits
            // for its node agent to delete it).
            let grace = new.pointer("/metadata/deletionGracePeriodSeconds").and_then(|g| g.as_i64()).unwrap_or(0);
            let finished = meta::is_deleting(&new)
                && meta::finalizers(&new).is_empty()
                && !(info.plural == "namespaces" && namespace_spec_finalizers(&new) > 0)
                && !(info.plural == "pods" && grace > 0);
            if dry {
                set_rv(&mut new, cur_rev);
                return Ok(Outcome::ok(new));
            }
            let key = info.key(ri.namespace.as_deref(), &name);
            let mut ops = if finished {
                vec![Op::Delete { key: key.clone(), expected_rev: Some(cur_rev) }]
            } else {
                vec![Op::Update { key: key.clone(), value: encode(&new), expected_rev: Some(cur_rev) }]
            };
            if finished {
                ops.extend(self.release_claims(info, &current));
            } else {
                ops.extend(claims);
            }
            let (rev, results) = self.objects.txn(ops, true).await?;
            match &results[0] {
                OpResult::Ok { .. } => {
                    set_rv(&mut new, rev);
                    return Ok(Outcome::ok(new));
                }
                OpResult::Conflict { .. } if pinned.is_some() => return Err(conflict(info, &name)),
                OpResult::Conflict { .. } => continue,
                // A node port it claimed was taken concurrently: pick again.
                OpResult::Aborted => continue,
                OpResult::NotFound => return Err(not_found(info, &name)),
                other => return Err(ApiError::Internal(format!("update of {name}: unexpected result {other:?}"))),
            }
        }
        Err(conflict(info, &name))
    }

    // --------------------------------------------------------------------------------------
    // Delete
    // --------------------------------------------------------------------------------------

    pub async fn delete(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Option<Value>) -> Result<Outcome, ApiError> {
        if let Some(sub) = ri.subresource.as_deref() {
            return Err(ApiError::MethodNotAllowed(format!("DELETE is not supported on {}/{sub}", ri.info.plural)));
        }
        let info = ri.info;
        let name = ri.name.clone().expect("delete has a name");
        let opts = DeleteOptions::from(q, body.as_ref())?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (current, cur_rev) = self.objects.get_current(info, ri.namespace.as_deref(), &name).await?;
            if let Some(uid) = &opts.uid
                && meta::meta_str(&current, "uid") != Some(uid.as_str())
            {
                return Err(ApiError::Conflict {
                    group_resource: info.group_resource(),
                    name: name.clone(),
                    message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::meta_str(&current, "uid").unwrap_or("")),
                });
            }
            if let Some(rv) = opts.resource_version
                && rv != cur_rev
            {
                return Err(ApiError::Conflict {
                    group_resource: info.group_resource(),
                    name: name.clone(),
                    message: format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {cur_rev}"),
                });
            }
            let key = info.key(ri.namespace.as_deref(), &name);
            let mut finalizers = meta::finalizers(&current);
            match opts.propagation.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => finalizers.push("foregroundDeletion".into()),
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                _ => {}
            }
            let graceful_pod = info.plural == "pods" && {
                let grace = opts.grace.unwrap_or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(|g| g.as_i64()).unwrap_or(30));
                let bound = current.pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty());
                let terminal = matches!(current.pointer("/status/phase").and_then(|p| p.as_str()), Some("Succeeded") | Some("Failed"));
                grace > 0 && bound && !terminal
            };
            let namespace = info.plural == "namespaces";
            let already = meta::is_deleting(&current);
            let keep = !finalizers.is_empty() || graceful_pod || (namespace && (namespace_spec_finalizers(&current) > 0 || !already));
            if keep {
                let mut new = current.clone();
                if !already {
                    let m = meta_mut(&mut new);
                    if !already {
                        if graceful_pod {
                            let grace = opts.grace.unwrap_or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(|g| g.as_i64()).unwrap_or(30));
                            m.insert("deletionTimestamp".into(), json!(meta::timestamp_in(grace)));
                            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                        } else {
                            m.insert("deletionTimestamp".into(), json!(meta::now()));
                            m.insert("deletionGracePeriodSeconds".into(), json!(0));
                        }
                    }
                    if !finalizers.is_empty() {
                        m.insert("finalizers".into(), json!(finalizers));
                    }
                }
                if namespace {
                    new["status"]["phase"] = json!("Terminating");
                }
                if new == current {
                    return Ok(Outcome { code: 202, body: current, warnings: Vec::new() });
                }
                if opts.dry_run {
                    return Ok(Outcome { code: 202, body: new, warnings: Vec::new() });
                }
                let ops = vec![Op::Update { key, value: encode(&new), expected_rev: Some(cur_rev) }];
                let (rev, results) = self.objects.txn(ops, true).await?;
                match &results[0] {
                    OpResult::Ok { .. } => {
                        set_rv(&mut new, rev);
                        return Ok(Outcome { code: 202, body: new, warnings: Vec::new() });
                    }
                    OpResult::Conflict { .. } => continue,
                    OpResult::NotFound => return Err(not_found(info, &name)),
                    other => return Err(ApiError::Internal(format!("delete of {name}: {other:?}"))),
                }
            }
            if opts.dry_run {
                return Ok(Outcome::ok(current));
            }
            let mut ops = vec![Op::Delete { key, expected_rev: Some(cur_rev) }];
            ops.extend(self.release_claims(info, &current));
            let (_, results) = self.objects.txn(ops, true).await?;
            match &results[0] {
                OpResult::Ok { .. } => return Ok(Outcome::ok(current)),
                OpResult::Conflict { .. } => continue,
                OpResult::NotFound => return Err(not_found(info, &name)),
                other => return Err(ApiError::Internal(format!("delete of {name}: {other:?}"))),
            }
        }
        Err(conflict(info, &name))
    }

    pub async fn delete_collection(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Option<Value>) -> Result<Outcome, ApiError> {
        let mut lq = q.clone();
        lq.remove("limit");
        lq.remove("continue");
        let (items, rev, _) = self.list_objects(ri, &lq).await?;
        let mut deleted = Vec::new();
        for obj in items {
            let Some(name) = meta::name(&obj) else { continue };
            let ri_item = RequestInfo {
                name: Some(name.to_string()),
                namespace: meta::meta_str(&obj, "namespace").map(String::from),
                verb: Verb::Delete,
                ..ri.clone()
            };
            match self.delete(&ri_item, q, body.clone()).await {
                Ok(out) => deleted.push(out.body),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Outcome::ok(json!({
            "kind": list_kind(ri.info),
            "apiVersion": ri.info.api_version(),
            "metadata": {"resourceVersion": rev.to_string()},
            "items": deleted,
        })))
    }

    // --------------------------------------------------------------------------------------
    // Subresources
    // --------------------------------------------------------------------------------------

    /// `pods/binding`: assigns a pod to a node (the scheduler's write).
    async fn bind(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Value) -> Result<Outcome, ApiError> {
        let (binding, _) = admit_body(ri.info, body, FieldValidation::Ignore, ("v1", "Binding"))?;
        let name = ri.name.clone().unwrap_or_default();
        if let Some(n) = meta::name(&binding)
            && n != name
        {
            return Err(ApiError::BadRequest(format!("the name of the Binding ({n}) does not match the pod on the URL ({name})")));
        }
        let node = binding.pointer("/target/name").and_then(|n| n.as_str()).filter(|n| !n.is_empty()).map(String::from);
        let Some(node) = node else {
            return Err(invalid_one(ri.info, ri.name.as_deref().unwrap_or(""), "FieldValueRequired", "target.name", "Required value".into()));
        };
        let info = ri.info;
        // The update runs as the binding subresource: it may set spec.nodeName, which an update
        // of the pod itself may not (immutable pod spec).
        self.guaranteed_update(ri, q, None, |cur| {
            if meta::is_deleting(cur) {
                return Err(ApiError::Conflict { group_resource: info.group_resource(), name: name.clone(), message: "pod is being deleted, cannot be assigned to a host".into() });
            }
            if let Some(existing) = cur.pointer("/spec/nodeName").and_then(|n| n.as_str()).filter(|n| !n.is_empty()) {
                return Err(ApiError::Conflict {
                    group_resource: info.group_resource(),
                    name: name.clone(),
                    message: format!("pod {name} is already assigned to node \"{existing}\""),
                });
            }
            let mut new = cur.clone();
            new["spec"]["nodeName"] = json!(node);
            set_condition(&mut new, "PodScheduled", "True", None, None);
            Ok(new)
        })
        .await?;
        Ok(Outcome { code: 201, body: apimachinery::status::success_status(None), warnings: Vec::new() })
    }

    /// `pods/eviction`: a graceful delete (disruption budgets come with the controllers).
    async fn evict(&self, ri: &RequestInfo, q: &HashMap<String, String>, body: Value) -> Result<Outcome, ApiError> {
        let opts = body.get("deleteOptions").cloned();
        let ri_pod = RequestInfo { subresource: None, verb: Verb::Delete, ..ri.clone() };
        self.delete(&ri_pod, q, opts).await?;
        Ok(Outcome { code: 201, body: apimachinery::status::success_status(None), warnings: Vec::new() })
    }

    /// `pods/{log,exec,attach,portforward,proxy}`: these reach the pod's container through the
    /// agent of its node. A missing pod is a 404; a pod with no node has nothing to reach (400,
    /// with Kubernetes' message); a bound pod's node has no agent to reach yet (503).
    pub async fn pod_stream(&self, ri: &RequestInfo) -> ApiError {
        let name = ri.name.as_deref().unwrap_or_default();
        let sub = ri.subresource.as_deref().unwrap_or_default();
        let pod = match self.objects.get(ri.info, ri.namespace.as_deref(), name, ReadAt::Latest).await {
            Ok(p) => p,
            Err(e) => return e,
        };
        match pod.pointer("/spec/nodeName").and_then(|n| n.as_str()).filter(|n| !n.is_empty()) {
            None => ApiError::BadRequest(format!("pod {name} does not have a host assigned")),
            Some(node) => ApiError::ServiceUnavailable(format!(
                "pods/{sub} of pod {name} needs the node agent on node {node}, which this cluster does not run yet: there is no container to reach"
            )),
        }
    }

    pub fn subresource_unavailable(&self, info: &ResourceInfo, sub: &str) -> ApiError {
        match (info.plural, sub) {
            ("pods", "log" | "exec" | "attach" | "portforward" | "proxy") => ApiError::ServiceUnavailable(format!(
                "pods/{sub} needs the node agent, which this cluster does not run yet: there is no container to reach"
            )),
            _ => ApiError::NotFoundPath(format!("{}/{sub} is not a subresource this server provides", info.plural)),
        }
    }
}

fn pt_clone(p: &patch::PatchType) -> patch::PatchType {
    match p {
        patch::PatchType::Json => patch::PatchType::Json,
        patch::PatchType::Merge => patch::PatchType::Merge,
        patch::PatchType::Strategic => patch::PatchType::Strategic,
        patch::PatchType::Apply => patch::PatchType::Apply,
    }
}

/// Whether a patch body names a resourceVersion (then a moved object is a conflict, not a retry).
fn patch_pins_rv(raw: &Value) -> Option<u64> {
    let from_merge = raw.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()).and_then(|s| s.parse().ok());
    let from_json = raw.as_array().and_then(|ops| {
        ops.iter()
            .find(|op| op.get("path").and_then(|p| p.as_str()) == Some("/metadata/resourceVersion") && op.get("op").and_then(|o| o.as_str()) != Some("remove"))
            .and_then(|op| op.get("value").and_then(|v| v.as_str()).and_then(|s| s.parse().ok()))
    });
    from_merge.or(from_json)
}

fn namespace_spec_finalizers(ns: &Value) -> usize {
    ns.pointer("/spec/finalizers").and_then(|f| f.as_array()).map(|a| a.len()).unwrap_or(0)
}

/// Builds the object to store from the current one and the client's requested one: system
/// metadata stays the server's; the main resource cannot change status and the status
/// subresource cannot change anything else.
fn merge_for_update(info: &ResourceInfo, sub: Option<&str>, current: &Value, requested: Value) -> Value {
    let mut new = match sub {
        Some("status") => {
            let mut n = current.clone();
            match requested.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    n.as_object_mut().map(|o| o.remove("status"));
                }
            }
            n
        }
        Some("finalize") => {
            let mut n = current.clone();
            n["spec"]["finalizers"] = requested.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            n
        }
        // `pods/binding` builds the bound pod from the current one itself.
        Some("binding") => requested,
        _ => {
            let mut n = requested;
            if info.has_status && info.plural != "nodes" {
                match current.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().map(|o| o.remove("status"));
                    }
                }
            }
            n
        }
    };
    let cur_meta = current.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta_mut(&mut new);
    for f in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "name", "namespace"] {
        match cur_meta.get(f) {
            Some(v) => {
                m.insert(f.into(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    new
}

fn reset_status_on_create(info: &ResourceInfo, obj: &mut Value) {
    match info.plural {
        "pods" => {
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        "namespaces" => obj["status"] = json!({"phase": "Active"}),
        "nodes" | "persistentvolumes" | "events" => {}
        _ if info.has_status => {
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        _ => {}
    }
}

/// Kubernetes' QoS class: Guaranteed when every container has equal cpu and memory requests
/// and limits, BestEffort when none has any, Burstable otherwise.
fn qos_class(pod: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for field in ["/spec/containers", "/spec/initContainers"] {
        if let Some(cs) = pod.pointer(field).and_then(|c| c.as_array()) {
            containers.extend(cs.iter());
        }
    }
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(|r| r.as_object());
        let lim = c.pointer("/resources/limits").and_then(|r| r.as_object());
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Sets (or adds) a condition of `status.conditions`.
pub fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: Option<&str>, message: Option<&str>) {
    if !obj.get("status").is_some_and(|s| s.is_object()) {
        obj["status"] = json!({});
    }
    let now = meta::now();
    let conds = obj["status"].as_object_mut().expect("status object").entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let arr = conds.as_array_mut().expect("array");
    let mut c = json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    match arr.iter_mut().find(|x| x.get("type").and_then(|t| t.as_str()) == Some(ty)) {
        Some(existing) => {
            if existing.get("status").and_then(|s| s.as_str()) == Some(status) {
                c["lastTransitionTime"] = existing.get("lastTransitionTime").cloned().unwrap_or(json!(now));
            }
            *existing = c;
        }
        None => arr.push(c),
    }
}

/// The autoscaling/v1 Scale view of a scalable object.
pub fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| {
            if info.plural == "replicationcontrollers" {
                s.as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")).unwrap_or_default()
            } else {
                selector_string(s)
            }
        })
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

/// The string form of a LabelSelector object (`app=web,tier in (a,b)`).
pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(|m| m.as_object()) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(|e| e.as_array()) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

pub struct DeleteOptions {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
    pub dry_run: bool,
}

impl DeleteOptions {
    fn from(q: &HashMap<String, String>, body: Option<&Value>) -> Result<DeleteOptions, ApiError> {
        let b = body.cloned().unwrap_or(json!({}));
        let grace = match q.get("gracePeriodSeconds").filter(|s| !s.is_empty()) {
            Some(g) => Some(g.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("gracePeriodSeconds must be an integer, not {g:?}")))?),
            None => b.get("gracePeriodSeconds").and_then(|g| g.as_i64()),
        };
        let propagation = q.get("propagationPolicy").cloned().or_else(|| b.get("propagationPolicy").and_then(|p| p.as_str()).map(String::from));
        if let Some(p) = &propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::BadRequest(format!("propagationPolicy must be Orphan, Background or Foreground, not {p:?}")));
        }
        let dry = q.get("dryRun").is_some_and(|d| d == "All")
            || b.get("dryRun").and_then(|d| d.as_array()).is_some_and(|a| a.iter().any(|x| x == "All"));
        Ok(DeleteOptions {
            grace,
            propagation,
            uid: b.pointer("/preconditions/uid").and_then(|u| u.as_str()).map(String::from),
            resource_version: b.pointer("/preconditions/resourceVersion").and_then(|u| u.as_str()).and_then(|s| s.parse().ok()),
            dry_run: dry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&be), "BestEffort");
        let g = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "/registry/core/pods/ns/p5");
        assert_eq!(decode_continue(&t).unwrap(), (42, "/registry/core/pods/ns/p5".to_string()));
        assert!(decode_continue("garbage!!").is_err());
    }

    #[test]
    fn update_keeps_system_metadata_and_status() {
        let info = registry::find("apps", "v1", "deployments").unwrap();
        let cur = json!({"metadata": {"name": "d", "uid": "u1", "creationTimestamp": "t", "generation": 3}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let req = json!({"metadata": {"name": "d", "uid": "forged", "labels": {"a": "b"}}, "spec": {"replicas": 2}, "status": {"replicas": 9}});
        let new = merge_for_update(info, None, &cur, req.clone());
        assert_eq!(new["metadata"]["uid"], "u1");
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert_eq!(new["status"]["replicas"], 1);
        assert_eq!(new["spec"]["replicas"], 2);
        let st = merge_for_update(info, Some("status"), &cur, req);
        assert_eq!(st["status"]["replicas"], 9);
        assert_eq!(st["spec"]["replicas"], 1);
    }

    #[test]
    fn selector_strings() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&s), "app=web,tier in (a,b)");
    }

    #[test]
    fn patches_that_pin_a_revision() {
        assert_eq!(patch_pins_rv(&json!({"metadata": {"resourceVersion": "5"}})), Some(5));
        assert_eq!(patch_pins_rv(&json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": "7"}])), Some(7));
        assert_eq!(patch_pins_rv(&json!({"spec": {}})), None);
    }
}
