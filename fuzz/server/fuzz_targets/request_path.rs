//! The whole request path through the in-process router: the case is in `cases/request_path.rs`, shared with the project's corpus replay
//! (`crates/apiserver/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../cases/request_path.rs"]
mod request_path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| request_path::run(data));
