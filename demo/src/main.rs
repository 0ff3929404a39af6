//! `routemeter-demo serve`: the demo file-conversion service.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use routemeter_demo::server::{self, ServeOptions};

#[derive(Parser)]
#[command(about = "The demo file-conversion service routemeter is shown and tested against")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service
    Serve {
        /// Address to listen on (port 0 picks one)
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: SocketAddr,
        /// Uploads above this many bytes get 413
        #[arg(long, default_value_t = ServeOptions::default().max_upload_bytes)]
        max_upload_bytes: u64,
        /// Sleep this many ms before every response (?delay_ms= overrides)
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Milliseconds until an uploaded job is ready (?processing_ms= overrides)
        #[arg(long, default_value_t = 0)]
        processing_ms: u64,
    },
}

fn main() -> ExitCode {
    let Command::Serve { listen, max_upload_bytes, delay_ms, processing_ms } = Cli::parse().command;
    let opts = ServeOptions { listen, max_upload_bytes, delay_ms, processing_ms, openapi: None };
    let running = match server::start(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("routemeter-demo serve: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this exact line to learn the port, so it must not sit in a buffer.
    let mut stdout = std::io::stdout();
    if let Err(e) = writeln!(stdout, "listening on {}", running.addr).and_then(|()| stdout.flush()) {
        eprintln!("routemeter-demo serve: cannot write to stdout: {e}");
    }
    running.wait();
    ExitCode::SUCCESS
}
