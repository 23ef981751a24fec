//! libFuzzer: the spec loader never panics or hangs, and every rejection is a diagnostic with a
//! message and a valid position (generator/tests/fuzz_properties). Bytes are read as the CLI
//! reads a file: as UTF-8, lossily here (the loader takes text).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_properties/mod.rs"]
mod fuzz_properties;

fuzz_target!(|data: &[u8]| {
    static SCHEMA: OnceLock<rowsec_generator::Schema> = OnceLock::new();
    let schema = SCHEMA.get_or_init(fuzz_properties::schema);
    let source = String::from_utf8_lossy(data);
    if let Err(why) = fuzz_properties::check_spec(&source, schema) {
        panic!("{why}");
    }
});
