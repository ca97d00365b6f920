//! mixrec: collaborative filtering with Gaussian mixtures over sparse rating matrices.
//!
//! - [`data`]: snapshot formats, sparse ratings and id maps (no web or async types).
//! - [`mixture`]: the numeric engine: initialisation, EM, k-means, BIC, prediction.
//! - [`plsa`]: Hofmann's Gaussian pLSA, the second model kind.
//! - [`predictor`]: one interface over both model kinds for answering profiles.
//! - [`eval`]: held-out scores of a mixture and of simple baselines.
//! - [`synth`]: synthetic snapshots with planted user types.
//! - [`train`], [`service`]: training for the service and the model in service (no web types).
//! - [`store`]: trained models saved atomically and checked on the way back in.
//! - [`config`]: layered, validated service settings.
//! - [`http`]: the HTTP API (axum): router, state, DTOs, errors, retrain jobs, serving.
//! - [`cli`]: the command-line front that `main.rs` calls.

pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod http;
pub mod linalg;
pub mod mfa;
pub mod mixture;
pub mod plsa;
pub mod predictor;
pub mod score;
pub mod select;
pub mod service;
mod simd;
pub mod store;
pub mod synth;
pub mod train;
