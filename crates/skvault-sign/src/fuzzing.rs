//! The `sign_bundle` fuzz target's body, shared with the corpus replay in `cargo test`:
//! arbitrary bytes through the bundle and statement parsers and the signature check. Every
//! input must give `Ok` or `Err`, never a panic.

use crate::keys::PublicKey;

/// A fixed trusted key (the fuzzer cannot forge signatures; it exercises the parsing and
/// the paths up to and after the signature check).
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEandgic8ucStz++6YMIjVjJAnHayu
nszxw9BuPs9sIapu0DgUFiKb1sf+Osu/CNPadkQdRPtMMeuY//ZYyBAGkQ==
-----END PUBLIC KEY-----
";

/// The bytes are tried as a bundle and as a statement (the payload, which a fuzzer could
/// not otherwise change without breaking the signature). Returns true when they are a
/// bundle signed by the fixed key whose statement parses, or a statement that parses: the
/// seeds are, so they reach every check but the file's digests.
pub fn exercise(data: &[u8]) -> bool {
    let _ = crate::bundle::parse_bundle(data);
    let statement = crate::bundle::parse_statement(data).is_ok();
    let bundle = match PublicKey::from_pem(KEY) {
        Ok(key) => crate::verify_bundle(data, &[key]).is_ok(),
        Err(_) => false,
    };
    statement || bundle
}
