//! Store write throughput: `cargo run -p pernode-store --example store_bench [SEQ] [CONCURRENT]`.
//! Uses a temporary directory on the same file system as the system temp dir.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let sequential = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let concurrent = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pernode_store::bench::run(dir.path(), sequential, concurrent).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("store bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}
