//! The `pocketgate` binary: parse arguments and dispatch; no logic here.

/// mimalloc instead of glibc's allocator: a signed-in request allocates and
/// frees about twenty small blocks (header values, the response), and glibc
/// spends a tenth of the request's instructions on them, plus a
/// `malloc_consolidate` per request (docs/src/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pocketgate::cli::main()
}
