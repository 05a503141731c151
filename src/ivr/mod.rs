//! IVR: menus declared in TOML, the sans-IO interpreter, and number/money reading.

pub mod interp;
pub mod menu;
pub mod say;
pub mod script;

pub use interp::{
    mask_digit_runs, BillingReply, BillingRequest, Heard, Ivr, IvrAction, IvrInput, IvrStart, STEPS,
};
pub use menu::{all_prompt_names, check_prompts, MenuError, MenuSet};
