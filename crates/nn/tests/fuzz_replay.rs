//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through
//! the same harness functions the cargo-fuzz targets run (`fuzz/harness.rs`),
//! so seeds and the regression inputs of past crashes are checked by
//! `cargo test --workspace` without a fuzzer.

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

#[test]
fn every_corpus_file_replays_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut failures = Vec::new();
    let mut total = 0;
    for &(target, run) in harness::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {target} is empty");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                failures.push(f.display().to_string());
            }
        }
        eprintln!("{target}: replayed {} files", files.len());
        total += files.len();
    }
    assert!(total >= harness::TARGETS.len());
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
}

/// The harnesses accept every byte string, including none at all.
#[test]
fn harnesses_accept_trivial_inputs() {
    for &(_, run) in harness::TARGETS {
        run(&[]);
        run(&[0]);
        run(&[255; 64]);
    }
}
