//! Compiles the descriptors of the Envoy messages an Envoy bootstrap file (`sluice run
//! --envoy-config`) may hold, from the `.proto` files the `envoy-types` crate ships, so the
//! YAML can be read field by field against Envoy's own schema (`bootstrap::schema`).
//!
//! The proto files are found through `cargo metadata` (the crate's source directory), or
//! `SLUICE_ENVOY_PROTO_DIR` when set (builds where cargo cannot be asked, e.g. vendored).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The messages a bootstrap reaches, and the `typed_config`s the translators understand.
/// Everything they import comes along.
const ROOTS: &[&str] = &[
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
    "envoy/extensions/filters/network/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/health_check/v3/health_check.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

/// Include roots under the crate's `proto/` directory.
const INCLUDES: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec",
    "opentelemetry-proto",
    "client_model",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SLUICE_ENVOY_PROTO_DIR");
    let dir = match std::env::var_os("SLUICE_ENVOY_PROTO_DIR") {
        Some(d) => PathBuf::from(d),
        None => envoy_types_dir().join("proto"),
    };
    let includes: Vec<PathBuf> = INCLUDES.iter().map(|i| dir.join(i)).collect();
    let mut compiler = match protox::Compiler::new(&includes) {
        Ok(c) => c,
        Err(e) => fail(&format!(
            "cannot read the Envoy protos in {}: {e}",
            dir.display()
        )),
    };
    compiler.include_imports(true).include_source_info(false);
    if let Err(e) = compiler.open_files(ROOTS) {
        fail(&format!(
            "cannot compile the Envoy protos in {}: {e}",
            dir.display()
        ));
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("envoy.fds");
    if let Err(e) = std::fs::write(&out, compiler.encode_file_descriptor_set()) {
        fail(&format!("cannot write {}: {e}", out.display()));
    }
}

/// The source directory of the `envoy-types` package this build uses.
fn envoy_types_dir() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--offline"])
        .arg("--manifest-path")
        .arg(&manifest);
    // Only this target's packages: others may not be downloaded.
    if let Some(target) = std::env::var_os("TARGET") {
        cmd.arg("--filter-platform").arg(target);
    }
    let out = match cmd.output() {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => fail(&format!(
            "`cargo metadata` failed (set SLUICE_ENVOY_PROTO_DIR to envoy-types' proto directory): {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => fail(&format!("cannot run `cargo metadata`: {e}")),
    };
    let meta: serde_json::Value = match serde_json::from_slice(&out) {
        Ok(v) => v,
        Err(e) => fail(&format!("`cargo metadata` printed no JSON: {e}")),
    };
    let found = meta["packages"].as_array().and_then(|packages| {
        packages
            .iter()
            .find(|p| p["name"] == "envoy-types")
            .and_then(|p| p["manifest_path"].as_str())
    });
    match found.and_then(|m| Path::new(m).parent()) {
        Some(dir) => dir.to_path_buf(),
        None => fail("`cargo metadata` does not list the envoy-types package"),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("sluice-xds build: {message}");
    std::process::exit(1)
}
