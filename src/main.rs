//! The `hayate` binary: flags + conf → Config, then run until a signal.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match hayate::cli::parse(args.clone().into_iter()) {
        // SIGHUP re-parses the same arguments: the conf file is read again
        // and the flags still win over it.
        Ok(hayate::cli::Action::Run(config)) => {
            hayate::run(*config, || {
                match hayate::cli::parse(args.clone().into_iter())? {
                    hayate::cli::Action::Run(config) => Ok(*config),
                    hayate::cli::Action::Print(_) => Err("unexpected arguments".into()),
                }
            })
        }
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
