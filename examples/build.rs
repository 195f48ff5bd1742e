//! Link settings for the `sextant` binary that keep its resident memory small.
//!
//! `-z pack-relative-relocs` stores the position-independent executable's relative
//! relocations as a compact bitmap (DT_RELR) instead of 24-byte `Elf64_Rela` entries: the
//! relocation table that the dynamic loader reads at every start shrinks from ~0.9 MB to a few
//! KB, and those pages are no longer made resident in every process. Needs glibc 2.36 or newer
//! at run time and a linker that knows the option (lld, which rustc uses on x86_64 Linux, or GNU
//! ld 2.38+); other targets are left alone.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
