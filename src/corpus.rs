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
