//! The `hayate` binary: flags + conf → Config, then run until a signal.
use std::process::ExitCode;

fn main() -> ExitCode {
    match hayate::cli::parse(std::env::args_os().skip(1)) {
        Ok(hayate::cli::Action::Run(config)) => hayate::run(*config),
        Ok(hayate::cli::Action::Print(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("hayate: {message}");
            ExitCode::from(2)
        }
    }
}
