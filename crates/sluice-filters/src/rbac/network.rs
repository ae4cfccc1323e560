//! `rbac` as a network filter: decides once per connection, at accept, on what the connection
//! shows (peer and local address, SNI, the client certificate); a denied connection is closed
//! before the terminal filter sees it.

use std::any::Any;
use std::sync::Arc;

use sluice_net::{ConnectionInfo, NetworkFilter, Verdict};
use sluice_stats::Scope;

use super::check::Rbac;
use super::config::RbacConfig;
use super::engine::Input;
use crate::registry::{BuildContext, Built};

pub struct RbacNetworkFilter(Rbac);

impl NetworkFilter for RbacNetworkFilter {
    fn on_accept(&self, info: &ConnectionInfo) -> Verdict {
        let input = Input {
            conn: info,
            request: None,
        };
        if self.0.allows(&input) {
            Verdict::Continue
        } else {
            Verdict::Close
        }
    }
}

/// Counters go under `<stat_prefix>.rbac.`, by default `<listener name>.rbac.`.
pub fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<RbacConfig>()
        .ok_or("config of another filter type")?;
    let prefix = config.stat_prefix.as_deref().unwrap_or(&ctx.listener);
    let rbac = Rbac::build(config, &Scope::new(prefix))?;
    Ok(Built::Filter(Arc::new(RbacNetworkFilter(rbac))))
}
