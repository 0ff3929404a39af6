//! A `log` backend writing to Envoy's log through our non-panicking `proxy_log` wrapper
//! (the SDK's logger panics if the host returns an unexpected status).

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::imports;
use crate::abi::LogLevel as EnvoyLevel;

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    // A panic aborts (traps) the VM; say why first, so Envoy's log and the test harness show it.
    std::panic::set_hook(Box::new(|info| imports::log(EnvoyLevel::Critical, &format!("routemeter panicked: {info}"))));
}

impl Log for EnvoyLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        let level = match record.level() {
            Level::Trace => EnvoyLevel::Trace,
            Level::Debug => EnvoyLevel::Debug,
            Level::Info => EnvoyLevel::Info,
            Level::Warn => EnvoyLevel::Warn,
            Level::Error => EnvoyLevel::Error,
        };
        imports::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
