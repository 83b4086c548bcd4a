//! Property test: random call sequences through the C ABI keep every
//! operation's completion exactly-once, lose and duplicate no event and
//! leak no registration (see `tests/callseq/mod.rs` for the model).
//! Cases: `PROPTEST_CASES` (default 256); sequences of up to 400 bytes.

mod callseq;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_call_sequences_complete_every_op_exactly_once_and_leak_nothing(
        data in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        if let Err(e) = callseq::run(&data) {
            return Err(TestCaseError::fail(e));
        }
    }
}
