//! Whatever bytes a config file holds, loading it (with every built-in filter's decoder)
//! returns a config or errors: never a panic.

use proptest::prelude::*;
use sluice_config::load_str;
use sluice_filters::config_registry;

/// Fragments that steer random input towards the config's real shape, so the decoders (not
/// only the YAML parser) see odd values in every position.
const PIECES: &[&str] = &[
    "listeners:",
    "clusters:",
    "admin:",
    "workers:",
    "drain_timeout:",
    "worker_mode:",
    "  - name: a",
    "    address:",
    "    filters:",
    "      - tcp_proxy:",
    "        cluster: c",
    "    endpoints:",
    "      - address:",
    "        weight:",
    " 127.0.0.1:1",
    " unix:/x",
    " [::1]:80",
    " 0",
    " -1",
    " 99999999999999999999",
    " 1.5s",
    " 1e9ms",
    " ~",
    " \"\"",
    " [",
    " ]",
    " {",
    " }",
    " &a",
    " *a",
    " !!str",
    " |",
    " >",
    "---",
    "...",
    ": :",
    "\t",
    " 64KiB",
    " per_core",
    " random",
    " true",
    " 0o777",
    "\u{feff}",
    "\\u0000",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(src in ".{0,400}") {
        let _ = load_str(&src, "fuzz.yaml", &config_registry());
    }

    #[test]
    fn config_shaped_text(lines in prop::collection::vec(
        (prop::sample::select(PIECES), prop::sample::select(PIECES)), 0..40)) {
        let src: String = lines.iter().map(|(a, b)| format!("{a}{b}\n")).collect();
        let _ = load_str(&src, "fuzz.yaml", &config_registry());
    }
}
