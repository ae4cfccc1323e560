//! The node identity sent with discovery requests: id, cluster, metadata and locality from
//! the config's `node:`.

use envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType;
use envoy_types::pb::envoy::config::core::v3::{Locality, Node};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use sluice_config::NodeConfig;

pub(crate) fn node(config: &NodeConfig) -> Node {
    let metadata = (!config.metadata.is_empty()).then(|| Struct {
        fields: config
            .metadata
            .iter()
            .map(|(k, v)| {
                let value = Value {
                    kind: Some(Kind::StringValue(v.clone())),
                };
                (k.clone(), value)
            })
            .collect(),
    });
    let l = &config.locality;
    let locality =
        (!(l.region.is_empty() && l.zone.is_empty() && l.sub_zone.is_empty())).then(|| Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        });
    Node {
        id: config.id.clone(),
        cluster: config.cluster.clone(),
        metadata,
        locality,
        user_agent_name: "sluice".to_string(),
        user_agent_version_type: Some(UserAgentVersionType::UserAgentVersion(
            env!("CARGO_PKG_VERSION").to_string(),
        )),
        ..Node::default()
    }
}
