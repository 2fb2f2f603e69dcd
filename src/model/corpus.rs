//! The fuzz corpus kept in `tests/corpus/<kind>/`, read by the unit tests
//! that seed their mutation fuzzers from it.

/// Every file of `tests/corpus/<kind>`, by name, sorted.
pub fn read(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus is in the repo")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect()
}

/// Generated inputs per fuzz property: 2,000, or `$AETHER_FUZZ_CASES`
/// (scripts/mutants runs fewer, hundreds of times over).
pub fn cases() -> u32 {
    std::env::var("AETHER_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}
