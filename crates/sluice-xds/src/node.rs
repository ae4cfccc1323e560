//! The node identity sent with discovery requests.

use envoy_types::pb::envoy::config::core::v3::Node;
use sluice_config::NodeConfig;

pub(crate) fn node(config: &NodeConfig) -> Node {
    Node {
        id: config.id.clone(),
        cluster: config.cluster.clone(),
        user_agent_name: "sluice".to_string(),
        ..Node::default()
    }
}
