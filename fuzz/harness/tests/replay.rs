//! Replays the seed corpora and the regressions of every fuzz target through its harness
//! function: every crash the fuzzer ever found stays a test (on stable, in `cargo test`).

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = provdb_fuzz_harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = files(&fuzz.join("corpus").join(target));
    assert!(!corpus.is_empty(), "{target} has no seed corpus");
    for path in corpus
        .iter()
        .chain(&files(&fuzz.join("regressions").join(target)))
    {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("replaying {}", path.display());
        run(&data);
    }
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*
    };
}

replay_tests!(
    ingest_jsonl,
    ingest_csv,
    ingest_parquet,
    smart,
    adapter,
    gguf,
    citations,
    api_bodies,
    sql,
);

#[test]
fn every_target_is_replayed() {
    assert_eq!(provdb_fuzz_harness::TARGETS.len(), 9);
}
