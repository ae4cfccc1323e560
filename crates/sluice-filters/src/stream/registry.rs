//! The table of stream filters: name -> (how to decode its config, how to build it), and the
//! `http_filters` / `stream_filters` lists read with it.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use sluice_config::decode::{did_you_mean, index, single_key, Cx};
use sluice_config::yaml::NodeKind;
use sluice_config::Node;
use sluice_stats::Scope;

use super::{StreamFilter, StreamFilters};
use crate::{health_check, rbac};

/// A stream filter's decoded config.
pub trait StreamFilterConfig: Any + Send + Sync + Debug {}

pub type StreamFilterDecoder = fn(&Node, &str, &mut Cx) -> Option<Arc<dyn StreamFilterConfig>>;

/// Builds a filter; `scope` is the proxy's counter scope (`http.<listener>.`,
/// `rpc.<listener>.`).
pub type StreamFilterBuilder = fn(&dyn Any, &Scope) -> Result<Arc<dyn StreamFilter>, String>;

pub struct StreamFilterKind {
    pub name: &'static str,
    pub decode: StreamFilterDecoder,
    pub build: StreamFilterBuilder,
}

pub static STREAM_FILTERS: &[StreamFilterKind] = &[rbac::STREAM_KIND, health_check::STREAM_KIND];

/// One entry of a filter list, decoded.
#[derive(Debug, Clone)]
pub struct StreamFilterSpec {
    pub name: &'static str,
    pub path: String,
    pub config: Arc<dyn StreamFilterConfig>,
}

/// Reads a list of `{ name: config }` entries, reporting unknown names with a suggestion.
pub fn decode_list(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<StreamFilterSpec>> {
    let NodeKind::Seq(items) = &node.kind else {
        cx.error(
            node.line,
            path,
            format!("expected a list of filters, found {}", node.type_name()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let ipath = index(path, i);
        let Some((name, body)) = single_key(item, &ipath, cx) else {
            ok = false;
            continue;
        };
        let Some(kind) = STREAM_FILTERS.iter().find(|k| k.name == name) else {
            let names = STREAM_FILTERS.iter().map(|k| k.name);
            let hint = did_you_mean(name, names.clone());
            let list: Vec<&str> = names.collect();
            cx.error(
                item.line,
                &ipath,
                format!(
                    "unknown stream filter \"{name}\"{hint}; expected one of: {}",
                    list.join(", ")
                ),
            );
            ok = false;
            continue;
        };
        let fpath = format!("{ipath}.{name}");
        match (kind.decode)(body, &fpath, cx) {
            Some(config) => out.push(StreamFilterSpec {
                name: kind.name,
                path: fpath,
                config,
            }),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Builds a list of filters under the proxy's counter scope.
pub fn build_list(specs: &[StreamFilterSpec], scope: &Scope) -> Result<StreamFilters, String> {
    let mut filters = Vec::with_capacity(specs.len());
    for spec in specs {
        let kind = STREAM_FILTERS
            .iter()
            .find(|k| k.name == spec.name)
            .ok_or_else(|| format!("{}: not a registered stream filter", spec.path))?;
        let config: &dyn StreamFilterConfig = spec.config.as_ref();
        let filter =
            (kind.build)(config as &dyn Any, scope).map_err(|e| format!("{}: {e}", spec.path))?;
        filters.push(filter);
    }
    Ok(StreamFilters::new(filters))
}
