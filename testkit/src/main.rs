//! `routemeter-kit`: the client side of `make run`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use testkit::{admin, summary, traffic};

#[derive(Parser)]
#[command(about = "The client side of `make run`: demo traffic, the per-route summary, readiness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send the demo traffic mix (uploads, status, downloads, ...) through Envoy
    Traffic {
        #[arg(long)]
        target: SocketAddr,
    },
    /// Print a per-route summary of Envoy's /stats/prometheus
    Summary {
        #[arg(long)]
        admin: SocketAddr,
    },
    /// Wait until Envoy's admin answers /ready
    WaitReady {
        #[arg(long)]
        admin: SocketAddr,
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Traffic { target } => traffic::demo_mix(target)
            .map(|log| println!("  {} requests sent", log.len() + 1))
            .map_err(|e| format!("{target}: {e}")),
        Command::Summary { admin } => {
            admin::scrape(admin).map(|page| print!("{}", summary::render(&page))).map_err(|e| format!("{admin}: {e}"))
        }
        Command::WaitReady { admin, timeout_s } => admin::wait_ready(admin, "/ready", Duration::from_secs(timeout_s))
            .then_some(())
            .ok_or_else(|| format!("{admin} not ready after {timeout_s} s")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routemeter-kit: {e}");
            ExitCode::FAILURE
        }
    }
}
