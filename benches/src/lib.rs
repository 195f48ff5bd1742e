//! Sextant's benchmarks.
//!
//! Criterion benches live in `benches/benches/`, one file per hot path, each through the public
//! API of the crate it measures. Helpers shared by the benches (inputs from `../shared/bench`)
//! live here.
