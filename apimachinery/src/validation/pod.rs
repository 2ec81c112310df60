//! Pods, pod templates and everything inside a PodSpec: containers, ports, env, volumes,
//! probes, resources, security contexts, tolerations, affinity, DNS config.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::json::{J, diff, sem_eq};
use super::meta::{self, label_name, labels, label_selector};
use super::names::{self, INVALID_IP, inclusive_range_error, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value, parse_ip};
use super::path::{Errs, Path, duplicate, forbidden, invalid, nonnegative, not_found, not_supported, required, too_long};
use super::quantity::{self, Quantity};

#[derive(Clone, Copy, Default)]
pub(crate) struct PodOpts {
    /// The spec belongs to a Pod, not to a template inside a workload.
    pub resource_is_pod: bool,
}

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const MAX_INT32: i64 = i32::MAX as i64;

/// Volume name → the key of its source (`configMap`, `persistentVolumeClaim`, ...).
type Volumes = BTreeMap<String, &'static str>;

/// The volume sources of a v1 `VolumeSource` in Kubernetes' checking order, with the field name
/// its "more than 1 volume type" error uses (two differ from the JSON key, as in Kubernetes).
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

// ---------------------------------------------------------------------------------------------
// Pods

/// `ValidatePodCreate`.
pub(crate) fn pod_create(pod: &Value) -> Errs {
    let mut errs = pod_metadata_and_spec(pod);
    let spec = pod.g("spec");
    let sp = Path::root("spec");
    if !spec.g("ephemeralContainers").arr().is_empty() {
        errs.push(forbidden(&sp.child("ephemeralContainers"), "cannot be set on create"));
    }
    if !spec.g("nodeName").s().is_empty() && !spec.g("schedulingGates").arr().is_empty() {
        errs.push(forbidden(&sp.child("nodeName"), "cannot be set until all schedulingGates have been cleared"));
    }
    errs
}

/// `validatePodMetadataAndSpec`.
fn pod_metadata_and_spec(pod: &Value) -> Errs {
    let mut errs = meta::object_meta(pod, true, names::name_is_dns_subdomain);
    let spec = pod.g("spec");
    let sp = Path::root("spec");
    if pod.g("metadata").g("annotations").g("kubernetes.io/config.mirror").present() && spec.g("nodeName").s().is_empty() {
        errs.push(invalid(
            &Path::new(&["metadata", "annotations"]).key("kubernetes.io/config.mirror"),
            pod.g("metadata").g("annotations").g("kubernetes.io/config.mirror").s(),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    let name = pod.g("metadata").g("name").s();
    errs.extend(pod_spec(spec, Some(name), &sp, PodOpts { resource_is_pod: true }));
    if spec.g("serviceAccountName").s().is_empty() {
        for (vi, vol) in spec.g("volumes").arr().iter().enumerate() {
            for (si, src) in vol.g("projected").g("sources").arr().iter().enumerate() {
                if src.g("serviceAccountToken").present() {
                    let p = sp.child("volumes").index(vi).child("projected").child("sources").index(si).child("serviceAccountToken");
                    errs.push(forbidden(&p, "must not be specified when serviceAccountName is not set"));
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (i, c) in spec.g(list).arr().iter().enumerate() {
            errs.extend(image_whitespace(c.g("image").s(), &sp.child(list).index(i).child("image")));
        }
    }
    errs
}

fn image_whitespace(image: &str, p: &Path) -> Option<super::FieldError> {
    (image.trim() != image).then(|| invalid(p, image, "must not have leading or trailing whitespace"))
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: a pod's spec is immutable except for images, the active deadline
/// (downwards), added tolerations, removed scheduling gates and a negative grace period → 1.
pub(crate) fn pod_update(new: &Value, old: &Value) -> Errs {
    let mut errs = pod_metadata_and_spec(new);
    let (ns, os) = (new.g("spec"), old.g("spec"));
    let sp = Path::root("spec");
    for list in ["containers", "initContainers"] {
        let (nc, oc) = (ns.g(list).arr(), os.g(list).arr());
        if nc.len() != oc.len() {
            errs.push(forbidden(&sp.child(list), "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = c.g("image").s();
            if image.is_empty() {
                errs.push(required(&sp.child(list).index(i).child("image"), ""));
            }
        }
    }
    let (nad, oad) = (ns.g("activeDeadlineSeconds").int(), os.g("activeDeadlineSeconds").int());
    match (nad, oad) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(invalid(&sp.child("activeDeadlineSeconds"), n, inclusive_range_error(0, MAX_INT32)));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid(&sp.child("activeDeadlineSeconds"), n, "must be less than or equal to previous value"));
            return errs;
        }
        (None, Some(_)) => errs.push(invalid(&sp.child("activeDeadlineSeconds"), Value::Null, "must not update from a positive integer to nil value")),
        _ => {}
    }
    errs.extend(only_added_tolerations(ns.g("tolerations"), os.g("tolerations"), &sp.child("tolerations")));
    errs.extend(only_deleted_scheduling_gates(ns.g("schedulingGates"), os.g("schedulingGates"), &sp.child("schedulingGates")));
    if sem_eq(ns, os) {
        return errs;
    }
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let Some(cs) = m.get_mut(list).and_then(|v| v.as_array_mut()) {
                for (i, c) in cs.iter_mut().enumerate() {
                    if let Some(cm) = c.as_object_mut() {
                        cm.insert("image".into(), os.g(list).arr().get(i).map(|o| o.g("image").clone()).unwrap_or(Value::Null));
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            m.insert(field.into(), os.g(field).clone());
        }
        let old_grace = os.g("terminationGracePeriodSeconds").int();
        if old_grace.is_some_and(|g| g < 0) && m.get("terminationGracePeriodSeconds").and_then(|v| v.int()) == Some(1) {
            m.insert("terminationGracePeriodSeconds".into(), os.g("terminationGracePeriodSeconds").clone());
        }
        // Gated pods may gain node selector entries (but not lose or change them).
        if !os.g("schedulingGates").arr().is_empty() {
            let old_sel = os.g("nodeSelector");
            let new_sel = m.get("nodeSelector").cloned().unwrap_or(Value::Null);
            if !sem_eq(&new_sel, old_sel) {
                let only_additions = old_sel.entries().iter().all(|(k, v)| new_sel.g(k) == *v);
                if !only_additions {
                    errs.push(invalid(&sp.child("nodeSelector"), new_sel.clone(), "only additions to spec.nodeSelector are allowed (no mutations or deletions)"));
                }
                m.insert("nodeSelector".into(), old_sel.clone());
            }
        }
    }
    if !sem_eq(&munged, os) {
        errs.push(forbidden(&sp, format!("pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}", diff(os, &munged))));
    }
    errs
}

fn only_added_tolerations(new: &Value, old: &Value, p: &Path) -> Errs {
    for o in old.arr() {
        let found = new.arr().iter().any(|n| {
            let mut o2 = o.clone();
            if let Some(m) = o2.as_object_mut() {
                m.insert("tolerationSeconds".into(), n.g("tolerationSeconds").clone());
            }
            sem_eq(&o2, n)
        });
        if !found {
            return vec![forbidden(p, "existing toleration can not be modified except its tolerationSeconds")];
        }
    }
    tolerations(new, p)
}

fn only_deleted_scheduling_gates(new: &Value, old: &Value, p: &Path) -> Errs {
    let old_names: HashSet<&str> = old.arr().iter().map(|g| g.g("name").s()).collect();
    new.arr()
        .iter()
        .enumerate()
        .filter(|(_, g)| !old_names.contains(g.g("name").s()))
        .map(|(i, g)| forbidden(&p.index(i).child("name"), format!("only deletion is allowed, but found new scheduling gate '{}'", g.g("name").s())))
        .collect()
}

/// `ValidatePodTemplateSpec` (the `template` of a workload).
pub(crate) fn pod_template_spec(tpl: &Value, p: &Path) -> Errs {
    let mut errs = labels(tpl.g("metadata").g("labels"), &p.child("labels"));
    errs.extend(meta::annotations(tpl.g("metadata").g("annotations"), &p.child("annotations")));
    let spec = tpl.g("spec");
    errs.extend(pod_spec(spec, None, &p.child("spec"), PodOpts::default()));
    if !spec.g("ephemeralContainers").arr().is_empty() {
        errs.push(forbidden(&p.child("spec").child("ephemeralContainers"), "ephemeral containers not allowed in pod template"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// PodSpec

/// `ValidatePodSpec`; `pod_name` is set for real pods (checks generic ephemeral volume names).
pub(crate) fn pod_spec(spec: &Value, pod_name: Option<&str>, p: &Path, opts: PodOpts) -> Errs {
    let mut errs = Vec::new();
    let grace = spec.g("terminationGracePeriodSeconds").int();
    match grace {
        None => errs.push(required(&p.child("terminationGracePeriodSeconds"), "")),
        Some(g) if g < 0 => errs.push(invalid(&p.child("terminationGracePeriodSeconds"), g, "must be greater than or equal to 0")),
        _ => {}
    }
    let host_users = spec.g("hostUsers").boolean().unwrap_or(true);
    let (vols, verrs) = volumes(spec.g("volumes"), pod_name, &p.child("volumes"), opts);
    errs.extend(verrs);
    let restart_policy = spec.g("restartPolicy").s();
    errs.extend(containers(spec.g("containers"), &vols, grace, &p.child("containers"), opts, host_users));
    errs.extend(init_containers(spec.g("initContainers"), spec.g("containers"), &vols, grace, &p.child("initContainers"), opts, host_users));
    errs.extend(ephemeral_containers(spec, &vols, &p.child("ephemeralContainers"), opts, host_users));
    errs.extend(host_network_deps(spec, p, opts));
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&p.child("restartPolicy"), "")),
        other => errs.push(not_supported(&p.child("restartPolicy"), other, &["Always", "OnFailure", "Never"])),
    }
    let dns_policy = spec.g("dnsPolicy").s();
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&p.child("dnsPolicy"), "")),
        other => errs.push(not_supported(&p.child("dnsPolicy"), other, &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"])),
    }
    errs.extend(labels(spec.g("nodeSelector"), &p.child("nodeSelector")));
    errs.extend(pod_security_context(spec, &p.child("securityContext")));
    for (i, s) in spec.g("imagePullSecrets").arr().iter().enumerate() {
        if s.entries().iter().any(|(k, v)| k.as_str() != "name" && !v.is_empty_value()) {
            errs.push(invalid(&p.child("imagePullSecrets").index(i), s.clone(), "only name may be set"));
        }
    }
    errs.extend(affinity(spec.g("affinity"), &p.child("affinity")));
    errs.extend(dns_config(spec.g("dnsConfig"), dns_policy, &p.child("dnsConfig")));
    for (i, g) in spec.g("readinessGates").arr().iter().enumerate() {
        let t = g.g("conditionType").s();
        let gp = p.child("readinessGates").index(i).child("conditionType");
        errs.extend(is_qualified_name(t).into_iter().map(|m| invalid(&gp, t, m)));
    }
    let mut seen_gates = HashSet::new();
    for (i, g) in spec.g("schedulingGates").arr().iter().enumerate() {
        let n = g.g("name").s();
        let gp = p.child("schedulingGates").index(i);
        errs.extend(is_qualified_name(n).into_iter().map(|m| invalid(&gp, n, m)));
        if !seen_gates.insert(n) {
            errs.push(duplicate(&gp, n));
        }
    }
    errs.extend(topology_spread_constraints(spec.g("topologySpreadConstraints"), &p.child("topologySpreadConstraints")));
    for (field, name_fn) in [("serviceAccountName", names::name_is_dns_subdomain as meta::NameFn), ("nodeName", names::name_is_dns_subdomain)] {
        let v = spec.g(field).s();
        if !v.is_empty() {
            errs.extend(name_fn(v, false).into_iter().map(|m| invalid(&p.child(field), v, m)));
        }
    }
    if let Some(ads) = spec.g("activeDeadlineSeconds").int()
        && !(1..=MAX_INT32).contains(&ads)
    {
        errs.push(invalid(&p.child("activeDeadlineSeconds"), ads, inclusive_range_error(1, MAX_INT32)));
    }
    for field in ["hostname", "subdomain"] {
        let v = spec.g(field).s();
        if !v.is_empty() {
            errs.extend(dns_label(v, &p.child(field)));
        }
    }
    errs.extend(tolerations(spec.g("tolerations"), &p.child("tolerations")));
    for (i, alias) in spec.g("hostAliases").arr().iter().enumerate() {
        let ap = p.child("hostAliases").index(i);
        errs.extend(valid_ip(alias.g("ip").s(), &ap.child("ip")));
        for (j, h) in alias.g("hostnames").arr().iter().enumerate() {
            errs.extend(dns_subdomain(h.s(), &ap.child("hostnames").index(j)));
        }
    }
    let pcn = spec.g("priorityClassName").s();
    if !pcn.is_empty() {
        errs.extend(is_dns1123_subdomain(pcn).into_iter().map(|m| invalid(&p.child("priorityClassName"), pcn, m)));
    }
    if let Some(rc) = spec.g("runtimeClassName").as_str() {
        errs.extend(is_dns1123_subdomain(rc).into_iter().map(|m| invalid(&p.child("runtimeClassName"), rc, m)));
    }
    if let Some(pp) = spec.g("preemptionPolicy").as_str() {
        errs.extend(preemption_policy(pp, &p.child("preemptionPolicy")));
    }
    let os = spec.g("os");
    if os.present() {
        let name = os.g("name").s();
        if name.is_empty() {
            errs.push(required(&p.child("os").child("name"), "cannot be empty"));
        } else if name != "linux" && name != "windows" {
            errs.push(not_supported(&p.child("os"), name, &["linux", "windows"]));
        }
    }
    errs
}

pub(crate) fn preemption_policy(pp: &str, p: &Path) -> Errs {
    match pp {
        "PreemptLowerPriority" | "Never" => vec![],
        "" => vec![required(p, "")],
        other => vec![not_supported(p, other, &["PreemptLowerPriority", "Never"])],
    }
}

pub(crate) fn dns_label(v: &str, p: &Path) -> Errs {
    is_dns1123_label(v).into_iter().map(|m| invalid(p, v, m)).collect()
}

pub(crate) fn dns_subdomain(v: &str, p: &Path) -> Errs {
    is_dns1123_subdomain(v).into_iter().map(|m| invalid(p, v, m)).collect()
}

pub(crate) fn valid_ip(v: &str, p: &Path) -> Errs {
    if parse_ip(v).is_some() { vec![] } else { vec![invalid(p, v, INVALID_IP)] }
}

fn host_network_deps(spec: &Value, p: &Path, opts: PodOpts) -> Errs {
    let mut errs = Vec::new();
    if spec.g("hostNetwork").boolean() != Some(true) {
        return errs;
    }
    for (i, c) in spec.g("containers").arr().iter().enumerate() {
        for (j, port) in c.g("ports").arr().iter().enumerate() {
            let hp = port.g("hostPort").int().unwrap_or(0);
            let cp = port.g("containerPort").int().unwrap_or(0);
            if (opts.resource_is_pod || hp != 0) && hp != cp {
                let pp = p.child("containers").index(i).child("ports").index(j).child("hostPort");
                errs.push(invalid(&pp, hp, "must match `containerPort` when `hostNetwork` is true"));
            }
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Volumes

fn volumes(list: &Value, pod_name: Option<&str>, p: &Path, opts: PodOpts) -> (Volumes, Errs) {
    let mut errs = Vec::new();
    let mut vols = Volumes::new();
    let created_pvcs: HashSet<String> = match pod_name {
        Some(pod) if !pod.is_empty() => list
            .arr()
            .iter()
            .filter(|v| v.g("ephemeral").present())
            .map(|v| format!("{pod}-{}", v.g("name").s()))
            .collect(),
        _ => HashSet::new(),
    };
    for (i, vol) in list.arr().iter().enumerate() {
        let ip = p.index(i);
        let name = vol.g("name").s();
        let (mut el, kind) = volume_source(vol, &ip, name, pod_name, opts);
        if name.is_empty() {
            el.push(required(&ip.child("name"), ""));
        } else {
            el.extend(dns_label(name, &ip.child("name")));
        }
        if vols.contains_key(name) {
            el.push(duplicate(&ip.child("name"), name));
        }
        if el.is_empty() {
            vols.insert(name.to_string(), kind.unwrap_or(""));
        } else {
            errs.extend(el);
        }
        let claim = vol.g("persistentVolumeClaim").g("claimName").s();
        if vol.g("persistentVolumeClaim").present() && created_pvcs.contains(claim) {
            errs.push(invalid(
                &ip.child("persistentVolumeClaim").child("claimName"),
                claim,
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (vols, errs)
}

fn volume_source(vol: &Value, p: &Path, vol_name: &str, pod_name: Option<&str>, opts: PodOpts) -> (Errs, Option<&'static str>) {
    let mut errs = Vec::new();
    let mut kind = None;
    for &(key, err_name) in VOLUME_SOURCES {
        let src = vol.g(key);
        if !src.present() {
            continue;
        }
        if kind.is_some() {
            errs.push(forbidden(&p.child(err_name), "may not specify more than 1 volume type"));
            continue;
        }
        kind = Some(key);
        let sp = p.child(key);
        match key {
            "emptyDir" => {
                let limit = src.g("sizeLimit");
                if limit.present() {
                    match quantity::from_json(limit) {
                        Ok(q) if q.sign() < 0 => errs.push(forbidden(&sp.child("sizeLimit"), "SizeLimit field must be a valid resource quantity")),
                        Ok(_) => {}
                        Err(e) => errs.push(invalid(&sp.child("sizeLimit"), limit.clone(), e)),
                    }
                }
            }
            "hostPath" => errs.extend(host_path(src, &sp)),
            "gitRepo" => {
                if src.g("repository").s().is_empty() {
                    errs.push(required(&sp.child("repository"), ""));
                }
                errs.extend(local_descending_path(src.g("directory").s(), &sp.child("directory")));
            }
            "gcePersistentDisk" => errs.extend(require_fields(src, &p.child("persistentDisk"), &["pdName"])),
            "awsElasticBlockStore" | "cinder" | "portworxVolume" => errs.extend(require_fields(src, &sp, &["volumeID"])),
            "secret" => {
                if src.g("secretName").s().is_empty() {
                    errs.push(required(&sp.child("secretName"), ""));
                }
                errs.extend(file_mode(src.g("defaultMode"), &sp.child("defaultMode")));
                errs.extend(key_to_paths(src.g("items"), &sp.child("items")));
            }
            "configMap" => {
                if src.g("name").s().is_empty() {
                    errs.push(required(&sp.child("name"), ""));
                }
                errs.extend(file_mode(src.g("defaultMode"), &sp.child("defaultMode")));
                errs.extend(key_to_paths(src.g("items"), &sp.child("items")));
            }
            "nfs" => {
                errs.extend(require_fields(src, &sp, &["server", "path"]));
                let path = src.g("path").s();
                if !path.starts_with('/') {
                    errs.push(invalid(&sp.child("path"), path, "must be an absolute path"));
                }
            }
            "iscsi" => errs.extend(require_fields(src, &sp, &["targetPortal", "iqn"])),
            "glusterfs" => errs.extend(require_fields(src, &sp, &["endpoints", "path"])),
            "flocker" => {
                let (n, u) = (src.g("datasetName").s(), src.g("datasetUUID").s());
                if n.is_empty() && u.is_empty() {
                    errs.push(required(&sp, "one of datasetName and datasetUUID is required"));
                }
                if !n.is_empty() && !u.is_empty() {
                    errs.push(invalid(&sp, "resource", "datasetName and datasetUUID can not be specified simultaneously"));
                }
            }
            "persistentVolumeClaim" => errs.extend(require_fields(src, &sp, &["claimName"])),
            "rbd" => {
                if src.g("monitors").arr().is_empty() {
                    errs.push(required(&sp.child("monitors"), ""));
                }
                errs.extend(require_fields(src, &sp, &["image"]));
            }
            "cephfs" if src.g("monitors").arr().is_empty() => errs.push(required(&sp.child("monitors"), "")),
            "quobyte" => {
                if src.g("registry").s().is_empty() {
                    errs.push(required(&sp.child("registry"), "must be a host:port pair or multiple pairs separated by commas"));
                }
                errs.extend(require_fields(src, &sp, &["volume"]));
            }
            "downwardAPI" => {
                errs.extend(file_mode(src.g("defaultMode"), &sp.child("defaultMode")));
                for item in src.g("items").arr() {
                    errs.extend(downward_api_file(item, &sp));
                }
            }
            "fc" => {
                let (wwns, wwids) = (src.g("targetWWNs").arr(), src.g("wwids").arr());
                if wwns.is_empty() && wwids.is_empty() {
                    errs.push(required(&sp.child("targetWWNs"), "must specify either targetWWNs or wwids, but not both"));
                }
                if !wwns.is_empty() && !wwids.is_empty() {
                    errs.push(invalid(&sp.child("targetWWNs"), src.g("targetWWNs").clone(), "targetWWNs and wwids can not be specified simultaneously"));
                }
            }
            "flexVolume" => errs.extend(require_fields(src, &sp, &["driver"])),
            "azureFile" => errs.extend(require_fields(src, &sp, &["secretName", "shareName"])),
            "vsphereVolume" => errs.extend(require_fields(src, &sp, &["volumePath"])),
            "photonPersistentDisk" => errs.extend(require_fields(src, &sp, &["pdID"])),
            "azureDisk" => errs.extend(require_fields(src, &sp, &["diskName", "diskURI"])),
            "storageos" => {
                let vn = src.g("volumeName").s();
                if vn.is_empty() {
                    errs.push(required(&sp.child("volumeName"), ""));
                } else {
                    errs.extend(dns_label(vn, &sp.child("volumeName")));
                }
            }
            "projected" => {
                errs.extend(file_mode(src.g("defaultMode"), &sp.child("defaultMode")));
                errs.extend(projection_sources(src, &sp));
            }
            "scaleIO" => errs.extend(require_fields(src, &sp, &["gateway", "system", "volumeName"])),
            "csi" => errs.extend(csi_driver_name(src.g("driver").s(), &sp.child("driver"))),
            "ephemeral" => {
                let tpl = src.g("volumeClaimTemplate");
                if !tpl.present() {
                    errs.push(required(&sp.child("volumeClaimTemplate"), ""));
                } else {
                    let tp = sp.child("volumeClaimTemplate");
                    errs.extend(meta::annotations(tpl.g("metadata").g("annotations"), &tp.child("metadata").child("annotations")));
                    errs.extend(labels(tpl.g("metadata").g("labels"), &tp.child("metadata").child("labels")));
                    for (k, v) in tpl.g("metadata").entries() {
                        if k != "labels" && k != "annotations" && !v.is_empty_value() {
                            errs.push(forbidden(&tp.child("metadata").child(k), "cannot be set"));
                        }
                    }
                    errs.extend(super::core::pvc_spec(tpl.g("spec"), &tp.child("spec")));
                    if let Some(pod) = pod_name.filter(|n| !n.is_empty())
                        && !vol_name.is_empty()
                    {
                        let pvc = format!("{pod}-{vol_name}");
                        for m in is_dns1123_subdomain(&pvc) {
                            errs.push(invalid(&p.child("name"), vol_name, format!("PVC name \"{pvc}\": {m}")));
                        }
                    }
                }
            }
            "image" => {
                if opts.resource_is_pod && src.g("reference").s().is_empty() {
                    errs.push(required(&sp.child("reference"), ""));
                }
                errs.extend(pull_policy(src.g("pullPolicy").s(), &sp.child("pullPolicy")));
            }
            _ => {}
        }
    }
    if kind.is_none() {
        errs.push(required(p, "must specify a volume type"));
    }
    (errs, kind)
}

fn require_fields(src: &Value, p: &Path, fields: &[&str]) -> Errs {
    fields.iter().filter(|f| src.g(f).s().is_empty()).map(|f| required(&p.child(f), "")).collect()
}

fn host_path(src: &Value, p: &Path) -> Errs {
    let path = src.g("path").s();
    if path.is_empty() {
        return vec![required(&p.child("path"), "")];
    }
    let mut errs = path_no_backsteps(path, &p.child("path"));
    if let Some(t) = src.g("type").as_str() {
        const TYPES: [&str; 8] = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
        if !TYPES.contains(&t) {
            errs.push(not_supported(&p.child("type"), t, &TYPES));
        }
    }
    errs
}

pub(crate) fn csi_driver_name(driver: &str, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if driver.is_empty() {
        errs.push(required(p, ""));
    }
    if driver.len() > 63 {
        errs.push(too_long(p, 63));
    }
    errs.extend(is_dns1123_subdomain(&driver.to_lowercase()).into_iter().map(|m| invalid(p, driver, m)));
    errs
}

fn file_mode(mode: &Value, p: &Path) -> Errs {
    match mode.int() {
        Some(m) if !(0..=0o777).contains(&m) => vec![invalid(p, m, FILE_MODE_ERR)],
        _ => vec![],
    }
}

fn key_to_paths(items: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, kp) in items.arr().iter().enumerate() {
        let ip = p.index(i);
        if kp.g("key").s().is_empty() {
            errs.push(required(&ip.child("key"), ""));
        }
        let path = kp.g("path").s();
        if path.is_empty() {
            errs.push(required(&ip.child("path"), ""));
        }
        errs.extend(local_non_reserved_path(path, &ip.child("path")));
        errs.extend(file_mode(kp.g("mode"), &ip.child("mode")));
    }
    errs
}

fn path_no_backsteps(path: &str, p: &Path) -> Errs {
    if path.replace('\\', "/").split('/').any(|part| part == "..") {
        vec![invalid(p, path, "must not contain '..'")]
    } else {
        vec![]
    }
}

fn local_descending_path(path: &str, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if path.starts_with('/') {
        errs.push(invalid(p, path, "must be a relative path"));
    }
    errs.extend(path_no_backsteps(path, p));
    errs
}

fn local_non_reserved_path(path: &str, p: &Path) -> Errs {
    let mut errs = local_descending_path(path, p);
    if path.starts_with("..") && !path.starts_with("../") {
        errs.push(invalid(p, path, "must not start with '..'"));
    }
    errs
}

const VOLUME_FIELD_PATHS: [&str; 5] = ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: [&str; 6] =
    ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"];

fn downward_api_file(file: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let path = file.g("path").s();
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(path, &p.child("path")));
    if file.g("fieldRef").present() {
        errs.extend(object_field_selector(file.g("fieldRef"), &VOLUME_FIELD_PATHS, &p.child("fieldRef")));
        if file.g("resourceFieldRef").present() {
            errs.push(invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"));
        }
    } else if file.g("resourceFieldRef").present() {
        errs.extend(resource_field_selector(file.g("resourceFieldRef"), true, &p.child("resourceFieldRef")));
    } else {
        errs.push(required(p, "one of fieldRef and resourceFieldRef is required"));
    }
    errs.extend(file_mode(file.g("mode"), &p.child("mode")));
    errs
}

fn projection_sources(src: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut all_paths = HashSet::new();
    for (i, s) in src.g("sources").arr().iter().enumerate() {
        let sp = p.child("sources").index(i);
        let mut n = 0;
        for kind in ["secret", "configMap"] {
            let inner = s.g(kind);
            if !inner.present() {
                continue;
            }
            n += 1;
            if inner.g("name").s().is_empty() {
                errs.push(required(&sp.child(kind).child("name"), ""));
            }
            errs.extend(key_to_paths(inner.g("items"), &sp.child(kind).child("items")));
            for kp in inner.g("items").arr() {
                let path = kp.g("path").s();
                if !path.is_empty() && !all_paths.insert(path.to_string()) {
                    errs.push(invalid(p, inner.g("name").s(), "conflicting duplicate paths"));
                }
            }
        }
        if s.g("downwardAPI").present() {
            n += 1;
            for f in s.g("downwardAPI").g("items").arr() {
                errs.extend(downward_api_file(f, &sp.child("downwardAPI")));
                let path = f.g("path").s();
                if !path.is_empty() && !all_paths.insert(path.to_string()) {
                    errs.push(invalid(p, path, "conflicting duplicate paths"));
                }
            }
        }
        let tok = s.g("serviceAccountToken");
        if tok.present() {
            n += 1;
            let tp = sp.child("serviceAccountToken");
            let exp = tok.g("expirationSeconds").int().unwrap_or(0);
            if exp < 600 {
                errs.push(invalid(&tp.child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"));
            }
            if exp > 1 << 32 {
                errs.push(invalid(&tp.child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"));
            }
            let path = tok.g("path").s();
            if path.is_empty() {
                errs.push(required(&p.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(path, &p.child("path")));
            }
        }
        if s.g("clusterTrustBundle").present() {
            n += 1;
        }
        if n > 1 {
            errs.push(forbidden(&sp, "may not specify more than 1 volume type per source"));
        }
    }
    errs
}

/// `validateObjectFieldSelector` (downward API `fieldRef`).
fn object_field_selector(fs: &Value, expressions: &[&str], p: &Path) -> Errs {
    let api_version = fs.g("apiVersion").s();
    if api_version.is_empty() {
        return vec![required(&p.child("apiVersion"), "")];
    }
    let field_path = fs.g("fieldPath").s();
    if field_path.is_empty() {
        return vec![required(&p.child("fieldPath"), "")];
    }
    if api_version != "v1" {
        return vec![invalid(&p.child("fieldPath"), field_path, format!("error converting fieldPath: unsupported pod version: {api_version}"))];
    }
    if let Some((path, subscript)) = split_subscripted_path(field_path) {
        return match path {
            "metadata.annotations" => qualified_name(&subscript.to_lowercase(), p),
            "metadata.labels" => qualified_name(subscript, p),
            _ => vec![invalid(
                &p.child("fieldPath"),
                field_path,
                format!("error converting fieldPath: field label does not support subscript: {field_path}"),
            )],
        };
    }
    const CONVERTIBLE: [&str; 15] = [
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
        "spec.host",
    ];
    if !CONVERTIBLE.contains(&field_path) {
        return vec![invalid(&p.child("fieldPath"), field_path, format!("error converting fieldPath: field label not supported: {field_path}"))];
    }
    let internal = if field_path == "spec.host" { "spec.nodeName" } else { field_path };
    if !expressions.contains(&internal) {
        return vec![not_supported(&p.child("fieldPath"), internal, expressions)];
    }
    vec![]
}

fn qualified_name(v: &str, p: &Path) -> Errs {
    is_qualified_name(v).into_iter().map(|m| invalid(p, v, m)).collect()
}

fn split_subscripted_path(fp: &str) -> Option<(&str, &str)> {
    let s = fp.strip_suffix("']")?;
    let (path, sub) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, sub))
}

fn resource_field_selector(fs: &Value, volume: bool, p: &Path) -> Errs {
    let resource = fs.g("resource").s();
    if volume && fs.g("containerName").s().is_empty() {
        vec![required(&p.child("containerName"), "")]
    } else if resource.is_empty() {
        vec![required(&p.child("resource"), "")]
    } else if !RESOURCE_FIELD_PATHS.contains(&resource) && !resource.starts_with("requests.hugepages-") && !resource.starts_with("limits.hugepages-") {
        vec![not_supported(&p.child("resource"), resource, &RESOURCE_FIELD_PATHS)]
    } else {
        vec![]
    }
}

// ---------------------------------------------------------------------------------------------
// Containers

fn containers(list: &Value, vols: &Volumes, grace: Option<i64>, p: &Path, opts: PodOpts, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    if list.arr().is_empty() {
        return vec![required(p, "")];
    }
    let mut names = HashSet::new();
    for (i, c) in list.arr().iter().enumerate() {
        let cp = p.index(i);
        errs.extend(container_common(c, vols, &cp, opts, host_users));
        let name = c.g("name").s();
        if !names.insert(name) {
            errs.push(duplicate(&cp.child("name"), name));
        }
        if c.g("lifecycle").present() {
            errs.extend(lifecycle(c.g("lifecycle"), grace, &cp.child("lifecycle")));
        }
        errs.extend(probes(c, grace, &cp));
        if c.g("restartPolicy").present() {
            errs.push(forbidden(&cp.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    errs.extend(host_port_conflicts(list.arr(), p));
    errs
}

fn probes(c: &Value, grace: Option<i64>, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let probe = c.g(kind);
        if !probe.present() {
            continue;
        }
        let pp = p.child(kind);
        errs.extend(validate_probe(probe, grace, &pp));
        if kind == "readinessProbe" {
            if probe.g("terminationGracePeriodSeconds").present() {
                errs.push(invalid(
                    &pp.child("terminationGracePeriodSeconds"),
                    probe.g("terminationGracePeriodSeconds").clone(),
                    "must not be set for readinessProbes",
                ));
            }
        } else {
            let st = probe.g("successThreshold").int().unwrap_or(0);
            if st != 1 {
                errs.push(invalid(&pp.child("successThreshold"), st, "must be 1"));
            }
        }
    }
    errs
}

fn init_containers(list: &Value, regular: &Value, vols: &Volumes, grace: Option<i64>, p: &Path, opts: PodOpts, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    let mut names: HashSet<&str> = regular.arr().iter().map(|c| c.g("name").s()).collect();
    for (i, c) in list.arr().iter().enumerate() {
        let cp = p.index(i);
        errs.extend(container_common(c, vols, &cp, opts, host_users));
        let mut restart_always = false;
        if let Some(rp) = c.g("restartPolicy").as_str() {
            if rp != "Always" {
                errs.push(not_supported(&cp.child("restartPolicy"), rp, &["Always"]));
            }
            restart_always = rp == "Always";
        }
        let name = c.g("name").s();
        if names.contains(name) {
            errs.push(duplicate(&cp.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), p));
        if restart_always {
            if c.g("lifecycle").present() {
                errs.extend(lifecycle(c.g("lifecycle"), grace, &cp.child("lifecycle")));
            }
            errs.extend(probes(c, grace, &cp));
        } else {
            for field in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if c.g(field).present() {
                    errs.push(forbidden(&cp.child(field), "may not be set for init containers without restartPolicy=Always"));
                }
            }
        }
    }
    errs
}

fn ephemeral_containers(spec: &Value, vols: &Volumes, p: &Path, opts: PodOpts, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    let others: HashSet<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|l| spec.g(l).arr().iter().map(|c| c.g("name").s()))
        .collect();
    let mut all = others.clone();
    for (i, c) in spec.g("ephemeralContainers").arr().iter().enumerate() {
        let cp = p.index(i);
        errs.extend(container_common(c, vols, &cp, opts, host_users));
        errs.extend(image_whitespace(c.g("image").s(), &cp.child("image")));
        let name = c.g("name").s();
        if !all.insert(name) {
            errs.push(duplicate(&cp.child("name"), name));
        }
        let target = c.g("targetContainerName").s();
        if !target.is_empty() && !others.contains(target) {
            errs.push(not_found(&cp.child("targetContainerName"), target));
        }
        for field in ["ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resizePolicy", "restartPolicy"] {
            if !c.g(field).is_empty_value() {
                errs.push(forbidden(&cp.child(field), "cannot be set for an Ephemeral Container"));
            }
        }
    }
    errs
}

fn host_port_conflicts(containers: &[Value], p: &Path) -> Errs {
    let mut seen = HashSet::new();
    let mut errs = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.g("ports").arr().iter().enumerate() {
            let hp = port.g("hostPort").int().unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{}", port.g("protocol").s(), port.g("hostIP").s(), hp);
            if !seen.insert(key.clone()) {
                errs.push(duplicate(&p.index(ci).child("ports").index(pi).child("hostPort"), key));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
fn container_common(c: &Value, vols: &Volumes, p: &Path, _opts: PodOpts, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    let name = c.g("name").s();
    if name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else {
        errs.extend(dns_label(name, &p.child("name")));
    }
    if c.g("image").s().is_empty() {
        errs.push(required(&p.child("image"), ""));
    }
    match c.g("terminationMessagePolicy").s() {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&p.child("terminationMessagePolicy"), "")),
        other => errs.push(not_supported(&p.child("terminationMessagePolicy"), other, &["File", "FallbackToLogsOnError"])),
    }
    errs.extend(container_ports(c.g("ports"), &p.child("ports")));
    errs.extend(env(c.g("env"), &p.child("env")));
    errs.extend(env_from(c.g("envFrom"), &p.child("envFrom")));
    errs.extend(volume_mounts(c, vols, &p.child("volumeMounts")));
    errs.extend(volume_devices(c, vols, &p.child("volumeDevices")));
    errs.extend(pull_policy(c.g("imagePullPolicy").s(), &p.child("imagePullPolicy")));
    errs.extend(resource_requirements(c.g("resources"), &p.child("resources")));
    errs.extend(security_context(c.g("securityContext"), &p.child("securityContext"), host_users));
    errs
}

fn pull_policy(policy: &str, p: &Path) -> Errs {
    match policy {
        "Always" | "IfNotPresent" | "Never" => vec![],
        "" => vec![required(p, "")],
        other => vec![not_supported(p, other, &["Always", "IfNotPresent", "Never"])],
    }
}

fn container_ports(ports: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.arr().iter().enumerate() {
        let ip = p.index(i);
        let name = port.g("name").s();
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(msgs.into_iter().map(|m| invalid(&ip.child("name"), name, m)));
            } else if !names.insert(name) {
                errs.push(duplicate(&ip.child("name"), name));
            }
        }
        let cp = port.g("containerPort").int().unwrap_or(0);
        if cp == 0 {
            errs.push(required(&ip.child("containerPort"), ""));
        } else {
            errs.extend(names::is_valid_port_num(cp).into_iter().map(|m| invalid(&ip.child("containerPort"), cp, m)));
        }
        let hp = port.g("hostPort").int().unwrap_or(0);
        if hp != 0 {
            errs.extend(names::is_valid_port_num(hp).into_iter().map(|m| invalid(&ip.child("hostPort"), hp, m)));
        }
        errs.extend(protocol(port.g("protocol").s(), &ip.child("protocol")));
    }
    errs
}

pub(crate) fn protocol(proto: &str, p: &Path) -> Errs {
    match proto {
        "TCP" | "UDP" | "SCTP" => vec![],
        "" => vec![required(p, "")],
        other => vec![not_supported(p, other, &["SCTP", "TCP", "UDP"])],
    }
}

fn env(vars: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in vars.arr().iter().enumerate() {
        let ip = p.index(i);
        let name = ev.g("name").s();
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        } else {
            errs.extend(names::is_env_var_name(name).into_iter().map(|m| invalid(&ip.child("name"), name, m)));
        }
        let vf = ev.g("valueFrom");
        if !vf.present() {
            continue;
        }
        let vp = ip.child("valueFrom");
        let mut n = 0;
        if vf.g("fieldRef").present() {
            n += 1;
            errs.extend(object_field_selector(vf.g("fieldRef"), &ENV_FIELD_PATHS, &vp.child("fieldRef")));
        }
        if vf.g("resourceFieldRef").present() {
            n += 1;
            errs.extend(resource_field_selector(vf.g("resourceFieldRef"), false, &vp.child("resourceFieldRef")));
        }
        for kind in ["configMapKeyRef", "secretKeyRef"] {
            let r = vf.g(kind);
            if !r.present() {
                continue;
            }
            n += 1;
            let rp = vp.child(kind);
            let rname = r.g("name").s();
            errs.extend(is_dns1123_subdomain(rname).into_iter().map(|m| invalid(&rp.child("name"), rname, m)));
            let key = r.g("key").s();
            if key.is_empty() {
                errs.push(required(&rp.child("key"), ""));
            } else {
                errs.extend(names::is_config_map_key(key).into_iter().map(|m| invalid(&rp.child("key"), key, m)));
            }
        }
        if n == 0 {
            errs.push(invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !ev.g("value").s().is_empty() {
            errs.push(invalid(&vp, "", "may not be specified when `value` is not empty"));
        } else if n > 1 {
            errs.push(invalid(&vp, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}

fn env_from(list: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in list.arr().iter().enumerate() {
        let ip = p.index(i);
        let prefix = ev.g("prefix").s();
        if !prefix.is_empty() {
            errs.extend(names::is_env_var_name(prefix).into_iter().map(|m| invalid(&ip.child("prefix"), prefix, m)));
        }
        let mut n = 0;
        for kind in ["configMapRef", "secretRef"] {
            let r = ev.g(kind);
            if !r.present() {
                continue;
            }
            n += 1;
            let name = r.g("name").s();
            if name.is_empty() {
                errs.push(required(&ip.child(kind).child("name"), ""));
            } else {
                errs.extend(names::name_is_dns_subdomain(name, true).into_iter().map(|m| invalid(&ip.child(kind).child("name"), name, m)));
            }
        }
        if n == 0 {
            errs.push(invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if n > 1 {
            errs.push(invalid(p, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}

fn volume_mounts(c: &Value, vols: &Volumes, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut mount_points = HashSet::new();
    let devices: Vec<(&str, &str)> = c.g("volumeDevices").arr().iter().map(|d| (d.g("name").s(), d.g("devicePath").s())).collect();
    let privileged = c.g("securityContext").g("privileged").boolean() == Some(true);
    for (i, m) in c.g("volumeMounts").arr().iter().enumerate() {
        let ip = p.index(i);
        let name = m.g("name").s();
        let mount_path = m.g("mountPath").s();
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        }
        if !vols.contains_key(name) {
            errs.push(not_found(&ip.child("name"), name));
        }
        if mount_path.is_empty() {
            errs.push(required(&ip.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(invalid(&ip.child("mountPath"), mount_path, "must be unique"));
        }
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(invalid(&ip.child("name"), name, "must not already exist in volumeDevices"));
        }
        if devices.iter().any(|(_, d)| *d == mount_path) {
            errs.push(invalid(&ip.child("mountPath"), mount_path, "must not already exist as a path in volumeDevices"));
        }
        let (sub, sub_expr) = (m.g("subPath").s(), m.g("subPathExpr").s());
        if vols.get(name) == Some(&"image") {
            if !sub.is_empty() {
                errs.push(invalid(&ip.child("subPath"), sub, "not allowed in image volume sources"));
            }
            if !sub_expr.is_empty() {
                errs.push(invalid(&ip.child("subPathExpr"), sub_expr, "not allowed in image volume sources"));
            }
        }
        // Kubernetes reports sub-path problems on the list's path, not the item's.
        if !sub.is_empty() {
            errs.extend(local_descending_path(sub, &p.child("subPath")));
        }
        if !sub_expr.is_empty() {
            if !sub.is_empty() {
                errs.push(invalid(&ip.child("subPathExpr"), sub_expr, "subPathExpr and subPath are mutually exclusive"));
            }
            errs.extend(local_descending_path(sub_expr, &p.child("subPathExpr")));
        }
        if let Some(prop) = m.g("mountPropagation").as_str() {
            let pp = p.child("mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&prop) {
                errs.push(not_supported(&pp, prop, &["Bidirectional", "HostToContainer", "None"]));
            }
            if prop == "Bidirectional" && !privileged {
                errs.push(forbidden(&pp, "Bidirectional mount propagation is available only to privileged containers"));
            }
        }
        if let Some(rro) = m.g("recursiveReadOnly").as_str() {
            let rp = p.child("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.g("readOnly").boolean() != Some(true) {
                        errs.push(forbidden(&rp, "may only be specified when readOnly is true"));
                    }
                    if m.g("mountPropagation").as_str().is_some_and(|mp| mp != "None") {
                        errs.push(forbidden(&rp, "may only be specified when mountPropagation is None or not specified"));
                    }
                }
                other => errs.push(not_supported(&rp, other, &["Disabled", "Enabled", "IfPossible"])),
            }
        }
    }
    errs
}

fn volume_devices(c: &Value, vols: &Volumes, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mounts: Vec<(&str, &str)> = c.g("volumeMounts").arr().iter().map(|m| (m.g("name").s(), m.g("mountPath").s())).collect();
    let (mut paths, mut names) = (HashSet::new(), HashSet::new());
    for (i, d) in c.g("volumeDevices").arr().iter().enumerate() {
        let ip = p.index(i);
        let (name, path) = (d.g("name").s(), d.g("devicePath").s());
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        }
        if names.contains(name) {
            errs.push(invalid(&ip.child("name"), name, "must be unique"));
        }
        match vols.get(name) {
            Some(&"persistentVolumeClaim") | Some(&"ephemeral") => {}
            Some(_) => errs.push(invalid(&ip.child("name"), name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode")),
            None => errs.push(not_found(&ip.child("name"), name)),
        }
        if path.is_empty() {
            errs.push(required(&ip.child("devicePath"), ""));
        }
        if paths.contains(path) {
            errs.push(invalid(&ip.child("devicePath"), path, "must be unique"));
        }
        if !path.is_empty() && path.split('/').any(|s| s == "..") {
            errs.push(invalid(&ip.child("devicePath"), path, "can not contain backsteps ('..')"));
        } else {
            paths.insert(path);
        }
        if mounts.iter().any(|(n, _)| *n == name) {
            errs.push(invalid(&ip.child("name"), name, "must not already exist in volumeMounts"));
        }
        if mounts.iter().any(|(_, m)| *m == path) {
            errs.push(invalid(&ip.child("devicePath"), path, "must not already exist as a path in volumeMounts"));
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Probes and lifecycle handlers

fn validate_probe(probe: &Value, grace: Option<i64>, p: &Path) -> Errs {
    let mut errs = handler(probe, &["exec", "httpGet", "tcpSocket", "grpc"], grace, p);
    for field in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        errs.extend(nonnegative(probe.g(field), &p.child(field)));
    }
    if let Some(t) = probe.g("terminationGracePeriodSeconds").int()
        && t <= 0
    {
        errs.push(invalid(&p.child("terminationGracePeriodSeconds"), t, "must be greater than 0"));
    }
    errs
}

fn lifecycle(lc: &Value, grace: Option<i64>, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        if lc.g(hook).present() {
            errs.extend(handler(lc.g(hook), &["exec", "httpGet", "tcpSocket", "sleep"], grace, &p.child(hook)));
        }
    }
    errs
}

/// `validateHandler`: exactly one of the handler kinds.
fn handler(h: &Value, kinds: &[&str], grace: Option<i64>, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut n = 0;
    for &kind in kinds {
        let v = h.g(kind);
        if !v.present() {
            continue;
        }
        let kp = p.child(kind);
        if n > 0 {
            errs.push(forbidden(&kp, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match kind {
            "exec" if v.g("command").arr().is_empty() => errs.push(required(&kp.child("command"), "")),
            "httpGet" => {
                if v.g("path").s().is_empty() {
                    errs.push(required(&kp.child("path"), ""));
                }
                errs.extend(port_num_or_name(v.g("port"), &kp.child("port")));
                let scheme = v.g("scheme").s();
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported(&kp.child("scheme"), scheme, &["HTTP", "HTTPS"]));
                }
                for header in v.g("httpHeaders").arr() {
                    let hn = header.g("name").s();
                    errs.extend(names::is_http_header_name(hn).into_iter().map(|m| invalid(&kp.child("httpHeaders"), hn, m)));
                }
            }
            "tcpSocket" => errs.extend(port_num_or_name(v.g("port"), &kp.child("port"))),
            "grpc" => {
                let port = v.g("port").int().unwrap_or(0);
                errs.extend(names::is_valid_port_num(port).into_iter().map(|m| invalid(&kp.child("port"), port, m)));
            }
            "sleep" => {
                let secs = v.g("seconds").int().unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(invalid(&kp, secs, format!("must be non-negative and less than terminationGracePeriodSeconds ({g})")));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(required(p, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName` on an IntOrString.
pub(crate) fn port_num_or_name(port: &Value, p: &Path) -> Errs {
    match port {
        Value::String(s) => names::is_valid_port_name(s).into_iter().map(|m| invalid(p, s.as_str(), m)).collect(),
        other => {
            let n = other.int().unwrap_or(0);
            names::is_valid_port_num(n).into_iter().map(|m| invalid(p, n, m)).collect()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resources

const STANDARD_CONTAINER_RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Resources in the kubernetes.io domain (or unprefixed).
pub(crate) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name) && !name.starts_with("requests.") && is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

/// Resources counted in whole units (`IsIntegerResourceName`).
pub(crate) fn is_integer_resource(name: &str) -> bool {
    const INTEGER: [&str; 9] =
        ["pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"];
    INTEGER.contains(&name) || name.starts_with("count/") || is_extended_resource(name)
}

/// `validateResourceName`.
pub(crate) fn resource_name(name: &str, p: &Path, standard: impl Fn(&str) -> bool) -> Errs {
    let errs: Errs = is_qualified_name(name).into_iter().map(|m| invalid(p, name, m)).collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !standard(name) {
        return vec![invalid(p, name, "must be a standard resource type or fully qualified")];
    }
    vec![]
}

fn container_resource_name(name: &str, p: &Path) -> Errs {
    let mut errs = resource_name(name, p, is_standard_resource);
    if !name.contains('/') {
        if !(STANDARD_CONTAINER_RESOURCES.contains(&name) || is_hugepages(name)) {
            errs.push(invalid(p, name, "must be a standard resource for containers"));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(invalid(p, name, "doesn't follow extended resource name standard"));
    }
    errs
}

/// `IsStandardResourceName`.
pub(crate) fn is_standard_resource(name: &str) -> bool {
    const STANDARD: [&str; 22] = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "persistentvolumeclaims",
        "configmaps",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
        "attachable-volumes-",
        "count",
    ];
    STANDARD.contains(&name) || is_hugepages(name) || name.starts_with("requests.hugepages-") || name.starts_with("limits.hugepages-")
}

/// Parses a resource quantity, reporting malformed ones like the decoder would.
pub(crate) fn parse_quantity(v: &Value, p: &Path, errs: &mut Errs) -> Option<Quantity> {
    match quantity::from_json(v) {
        Ok(q) => Some(q),
        Err(e) => {
            errs.push(invalid(p, v.clone(), e));
            None
        }
    }
}

/// `ValidateResourceQuantityValue`: non-negative, and whole for integer resources.
pub(crate) fn resource_quantity_value(name: &str, q: &Quantity, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if q.sign() < 0 {
        errs.push(invalid(p, q.canonical(), "must be greater than or equal to 0"));
    }
    if is_integer_resource(name) && !q.is_integer() {
        errs.push(invalid(p, q.canonical(), "must be an integer"));
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
pub(crate) fn resource_requirements(res: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let (lim_p, req_p) = (p.child("limits"), p.child("requests"));
    let mut limits = BTreeMap::new();
    let (mut lim_cpu_mem, mut req_cpu_mem, mut hugepages) = (false, false, false);
    for (name, v) in res.g("limits").entries() {
        let fp = lim_p.key(name);
        errs.extend(container_resource_name(name, &fp));
        if let Some(q) = parse_quantity(v, &fp, &mut errs) {
            errs.extend(resource_quantity_value(name, &q, &fp));
            limits.insert(name.as_str(), q);
        }
        hugepages |= is_hugepages(name);
        lim_cpu_mem |= name == "cpu" || name == "memory";
    }
    for (name, v) in res.g("requests").entries() {
        let fp = req_p.key(name);
        errs.extend(container_resource_name(name, &fp));
        let Some(q) = parse_quantity(v, &fp, &mut errs) else { continue };
        errs.extend(resource_quantity_value(name, &q, &fp));
        match limits.get(name.as_str()) {
            Some(limit) => {
                let ord = q.cmp(limit);
                if ord != std::cmp::Ordering::Equal && !is_overcommit_allowed(name) {
                    errs.push(invalid(&req_p, q.canonical(), format!("must be equal to {name} limit of {}", limit.canonical())));
                } else if ord == std::cmp::Ordering::Greater {
                    errs.push(invalid(&req_p, q.canonical(), format!("must be less than or equal to {name} limit of {}", limit.canonical())));
                }
            }
            None if !is_overcommit_allowed(name) => errs.push(required(&lim_p, "Limit must be set for non overcommitable resources")),
            None => {}
        }
        hugepages |= is_hugepages(name);
        req_cpu_mem |= name == "cpu" || name == "memory";
    }
    if !lim_cpu_mem && !req_cpu_mem && hugepages {
        errs.push(forbidden(p, "HugePages require cpu or memory"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Security contexts

fn id_range(v: &Value, p: &Path) -> Errs {
    match v.int() {
        Some(id) if !(0..=MAX_INT32).contains(&id) => vec![invalid(p, id, inclusive_range_error(0, MAX_INT32))],
        _ => vec![],
    }
}

fn seccomp_profile(sp: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if !sp.present() {
        return errs;
    }
    let t = sp.g("type").s();
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(required(&p.child("type"), "type is required when seccompProfile is set")),
        other => errs.push(not_supported(&p.child("type"), other, &["Localhost", "RuntimeDefault", "Unconfined"])),
    }
    let lp = sp.g("localhostProfile");
    if t == "Localhost" {
        match lp.as_str() {
            None => errs.push(required(&p.child("localhostProfile"), "must be set when seccomp type is Localhost")),
            Some(path) => errs.extend(local_descending_path(path, &p.child("localhostProfile"))),
        }
    } else if lp.present() {
        errs.push(invalid(&p.child("localhostProfile"), sp.clone(), "can only be set when seccomp type is Localhost"));
    }
    errs
}

fn app_armor_profile(ap: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if !ap.present() {
        return errs;
    }
    let lp = ap.g("localhostProfile");
    match ap.g("type").s() {
        "Localhost" => match lp.as_str() {
            None => errs.push(required(&p.child("localhostProfile"), "must be set when AppArmor type is Localhost")),
            Some(prof) if prof.trim() != prof => {
                errs.push(invalid(&p.child("localhostProfile"), prof, "must not be padded with whitespace"))
            }
            Some("") => errs.push(required(&p.child("localhostProfile"), "must be set when AppArmor type is Localhost")),
            Some(_) => {}
        },
        "RuntimeDefault" | "Unconfined" => {
            if lp.present() {
                errs.push(invalid(&p.child("localhostProfile"), lp.clone(), "can only be set when AppArmor type is Localhost"));
            }
        }
        "" => errs.push(required(&p.child("type"), "type is required when appArmorProfile is set")),
        other => errs.push(not_supported(&p.child("type"), other, &["Localhost", "RuntimeDefault", "Unconfined"])),
    }
    errs
}

/// `ValidateSecurityContext` (container level).
fn security_context(sc: &Value, p: &Path, host_users: bool) -> Errs {
    let mut errs = Vec::new();
    if !sc.present() {
        return errs;
    }
    errs.extend(id_range(sc.g("runAsUser"), &p.child("runAsUser")));
    errs.extend(id_range(sc.g("runAsGroup"), &p.child("runAsGroup")));
    if let Some(pm) = sc.g("procMount").as_str() {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(not_supported(&p.child("procMount"), pm, &["Default", "Unmasked"]));
        }
        if host_users && pm == "Unmasked" {
            errs.push(invalid(&p.child("procMount"), pm, "`hostUsers` must be false to use `Unmasked`"));
        }
    }
    errs.extend(seccomp_profile(sc.g("seccompProfile"), &p.child("seccompProfile")));
    if sc.g("allowPrivilegeEscalation").boolean() == Some(false) {
        if sc.g("privileged").boolean() == Some(true) {
            errs.push(invalid(p, sc.clone(), "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"));
        }
        if sc.g("capabilities").g("add").arr().iter().any(|c| c.s() == "CAP_SYS_ADMIN") {
            errs.push(invalid(p, sc.clone(), "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"));
        }
    }
    errs.extend(app_armor_profile(sc.g("appArmorProfile"), &p.child("appArmorProfile")));
    errs
}

/// `validatePodSpecSecurityContext`.
fn pod_security_context(spec: &Value, p: &Path) -> Errs {
    let sc = spec.g("securityContext");
    let mut errs = Vec::new();
    if !sc.present() {
        return errs;
    }
    for field in ["fsGroup", "runAsUser", "runAsGroup"] {
        errs.extend(id_range(sc.g(field), &p.child(field)));
    }
    for (i, g) in sc.g("supplementalGroups").arr().iter().enumerate() {
        errs.extend(id_range(g, &p.child("supplementalGroups").index(i)));
    }
    if spec.g("shareProcessNamespace").boolean() == Some(true) && spec.g("hostPID").boolean() == Some(true) {
        errs.push(invalid(&p.child("shareProcessNamespace"), true, "ShareProcessNamespace and HostPID cannot both be enabled"));
    }
    let mut sysctl_names = HashSet::new();
    for (i, s) in sc.g("sysctls").arr().iter().enumerate() {
        let np = p.child("sysctls").index(i).child("name");
        let name = s.g("name").s();
        if name.is_empty() {
            errs.push(required(&np, ""));
        } else if !is_valid_sysctl_name(name) {
            errs.push(invalid(
                &np,
                name,
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if sysctl_names.contains(name) {
            errs.push(duplicate(&np, name));
        }
        sysctl_names.insert(name);
    }
    if let Some(pol) = sc.g("fsGroupChangePolicy").as_str()
        && pol != "Always"
        && pol != "OnRootMismatch"
    {
        errs.push(not_supported(&p.child("fsGroupChangePolicy"), pol, &["Always", "OnRootMismatch"]));
    }
    errs.extend(seccomp_profile(sc.g("seccompProfile"), &p.child("seccompProfile")));
    errs.extend(app_armor_profile(sc.g("appArmorProfile"), &p.child("appArmorProfile")));
    if let Some(pol) = sc.g("supplementalGroupsPolicy").as_str()
        && pol != "Merge"
        && pol != "Strict"
    {
        errs.push(not_supported(&p.child("supplementalGroupsPolicy"), pol, &["Merge", "Strict"]));
    }
    if let Some(pol) = sc.g("seLinuxChangePolicy").as_str()
        && pol != "MountOption"
        && pol != "Recursive"
    {
        errs.push(not_supported(&p.child("seLinuxChangePolicy"), pol, &["MountOption", "Recursive"]));
    }
    errs
}

fn is_valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let segment_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && is_lower_alnum(b[0])
            && is_lower_alnum(b[b.len() - 1])
            && b.iter().all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
    };
    name.split(['.', '/']).all(segment_ok)
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

// ---------------------------------------------------------------------------------------------
// Scheduling: tolerations, affinity, topology spread, DNS

/// `ValidateTolerations`.
pub(crate) fn tolerations(list: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (i, t) in list.arr().iter().enumerate() {
        let ip = p.index(i);
        let key = t.g("key").s();
        let op = t.g("operator").s();
        let effect = t.g("effect").s();
        let value = t.g("value").s();
        if !key.is_empty() {
            errs.extend(label_name(key, &ip.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid(
                &ip.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.g("tolerationSeconds").present() && effect != "NoExecute" {
            errs.push(invalid(&ip.child("effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(&ip.child("operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(&ip.child("operator"), value, "value must be empty when `operator` is 'Exists'"));
                }
            }
            other => errs.push(not_supported(&ip.child("operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            errs.extend(taint_effect(effect, &ip.child("effect")));
        }
    }
    errs
}

pub(crate) fn taint_effect(effect: &str, p: &Path) -> Errs {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => vec![],
        other => vec![not_supported(p, other, &["NoSchedule", "PreferNoSchedule", "NoExecute"])],
    }
}

fn affinity(a: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if !a.present() {
        return errs;
    }
    let na = a.g("nodeAffinity");
    if na.present() {
        let np = p.child("nodeAffinity");
        let req = na.g("requiredDuringSchedulingIgnoredDuringExecution");
        if req.present() {
            errs.extend(node_selector(req, &np.child("requiredDuringSchedulingIgnoredDuringExecution"), false));
        }
        for (i, term) in na.g("preferredDuringSchedulingIgnoredDuringExecution").arr().iter().enumerate() {
            let tp = np.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            let w = term.g("weight").int().unwrap_or(0);
            if !(1..=100).contains(&w) {
                errs.push(invalid(&tp.child("weight"), w, "must be in the range 1-100"));
            }
            errs.extend(node_selector_term(term.g("preference"), &tp.child("preference"), true));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let pa = a.g(kind);
        if !pa.present() {
            continue;
        }
        let kp = p.child(kind);
        for (i, term) in pa.g("requiredDuringSchedulingIgnoredDuringExecution").arr().iter().enumerate() {
            errs.extend(pod_affinity_term(term, &kp.child("requiredDuringSchedulingIgnoredDuringExecution").index(i)));
        }
        for (i, wt) in pa.g("preferredDuringSchedulingIgnoredDuringExecution").arr().iter().enumerate() {
            let tp = kp.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            let w = wt.g("weight").int().unwrap_or(0);
            if !(1..=100).contains(&w) {
                errs.push(invalid(&tp.child("weight"), w, "must be in the range 1-100"));
            }
            errs.extend(pod_affinity_term(wt.g("podAffinityTerm"), &tp.child("podAffinityTerm")));
        }
    }
    errs
}

fn pod_affinity_term(term: &Value, p: &Path) -> Errs {
    let mut errs = label_selector(term.g("labelSelector"), &p.child("labelSelector"));
    errs.extend(label_selector(term.g("namespaceSelector"), &p.child("namespaceSelector")));
    for ns in term.g("namespaces").arr() {
        errs.extend(is_dns1123_label(ns.s()).into_iter().map(|m| invalid(&p.child("namespace"), ns.s(), m)));
    }
    let tk = term.g("topologyKey").s();
    if tk.is_empty() {
        errs.push(required(&p.child("topologyKey"), "can not be empty"));
    }
    errs.extend(label_name(tk, &p.child("topologyKey")));
    errs
}

/// `ValidateNodeSelector`.
pub(crate) fn node_selector(ns: &Value, p: &Path, allow_invalid_values: bool) -> Errs {
    let tp = p.child("nodeSelectorTerms");
    let terms = ns.g("nodeSelectorTerms").arr();
    if terms.is_empty() {
        return vec![required(&tp, "must have at least one node selector term")];
    }
    terms.iter().enumerate().flat_map(|(i, t)| node_selector_term(t, &tp.index(i), allow_invalid_values)).collect()
}

fn node_selector_term(term: &Value, p: &Path, allow_invalid_values: bool) -> Errs {
    let mut errs = Vec::new();
    for (j, req) in term.g("matchExpressions").arr().iter().enumerate() {
        let rp = p.child("matchExpressions").index(j);
        let values = req.g("values").arr();
        let op = req.g("operator").s();
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(&rp.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(&rp.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
                }
            }
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(required(&rp.child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"));
                }
            }
            other => errs.push(invalid(&rp.child("operator"), other, "not a valid selector operator")),
        }
        errs.extend(label_name(req.g("key").s(), &rp.child("key")));
        if !allow_invalid_values {
            for (vi, v) in values.iter().enumerate() {
                errs.extend(is_valid_label_value(v.s()).into_iter().map(|m| invalid(&rp.child("values").index(vi), v.s(), m)));
            }
        }
    }
    for (j, req) in term.g("matchFields").arr().iter().enumerate() {
        let rp = p.child("matchFields").index(j);
        let values = req.g("values").arr();
        match req.g("operator").s() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(required(&rp.child("values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"));
                }
            }
            other => errs.push(invalid(&rp.child("operator"), other, "not a valid selector operator")),
        }
        let key = req.g("key").s();
        if key != "metadata.name" {
            errs.push(invalid(&rp.child("key"), key, "not a valid field selector key"));
        } else {
            for (vi, v) in values.iter().enumerate() {
                errs.extend(is_dns1123_subdomain(v.s()).into_iter().map(|m| invalid(&rp.child("values").index(vi), v.s(), m)));
            }
        }
    }
    errs
}

fn topology_spread_constraints(list: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let items = list.arr();
    for (i, c) in items.iter().enumerate() {
        let cp = p.index(i);
        let max_skew = c.g("maxSkew").int().unwrap_or(0);
        if max_skew <= 0 {
            errs.push(invalid(&cp.child("maxSkew"), max_skew, "must be greater than zero"));
        }
        let tk = c.g("topologyKey").s();
        if tk.is_empty() {
            errs.push(required(&cp.child("topologyKey"), "can not be empty"));
        }
        let wu = c.g("whenUnsatisfiable").s();
        if wu != "DoNotSchedule" && wu != "ScheduleAnyway" {
            errs.push(not_supported(&cp.child("whenUnsatisfiable"), wu, &["DoNotSchedule", "ScheduleAnyway"]));
        }
        if items[i + 1..].iter().any(|o| o.g("topologyKey").s() == tk && o.g("whenUnsatisfiable").s() == wu) {
            errs.push(duplicate(&cp.child("{topologyKey, whenUnsatisfiable}"), format!("{{{tk}, {wu}}}")));
        }
        if let Some(md) = c.g("minDomains").int() {
            if md <= 0 {
                errs.push(invalid(&cp.child("minDomains"), md, "must be greater than zero"));
            }
            if wu != "DoNotSchedule" {
                errs.push(invalid(&cp.child("minDomains"), md, format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}")));
            }
        }
        for field in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(pol) = c.g(field).as_str()
                && pol != "Honor"
                && pol != "Ignore"
            {
                errs.push(not_supported(&cp.child(field), pol, &["Honor", "Ignore"]));
            }
        }
        errs.extend(label_selector(c.g("labelSelector"), &cp.child("labelSelector")));
    }
    errs
}

fn dns_config(cfg: &Value, policy: &str, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if policy == "None" {
        if !cfg.present() {
            return vec![required(p, "must provide `dnsConfig` when `dnsPolicy` is None")];
        }
        if cfg.g("nameservers").arr().is_empty() {
            return vec![required(&p.child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None")];
        }
    }
    if !cfg.present() {
        return errs;
    }
    let ns = cfg.g("nameservers").arr();
    if ns.len() > 3 {
        errs.push(invalid(&p.child("nameservers"), cfg.g("nameservers").clone(), "must not have more than 3 nameservers"));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(valid_ip(n.s(), &p.child("nameservers").index(i)));
    }
    let searches = cfg.g("searches").arr();
    if searches.len() > 32 {
        errs.push(invalid(&p.child("searches"), cfg.g("searches").clone(), "must not have more than 32 search paths"));
    }
    let total: usize = searches.iter().map(|s| s.s().len()).sum::<usize>() + searches.len().saturating_sub(1);
    if total > 2048 {
        errs.push(invalid(&p.child("searches"), cfg.g("searches").clone(), "must not have more than 2048 characters (including spaces) in the search list"));
    }
    for (i, s) in searches.iter().enumerate() {
        let s = s.s();
        if s != "." {
            let trimmed = s.strip_suffix('.').unwrap_or(s);
            if !is_dns_subdomain_with_underscore(trimmed) {
                errs.push(invalid(
                    &p.child("searches").index(i),
                    trimmed,
                    names::regex_error(
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                        "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
                        &["example.com"],
                    ),
                ));
            }
        }
    }
    for (i, o) in cfg.g("options").arr().iter().enumerate() {
        if o.g("name").s().is_empty() {
            errs.push(required(&p.child("options").index(i), "must not be empty"));
        }
    }
    errs
}

fn is_dns_subdomain_with_underscore(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let l = label.strip_prefix('_').unwrap_or(label).as_bytes();
            !l.is_empty()
                && is_lower_alnum(l[0])
                && is_lower_alnum(l[l.len() - 1])
                && l.iter().all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
        })
}
