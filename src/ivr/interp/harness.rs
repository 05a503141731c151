//! A call driving the interpreter alone: virtual time, hand-made billing and speech answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ivr::{BillingReply, Ivr, IvrAction, IvrInput, IvrStart, MenuSet};

pub const MENUS: &str = include_str!("../../../prompts/menus.toml");

pub struct TestCall {
    pub ivr: Ivr,
    pub now: Instant,
}

impl TestCall {
    /// In the main menu: welcome heard out, then silence; returns the menu's greeting actions.
    pub fn at_main(caller: Option<&str>, speech: bool) -> (TestCall, Vec<IvrAction>) {
        let menus = Arc::new(MenuSet::from_toml_str("menus.toml", MENUS).unwrap());
        let start = IvrStart {
            caller: caller.map(String::from),
            speech,
            ..IvrStart::default()
        };
        let mut c = TestCall {
            ivr: Ivr::new(menus, start),
            now: Instant::now(),
        };
        c.ivr.start(c.now);
        c.take();
        c.input(IvrInput::PlaybackDone);
        let greeting = c.wait(1.5);
        (c, greeting)
    }

    pub fn take(&mut self) -> Vec<IvrAction> {
        std::iter::from_fn(|| self.ivr.poll_action()).collect()
    }

    pub fn input(&mut self, i: IvrInput) -> Vec<IvrAction> {
        self.ivr.handle_input(self.now, i);
        self.take()
    }

    pub fn keys(&mut self, ds: &str) -> Vec<IvrAction> {
        for d in ds.chars() {
            self.ivr.handle_input(self.now, IvrInput::Digit(d));
        }
        self.take()
    }

    pub fn done(&mut self) -> Vec<IvrAction> {
        self.input(IvrInput::PlaybackDone)
    }

    pub fn reply(&mut self, r: BillingReply) -> Vec<IvrAction> {
        self.input(IvrInput::Billing(r))
    }

    /// Moves virtual time forward and fires a due timer, as the shell would.
    pub fn wait(&mut self, secs: f64) -> Vec<IvrAction> {
        self.now += Duration::from_secs_f64(secs);
        if self.ivr.poll_timeout().is_some_and(|t| t <= self.now) {
            self.ivr.handle_timeout(self.now);
        }
        self.take()
    }
}

/// The prompt names played by these actions, in order.
pub fn names(actions: &[IvrAction]) -> Vec<String> {
    actions
        .iter()
        .flat_map(|a| match a {
            IvrAction::Play { prompts, .. } => prompts.clone(),
            _ => Vec::new(),
        })
        .collect()
}
