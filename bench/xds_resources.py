#!/usr/bin/env python3
"""Writes the xDS resources of bench/xds.sh into DIR, in the control plane's layout.

    xds_resources.py DIR PROXY_PORT APP_ADDR BIG SEED

Always: listener `web` on PROXY_PORT (RDS `routes`), EDS cluster `app` whose one endpoint
is APP_ADDR (the nginx the load goes to). With BIG=1 also: 100 EDS clusters c0..c99 of 100
endpoints each (10,000 endpoints, addresses that are never dialled: 127.0.2.x, port from
SEED so that each push changes every endpoint), and 1,000 routes in `routes` (/r0 .. /r998
to those clusters, then / to app). With BIG=0 `routes` holds only / to app.
"""
import os
import sys

directory, proxy_port, app, big, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
for sub in ("listeners", "routes", "clusters", "endpoints"):
    os.makedirs(os.path.join(directory, sub), exist_ok=True)
    for f in os.listdir(os.path.join(directory, sub)):
        os.remove(os.path.join(directory, sub, f))


def write(sub, name, text):
    with open(os.path.join(directory, sub, name + ".yaml"), "w") as f:
        f.write(text)


write("listeners", "web", f"""name: web
address: {{ socket_address: {{ address: 127.0.0.1, port_value: {proxy_port} }} }}
filter_chains:
- filters:
  - name: hcm
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: web
      rds: {{ route_config_name: routes, config_source: {{ ads: {{}} }} }}
      http_filters:
      - name: router
        typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
""")


def eds_cluster(name):
    write("clusters", name, f"""name: {name}
type: EDS
connect_timeout: 1s
eds_cluster_config: {{ eds_config: {{ ads: {{}} }} }}
circuit_breakers: {{ thresholds: [{{ max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 }}] }}
""")


app_ip, app_port = app.rsplit(":", 1)
eds_cluster("app")
write("endpoints", "app", f"""cluster_name: app
endpoints:
- lb_endpoints:
  - endpoint: {{ address: {{ socket_address: {{ address: {app_ip}, port_value: {app_port} }} }} }}
""")

routes = []
if big:
    for c in range(100):
        eds_cluster(f"c{c}")
        lines = [f"cluster_name: c{c}", "endpoints:", "- lb_endpoints:"]
        for e in range(100):
            i = c * 100 + e
            lines.append(
                f"  - endpoint: {{ address: {{ socket_address: {{ address: 127.0.{2 + i // 250}.{1 + i % 250}, port_value: {10000 + seed % 50000} }} }} }}"
            )
        write("endpoints", f"c{c}", "\n".join(lines) + "\n")
    for r in range(999):
        routes.append(f"  - match: {{ prefix: /r{r}/ }}\n    route: {{ cluster: c{r % 100} }}")
routes.append("  - match: { prefix: / }\n    route: { cluster: app }")
write("routes", "routes", "name: routes\nvirtual_hosts:\n- name: all\n  domains: [\"*\"]\n  routes:\n" + "\n".join(routes) + "\n")
