//! Link settings for the `sextant` binary that keep its resident memory small.
//!
//! `-z pack-relative-relocs` stores the position-independent executable's relative
//! relocations as a compact bitmap (DT_RELR) instead of 24-byte `Elf64_Rela` entries: the
//! relocation table that the dynamic loader reads at every start shrinks from ~0.9 MB to a few
//! KB, and those pages are no longer made resident in every process. Needs glibc 2.36 or newer
//! at run time and a linker that knows the option (lld, which rustc uses on x86_64 Linux, or GNU
//! ld 2.38+); other targets are left alone.
//!
//! `--symbol-ordering-file=link-order.txt` (release builds, lld) places the functions the
//! exporters run next to each other at the start of `.text`. Without it they are spread over the
//! whole 16 MB of code, and since the kernel maps 64 KB around every page fault, an exporter
//! holds ~6 MB of code resident to run ~1 MB of it. `scripts/link-order.sh` regenerates the file
//! from instruction traces of every exporter; names that no longer exist are skipped silently,
//! so a stale list costs memory, never correctness. `SEXTANT_LINK_ORDER=0` turns it off.

use std::path::PathBuf;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link-order.txt");
    let wanted = std::env::var("SEXTANT_LINK_ORDER").map_or(true, |v| v != "0");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    // lld is rustc's default linker on x86_64 Linux (rustc 1.90 and newer); GNU ld 2.40 does not
    // know the option.
    if os == "linux" && env == "gnu" && arch == "x86_64" && release && wanted && lld_by_default() && order.exists() {
        println!("cargo:rustc-link-arg-bin=sextant=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bin=sextant=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=SEXTANT_LINK_ORDER");
}

/// Whether this rustc links x86_64 Linux binaries with its bundled lld unless told otherwise:
/// version 1.90 or newer, and no `-C linker` or linker-feature override in the flags.
fn lld_by_default() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().nth(1).unwrap_or("").split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 90)
}
