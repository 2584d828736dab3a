#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ukey_fuzz::targets::command_apdu::run(data));
