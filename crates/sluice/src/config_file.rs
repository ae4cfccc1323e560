//! The config file `run` and `check` read: native YAML (`-c`), or an Envoy v3 bootstrap
//! (`--envoy-config`), which becomes a native document through the xDS translators. Either
//! way the document is validated by the one loader, so both formats meet the same checks,
//! reloads and error format (`FILE:LINE: PATH: message`).

use std::path::PathBuf;
use std::sync::Arc;

use sluice_config::yaml::{self, Node, NodeKind};
use sluice_config::{Config, ConfigErrors, LoadOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Envoy,
}

#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub format: Format,
}

impl ConfigFile {
    pub fn label(&self) -> String {
        self.path.display().to_string()
    }

    /// The file's content as a native document.
    pub fn document(&self) -> Result<Node, String> {
        let label = self.label();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("{label}: cannot read config file: {e}"))?;
        let doc = yaml::parse(&text)
            .map_err(|e| format!("{label}:{}: YAML syntax error: {}", e.line, e.message))?;
        match self.format {
            Format::Native => Ok(doc),
            Format::Envoy => sluice_xds::bootstrap::translate(&doc).map_err(|d| {
                if d.line > 0 {
                    format!("{label}:{d}")
                } else if d.path.is_empty() {
                    format!("{label}: {}", d.message)
                } else {
                    format!("{label}: {}: {}", d.path, d.message)
                }
            }),
        }
    }

    /// Read and validated, as `sluice check` does. Routes may name clusters the file lacks
    /// only when CDS may bring them (an `xds` block whose `cds` is on).
    pub fn load(&self) -> Result<Config, String> {
        let doc = Arc::new(self.document()?);
        let label = self.label();
        let registry = sluice_filters::config_registry();
        let load = |allow_unknown_clusters| {
            sluice_config::load_tree(
                doc.clone(),
                &label,
                &registry,
                LoadOptions {
                    allow_unknown_clusters,
                },
            )
            .map_err(|e| explain(&label, &doc, &e, true))
        };
        let has_xds =
            matches!(&doc.kind, NodeKind::Map(entries) if entries.iter().any(|(k, _)| k == "xds"));
        let config = load(has_xds)?;
        if has_xds && !options_for(&config).allow_unknown_clusters {
            // `xds` without CDS: check the references after all.
            return load(false);
        }
        Ok(config)
    }
}

/// How later documents (reloads, xDS updates) of a process running `config` are checked.
pub fn options_for(config: &Config) -> LoadOptions {
    LoadOptions {
        // Routes may name clusters CDS has not sent yet.
        allow_unknown_clusters: config.xds.as_ref().is_some_and(|x| x.cds),
    }
}

/// The loader's errors, one per line: `FILE:LINE: PATH: message` for what the file says,
/// and for entries made by translation (line 0) the resource they belong to, after the
/// file's name when `in_file` (an Envoy file's resources; not those of a control plane).
pub fn explain(label: &str, doc: &Node, errors: &ConfigErrors, in_file: bool) -> String {
    errors
        .diagnostics
        .iter()
        .map(|d| {
            if d.line > 0 {
                format!("{label}:{d}")
            } else {
                describe(doc, &d.path, &d.message)
                    .map(|r| if in_file { format!("{label}: {r}") } else { r })
                    .unwrap_or_else(|| format!("{label}: {}: {}", d.path, d.message))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error in a translated entry (line 0), named by its resource: `listeners[3].x: ...`
/// becomes `listener "name": x: ...`; `None` for errors outside the three lists.
fn describe(doc: &Node, path: &str, message: &str) -> Option<String> {
    [
        ("listeners", "listener"),
        ("route_configs", "route configuration"),
        ("clusters", "cluster"),
    ]
    .into_iter()
    .find_map(|(list, noun)| {
        let rest = path.strip_prefix(list)?.strip_prefix('[')?;
        let (i, rest) = rest.split_once(']')?;
        let i: usize = i.parse().ok()?;
        let name = nth_name(doc, list, i)?;
        Some(format!(
            "{noun} \"{name}\": {}{message}",
            match rest.trim_start_matches('.') {
                "" => String::new(),
                r => format!("{r}: "),
            }
        ))
    })
}

fn nth_name<'a>(doc: &'a Node, list: &str, i: usize) -> Option<&'a str> {
    let NodeKind::Map(entries) = &doc.kind else {
        return None;
    };
    let (_, node) = entries.iter().find(|(k, _)| k == list)?;
    let NodeKind::Seq(items) = &node.kind else {
        return None;
    };
    let NodeKind::Map(fields) = &items.get(i)?.kind else {
        return None;
    };
    fields
        .iter()
        .find(|(k, _)| k == "name")
        .and_then(|(_, n)| n.as_scalar())
}
