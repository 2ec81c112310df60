//! Turning a request path and method into what it asks for, as kube-apiserver's RequestInfo does.

use std::collections::HashMap;

use apimachinery::registry::{self, ResourceInfo};
use apimachinery::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

/// Query parameters, percent-decoded (last value wins).
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        out.insert(dec(k), dec(v));
    }
    out
}

/// Subresources of a namespace that are not resources inside it.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths. `Ok(None)` when the path
/// is not a resource path (discovery documents are routed elsewhere).
pub fn parse(method: &axum::http::Method, path: &str, watch_param: bool) -> Result<Option<RequestInfo>, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest.to_vec()),
        ["apis", g, v, rest @ ..] => (*g, *v, rest.to_vec()),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    // The deprecated `/watch/` path prefix.
    let mut watch = watch_param;
    if rest[0] == "watch" {
        watch = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = rest[2..].to_vec();
        }
    }
    let plural = rest.first().copied().unwrap_or_default();
    let Some(info) = registry::find(group, version, plural) else {
        let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        return Err(ApiError::NotFoundPath(format!("the server could not find the requested resource ({plural} in {gv})")));
    };
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Err(ApiError::NotFoundPath(format!("the server could not find the requested resource ({path})")));
    }
    if info.plural == "namespaces" {
        // `/api/v1/namespaces/<name>` names a namespace; it is not "inside" itself.
        namespace = None;
    }
    if info.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::NotFoundPath(format!("{} is namespaced: use /namespaces/<namespace>/{}/<name>", info.plural, info.plural)));
    }
    if !info.namespaced && namespace.is_some() {
        return Err(ApiError::NotFoundPath(format!("{} is not namespaced", info.plural)));
    }
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        (m, _) => {
            return Err(ApiError::MethodNotAllowed(format!("{m} is not supported on {}", path)));
        }
    };
    Ok(Some(RequestInfo { info, namespace, name, subresource, verb }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    fn p(m: Method, path: &str) -> RequestInfo {
        parse(&m, path, false).unwrap().unwrap()
    }

    #[test]
    fn paths() {
        let r = p(Method::GET, "/api/v1/namespaces/default/pods/web");
        assert_eq!((r.info.plural, r.namespace.as_deref(), r.name.as_deref(), r.verb), ("pods", Some("default"), Some("web"), Verb::Get));
        let r = p(Method::GET, "/api/v1/pods");
        assert_eq!((r.namespace, r.verb), (None, Verb::List));
        let r = p(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!((r.info.plural, r.name.as_deref(), r.namespace), ("namespaces", Some("kube-system"), None));
        let r = p(Method::PUT, "/api/v1/namespaces/foo/finalize");
        assert_eq!((r.info.plural, r.name.as_deref(), r.subresource.as_deref()), ("namespaces", Some("foo"), Some("finalize")));
        let r = p(Method::PUT, "/apis/apps/v1/namespaces/ns/deployments/d/scale");
        assert_eq!((r.info.plural, r.subresource.as_deref(), r.verb), ("deployments", Some("scale"), Verb::Update));
        let r = p(Method::GET, "/api/v1/watch/namespaces/ns/pods");
        assert_eq!(r.verb, Verb::Watch);
        let r = p(Method::POST, "/api/v1/namespaces/ns/pods/web/binding");
        assert_eq!((r.verb, r.subresource.as_deref()), (Verb::Create, Some("binding")));
        assert!(parse(&Method::GET, "/api/v1/namespaces/ns/widgets", false).is_err());
        assert!(parse(&Method::GET, "/api/v1/nodes/n1/status", false).unwrap().is_some());
        assert!(parse(&Method::GET, "/api/v1", false).unwrap().is_none());
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
    }
}
