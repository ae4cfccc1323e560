//! The admin `/dashboard` in a real browser (headless Chromium through chromedriver): the page
//! loads, shows the cluster's hosts with their differing health, and its request counter
//! follows traffic sent after the page loaded, which only a page that refreshes itself can do.
#![allow(clippy::unwrap_used)]

mod common;

use common::curl::curl;
use common::webdriver::Browser;
use common::*;

#[test]
fn dashboard_shows_hosts_and_follows_traffic() {
    let live = common::http1::scripted(|_, _, _| {
        Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec())
    })
    .0;
    let dead = refused_addr();
    let web = free_port();
    let s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: 127.0.0.1:{web}
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}] }}
clusters:
  - name: backend
    health_check: {{ http: {{ path: / }}, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [{{ address: \"{live}\", zone: z1 }}, {{ address: \"{dead}\", zone: z2 }}]
"
    ));
    // Health checks have judged both hosts before the page opens.
    s.poll("the dead host failing its checks", || {
        let text = http_get(s.admin, "/clusters").ok()?.1;
        (text.contains(&format!("backend::{dead}::health_flags::/failed_active_hc"))
            && text.contains(&format!("backend::{live}::health_flags::healthy")))
        .then_some(())
    });

    let browser = Browser::start();
    browser.goto(&format!("http://{}/dashboard", s.admin));
    let hosts = |b: &Browser| {
        b.eval(
            r#"return [...document.querySelectorAll('[data-cluster="backend"] [data-host]')]
                 .map(e => [e.dataset.host, e.dataset.health]).sort();"#,
        )
    };
    let mut expected = vec![
        serde_json::json!([live.to_string(), "healthy"]),
        serde_json::json!([dead.to_string(), "unhealthy"]),
    ];
    expected.sort_by_key(|v| v[0].as_str().unwrap().to_string());
    let shown = s.poll("the dashboard listing the cluster's hosts", || {
        let v = hosts(&browser);
        (v.as_array().is_some_and(|a| a.len() == 2)).then_some(v)
    });
    assert_eq!(shown, serde_json::Value::Array(expected));
    let state = browser.eval("return document.getElementById('state').textContent;");
    assert_eq!(state, "LIVE");
    let listener =
        browser.eval(r#"return document.querySelector('[data-listener="web"]').textContent;"#);
    assert!(
        listener.as_str().unwrap().contains(&web.to_string()),
        "{listener}"
    );

    let counter = |b: &Browser| {
        b.eval(
            r#"const e = document.querySelector('[data-counter="cluster.backend.upstream_rq_total"]');
               return e ? Number(e.textContent) : -1;"#,
        )
        .as_i64()
        .unwrap()
    };
    let before = s.poll("the request counter shown", || {
        let n = counter(&browser);
        (n >= 0).then_some(n)
    });
    assert_eq!(before, 0, "no traffic yet");
    const SENT: i64 = 7;
    for _ in 0..SENT {
        assert_eq!(curl(&[&format!("http://127.0.0.1:{web}/")]).status, 200);
    }
    // The page is never reloaded: only its own polling can bring the new count.
    let after = s.poll("the dashboard showing the requests sent", || {
        let n = counter(&browser);
        (n >= SENT).then_some(n)
    });
    assert_eq!(after, SENT);
    let host_total = browser.eval(&format!(
        r#"return Number(document.querySelector('[data-host="{live}"] [data-field="rq_total"]').textContent);"#
    ));
    assert_eq!(host_total, SENT);
}
