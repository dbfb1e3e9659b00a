//! Request body decoding: the case is in `cases/codec.rs`, shared with the project's corpus replay
//! (`crates/apiserver/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../cases/codec.rs"]
mod codec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| codec::run(data));
