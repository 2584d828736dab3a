#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ukey_fuzz::targets::x509_fields::run(data));
