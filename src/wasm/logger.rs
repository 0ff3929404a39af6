//! A `log` backend writing to Envoy's log through our non-panicking `proxy_log` wrapper
//! (the SDK's logger panics if the host returns an unexpected status).

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::abi;

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

/// proxy-wasm's `critical` log level.
const CRITICAL: u32 = 5;

pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    // A panic aborts (traps) the VM; say why first, so Envoy's log and the test harness show it.
    std::panic::set_hook(Box::new(|info| abi::log(CRITICAL, &format!("routemeter panicked: {info}"))));
}

impl Log for EnvoyLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        // proxy-wasm levels: trace 0, debug 1, info 2, warn 3, error 4.
        let level = match record.level() {
            Level::Trace => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        };
        abi::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
