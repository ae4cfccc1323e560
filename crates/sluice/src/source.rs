//! Where the config in force comes from: the file, plus what the xDS control plane sent.
//!
//! Both are one document: the file's `listeners`, `route_configs` and `clusters` with the
//! dynamic ones appended. So a new file (SIGHUP, `--watch`) keeps the dynamic resources,
//! an xDS update keeps the file's, and either is validated whole, by the same loader as
//! `sluice check`, before `Live::apply` puts it in force.

use std::sync::Arc;

use sluice_config::yaml::{Node, NodeKind};
use sluice_config::{Config, LoadOptions};
use sluice_xds::resource::Dynamic;

use crate::config_file::{self, ConfigFile};

pub struct Source {
    file_config: ConfigFile,
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
    pub fn new(file_config: &ConfigFile, config: &Config) -> Source {
        Source {
            file_config: file_config.clone(),
            file: config.document.clone(),
            dynamic: Arc::default(),
            options: config_file::options_for(config),
        }
    }

    /// The file read again, with the dynamic resources in force.
    pub fn reread_file(&self) -> Result<Candidate, String> {
        let file = self.file_config.document()?;
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
        let label = self.file_config.label();
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
            Err(errors) => Err(config_file::explain(&label, &doc, &errors, false)),
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
