//! The `routemeter-demo` command line: one subcommand per demo tool.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use std::time::Duration;

use routemeter_demo::server::{self, ServeOptions};
use routemeter_demo::{admin, summary, traffic};

const USAGE: &str = "\
usage: routemeter-demo <command> [options]

commands:
  serve       run the demo file-conversion service
  traffic     send the demo traffic mix (uploads, status, downloads, ...) to --target ADDR
  summary     print a per-route summary of Envoy's /stats/prometheus at --admin ADDR
  wait-ready  wait until Envoy's admin at --admin ADDR answers /ready (--timeout-s N, default 30)

Run `routemeter-demo <command> --help` for a command's options.";

const SERVE_USAGE: &str = "\
usage: routemeter-demo serve [options]

options:
  --listen ADDR            address to listen on (default 127.0.0.1:8000; port 0 picks one)
  --max-upload-bytes N     uploads above N bytes get 413 (default 52428800)
  --delay-ms N             sleep N ms before every response (default 0; ?delay_ms= overrides)
  --processing-ms N        ms until an uploaded job is ready (default 0; ?processing_ms= overrides)
  -h, --help               show this help";

/// Exit code for usage errors, as most Unix tools use.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("traffic") => traffic_cmd(&args[1..]),
        Some("summary") => summary_cmd(&args[1..]),
        Some("wait-ready") => wait_ready_cmd(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("routemeter-demo: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn serve(args: &[String]) -> ExitCode {
    let opts = match parse_serve_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{SERVE_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("routemeter-demo serve: {msg}\n\n{SERVE_USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let listen = opts.listen;
    let running = match server::start(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("routemeter-demo serve: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for this exact line to learn the port, so it must not sit in a buffer.
    let mut stdout = std::io::stdout();
    let announced = writeln!(stdout, "listening on {}", running.addr).and_then(|()| stdout.flush());
    if let Err(e) = announced {
        eprintln!("routemeter-demo serve: cannot write to stdout: {e}");
    }
    running.wait();
    ExitCode::SUCCESS
}

/// `Ok(None)` means help was asked for. Accepts both `--flag value` and `--flag=value`.
fn parse_serve_args(args: &[String]) -> Result<Option<ServeOptions>, String> {
    let Some(flags) = parse_flags(args, &["--listen", "--max-upload-bytes", "--delay-ms", "--processing-ms"])? else {
        return Ok(None);
    };
    let mut opts = ServeOptions::default();
    for (flag, value) in flags {
        match flag.as_str() {
            "--listen" => opts.listen = parse_addr(&flag, &value)?,
            "--max-upload-bytes" => opts.max_upload_bytes = parse_number(&flag, &value)?,
            "--delay-ms" => opts.delay_ms = parse_number(&flag, &value)?,
            _ => opts.processing_ms = parse_number(&flag, &value)?,
        }
    }
    Ok(Some(opts))
}

/// `--flag value` / `--flag=value` pairs, each flag one of `allowed`; `Ok(None)` for help.
fn parse_flags(args: &[String], allowed: &[&str]) -> Result<Option<Vec<(String, String)>>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !allowed.contains(&flag) {
            return Err(format!("unknown option '{arg}'"));
        }
        let value = match inline.or_else(|| it.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        out.push((flag.to_string(), value));
    }
    Ok(Some(out))
}

/// Runs a client-side command that takes one required address flag (and maybe more).
fn client_cmd(
    name: &str,
    args: &[String],
    addr_flag: &str,
    extra: &[&str],
    run: impl FnOnce(SocketAddr, &[(String, String)]) -> Result<ExitCode, String>,
) -> ExitCode {
    let mut allowed = vec![addr_flag];
    allowed.extend_from_slice(extra);
    let result = parse_flags(args, &allowed).and_then(|flags| {
        let Some(flags) = flags else {
            println!("usage: routemeter-demo {name} {addr_flag} ADDR\n\n{USAGE}");
            return Ok(ExitCode::SUCCESS);
        };
        let addr = match flags.iter().find(|(f, _)| f == addr_flag) {
            Some((f, v)) => parse_addr(f, v)?,
            None => return Err(format!("{addr_flag} ADDR is required")),
        };
        run(addr, &flags)
    });
    result.unwrap_or_else(|msg| {
        eprintln!("routemeter-demo {name}: {msg}");
        ExitCode::from(USAGE_ERROR)
    })
}

fn traffic_cmd(args: &[String]) -> ExitCode {
    client_cmd("traffic", args, "--target", &[], |target, _| match traffic::demo_mix(target) {
        Ok(log) => {
            println!("  {} requests sent", log.len() + 1);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("routemeter-demo traffic: {target}: {e}");
            Ok(ExitCode::FAILURE)
        }
    })
}

fn summary_cmd(args: &[String]) -> ExitCode {
    client_cmd("summary", args, "--admin", &[], |admin_addr, _| match admin::scrape(admin_addr) {
        Ok(page) => {
            print!("{}", summary::render(&page));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("routemeter-demo summary: {admin_addr}: {e}");
            Ok(ExitCode::FAILURE)
        }
    })
}

fn wait_ready_cmd(args: &[String]) -> ExitCode {
    client_cmd("wait-ready", args, "--admin", &["--timeout-s"], |admin_addr, flags| {
        let timeout = match flags.iter().find(|(f, _)| f == "--timeout-s") {
            Some((f, v)) => parse_number(f, v)?,
            None => 30,
        };
        Ok(if admin::wait_ready(admin_addr, Duration::from_secs(timeout)) {
            ExitCode::SUCCESS
        } else {
            eprintln!("routemeter-demo wait-ready: {admin_addr} not ready after {timeout} s");
            ExitCode::FAILURE
        })
    })
}

fn parse_number(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value '{value}' for {flag}: expected a non-negative integer"))
}

/// Takes `IP:PORT`, or `host:port` such as `localhost:8000`.
fn parse_addr(flag: &str, value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse() {
        return Ok(addr);
    }
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            format!(
                "invalid value '{value}' for {flag}: expected HOST:PORT such as 127.0.0.1:8000"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_all_flags_in_both_forms() {
        let opts = parse_serve_args(&args(&[
            "--listen",
            "0.0.0.0:9000",
            "--max-upload-bytes=1000",
            "--delay-ms",
            "5",
            "--processing-ms=7",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            opts,
            ServeOptions {
                listen: "0.0.0.0:9000".parse().unwrap(),
                max_upload_bytes: 1000,
                delay_ms: 5,
                processing_ms: 7,
                openapi: None
            }
        );
        assert_eq!(
            parse_serve_args(&[]).unwrap().unwrap(),
            ServeOptions::default()
        );
        assert_eq!(parse_serve_args(&args(&["--help"])).unwrap(), None);
    }

    #[test]
    fn rejects_bad_flags_and_values() {
        assert_eq!(
            parse_serve_args(&args(&["--port", "1"])),
            Err("unknown option '--port'".into())
        );
        assert_eq!(
            parse_serve_args(&args(&["--delay-ms"])),
            Err("--delay-ms needs a value".into())
        );
        assert_eq!(
            parse_serve_args(&args(&["--delay-ms", "-1"])),
            Err("invalid value '-1' for --delay-ms: expected a non-negative integer".into())
        );
        assert!(parse_serve_args(&args(&["--listen", "nonsense"])).is_err());
    }
}
