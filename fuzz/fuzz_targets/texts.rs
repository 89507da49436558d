//! Every small language ferry reads from people: durations, freeze windows, configuration
//! keys, `KEY=VALUE`, env files and `{{ KEY }}` templates, which must render whenever they
//! pass the check.
#![no_main]

use std::collections::BTreeMap;

use ferry_domain::config::{
    check_template, parse_assignment, parse_env_file, render_template, ConfigKey,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ferry_domain::duration::parse_duration(text);
    let _ = ferry_domain::freeze::FreezeWindow::parse(text);
    let _ = ConfigKey::parse(text);
    let _ = parse_assignment(text);
    let _ = parse_env_file(text);
    if check_template("fuzzed", text).is_ok() {
        let values: BTreeMap<ConfigKey, String> = BTreeMap::new();
        let _ = render_template("fuzzed", text, &values);
    }
});
