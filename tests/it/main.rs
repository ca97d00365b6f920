//! The integration tests: one binary, one module per area.
//!
//! Tests that need the seed's data sets read them from `../shared/data` (or
//! `MIXREC_SHARED_DATA`). Without them a plain `cargo test` reports those tests as ignored
//! (`needs ../shared/data`: `build.rs` sets `cfg(mixrec_shared_data)` when they are there);
//! `.ci/run` sets `MIXREC_REQUIRE_SHARED_DATA=1`, which turns a missing folder into a failure.
//! The browser test (`browser`) skips the same way without Chromium and ChromeDriver;
//! `MIXREC_REQUIRE_BROWSER=1` makes that a failure too; the object-store tests (`replicas`) skip
//! without `s3s-fs`, and `MIXREC_REQUIRE_S3=1` makes that a failure; the database tests
//! (`database`) skip without PostgreSQL, and `MIXREC_REQUIRE_POSTGRES=1` makes that a failure.

mod support;

mod bounded;
mod browser;
mod cli;
mod database;
mod docker;
mod faults;
mod hardening;
mod hostile;
mod http;
mod k8s;
mod layers;
mod loaders;
mod onboarding;
mod oneway;
mod overrides;
mod parity;
mod parquet;
mod pg;
mod process;
mod properties;
mod quality;
mod replicas;
mod serve;
mod startup;
mod store;
