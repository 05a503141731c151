#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| answerline::fuzzing::rfc4733(data));
