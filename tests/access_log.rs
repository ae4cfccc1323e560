//! Access logs through the real binary: curl (and the kv RPC client, and raw TCP) against
//! real upstreams, then the lines read back from the files the listener writes. The writer is
//! asynchronous, so every check polls the file until the expected line is there.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use common::curl::curl;
use common::kv::{body, KvClient, KvServer};
use common::*;

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// An HTTP/1.1 upstream answering every request `200 ok`.
fn ok_upstream() -> SocketAddr {
    spawn_server(|conn| {
        let mut r = std::io::BufReader::new(conn);
        while let Ok(Some((_, headers))) = common::http1::read_head(&mut r) {
            if common::http1::read_body(&mut r, &headers).is_err() {
                return;
            }
            let resp = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-served-by: up\r\n\r\nok";
            if r.get_mut().write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// The file's lines once `pred` holds for them (bounded by the harness deadline).
fn lines_when(
    s: &Sluice,
    path: &Path,
    what: &str,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    s.poll(what, || {
        let text = std::fs::read_to_string(path).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        pred(&lines).then_some(lines)
    })
}

/// The line of `path` that starts with `prefix`, once there.
fn line_for(s: &Sluice, path: &Path, prefix: &str) -> String {
    let lines = lines_when(
        s,
        path,
        &format!("a line starting {prefix:?} in {}", path.display()),
        |l| l.iter().any(|l| l.starts_with(prefix)),
    );
    lines.into_iter().find(|l| l.starts_with(prefix)).unwrap()
}

struct Web {
    sluice: Sluice,
    addr: SocketAddr,
    up: SocketAddr,
    dead: SocketAddr,
    text: PathBuf,
    json: PathBuf,
    errors: PathBuf,
    _dir: tempfile::TempDir,
}

/// One `http_proxy` listener with three sinks: a text format, a JSON one, and a text one
/// filtered to status >= 500. Routes: `/ok` to a live upstream, `/dead` to a refused port,
/// `/retry` there with one retry on connect failure, `/slow` to a silent upstream under a
/// 300ms timeout; anything else has no route.
fn web() -> Web {
    let dir = tempfile::tempdir().unwrap();
    let (text, json, errors) = (
        dir.path().join("access.log"),
        dir.path().join("access.json"),
        dir.path().join("errors.log"),
    );
    let (up, dead, slow) = (ok_upstream(), refused_addr(), silent_server());
    let addr = local(free_port());
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
workers: 2
listeners:
  - name: web
    address: "{addr}"
    access_log:
      - path: {text}
        format: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME% %REQ(X-TAG?USER-AGENT):6% %RESP(X-SERVED-BY)% %PROTOCOL%\n"
      - path: {json}
        json_format:
          path: "%REQ(:PATH)%"
          code: "%RESPONSE_CODE%"
          flags: "%RESPONSE_FLAGS%"
          upstream: {{ host: "%UPSTREAM_HOST%", cluster: "%UPSTREAM_CLUSTER%" }}
          route: "%ROUTE_NAME%"
          duration: "%DURATION%"
          start: "%START_TIME%"
          method: "%REQ(:METHOD)% %PROTOCOL%"
          scheme: "%REQ(:SCHEME)%"
          bytes: {{ received: "%BYTES_RECEIVED%", sent: "%BYTES_SENT%" }}
          version: 1
      - path: {errors}
        format: "%REQ(:PATH)% %RESPONSE_CODE%\n"
        filter: {{ status_code: {{ op: ge, value: 500 }} }}
    filters:
      - http_proxy:
          routes:
            - {{ name: ok, match: {{ path: /ok }}, route: {{ cluster: up }} }}
            - {{ match: {{ path: /dead }}, route: {{ cluster: dead }} }}
            - {{ match: {{ path: /retry }}, route: {{ cluster: dead, retry_policy: {{ retry_on: connect-failure, num_retries: 1 }} }} }}
            - {{ match: {{ path: /slow }}, route: {{ cluster: slow, timeout: 300ms }} }}
clusters:
  - {{ name: up, endpoints: [{{ address: "{up}" }}] }}
  - {{ name: dead, connect_timeout: 2s, endpoints: [{{ address: "{dead}" }}] }}
  - {{ name: slow, endpoints: [{{ address: "{slow}" }}] }}
"#,
        text = text.display(),
        json = json.display(),
        errors = errors.display(),
    );
    Web {
        sluice: Sluice::start(&yaml),
        addr,
        up,
        dead,
        text,
        json,
        errors,
        _dir: dir,
    }
}

#[test]
fn http_lines_for_success_no_route_upstream_failure_and_timeout() {
    let w = web();
    let get = |path: &str, extra: &[&str]| {
        let url = format!("http://{}{path}", w.addr);
        let mut args = vec![url.as_str()];
        args.extend_from_slice(extra);
        curl(&args).status
    };
    // A GET with a 10-byte body, for %BYTES_RECEIVED%.
    let ok_args = [
        "-H",
        "user-agent: curl-test-agent",
        "-X",
        "GET",
        "--data-binary",
        "0123456789",
    ];
    assert_eq!(get("/ok", &ok_args), 200);
    assert_eq!(get("/nowhere", &[]), 404);
    assert_eq!(get("/dead", &[]), 503);
    assert_eq!(get("/retry", &[]), 503);
    assert_eq!(get("/slow", &[]), 504);

    let s = &w.sluice;
    assert_eq!(
        line_for(s, &w.text, "/ok "),
        format!("/ok 200 - {} up ok curl-t up HTTP/1.1", w.up)
    );
    assert_eq!(
        line_for(s, &w.text, "/nowhere "),
        format!("/nowhere 404 NR - - - {} - HTTP/1.1", curl_agent())
    );
    assert_eq!(
        line_for(s, &w.text, "/dead "),
        format!("/dead 503 UF {} dead - {} - HTTP/1.1", w.dead, curl_agent())
    );
    assert_eq!(
        line_for(s, &w.text, "/retry "),
        format!(
            "/retry 503 UF,URX {} dead - {} - HTTP/1.1",
            w.dead,
            curl_agent()
        )
    );
    let slow = line_for(s, &w.text, "/slow ");
    assert!(slow.starts_with("/slow 504 UT "), "{slow}");

    // JSON: typed values, nulls for missing ones, nested maps, literal values.
    let json = lines_when(s, &w.json, "five JSON lines", |l| l.len() >= 5);
    let parsed: Vec<serde_json::Value> = json
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_path = |p: &str| parsed.iter().find(|v| v["path"] == p).unwrap().clone();
    let ok = by_path("/ok");
    assert_eq!(ok["code"], 200);
    assert_eq!(ok["scheme"], "http");
    assert_eq!(ok["bytes"]["received"], 10);
    assert_eq!(ok["bytes"]["sent"], 2);
    assert_eq!(ok["flags"], "-");
    assert_eq!(ok["upstream"]["host"], w.up.to_string());
    assert_eq!(ok["upstream"]["cluster"], "up");
    assert_eq!(ok["route"], "ok");
    assert_eq!(ok["method"], "GET HTTP/1.1");
    assert_eq!(ok["version"], 1);
    assert!(ok["duration"].is_u64(), "{ok}");
    let start = ok["start"].as_str().unwrap();
    assert!(
        start.len() == 24 && start.ends_with('Z') && start.as_bytes()[10] == b'T',
        "{start}"
    );
    let none = by_path("/nowhere");
    assert_eq!(none["code"], 404);
    assert_eq!(none["flags"], "NR");
    assert_eq!(none["upstream"]["host"], serde_json::Value::Null);
    assert_eq!(none["route"], serde_json::Value::Null);
    assert_eq!(by_path("/slow")["code"], 504);

    // The filtered sink has the three failures and nothing else.
    let errors = lines_when(s, &w.errors, "three error lines", |l| l.len() >= 3);
    let mut errors: Vec<&str> = errors.iter().map(String::as_str).collect();
    errors.sort_unstable();
    assert_eq!(errors, ["/dead 503", "/retry 503", "/slow 504"]);
}

/// curl's default `User-Agent`, cut to the format's 6 characters.
#[test]
fn heads_the_codec_refuses_are_logged_with_dpe() {
    let w = web();
    // What the client gets back once the connection closes.
    let send = |bytes: &[u8]| {
        let mut c = std::net::TcpStream::connect(w.addr).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        c.write_all(bytes).unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    };
    let reply = send(b"GET /a b HTTP/1.1\r\nhost: x\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let line = line_for(&w.sluice, &w.text, "- 400 ");
    assert_eq!(line, "- 400 DPE - - - - - HTTP/1.1");
    let big = format!(
        "GET /big HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let reply = send(big.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let line = line_for(&w.sluice, &w.text, "- 431 ");
    assert_eq!(line, "- 431 DPE - - - - - HTTP/1.1");
    let lines = lines_when(&w.sluice, &w.json, "two JSON lines", |l| {
        l.iter().filter(|l| l.contains("\"DPE\"")).count() == 2
    });
    let v: serde_json::Value =
        serde_json::from_str(lines.iter().find(|l| l.contains("431")).unwrap()).unwrap();
    assert_eq!(v["code"], 431);
    assert_eq!(v["path"], serde_json::Value::Null);
    assert_eq!(stat(&w.sluice, "http.web.downstream_cx_protocol_error"), 2);
    assert_eq!(stat(&w.sluice, "http.web.downstream_rq_4xx"), 2);
}

#[test]
fn not_health_check_keeps_probes_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let addr = local(free_port());
    let up = ok_upstream();
    let sluice = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: \"{addr}\"
    access_log:
      - path: {log}
        format: \"%REQ(:PATH)% %RESPONSE_CODE%\\n\"
        filter: {{ not_health_check: true }}
    filters:
      - http_proxy:
          http_filters:
            - health_check: {{ pass_through_mode: false, headers: [{{ name: \":path\", exact: /healthz }}] }}
          routes: [{{ match: {{ prefix: / }}, route: {{ cluster: up }} }}]
clusters:
  - {{ name: up, endpoints: [{{ address: \"{up}\" }}] }}
",
        log = log.display()
    ));
    assert_eq!(curl(&[&format!("http://{addr}/healthz")]).status, 200);
    assert_eq!(curl(&[&format!("http://{addr}/after")]).status, 200);
    // The writer keeps order: once /after is there, /healthz would have been too.
    let lines = lines_when(&sluice, &log, "the /after line", |l| {
        l.iter().any(|l| l == "/after 200")
    });
    assert_eq!(lines, vec!["/after 200".to_string()]);
}

fn curl_agent() -> String {
    let out = Command::new("curl").arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    let version = v.split_whitespace().nth(1).unwrap_or("");
    format!("curl/{version}").chars().take(6).collect()
}

#[test]
fn sigusr1_reopens_the_file_after_a_rename() {
    let w = web();
    let url = |p: &str| format!("http://{}{p}", w.addr);
    assert_eq!(curl(&[&url("/ok?before")]).status, 200);
    line_for(&w.sluice, &w.text, "/ok?before ");
    let rotated = w.text.with_extension("log.1");
    std::fs::rename(&w.text, &rotated).unwrap();
    signal(w.sluice.pid(), "USR1");
    // The writer reopens as soon as it hears of the signal, creating the file.
    w.sluice.poll("the access log to be created again", || {
        w.text.exists().then_some(())
    });
    assert_eq!(curl(&[&url("/ok?after")]).status, 200);
    let after = line_for(&w.sluice, &w.text, "/ok?after ");
    assert!(after.starts_with("/ok?after 200 - "), "{after}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("/ok?before 200"), "{old}");
    assert!(!old.contains("/ok?after"), "{old}");
    // The process is still serving (SIGUSR1 did not kill it).
    assert_eq!(curl(&[&url("/ok")]).status, 200);
}

#[test]
fn a_blocked_writer_drops_and_counts_but_never_slows_requests() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("nobody-reads");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let up = ok_upstream();
    let addr = local(free_port());
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
listeners:
  - name: web
    address: "{addr}"
    access_log: [{{ path: {fifo}, buffer_size: 2 }}]
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: up }} }}] }}
clusters: [{{ name: up, endpoints: [{{ address: "{up}" }}] }}]
"#,
        fifo = fifo.display()
    );
    let s = Sluice::start(&yaml);
    // The writer is stuck opening the FIFO; every request still gets its answer (curl's own
    // --max-time bounds each), and the records beyond the queue are counted as dropped.
    for _ in 0..10 {
        assert_eq!(curl(&[&format!("http://{addr}/")]).status, 200);
    }
    let dropped = s.poll("access_log.web.dropped to count", || {
        let n = stat(&s, "access_log.web.dropped");
        (n > 0).then_some(n)
    });
    assert!(dropped <= 10, "{dropped}");
}

#[test]
fn tcp_connections_and_connections_no_chain_takes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tcp.log");
    let (echo, dead) = (echo_server(), refused_addr());
    let (a, b, c) = (local(free_port()), local(free_port()), local(free_port()));
    let format = "%DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %PROTOCOL%\\n";
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
listeners:
  - name: echo
    address: "{a}"
    access_log: [{{ path: {log}, format: "{format}" }}]
    filters: [{{ tcp_proxy: {{ cluster: echo }} }}]
  - name: dead
    address: "{b}"
    access_log: [{{ path: {log}, format: "{format}" }}]
    filters: [{{ tcp_proxy: {{ cluster: dead }} }}]
  - name: picky
    address: "{c}"
    access_log: [{{ path: {log}, format: "{format}" }}]
    filter_chains:
      - match: {{ destination_port: 1 }}
        filters: [{{ tcp_proxy: {{ cluster: echo }} }}]
clusters:
  - {{ name: echo, endpoints: [{{ address: "{echo}" }}] }}
  - {{ name: dead, endpoints: [{{ address: "{dead}" }}] }}
"#,
        log = log.display()
    );
    let s = Sluice::start(&yaml);
    let mut conn = connect(a);
    roundtrip(&mut conn, b"hello, world");
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    drop(conn);
    assert_eq!(
        line_for(&s, &log, &format!("{a} ")),
        format!("{a} - - 12 12 {echo} echo -")
    );
    let mut conn = connect(b);
    assert_closed(&mut conn, "a connection with no upstream");
    assert_eq!(
        line_for(&s, &log, &format!("{b} ")),
        format!("{b} - UF,URX 0 0 {dead} dead -")
    );
    let mut conn = connect(c);
    assert_closed(&mut conn, "a connection no chain takes");
    assert_eq!(
        line_for(&s, &log, &format!("{c} ")),
        format!("{c} - NR 0 0 - - -")
    );
}

#[test]
fn rpc_calls_are_logged_with_the_protocol_status() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rpc.log");
    let kv = KvServer::start("kv");
    let silent = silent_server();
    let port = free_port();
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
listeners:
  - name: rpc
    address: "127.0.0.1:{port}"
    access_log:
      - path: {log}
        format: "%PROTOCOL% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:METHOD)% %REQ(TENANT)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %UPSTREAM_CLUSTER%\n"
    filters:
      - rpc_proxy:
          protocol: kv
          route_config: rpc
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {{ headers: [{{ name: service, exact: com.example.Echo }}] }}
            route: {{ cluster: kv }}
          - match: {{ headers: [{{ name: service, exact: com.example.Silent }}] }}
            route: {{ cluster: silent }}
clusters:
  - {{ name: kv, endpoints: [{{ address: "{kv}" }}] }}
  - {{ name: silent, endpoints: [{{ address: "{silent}" }}] }}
"#,
        log = log.display(),
        kv = kv.addr,
        silent = silent,
    );
    let s = Sluice::start(&yaml);
    let mut c = KvClient::connect(local(port));
    let r = c.call_with("com.example.Echo", "echo", &[("tenant", "t1")], "hi");
    assert_eq!(body(&r), "kv:hi");
    let r = c.call("com.example.Other", "echo", "x");
    assert_ne!(
        r.status, 0,
        "a call with no route gets the protocol's error status"
    );
    assert_eq!(
        line_for(&s, &log, "kv /com.example.Echo/echo "),
        format!(
            "kv /com.example.Echo/echo com.example.Echo echo t1 0 - {} kv",
            kv.addr
        )
    );
    assert_eq!(
        line_for(&s, &log, "kv /com.example.Other/echo "),
        format!(
            "kv /com.example.Other/echo com.example.Other echo - {} NR - -",
            r.status
        )
    );
    // A call in flight when its client resets the connection is logged all the same, `DC`.
    let mut gone = KvClient::connect(local(port));
    gone.send(
        0,
        9,
        &[("service", "com.example.Silent"), ("method", "wait")],
        "x",
    );
    s.poll("the call to reach the silent upstream", || {
        (stat(&s, "cluster.silent.upstream_rq_total") == 1).then_some(())
    });
    gone.reset();
    assert_eq!(
        line_for(&s, &log, "kv /com.example.Silent/wait "),
        format!("kv /com.example.Silent/wait com.example.Silent wait - 0 DC {silent} silent")
    );
}

/// Kills the process it holds when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn stdout_sink_and_the_default_format() {
    let up = ok_upstream();
    let addr = local(free_port());
    let admin = local(free_port());
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
admin: {{ address: "{admin}" }}
listeners:
  - name: web
    address: "{addr}"
    access_log: [{{ path: stdout }}]
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: up }} }}] }}
clusters: [{{ name: up, endpoints: [{{ address: "{up}" }}] }}]
"#
    );
    let (config, out) = (dir.path().join("cfg.yaml"), dir.path().join("stdout"));
    std::fs::write(&config, yaml).unwrap();
    let child = Command::new(BIN)
        .arg("run")
        .arg("-c")
        .arg(&config)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let deadline = std::time::Instant::now() + DEADLINE;
    while !matches!(http_get(admin, "/ready"), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "sluice not ready");
        thread::sleep(std::time::Duration::from_millis(20));
    }
    let reply = curl(&[
        &format!("http://{addr}/hello?x=1"),
        "-H",
        "x-request-id: rid-1",
    ]);
    assert_eq!(reply.status, 200);
    // Envoy's default format: [time] "METHOD PATH PROTOCOL" code flags rx tx duration
    // upstream-service-time "xff" "agent" "request-id" "authority" "upstream".
    let line = loop {
        let text = std::fs::read_to_string(&out).unwrap();
        if let Some(l) = text.lines().find(|l| l.contains("/hello?x=1")) {
            break l.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line on stdout: {text:?}"
        );
        thread::sleep(std::time::Duration::from_millis(20));
    };
    let after_time = line.split_once("] ").unwrap().1;
    assert!(line.starts_with('['), "{line}");
    assert!(
        after_time.starts_with("\"GET /hello?x=1 HTTP/1.1\" 200 - 0 2 "),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("\"rid-1\" \"{addr}\" \"{up}\"")),
        "{line}"
    );
}

#[test]
fn bad_access_log_config_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "\
listeners:
  - name: web
    address: 127.0.0.1:1
    access_log:
      - path: stdout
        format: \"%REQ(:PATH)% %FOO%\"
      - path: /no/such/dir/access.log
      - path: stdout
        format: x
        json_format: { a: b }
      - path: stdout
        filter: { status_code: { op: gte, value: 500 }, response_flags: [UX] }
      - path: stdout
        json_format: { a: \"%START_TIME(%Q)%\" }
      - path: stdout
        filter: { not_health_check: maybe }
    filters: [{ tcp_proxy: { cluster: c } }]
clusters: [{ name: c }]
";
    std::fs::write(dir.path().join("cfg.yaml"), yaml).unwrap();
    let (code, out, err) = sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    for want in [
        "listeners[0].access_log[0].format: unknown command operator %FOO%",
        "listeners[0].access_log[1].path: directory \"/no/such/dir\" does not exist",
        "listeners[0].access_log[2]: has both format and json_format: choose one",
        "listeners[0].access_log[3].filter.status_code.op: unknown comparison \"gte\"",
        "listeners[0].access_log[3].filter.response_flags[0]: unknown response flag \"UX\"",
        "listeners[0].access_log[4].json_format.a: %START_TIME(%Q)%: invalid time format",
        "listeners[0].access_log[5].filter.not_health_check: expected true or false, found \"maybe\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn an_unwritable_file_fails_the_start_naming_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: it exists (so config checks pass) but cannot be
    // opened for appending.
    let taken = dir.path().join("is-a-dir");
    std::fs::create_dir(&taken).unwrap();
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
listeners:
  - name: web
    address: "127.0.0.1:{port}"
    access_log: [{{ path: {taken} }}]
    filters: [{{ tcp_proxy: {{ cluster: c }} }}]
clusters: [{{ name: c }}]
"#,
        port = free_port(),
        taken = taken.display()
    );
    let mut s = Sluice::spawn(&yaml, &[]);
    let status = s.wait_exit();
    assert!(!status.success());
    let log = s.log();
    assert!(
        log.contains("listeners[0].access_log[0]: cannot open"),
        "{log}"
    );
}
