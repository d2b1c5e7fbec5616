//! The bundle and statement parsers never panic: arbitrary bytes, and valid bundles with
//! one byte changed or cut short, give `Ok` or a typed error. A changed bundle that still
//! verifies must be the same statement (a change the signature does not cover, such as
//! JSON whitespace or the unused `keyid`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use proptest::prelude::*;
use skvault_format::testing::TreeSpec;
use skvault_sign::{verify_bundle, PrivateKey, PublicKey};

struct Fixture {
    _dir: tempfile::TempDir,
    bundle: Vec<u8>,
    public: PublicKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.skv");
        std::fs::write(&model, TreeSpec::regressor().bytes().unwrap()).unwrap();
        let key = PrivateKey::generate();
        let bundle = skvault_sign::sign(&model, &key, "prop").unwrap();
        Fixture {
            _dir: dir,
            bundle,
            public: key.public_key(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        skvault_sign::fuzzing::exercise(&data);
        let f = fixture();
        prop_assert!(verify_bundle(&data, std::slice::from_ref(&f.public)).is_err());
    }

    #[test]
    fn mutated_bundles_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let f = fixture();
        let mut data = f.bundle.clone();
        let i = pos.index(data.len());
        if cut { data.truncate(i) } else { data[i] = byte }
        skvault_sign::fuzzing::exercise(&data);
        let original = verify_bundle(&f.bundle, std::slice::from_ref(&f.public)).unwrap();
        if let Ok(found) = verify_bundle(&data, std::slice::from_ref(&f.public)) {
            prop_assert_eq!(found, original);
        }
    }
}
