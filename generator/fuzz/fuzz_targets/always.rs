//! libFuzzer: the `always` checker never panics or hangs, gives every problem a message, and
//! inside a spec every rejection points into the file (generator/tests/fuzz_properties).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rowsec_generator::schema::ColumnType;

#[path = "../../tests/fuzz_properties/mod.rs"]
mod fuzz_properties;

fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<(Vec<(String, ColumnType)>, rowsec_generator::Schema)> = OnceLock::new();
    let (columns, schema) = FIXTURE.get_or_init(|| (fuzz_properties::invoice_columns(), fuzz_properties::schema()));
    let expr = String::from_utf8_lossy(data);
    if let Err(why) = fuzz_properties::check_always(&expr, columns, schema) {
        panic!("{why}");
    }
});
