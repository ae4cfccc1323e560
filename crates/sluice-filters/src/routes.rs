//! The route tables proxies read, by name: a `route_configs` entry (RDS's unit) is one table
//! shared by every proxy that names it and replaced in place when it changes, so a new route
//! applies to the next request on connections already open. An inline route config is its
//! proxy's own and changes only with its listener.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use sluice_config::Config;
use sluice_proxy::route::RouteTable;

use crate::http_proxy::RouteSource;

/// A proxy's route table: loaded once per request.
pub type SharedTable = Arc<ArcSwap<RouteTable>>;

#[derive(Default)]
pub struct RouteTables {
    named: Mutex<HashMap<String, SharedTable>>,
}

/// Every `route_configs` entry of a config, compiled, ready to replace the current tables.
pub struct Compiled(Vec<(String, Arc<RouteTable>)>);

impl RouteTables {
    /// Compiles every named route config of `config`; nothing changes until [`Self::commit`].
    pub fn compile(config: &Config) -> Result<Compiled, String> {
        config
            .route_configs
            .iter()
            .map(|r| {
                let table = RouteTable::compile(r)
                    .map_err(|e| format!("route config \"{}\": {e}", r.name))?;
                Ok((r.name.clone(), Arc::new(table)))
            })
            .collect::<Result<_, String>>()
            .map(Compiled)
    }

    /// Publishes compiled tables: each name's proxies see its new table from their next
    /// request; names the config no longer has are forgotten.
    pub fn commit(&self, compiled: Compiled) {
        let mut named = self.named.lock();
        named.retain(|name, _| compiled.0.iter().any(|(n, _)| n == name));
        for (name, table) in compiled.0 {
            match named.get(&name) {
                Some(shared) => shared.store(table),
                None => {
                    named.insert(name, Arc::new(ArcSwap::new(table)));
                }
            }
        }
    }

    /// The table a proxy with these routes reads: the shared one of a named route config
    /// (made from `config` when not committed yet), or one of its own for inline routes.
    pub fn table(&self, source: &RouteSource, config: &Config) -> Result<SharedTable, String> {
        if let RouteSource::Named(r) = source {
            if let Some(shared) = self.named.lock().get(&r.name) {
                return Ok(shared.clone());
            }
        }
        let routes = source.resolve(config)?;
        let table = Arc::new(ArcSwap::from_pointee(
            RouteTable::compile(&routes).map_err(|e| e.to_string())?,
        ));
        if let RouteSource::Named(r) = source {
            return Ok(self
                .named
                .lock()
                .entry(r.name.clone())
                .or_insert(table)
                .clone());
        }
        Ok(table)
    }
}
