//! Fuzz target: the property test's call-sequence decoder and model
//! (`tests/callseq/mod.rs`), driven by libFuzzer's bytes. Any violated
//! property panics, which libFuzzer reports as a crash with its input.
#![no_main]

#[path = "../../tests/callseq/mod.rs"]
mod callseq;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = callseq::run(data) {
        panic!("{e}");
    }
});
