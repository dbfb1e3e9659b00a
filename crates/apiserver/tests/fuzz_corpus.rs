//! The API server's fuzz corpora, replayed by the ordinary test suite: every seed of the
//! `request_path` and `codec` targets (`fuzz/server/corpus/`) through the very case the fuzzer
//! runs (`fuzz/server/cases/`), with its checks (no panic, a `Status` for every error, no 5xx
//! but a deliberate 503/504, a refused body a 4xx). The fuzz build of these targets compiles
//! the API server a second time and takes too long for CI; the light targets run in CI under
//! cargo-fuzz (see FUZZING.md).

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/server/cases/request_path.rs"]
mod request_path;

#[path = "../../../fuzz/server/cases/codec.rs"]
mod codec;

/// The files of `fuzz/server/corpus/<target>`, sorted (the request path's seeds build on each
/// other's objects, as in a fuzz run).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/server/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "{}: {} seeds; the corpus is committed with 40 or more",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

#[test]
fn the_request_path_corpus_replays_clean() {
    for (path, bytes) in corpus("request_path") {
        let replayed = std::panic::catch_unwind(|| request_path::run(&bytes));
        assert!(replayed.is_ok(), "{} failed its checks", path.display());
    }
}

#[test]
fn the_codec_corpus_replays_clean() {
    for (path, bytes) in corpus("codec") {
        let replayed = std::panic::catch_unwind(|| codec::run(&bytes));
        assert!(replayed.is_ok(), "{} failed its checks", path.display());
    }
}
