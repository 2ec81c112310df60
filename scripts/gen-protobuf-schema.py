#!/usr/bin/env python3
"""Generates apimachinery/src/protobuf_schema.json, the wire schema behind apimachinery::protobuf.

Kubernetes clients (kubectl, client-go, controller-runtime) send built-in objects as
`application/vnd.kubernetes.protobuf`. Decoding that into the JSON we store needs, per message,
each field's tag, its wire type and its JSON name. No single crate has all three:

- k8s-pb 0.9.0 (prost code generated from Kubernetes' generated.proto files) has the tags and
  types, but its field names are prost's snake_case of the proto names;
- k8s-openapi 0.29 (Kubernetes 1.33, the API we serve) has the JSON names and `required` lists.

The proto field names *are* the JSON names (go-to-protobuf takes them from the json tags), so a
prost name and a JSON name match when equal after lower-casing and dropping underscores
(`pod_i_ps` ~ `podIPs`, `volume_id` ~ `volumeID`). A proto field with no JSON counterpart (newer
than 1.33) is named by camel-casing the prost name. Ambiguous matches abort the generator.
Embedded Go structs (`json:",inline"`: Volume's VolumeSource, Probe's ProbeHandler) are proto
fields of their own; they are recognised by their fields being the outer object's properties.

Only messages reachable from ROOTS are written. Types whose JSON form is not a plain object
(Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1) are handled by name in
protobuf.rs and are not described here.

Output: {"kinds": [[apiVersion, kind, message], ...], "messages": {message: [field, ...]}}.
Message names are the proto full names minus the `k8s.io.` prefix, spelled as Kubernetes does
(HPAScalingPolicy, where k8s-pb says HpaScalingPolicy). Each field is [tag, jsonName, type] or
[tag, jsonName, type, 1]:
- an empty jsonName marks an embedded struct, whose fields go into the enclosing object;
- `type` is a scalar (string, bool, int32, int64, double, bytes), a message name, `[]T`
  (repeated) or `map[string]T`;
- the trailing 1 marks a string field whose empty value is still written (see KEEP_EMPTY).

Regenerate (needs only python3 and the two crates in the local cargo registry, where
`cargo fetch` puts them: k8s-openapi is a dependency of apimachinery and k8s-pb a
dev-dependency; pass --k8s-pb/--k8s-openapi to point elsewhere):

    python3 scripts/gen-protobuf-schema.py > apimachinery/src/protobuf_schema.json

The output is deterministic (sorted messages, fields by tag).
"""

import argparse
import glob
import json
import os
import re
import sys

# (apiVersion, kind, message): what decode_object accepts. Every resource in
# apimachinery::registry::resources() must be here (a test checks), plus the bodies of the
# binding/scale/eviction subresources and DeleteOptions.
ROOTS = [
    ("v1", "Binding", "api.core.v1.Binding"),
    ("v1", "ConfigMap", "api.core.v1.ConfigMap"),
    ("v1", "Endpoints", "api.core.v1.Endpoints"),
    ("v1", "Event", "api.core.v1.Event"),
    ("v1", "LimitRange", "api.core.v1.LimitRange"),
    ("v1", "Namespace", "api.core.v1.Namespace"),
    ("v1", "Node", "api.core.v1.Node"),
    ("v1", "PersistentVolume", "api.core.v1.PersistentVolume"),
    ("v1", "PersistentVolumeClaim", "api.core.v1.PersistentVolumeClaim"),
    ("v1", "Pod", "api.core.v1.Pod"),
    ("v1", "ReplicationController", "api.core.v1.ReplicationController"),
    ("v1", "ResourceQuota", "api.core.v1.ResourceQuota"),
    ("v1", "Secret", "api.core.v1.Secret"),
    ("v1", "Service", "api.core.v1.Service"),
    ("v1", "ServiceAccount", "api.core.v1.ServiceAccount"),
    ("apps/v1", "ControllerRevision", "api.apps.v1.ControllerRevision"),
    ("apps/v1", "DaemonSet", "api.apps.v1.DaemonSet"),
    ("apps/v1", "Deployment", "api.apps.v1.Deployment"),
    ("apps/v1", "ReplicaSet", "api.apps.v1.ReplicaSet"),
    ("apps/v1", "StatefulSet", "api.apps.v1.StatefulSet"),
    ("autoscaling/v1", "Scale", "api.autoscaling.v1.Scale"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "api.autoscaling.v2.HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob", "api.batch.v1.CronJob"),
    ("batch/v1", "Job", "api.batch.v1.Job"),
    ("coordination.k8s.io/v1", "Lease", "api.coordination.v1.Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice", "api.discovery.v1.EndpointSlice"),
    ("events.k8s.io/v1", "Event", "api.events.v1.Event"),
    ("policy/v1", "Eviction", "api.policy.v1.Eviction"),
    ("policy/v1", "PodDisruptionBudget", "api.policy.v1.PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "api.rbac.v1.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "api.rbac.v1.ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role", "api.rbac.v1.Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "api.rbac.v1.RoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass", "api.scheduling.v1.PriorityClass"),
    # Clients send DeleteOptions under the group version of the resource they delete; protobuf.rs
    # accepts the kind under any apiVersion.
    ("meta.k8s.io/v1", "DeleteOptions", "apimachinery.pkg.apis.meta.v1.DeleteOptions"),
]

# Decoded specially by protobuf.rs (their JSON form is a string, number or embedded document).
SPECIAL = {
    "apimachinery.pkg.apis.meta.v1.Time",
    "apimachinery.pkg.apis.meta.v1.MicroTime",
    "apimachinery.pkg.apis.meta.v1.Duration",
    "apimachinery.pkg.apis.meta.v1.FieldsV1",
    "apimachinery.pkg.api.resource.Quantity",
    "apimachinery.pkg.util.intstr.IntOrString",
    "apimachinery.pkg.runtime.RawExtension",
}

# Go writes every non-pointer string to protobuf, so unset optional strings arrive as "" and
# protobuf.rs drops them, as Go's `omitempty` would. Required strings (no omitempty in Go) keep
# "", and so do these pointer strings, where "" means something other than unset.
KEEP_EMPTY = {
    # "" asks for no storage class (no dynamic provisioning); unset asks for the default class.
    ("api.core.v1.PersistentVolumeClaimSpec", "storageClassName"),
    # "" asks for no VolumeAttributesClass; unset leaves the choice to the cluster.
    ("api.core.v1.PersistentVolumeClaimSpec", "volumeAttributesClassName"),
}

SCALARS = {"string": "string", "bool": "bool", "int32": "int32", "int64": "int64",
           "double": "double", "bytes": "bytes", "uint32": "uint32", "uint64": "uint64",
           "float": "float"}


def crate_dir(name, override):
    if override:
        return override
    home = os.path.expanduser("~/.cargo/registry/src")
    found = sorted(glob.glob(os.path.join(home, "*", name)))
    if not found:
        sys.exit(f"{name} not found under {home}: run `cargo fetch` in the workspace or pass its path")
    return found[0]


def rust_path_to_message(module, rust_type):
    """Resolves a prost type path (`super::super::x::Y` or `Y`) against the module it appears in."""
    parts = rust_type.split("::")
    mod = list(module)
    while parts and parts[0] == "super":
        mod.pop()
        parts.pop(0)
    return ".".join(mod + parts)


PROST_RE = re.compile(r"#\[prost\((.*)\)\]\s*$")


def inner_type(ty):
    """Strips Option<..>, Vec<..>, Box<..> wrappers from a prost field type."""
    ty = re.sub(r"\s+", "", ty).rstrip(",").replace(",>", ">")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while ty.startswith(wrapper):
            ty = ty[len(wrapper):-1]
    return ty


def parse_k8s_pb(src):
    """message full name -> list of {tag, snake, type, label} straight from the prost attributes."""
    messages = {}
    for path in sorted(glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True)):
        module = os.path.relpath(os.path.dirname(path), src).split(os.sep)
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        current = None
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^pub struct (\w+) \{", line)
            if m:
                current = ".".join(module + [m.group(1)])
                messages[current] = []
            elif line == "}":
                current = None
            elif current and PROST_RE.search(line.strip()):
                attr = PROST_RE.search(line.strip()).group(1)
                # The declaration follows, possibly wrapped over several lines by rustfmt.
                i += 1
                decl = lines[i].strip()
                while decl.count("<") > decl.count(">") or not decl.endswith(","):
                    i += 1
                    decl = decl + lines[i].strip()
                dm = re.match(r"pub (?:r#)?(\w+):(.*)$", decl)
                if not dm:
                    sys.exit(f"{path}:{i + 1}: cannot parse field declaration {decl!r}")
                snake, rust_type = dm.group(1), dm.group(2)
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                mm = re.match(r'btree_map = "(\w+), (\w+)"', attr)
                if mm:
                    key, value = mm.group(1), mm.group(2)
                    if key != "string":
                        sys.exit(f"{current}.{snake}: map key {key} unsupported")
                    if value == "message":
                        bm = re.search(r"BTreeMap<::prost::alloc::string::String,(.*)>,?$", re.sub(r"\s+", "", rust_type).replace(",>", ">"))
                        value = rust_path_to_message(module, bm.group(1))
                    messages[current].append({"tag": tag, "snake": snake, "type": value, "label": "map"})
                else:
                    kind = attr.split(",")[0].strip()
                    kind = kind.split("=")[0].strip()
                    label = "repeated" if ", repeated" in attr else "optional"
                    if kind == "message":
                        ty = rust_path_to_message(module, inner_type(rust_type))
                    elif kind in SCALARS:
                        ty = SCALARS[kind]
                    else:
                        sys.exit(f"{current}.{snake}: prost kind {kind} unsupported")
                    messages[current].append({"tag": tag, "snake": snake, "type": ty, "label": label})
            i += 1
    return messages


def parse_k8s_openapi(src):
    """OpenAPI definition name -> (json property names, required names)."""
    defs = {}
    for path in sorted(glob.glob(os.path.join(src, "**", "*.rs"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        names = re.findall(r'"(io\.k8s\.[\w.]+)"\.into\(\)', text)
        if len(names) != 1:
            continue
        props = re.findall(r'"([A-Za-z0-9_$-]+)" => Field::Key_\w+,', text)
        req = re.search(r'"required": \[(.*?)\]', text, re.S)
        required = re.findall(r'"([^"]+)"', req.group(1)) if req else []
        defs[names[0]] = (props, required)
    return defs


def norm(name):
    return name.replace("_", "").lower()


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def type_code(f):
    if f["label"] == "map":
        return "map[string]" + f["type"]
    if f["label"] == "repeated":
        return "[]" + f["type"]
    return f["type"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k8s-pb", help="k8s-pb 0.9.0 crate directory")
    ap.add_argument("--k8s-openapi", help="k8s-openapi 0.29.0 crate directory")
    args = ap.parse_args()
    pb = parse_k8s_pb(os.path.join(crate_dir("k8s-pb-0.9.0", args.k8s_pb), "src"))
    openapi = parse_k8s_openapi(os.path.join(crate_dir("k8s-openapi-0.29.0", args.k8s_openapi), "src", "v1_33"))

    reachable = set()
    todo = [msg for _, _, msg in ROOTS]
    while todo:
        msg = todo.pop()
        if msg in reachable or msg in SPECIAL:
            continue
        if msg not in pb:
            sys.exit(f"message {msg} not in k8s-pb")
        reachable.add(msg)
        for f in pb[msg]:
            if f["type"] not in SCALARS:
                todo.append(f["type"])

    # k8s-pb renames some messages to Rust case (HpaScalingPolicy for HPAScalingPolicy): match
    # definitions case-insensitively and write the Kubernetes spelling.
    openapi_ci = {k.lower(): k for k in openapi}

    def canonical(msg):
        d = openapi_ci.get(("io.k8s." + msg).lower())
        return d[len("io.k8s."):] if d else msg

    def definition(msg):
        d = openapi_ci.get(("io.k8s." + msg).lower())
        return openapi[d] if d else None

    # Embedded Go structs (`json:",inline"`) become a proto field named after the type
    # (Volume.volumeSource, Probe.handler, ConfigMapKeySelector.localObjectReference) whose own
    # fields are JSON properties of the outer object. Types used only that way (VolumeSource,
    # ProbeHandler) have no definition: they take their names from the objects embedding them.
    inline = set()
    borrowed = {}
    for msg in sorted(reachable):
        d = definition(msg)
        if d is None:
            continue
        known = {norm(p) for p in d[0]}
        for f in pb[msg]:
            t = f["type"]
            if f["label"] != "optional" or t in SCALARS or t in SPECIAL or norm(f["snake"]) in known:
                continue
            # Most of the embedded type's fields must be the outer object's properties (not all:
            # fields newer than 1.33 are in neither); this tells embedding from a field whose type
            # is itself newer than 1.33 (EnvVarSource.fileKeyRef).
            matching = sum(norm(g["snake"]) in known for g in pb[t])
            if 2 * matching > len(pb[t]):
                inline.add((msg, f["tag"]))
                if definition(t) is None:
                    borrowed.setdefault(t, ([], []))
                    borrowed[t][0].extend(d[0])
                    borrowed[t][1].extend(d[1])

    out = {}
    unmatched = []
    for msg in sorted(reachable):
        # Messages newer than Kubernetes 1.33 have no definition: all their names are camel-cased.
        props, required = definition(msg) or borrowed.get(msg, ([], []))
        by_norm = {}
        for p in sorted(set(props)):
            by_norm.setdefault(norm(p), []).append(p)
        fields = []
        for f in sorted(pb[msg], key=lambda f: f["tag"]):
            candidates = by_norm.get(norm(f["snake"]), [])
            if len(candidates) > 1:
                sys.exit(f"{msg}.{f['snake']}: ambiguous JSON names {candidates}")
            if (msg, f["tag"]) in inline:
                name = ""
            elif candidates:
                name = candidates[0]
            else:
                name = camel(f["snake"])
                unmatched.append(f"{msg}.{name}")
            ty = f["type"] if f["type"] in SCALARS else canonical(f["type"])
            entry = [f["tag"], name, type_code(dict(f, type=ty))]
            if f["type"] == "string" and f["label"] == "optional" and (name in required or (canonical(msg), name) in KEEP_EMPTY):
                entry.append(1)
            fields.append(entry)
        out[canonical(msg)] = fields
    for msg, name in KEEP_EMPTY:
        if not any(e[1] == name for e in out.get(msg, [])):
            sys.exit(f"KEEP_EMPTY names {msg}.{name}, which the schema lacks")
    if unmatched:
        print(f"note: {len(unmatched)} proto fields have no Kubernetes 1.33 JSON name, camel-cased: "
              + ", ".join(unmatched), file=sys.stderr)

    kinds = [list(r) for r in ROOTS]
    # One message per line: small diffs on regeneration, still one JSON document.
    lines = ["{", '"kinds": [', ",\n".join(json.dumps(k, separators=(",", ":")) for k in kinds), "],", '"messages": {']
    lines.append(",\n".join(json.dumps(m) + ":" + json.dumps(out[m], separators=(",", ":")) for m in sorted(out)))
    lines += ["}", "}"]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
