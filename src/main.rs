//! The `pocketgate` binary: parse arguments and dispatch; no logic here.

fn main() -> std::process::ExitCode {
    pocketgate::cli::main()
}
