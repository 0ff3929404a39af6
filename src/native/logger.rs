//! A `log` backend writing to Envoy's log (`envoy_dynamic_module_callback_log`), and a
//! panic hook that says why before the hook's `catch_unwind` lets the request through.

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::abi::{self, level, Buffer};

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    std::panic::set_hook(Box::new(|info| write(level::CRITICAL, &format!("routemeter panicked: {info}"))));
}

fn write(level: u32, message: &str) {
    // SAFETY: our buffer, valid during the call.
    unsafe { abi::envoy_dynamic_module_callback_log(level, Buffer::of(message.as_bytes())) };
}

impl Log for EnvoyLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        let level = match record.level() {
            Level::Trace | Level::Debug => level::DEBUG,
            Level::Info => level::INFO,
            Level::Warn => level::WARN,
            Level::Error => level::ERROR,
        };
        write(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
