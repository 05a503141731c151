//! Prompt scripts: `prompts/<lang>/script.toml`, a flat table `name = "text to speak"`.
//! The interpreter only needs the names; the texts feed the TTS generator and tests.

use std::collections::BTreeMap;

pub type Script = BTreeMap<String, String>;

pub fn parse_script(text: &str) -> Result<Script, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::{parse_script, Script};
    use std::sync::OnceLock;

    pub fn zh() -> &'static Script {
        static S: OnceLock<Script> = OnceLock::new();
        S.get_or_init(|| {
            parse_script(include_str!("../../prompts/zh/script.toml")).expect("zh script parses")
        })
    }

    pub fn en() -> &'static Script {
        static S: OnceLock<Script> = OnceLock::new();
        S.get_or_init(|| {
            parse_script(include_str!("../../prompts/en/script.toml")).expect("en script parses")
        })
    }
}
