//! IVR: menus declared in TOML, the sans-IO interpreter, and number/money reading.

pub mod interp;
pub mod menu;
pub mod say;
pub mod script;
