//! The `mixrec` binary: parses the command line and hands over to [`mixrec::cli`].
//!
//! Must not import: anything but `mixrec::cli` and the allocator, `mixrec::pages`.

use std::process::ExitCode;

/// Large blocks on huge pages: fewer page faults for every array of a fit (see the module).
#[global_allocator]
static ALLOCATOR: mixrec::pages::HugePages = mixrec::pages::HugePages;

fn main() -> ExitCode {
    match mixrec::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mixrec: {}", mixrec::cli::describe(&e));
            ExitCode::FAILURE
        }
    }
}
