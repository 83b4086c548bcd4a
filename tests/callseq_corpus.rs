//! The committed fuzz corpus (`fuzz/corpus/callseq`), replayed through the
//! same checks as the property test, so every seed stays a regression
//! test without the fuzzer. A binary of its own: `callseq` sets
//! `LIBXL_POLL_BACKEND` per sequence, which must not race another test.

mod callseq;

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/callseq");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(msg) = callseq::run(&data) {
            panic!("{}: {msg}", path.display());
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
