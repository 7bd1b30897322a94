//! The `provdb` binary: command line and HTTP server over the embedded API (the code is in the
//! `provdb_server` library).

fn main() -> std::process::ExitCode {
    provdb_server::main()
}
