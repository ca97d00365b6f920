//! mixrec: collaborative filtering with Gaussian mixtures over sparse rating matrices.
//!
//! The layers, top to bottom; each imports only from below it (see the README's
//! Architecture section):
//!
//! - [`cli`]: the command-line front that `main.rs` calls.
//! - [`http`]: the HTTP API (axum): router, extractors, DTOs, thin handlers, problem+json
//!   errors, the accept loop.
//! - [`serving`]: the model lifecycle: the registry, jobs (train, gate, persist, install,
//!   rollback), the fit policy, the model in service, the model stores.
//! - [`config`]: layered, validated service settings.
//! - [`eval`]: held-out scores of a mixture and of simple baselines.
//! - [`predictor`]: one interface over both model kinds; each kind encodes its parameters.
//! - [`onboard`]: which items to ask a new user, by expected information about their type.
//! - [`mixture`], [`plsa`]: the numeric engines.
//! - [`data`]: ratings in memory, ids, splits, snapshot formats and the ratings sources.
//! - [`synth`]: synthetic snapshots with planted user types.
//! - [`simd`]: the kernels' run-time dispatch to AVX-512, AVX2 or portable code, and the
//!   machine limits the benchmarks measure against.
//!
//! Must not import: the binary (`main.rs`); each layer below imports only from the layers under it.

pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod http;
pub mod linalg;
pub mod mfa;
pub mod mixture;
pub mod onboard;
pub mod plsa;
pub mod predictor;
pub mod score;
pub mod select;
pub mod serving;
pub mod simd;
pub mod synth;
