#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_filters::http_proxy::fuzz::response_head(data);
});
