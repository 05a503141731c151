#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| answerline::fuzzing::api_json(data));
