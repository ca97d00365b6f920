//! mixrec: collaborative filtering with Gaussian mixtures over sparse rating matrices.
//!
//! - [`data`]: snapshot formats, sparse ratings and id maps (no web or async types).
//! - [`mixture`]: the numeric engine: initialisation, EM, k-means, BIC, prediction.
//! - [`plsa`]: Hofmann's Gaussian pLSA, the second model kind.
//! - [`eval`]: held-out scores of a mixture and of simple baselines.
//! - [`cli`]: the command-line front that `main.rs` calls.

pub mod cli;
mod cli_eval;
pub mod data;
pub mod eval;
pub mod mixture;
pub mod plsa;
