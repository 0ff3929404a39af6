//! Any bytes as plugin configuration: never a panic; an accepted configuration builds a
//! plugin, and a rejected one names a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routemeter::config::Config;
use routemeter::plugin::Plugin;
use routemeter::shared::Keys;

fuzz_target!(|data: &[u8]| {
    match Config::from_json(data) {
        Ok(config) => {
            let _ = Plugin::new(config, &Keys::for_plugin(""));
        }
        Err(e) => assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}"),
    }
});
