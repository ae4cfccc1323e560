//! The admin's table of endpoints: which methods each takes (the router enforces it) and
//! what it does, served as the HTML home page `/`, like Envoy's admin home: a link for each
//! reading endpoint, a POST button for each changing one.

/// Which methods an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    /// Reads: GET (and HEAD).
    Get,
    /// Changes something: POST only, so a crawler or a stray GET cannot.
    Post,
    /// Read with GET, changed with POST.
    GetPost,
}

pub struct Endpoint {
    pub path: &'static str,
    pub methods: Methods,
    pub help: &'static str,
}

const fn ep(path: &'static str, methods: Methods, help: &'static str) -> Endpoint {
    Endpoint {
        path,
        methods,
        help,
    }
}

/// Every admin endpoint, in the order the home page lists them.
pub const ENDPOINTS: &[Endpoint] = &[
    ep("/", Methods::Get, "this list"),
    ep("/dashboard", Methods::Get, "live HTML view of listeners, clusters and their hosts, request rates and latencies"),
    ep("/ready", Methods::Get, "200 LIVE once every listener is bound; 503 while starting, draining or after /healthcheck/fail"),
    ep("/server_info", Methods::Get, "JSON: version, state, uptime, hot restart epoch, node, command line options"),
    ep("/listeners", Methods::Get, "bound listeners, one name::address per line; ?format=json"),
    ep("/clusters", Methods::Get, "every cluster host with health flags, weight, locality, priority, request counters, outlier status; ?format=json"),
    ep("/stats", Methods::Get, "counters, gauges and histogram quantiles with Envoy's names; ?filter=REGEX, ?format=json, ?usedonly"),
    ep("/stats/prometheus", Methods::Get, "every metric in the Prometheus text format, Envoy's tag-extracted names and labels; ?usedonly"),
    ep("/config_dump", Methods::Get, "the config in force as JSON, secrets redacted; ?resource=, ?name_regex=, ?include_eds"),
    ep("/logging", Methods::GetPost, "the log filter; POST ?level=debug (everything) or ?filter=info,sluice_net=debug (per module) changes it"),
    ep("/healthcheck/fail", Methods::Post, "fail the health_check filter's probes (503) and report DRAINING, while still serving"),
    ep("/healthcheck/ok", Methods::Post, "undo /healthcheck/fail"),
    ep("/drain_listeners", Methods::Post, "stop accepting on every listener (open connections finish); the process stays"),
    ep("/quitquitquit", Methods::Post, "drain and exit, as on SIGTERM"),
];

pub fn find(path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path)
}

/// The home page: one row per endpoint.
pub fn html() -> String {
    let mut rows = String::new();
    for e in ENDPOINTS {
        let (method, link) = match e.methods {
            Methods::Get => ("GET", format!("<a href=\"{0}\">{0}</a>", e.path)),
            Methods::GetPost => (
                "GET, POST",
                format!("<a href=\"{0}\">{0}</a>", e.path),
            ),
            Methods::Post => (
                "POST",
                format!(
                    "<form action=\"{0}\" method=\"post\"><button type=\"submit\">{0}</button></form>",
                    e.path
                ),
            ),
        };
        rows.push_str(&format!(
            "<tr data-endpoint=\"{}\"><td>{link}</td><td>{method}</td><td>{}</td></tr>\n",
            e.path,
            escape(e.help)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sluice admin</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em;vertical-align:top}}\
         form{{margin:0}}</style></head>\n<body><h1>sluice admin</h1>\n\
         <table>\n<tr><th>endpoint</th><th>method</th><th>what it does</th></tr>\n{rows}</table>\n\
         </body></html>\n"
    )
}

/// HTML text escaping for the help strings.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
