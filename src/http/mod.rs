//! The HTTP API: [`router`] (and [`admin_router`], when the admin routes have their own address)
//! builds the app from a state without a socket (tests drive it in-process; `router.rs`);
//! [`run`] serves it with a header-read timeout, load shedding and graceful shutdown
//! (`serve.rs`, `listen.rs`).
//!
//! Handlers only parse, call the layer below ([`crate::serving`]) once and convert; training
//! and storage live there. Every 4xx/5xx is `application/problem+json` ([`error`]). The demo
//! page and the embeddable widget are static files from `web/` ([`page`]).
//!
//! Must not import: the CLI. Does no arithmetic, touches no store and runs no training.

pub mod admin;
pub mod body;
pub mod dto;
pub mod error;
pub mod extract;
mod listen;
pub mod ops;
pub mod page;
pub mod profile;
mod recorder;
mod router;
pub mod routes;
mod serve;
pub mod state;

pub use error::ApiError;
pub use recorder::{METRICS, MetricKind};
pub use router::{ROUTES, admin_router, router};
pub use serve::{healthcheck, run, serve};
pub use state::AppState;
