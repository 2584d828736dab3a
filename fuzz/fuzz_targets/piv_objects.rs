#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ukey_fuzz::targets::piv_objects::run(data));
