//! The `mixrec` binary: parses the command line and hands over to [`mixrec::cli`].
//!
//! Must not import: anything but `mixrec::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match mixrec::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mixrec: {}", mixrec::cli::describe(&e));
            ExitCode::FAILURE
        }
    }
}
