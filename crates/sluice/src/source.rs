//! Where the config in force comes from: the file, plus what the xDS control plane sent.
//!
//! Both are one document: the file's `listeners`, `route_configs` and `clusters` with the
//! dynamic ones appended. So a new file (SIGHUP, `--watch`) keeps the dynamic resources,
//! an xDS update keeps the file's, and either is validated whole, by the same loader as
//! `sluice check`, before `Live::apply` puts it in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_config::yaml::{self, Node, NodeKind};
use sluice_config::{Config, LoadOptions};
use sluice_xds::resource::Dynamic;

pub struct Source {
    path: PathBuf,
    /// The file's document last put in force.
    file: Arc<Node>,
    /// The control plane's resources last put in force.
    dynamic: Arc<Dynamic>,
    options: LoadOptions,
}

/// A config ready to apply, and what it was made of (kept once it is in force).
pub struct Candidate {
    pub config: Config,
    file: Arc<Node>,
    dynamic: Arc<Dynamic>,
}

impl Source {
    pub fn new(path: &Path, config: &Config) -> Source {
        Source {
            path: path.to_path_buf(),
            file: config.document.clone(),
            dynamic: Arc::default(),
            options: LoadOptions {
                // Routes may name clusters CDS has not sent yet.
                allow_unknown_clusters: config.xds.as_ref().is_some_and(|x| x.cds),
            },
        }
    }

    /// The file read again, with the dynamic resources in force.
    pub fn reread_file(&self) -> Result<Candidate, String> {
        let label = self.path.display().to_string();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("{label}: cannot read config file: {e}"))?;
        let file = yaml::parse(&text)
            .map_err(|e| format!("{label}:{}: YAML syntax error: {}", e.line, e.message))?;
        self.build(Arc::new(file), self.dynamic.clone())
    }

    /// The file in force with new dynamic resources.
    pub fn with_dynamic(&self, dynamic: Arc<Dynamic>) -> Result<Candidate, String> {
        self.build(self.file.clone(), dynamic)
    }

    /// Remembers what a candidate put in force was made of.
    pub fn applied(&mut self, file: Arc<Node>, dynamic: Arc<Dynamic>) {
        self.file = file;
        self.dynamic = dynamic;
    }

    fn build(&self, file: Arc<Node>, dynamic: Arc<Dynamic>) -> Result<Candidate, String> {
        let doc = Arc::new(compose(&file, &dynamic));
        let label = self.path.display().to_string();
        match sluice_config::load_tree(
            doc.clone(),
            &label,
            &sluice_filters::config_registry(),
            self.options,
        ) {
            Ok(config) => Ok(Candidate {
                config,
                file,
                dynamic,
            }),
            Err(errors) => Err(errors
                .diagnostics
                .iter()
                .map(|d| {
                    if d.line > 0 {
                        format!("{label}:{d}")
                    } else {
                        describe(&doc, &d.path, &d.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")),
        }
    }
}

impl Candidate {
    /// What to remember once it is in force (`Source::applied`).
    pub fn parts(&self) -> (Arc<Node>, Arc<Dynamic>) {
        (self.file.clone(), self.dynamic.clone())
    }
}

/// The file's document with the dynamic entries appended to its three lists.
fn compose(file: &Node, dynamic: &Dynamic) -> Node {
    let mut entries = match &file.kind {
        NodeKind::Map(entries) => entries.clone(),
        _ => Vec::new(),
    };
    for (key, extra) in [
        ("listeners", &dynamic.listeners),
        ("route_configs", &dynamic.route_configs),
        ("clusters", &dynamic.clusters),
    ] {
        if extra.is_empty() {
            continue;
        }
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, node)) => {
                // Not a list: left as it is, for the loader to report.
                if let NodeKind::Seq(items) = &mut node.kind {
                    items.extend(extra.iter().cloned());
                }
            }
            None => entries.push((
                key.to_string(),
                Node {
                    kind: NodeKind::Seq(extra.clone()),
                    line: 0,
                },
            )),
        }
    }
    Node {
        kind: NodeKind::Map(entries),
        line: file.line,
    }
}

/// An error in a dynamic resource (line 0), named by its resource: `listeners[3].x: ...`
/// becomes `listener "name": x: ...`.
fn describe(doc: &Node, path: &str, message: &str) -> String {
    let found = [
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
    });
    found.unwrap_or_else(|| {
        if path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        }
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
