//! `/config_dump`: the config in force as JSON, shaped like Envoy's `ConfigDump` (one entry per
//! kind of resource, each with its `@type`), so tools written for Envoy's dump find listeners,
//! clusters, route configs and secrets where they expect them.
//!
//! The source is the config *document* (the YAML file as loaded, later what xDS delivers),
//! not the decoded model: it shows what the operator wrote, key for key. Key material never
//! leaves the process: [`redact`] runs when a document is stored, so no request path can skip
//! it. File paths stay (they say where a key is, not what it is).

use std::time::SystemTime;

use regex::Regex;
use serde_json::{json, Map, Value};
use sluice_config::yaml::{Node, NodeKind};

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

const TYPE_PREFIX: &str = "type.googleapis.com/envoy.admin.v3.";

/// The `?resource=` names accepted, Envoy's field names first, then short aliases.
pub const RESOURCES: &[&str] = &[
    "bootstrap",
    "static_listeners",
    "static_clusters",
    "static_route_configs",
    "static_secrets",
    "dynamic_listeners",
    "dynamic_active_clusters",
    "dynamic_route_configs",
    "dynamic_active_secrets",
    "dynamic_warming_secrets",
    "static_endpoint_configs",
    "dynamic_endpoint_configs",
    "listeners",
    "clusters",
    "route_configs",
    "secrets",
    "endpoints",
];

/// The xDS version and update time of a resource (`lds`, `cds` or `rds`, and its name);
/// `None` for one written in the config file.
pub type Versions = dyn Fn(&str, &str) -> Option<(String, SystemTime)> + Send + Sync;

/// [`Versions`] as [`dump`] reads it (any lifetime).
pub type VersionOf<'a> = dyn Fn(&str, &str) -> Option<(String, SystemTime)> + 'a;

/// A stored document and when it was stored (each resource's `last_updated`).
pub struct Snapshot {
    pub document: Value,
    pub updated: SystemTime,
}

/// A YAML tree as JSON: unquoted `true`/`false` become booleans and unquoted numbers numbers,
/// as a YAML reader would type them; everything else is a string.
pub fn from_yaml(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Scalar { text, quoted } => {
            if *quoted {
                return Value::String(text.clone());
            }
            match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                t => t
                    .parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite() && t.bytes().any(|b| b.is_ascii_digit()))
                            .map(Value::from)
                    })
                    .unwrap_or_else(|| Value::String(t.to_string())),
            }
        }
        NodeKind::Seq(items) => Value::Array(items.iter().map(from_yaml).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), from_yaml(v)))
                .collect(),
        ),
    }
}

/// Keys whose values are secret whatever they look like.
fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passphrase",
        "secret",
        "token",
        "api_key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|w| key.contains(w))
        || matches!(
            key.as_str(),
            "inline_bytes" | "inline_string" | "session_ticket_keys"
        )
}

/// A `private_key` value that names a file: one short line, no PEM armour.
fn is_path(s: &str) -> bool {
    !s.contains('\n') && !s.contains("-----") && s.len() < 4096
}

/// Replaces key material with [`REDACTED`]: PEM private keys anywhere, inline `private_key`
/// values (a path stays), and the values of keys named like passwords, tokens and secrets.
pub fn redact(value: Value) -> Value {
    match value {
        Value::String(s) if s.to_ascii_uppercase().contains("PRIVATE KEY") => REDACTED.into(),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if secret_key(&k) {
                        REDACTED.into()
                    } else if k == "private_key" {
                        match v {
                            Value::String(s) if is_path(&s) => Value::String(s),
                            // `{ filename: ... }` keeps its path; inline data goes.
                            Value::Object(m) => Value::Object(
                                m.into_iter()
                                    .map(|(k, v)| match (k.as_str(), v) {
                                        ("filename", Value::String(s)) if is_path(&s) => {
                                            (k, Value::String(s))
                                        }
                                        _ => (k, REDACTED.into()),
                                    })
                                    .collect(),
                            ),
                            _ => REDACTED.into(),
                        }
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// The dump of `snapshot`, or of one `resource` (its items only, as Envoy answers), keeping
/// only resources whose name `name_regex` matches. `missing_secrets` are SDS secrets not yet
/// received (warming). An unknown resource is an error naming the valid ones.
pub fn dump(
    snapshot: &Snapshot,
    resource: Option<&str>,
    name_regex: Option<&Regex>,
    missing_secrets: &[String],
    dynamic: &VersionOf,
    include_eds: bool,
) -> Result<Value, String> {
    let doc = &snapshot.document;
    let updated = rfc3339(snapshot.updated);
    let keep = |name: Option<&str>| name_regex.is_none_or(|re| re.is_match(name.unwrap_or("")));
    // A resource from the control plane is a dynamic one, with its own version and time.
    let named =
        |key: &str, items: Vec<Value>, kind: &str, xds: (&str, &str)| -> Vec<(String, Value)> {
            items
                .into_iter()
                .filter(|v| keep(v.get("name").and_then(Value::as_str)))
                .map(|v| {
                    let name = v
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    match dynamic(xds.0, &name) {
                        Some((version, at)) if xds.1 == "dynamic_listeners" => (
                            xds.1.to_string(),
                            json!({ "name": name, "active_state": {
                            "version_info": version, key: v, "last_updated": rfc3339(at) } }),
                        ),
                        Some((version, at)) => (
                            xds.1.to_string(),
                            json!({ "version_info": version, key: v, "last_updated": rfc3339(at) }),
                        ),
                        None => (
                            kind.to_string(),
                            json!({ key: v, "last_updated": updated.clone() }),
                        ),
                    }
                })
                .collect()
        };
    let listeners = named(
        "listener",
        list(doc, "listeners"),
        "static_listeners",
        ("lds", "dynamic_listeners"),
    );
    let clusters = named(
        "cluster",
        list(doc, "clusters"),
        "static_clusters",
        ("cds", "dynamic_active_clusters"),
    );
    let routes = named(
        "route_config",
        route_configs(doc),
        "static_route_configs",
        ("rds", "dynamic_route_configs"),
    );
    // Each cluster's endpoints, as Envoy's EndpointsConfigDump (`?include_eds`): from EDS
    // (the version of the ClusterLoadAssignment named as the cluster) or from the file.
    let endpoints: Vec<(String, Value)> = list(doc, "clusters")
        .into_iter()
        .filter_map(|c| {
            let name = c.get("name").and_then(Value::as_str)?.to_string();
            if !keep(Some(&name)) {
                return None;
            }
            let config = json!({
                "cluster_name": name,
                "endpoints": c.get("endpoints").cloned().unwrap_or_else(|| json!([])),
            });
            Some(match dynamic("eds", &name) {
                Some((version, at)) => (
                    "dynamic_endpoint_configs".to_string(),
                    json!({ "version_info": version, "endpoint_config": config, "last_updated": rfc3339(at) }),
                ),
                None => (
                    "static_endpoint_configs".to_string(),
                    json!({ "endpoint_config": config, "last_updated": updated.clone() }),
                ),
            })
        })
        .collect();
    let mut secrets: Vec<(String, Value)> = Vec::new();
    for path in cert_files(doc) {
        if keep(Some(&path)) {
            secrets.push((
                "static_secrets".into(),
                json!({ "name": path, "last_updated": updated.clone() }),
            ));
        }
    }
    for name in sds_names(doc) {
        if keep(Some(&name)) {
            let kind = if missing_secrets.contains(&name) {
                "dynamic_warming_secrets"
            } else {
                "dynamic_active_secrets"
            };
            secrets.push((kind.into(), json!({ "name": name })));
        }
    }
    let item_type = |field: &str| -> &'static str {
        match field {
            "static_listeners" => "ListenersConfigDump.StaticListener",
            "static_clusters" => "ClustersConfigDump.StaticCluster",
            "static_route_configs" => "RoutesConfigDump.StaticRouteConfig",
            "static_secrets" => "SecretsConfigDump.StaticSecret",
            "dynamic_listeners" => "ListenersConfigDump.DynamicListener",
            "dynamic_active_clusters" => "ClustersConfigDump.DynamicCluster",
            "dynamic_route_configs" => "RoutesConfigDump.DynamicRouteConfig",
            "static_endpoint_configs" => "EndpointsConfigDump.StaticEndpointConfig",
            "dynamic_endpoint_configs" => "EndpointsConfigDump.DynamicEndpointConfig",
            _ => "SecretsConfigDump.DynamicSecret",
        }
    };
    let typed = |items: Vec<(String, Value)>| -> Vec<Value> {
        items
            .into_iter()
            .map(|(field, mut v)| {
                if let Value::Object(m) = &mut v {
                    m.insert(
                        "@type".into(),
                        format!("{TYPE_PREFIX}{}", item_type(&field)).into(),
                    );
                }
                v
            })
            .collect()
    };
    let only = |items: &[(String, Value)], field: &str| -> Vec<(String, Value)> {
        items.iter().filter(|(f, _)| f == field).cloned().collect()
    };
    let bootstrap = json!({
        "@type": format!("{TYPE_PREFIX}BootstrapConfigDump"),
        "bootstrap": doc,
        "last_updated": updated.clone(),
    });
    let configs = match resource {
        None => {
            let group = |dump: &str, items: &[(String, Value)]| {
                let mut m = Map::new();
                m.insert("@type".into(), format!("{TYPE_PREFIX}{dump}").into());
                for (field, v) in items {
                    if let Value::Array(a) = m
                        .entry(field.clone())
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        a.push(v.clone());
                    }
                }
                Value::Object(m)
            };
            let mut all = vec![
                bootstrap,
                group("ListenersConfigDump", &listeners),
                group("ClustersConfigDump", &clusters),
                group("RoutesConfigDump", &routes),
                group("SecretsConfigDump", &secrets),
            ];
            if include_eds {
                all.push(group("EndpointsConfigDump", &endpoints));
            }
            all
        }
        Some("bootstrap") => vec![bootstrap],
        Some("listeners") => typed(listeners),
        Some("clusters") => typed(clusters),
        Some("route_configs") => typed(routes),
        Some(field @ ("static_listeners" | "dynamic_listeners")) => typed(only(&listeners, field)),
        Some(field @ ("static_clusters" | "dynamic_active_clusters")) => {
            typed(only(&clusters, field))
        }
        Some(field @ ("static_route_configs" | "dynamic_route_configs")) => {
            typed(only(&routes, field))
        }
        Some("secrets") => typed(secrets),
        Some("endpoints") => typed(endpoints),
        Some(field @ ("static_endpoint_configs" | "dynamic_endpoint_configs")) => {
            typed(only(&endpoints, field))
        }
        Some(field @ ("static_secrets" | "dynamic_active_secrets" | "dynamic_warming_secrets")) => {
            typed(only(&secrets, field))
        }
        Some(other) => {
            return Err(format!(
                "unknown resource \"{other}\"; valid: {}",
                RESOURCES.join(", ")
            ))
        }
    };
    Ok(json!({ "configs": configs }))
}

/// `doc[key]` as a list (empty when absent).
fn list(doc: &Value, key: &str) -> Vec<Value> {
    doc.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Top-level `route_configs`, then the route tables written inline in `http_proxy` filters,
/// named `inline` as the proxy names them, with the listener they belong to.
fn route_configs(doc: &Value) -> Vec<Value> {
    let mut out = list(doc, "route_configs");
    for l in list(doc, "listeners") {
        let name = l.get("name").cloned().unwrap_or(Value::Null);
        let chains = std::iter::once(&l).chain(
            l.get("filter_chains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for chain in chains {
            for filter in chain
                .get("filters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(proxy) = filter.get("http_proxy") else {
                    continue;
                };
                let inline = match (proxy.get("routes"), proxy.get("route_config")) {
                    (Some(routes), _) => Some(json!({ "routes": routes })),
                    (None, Some(rc @ Value::Object(_))) => Some(rc.clone()),
                    _ => None,
                };
                if let Some(Value::Object(mut rc)) = inline {
                    rc.entry("name").or_insert_with(|| "inline".into());
                    rc.insert("listener".into(), name.clone());
                    out.push(Value::Object(rc));
                }
            }
        }
    }
    out
}

/// Every certificate file named (`cert_chain`), in document order, once each.
fn cert_files(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc, &mut |k, v| {
        if let ("cert_chain", Value::String(p)) = (k, v) {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    });
    out
}

/// Every SDS secret named (`{ sds: NAME }`), once each.
fn sds_names(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc, &mut |k, v| {
        if let ("sds", Value::String(n)) = (k, v) {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
    });
    out
}

fn walk(v: &Value, f: &mut impl FnMut(&str, &Value)) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                f(k, v);
                walk(v, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// `2024-05-01T12:00:00.123Z`, as protobuf's JSON writes a Timestamp.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

    #[test]
    fn redacts_key_material_and_keeps_paths() {
        let v = redact(json!({
            "a": [{ "private_key": "certs/server.key", "cert_chain": "certs/server.pem" }],
            "b": { "private_key": KEY },
            "c": { "metadata": { "note": KEY } },
            "d": { "private_key": { "inline_string": "xyz", "filename": "k.pem" } },
            "e": { "password": "hunter2", "bearer_token": "t", "name": "ok" },
        }));
        let s = v.to_string();
        assert!(!s.contains("PRIVATE KEY") && !s.contains("MIIEvQ"), "{s}");
        assert!(!s.contains("hunter2") && !s.contains("xyz"), "{s}");
        assert_eq!(v["a"][0]["private_key"], "certs/server.key");
        assert_eq!(v["d"]["private_key"]["filename"], "k.pem");
        assert_eq!(v["b"]["private_key"], REDACTED);
        assert_eq!(v["e"]["name"], "ok");
    }

    #[test]
    fn yaml_scalars_are_typed() {
        let node = sluice_config::yaml::parse(
            "a: 1\nb: \"1\"\nc: true\nd: 1.5\ne: 10s\nf: ~\ng: [x, 2]\nh: inf\n",
        )
        .unwrap();
        assert_eq!(
            from_yaml(&node),
            json!({"a": 1, "b": "1", "c": true, "d": 1.5, "e": "10s", "f": null, "g": ["x", 2], "h": "inf"})
        );
    }

    #[test]
    fn dump_shape_and_resource_filter() {
        let snap = Snapshot {
            document: json!({
                "listeners": [{ "name": "web", "filters": [{ "http_proxy": { "routes": [] } }] }],
                "clusters": [{ "name": "a" }, { "name": "b" }],
                "route_configs": [{ "name": "main" }],
            }),
            updated: SystemTime::UNIX_EPOCH,
        };
        let all = dump(&snap, None, None, &[], &|_, _| None, false).unwrap();
        let configs = all["configs"].as_array().unwrap();
        assert_eq!(configs.len(), 5);
        assert_eq!(
            configs[2]["@type"],
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"
        );
        assert_eq!(configs[2]["static_clusters"][1]["cluster"]["name"], "b");
        assert_eq!(
            configs[2]["static_clusters"][0]["last_updated"],
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            configs[3]["static_route_configs"][1]["route_config"]["name"],
            "inline"
        );
        let re = Regex::new("^b$").unwrap();
        let one = dump(&snap, Some("clusters"), Some(&re), &[], &|_, _| None, false).unwrap();
        assert_eq!(one["configs"].as_array().unwrap().len(), 1);
        assert_eq!(one["configs"][0]["cluster"]["name"], "b");
        assert!(dump(&snap, Some("nope"), None, &[], &|_, _| None, false)
            .unwrap_err()
            .contains("static_clusters"));
    }

    #[test]
    fn endpoints_with_include_eds() {
        let snap = Snapshot {
            document: json!({
                "clusters": [
                    { "name": "file", "endpoints": [{ "address": "127.0.0.1:1" }] },
                    { "name": "eds", "endpoints": [{ "address": "127.0.0.1:2" }] },
                ],
            }),
            updated: SystemTime::UNIX_EPOCH,
        };
        let version = |kind: &str, name: &str| {
            (kind == "eds" && name == "eds").then(|| ("7".to_string(), SystemTime::UNIX_EPOCH))
        };
        let plain = dump(&snap, None, None, &[], &version, false).unwrap();
        assert_eq!(plain["configs"].as_array().unwrap().len(), 5);
        let all = dump(&snap, None, None, &[], &version, true).unwrap();
        let eds = &all["configs"][5];
        assert_eq!(
            eds["@type"],
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"
        );
        assert_eq!(
            eds["static_endpoint_configs"][0]["endpoint_config"]["cluster_name"],
            "file"
        );
        assert_eq!(eds["dynamic_endpoint_configs"][0]["version_info"], "7");
        assert_eq!(
            eds["dynamic_endpoint_configs"][0]["endpoint_config"]["endpoints"][0]["address"],
            "127.0.0.1:2"
        );
        let one = dump(
            &snap,
            Some("dynamic_endpoint_configs"),
            None,
            &[],
            &version,
            false,
        )
        .unwrap();
        assert_eq!(one["configs"].as_array().unwrap().len(), 1);
        assert_eq!(
            one["configs"][0]["@type"],
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig"
        );
    }

    #[test]
    fn rfc3339_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }
}
