//! Feature codes an agent dials from the phone to change state.
//!
//! | dialled | command |
//! |---|---|
//! | `*20` | log in (ready, or not ready "logged in": agents.toml `ready_on_login`) |
//! | `*21` | ready (logs in if needed; ends wrap-up early) |
//! | `*22` | not ready, reason 0 |
//! | `*22N`, `*22NN`, `*22*N` | not ready with reason code N (0-99, agents.toml `[reasons]`) |
//! | `*23` | log out (after the current call when on one) |
//!
//! A trailing `#` (send key) and spaces are ignored; `%2A`/`%23` (a star or hash
//! percent-encoded in a Request-URI) are read as `*`/`#`.

/// What a feature code asks for; `Input::Command` carries it to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentCommand {
    Login,
    Ready,
    /// `None`: plain `*22` (reason 0, or "not ready").
    NotReady {
        reason_code: Option<u16>,
    },
    Logout,
}

/// The command behind a dialled string, or None when it is not an ACD feature code (the
/// call layer then treats the digits as an ordinary call).
pub fn feature_code(dialled: &str) -> Option<AgentCommand> {
    let s: String = dialled
        .trim()
        .replace("%2A", "*")
        .replace("%2a", "*")
        .replace("%23", "#")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let s = s.strip_suffix('#').unwrap_or(&s);
    let rest = s.strip_prefix('*')?;
    match rest {
        "20" => Some(AgentCommand::Login),
        "21" => Some(AgentCommand::Ready),
        "23" => Some(AgentCommand::Logout),
        _ => {
            let code = rest.strip_prefix("22")?;
            let code = code.strip_prefix('*').unwrap_or(code);
            if code.is_empty() {
                return Some(AgentCommand::NotReady { reason_code: None });
            }
            if code.len() > 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(AgentCommand::NotReady {
                reason_code: Some(code.parse().ok()?),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_codes_parse() {
        assert_eq!(feature_code("*20"), Some(AgentCommand::Login));
        assert_eq!(feature_code("*21"), Some(AgentCommand::Ready));
        assert_eq!(feature_code("*23"), Some(AgentCommand::Logout));
        assert_eq!(
            feature_code("*22"),
            Some(AgentCommand::NotReady { reason_code: None })
        );
        for s in ["*221", "*22*1", "*2201", "*221#", " *22 1 ", "%2A221%23"] {
            assert_eq!(
                feature_code(s),
                Some(AgentCommand::NotReady {
                    reason_code: Some(1)
                }),
                "{s}"
            );
        }
        assert_eq!(
            feature_code("*2212"),
            Some(AgentCommand::NotReady {
                reason_code: Some(12)
            })
        );
        assert_eq!(feature_code("*21#"), Some(AgentCommand::Ready));
    }

    #[test]
    fn other_numbers_are_not_feature_codes() {
        for s in [
            "", "*", "21", "10010", "*24", "*2", "*22123", "*22a", "**21", "*21*", "*22**1",
        ] {
            assert_eq!(feature_code(s), None, "{s:?}");
        }
    }
}
