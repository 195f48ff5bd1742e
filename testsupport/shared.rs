// Locates `../shared`, the reference data beside the checkout. Included by conformance tests
// with `#[path = "../../testsupport/shared.rs"] mod shared;` so there is one copy of it.
//
// Without `../shared` a conformance test prints why it did nothing and passes, so the
// project's own tests pass anywhere; with SEXTANT_REQUIRE_SHARED=1 (CI) that is a failure.

use std::path::PathBuf;

/// `$SEXTANT_SHARED`, or `../shared` next to the workspace root; `None` (after saying so) when
/// absent and not required.
#[allow(dead_code)]
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.join("conformance").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("SEXTANT_REQUIRE_SHARED").is_some_and(|v| v == "1") {
        panic!("{test}: {} does not exist and SEXTANT_REQUIRE_SHARED=1", dir.display());
    }
    println!("conformance {test}: skipped, {} not found", dir.display());
    None
}
