//! The type graph strategic merge patch walks: the schemars schemas of the k8s-openapi types of
//! every served resource, generated once into one set of definitions, and navigated through
//! `properties`, `additionalProperties`, `items` and `$ref`s into those definitions.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::PatchMeta;

/// Deeper `$ref` chains than this can only be a cycle of aliases; they are treated as untyped.
const MAX_REF_CHAIN: usize = 16;

const DEFINITIONS_PREFIX: &str = "#/$defs/";

fn definitions() -> &'static Map<String, Value> {
    static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let mut generator = schemars::SchemaGenerator::default();
        for resource in crate::registry::resources() {
            (resource.schema)(&mut generator);
        }
        // The scale subresource is patched too, and its type is not a served resource's.
        generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
        generator.take_definitions(false)
    })
}

/// Whether strategic merge patch knows the definition.
pub(super) fn is_known(definition: &str) -> bool {
    definitions().contains_key(definition)
}

/// A node of the type graph. `definition` is set when the node is a named definition, which is
/// what patch metadata is keyed by. A node without a schema is untyped (e.g. a field the schema
/// does not know, or `x-kubernetes-preserve-unknown-fields` content): maps merge key by key and
/// lists are replaced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ty {
    schema: Option<&'static Value>,
    definition: Option<&'static str>,
}

#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    Array,
    Scalar,
    Untyped,
}

impl Ty {
    const UNTYPED: Ty = Ty { schema: None, definition: None };

    pub(crate) fn of(definition: &str) -> Option<Ty> {
        let (name, schema) = definitions().get_key_value(definition)?;
        Some(Ty { schema: Some(schema), definition: Some(name.as_str()) })
    }

    fn inline(schema: &'static Value) -> Ty {
        Ty { schema: Some(schema), definition: None }.resolve()
    }

    fn resolve(self) -> Ty {
        let mut ty = self;
        for _ in 0..MAX_REF_CHAIN {
            let Some(reference) = ty.schema.and_then(|s| s.get("$ref")).and_then(Value::as_str) else {
                return ty;
            };
            let target = reference.strip_prefix(DEFINITIONS_PREFIX).map(|name| name.replace("~1", "/").replace("~0", "~"));
            match target.and_then(|name| Ty::of(&name)) {
                Some(next) => ty = next,
                None => return Ty::UNTYPED,
            }
        }
        Ty::UNTYPED
    }

    /// The type of the value of `name` in an object of this type: a declared property, or the
    /// value type of a map.
    pub(crate) fn field(self, name: &str) -> Ty {
        let Some(schema) = self.resolve().schema else {
            return Ty::UNTYPED;
        };
        if let Some(property) = schema.get("properties").and_then(|p| p.get(name)) {
            return Ty::inline(property);
        }
        match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Ty::inline(values),
            _ => Ty::UNTYPED,
        }
    }

    /// The type of the items of a list of this type.
    pub(crate) fn items(self) -> Ty {
        match self.resolve().schema.and_then(|s| s.get("items")) {
            Some(items) => Ty::inline(items),
            None => Ty::UNTYPED,
        }
    }

    pub(crate) fn has_property(self, name: &str) -> bool {
        self.resolve().schema.and_then(|s| s.get("properties")).and_then(|p| p.get(name)).is_some()
    }

    /// The patch metadata of field `name` of this type.
    pub(crate) fn meta(self, name: &str) -> Option<PatchMeta> {
        self.resolve().definition.and_then(|definition| super::patch_meta(definition, name))
    }

    #[cfg(test)]
    pub(crate) fn shape(self) -> Shape {
        let Some(schema) = self.resolve().schema else {
            return Shape::Untyped;
        };
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => Shape::Object,
            Some("array") => Shape::Array,
            Some(_) => Shape::Scalar,
            None if schema.get("properties").is_some() => Shape::Object,
            None => Shape::Untyped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_from_a_resource_into_nested_definitions() {
        let deployment = Ty::of("io.k8s.api.apps.v1.Deployment").expect("deployments are served");
        let pod_spec = deployment.field("spec").field("template").field("spec");
        assert_eq!(pod_spec.resolve().definition, Some("io.k8s.api.core.v1.PodSpec"));
        let container = pod_spec.field("containers").items();
        assert_eq!(container.resolve().definition, Some("io.k8s.api.core.v1.Container"));
        assert_eq!(container.field("env").shape(), Shape::Array);
        assert_eq!(deployment.field("metadata").field("labels").shape(), Shape::Object);
        assert_eq!(deployment.field("metadata").field("labels").field("app").shape(), Shape::Scalar);
        assert_eq!(deployment.field("nonsense").shape(), Shape::Untyped);
        assert!(Ty::of("io.k8s.api.autoscaling.v1.Scale").is_some());
        assert!(Ty::of("example.com.v1.Widget").is_none());
    }
}
