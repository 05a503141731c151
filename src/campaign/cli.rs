//! `answerline campaign …`: create a campaign, import its numbers, keep the do-not-call
//! list, and see where a campaign stands. Numbers are never printed whole.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::config::{CampaignConfig, Purpose, RetryPolicy, Window};
use super::{import, number};
use crate::caller_id::mask;
use crate::store::Db;

#[derive(clap::Subcommand)]
pub enum CampaignCmd {
    /// Create a campaign.
    Create {
        name: String,
        /// survey or return_visit.
        #[arg(long, default_value = "survey")]
        purpose: String,
        /// The return visit's message id.
        #[arg(long)]
        message: Option<String>,
        /// Daily calling window, China time.
        #[arg(long, default_value = "09:00-20:00")]
        window: String,
        /// New calls per second (0.5: one every two seconds).
        #[arg(long)]
        rate: f64,
        /// Calls in progress at most.
        #[arg(long)]
        concurrent: u32,
        /// The SIP profile of the trunk to dial through.
        #[arg(long)]
        trunk: String,
        /// Attempts per number in all, for no answer, busy and failed alike.
        #[arg(long, default_value_t = 3)]
        max_attempts: u32,
        /// Minutes before a number is tried again.
        #[arg(long, default_value_t = 30)]
        backoff_min: u32,
    },
    /// Add the numbers of a CSV file (number in the first column; a header line allowed).
    Import { name: String, file: PathBuf },
    /// The do-not-call list, shared by all campaigns and checked at dial time.
    Dnc {
        #[command(subcommand)]
        cmd: DncCmd,
    },
    /// Numbers by state, attempts, answered and the mean survey score.
    Status { name: String },
}

#[derive(clap::Subcommand)]
pub enum DncCmd {
    Add {
        number: String,
    },
    /// One number per line (or the first CSV column).
    Import {
        file: PathBuf,
    },
}

pub fn run(data: &Path, cmd: CampaignCmd) -> anyhow::Result<()> {
    let db = Db::open(&data.join("answerline.db"))?;
    match cmd {
        CampaignCmd::Create {
            name,
            purpose,
            message,
            window,
            rate,
            concurrent,
            trunk,
            max_attempts,
            backoff_min,
        } => {
            let cfg = CampaignConfig {
                name,
                purpose: Purpose::parse(&purpose, message.as_deref())
                    .map_err(anyhow::Error::msg)?,
                window: Window::parse(&window).map_err(anyhow::Error::msg)?,
                rate_per_s: rate,
                max_concurrent: concurrent,
                retry: RetryPolicy::uniform(max_attempts, backoff_min),
                trunk,
            };
            db.create_campaign(&cfg)?;
            println!(
                "campaign {} created: {}, window {} China time, {} call(s)/s, at most {} at once, {} attempt(s) {} min apart, trunk {}",
                cfg.name,
                cfg.purpose.kind(),
                cfg.window,
                cfg.rate_per_s,
                cfg.max_concurrent,
                max_attempts,
                backoff_min,
                cfg.trunk
            );
        }
        CampaignCmd::Import { name, file } => {
            let id = campaign_id(&db, &name)?;
            let p = import::parse_csv(&read(&file)?);
            let numbers: Vec<String> = p.numbers.into_iter().map(|(_, n)| n).collect();
            let (imported, already) = db.import_campaign_numbers(id, &numbers)?;
            println!(
                "imported {imported}, duplicates {}, invalid {}",
                p.duplicates + already,
                p.invalid.len()
            );
            for (line, why) in &p.invalid {
                println!("  line {line}: {why}");
            }
        }
        CampaignCmd::Dnc { cmd } => {
            let (numbers, invalid) = match cmd {
                DncCmd::Add { number } => match number::normalise(&number) {
                    Ok(n) => (vec![n], vec![]),
                    Err(why) => bail!("{}: {why}", mask(&number)),
                },
                DncCmd::Import { file } => {
                    let p = import::parse_csv(&read(&file)?);
                    (p.numbers.into_iter().map(|(_, n)| n).collect(), p.invalid)
                }
            };
            let added = db.dnc_add(&numbers, "cli")?;
            println!(
                "do-not-call: {added} added, {} already listed, {} invalid",
                numbers.len() - added,
                invalid.len()
            );
            for (line, why) in &invalid {
                println!("  line {line}: {why}");
            }
        }
        CampaignCmd::Status { name } => {
            let s = db.campaign_status(campaign_id(&db, &name)?)?;
            println!("campaign {name}");
            let total: i64 = s.by_state.iter().map(|(_, n)| n).sum();
            println!("  numbers: {total}");
            for (state, n) in &s.by_state {
                println!("    {state}: {n}");
            }
            println!("  attempts: {}", s.attempts);
            for (state, n) in &s.attempts_by_state {
                println!("    {state}: {n}");
            }
            println!("  answered: {}", s.answered);
            match s.mean_score {
                Some(m) => println!("  mean score: {m:.2}"),
                None => println!("  mean score: -"),
            }
        }
    }
    Ok(())
}

fn campaign_id(db: &Db, name: &str) -> anyhow::Result<i64> {
    match db.campaign(name)? {
        Some((id, _)) => Ok(id),
        None => bail!("no campaign {name:?}; create it with `answerline campaign create`"),
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    String::from_utf8(bytes).with_context(|| {
        format!(
            "{} is not UTF-8; save the list as UTF-8 CSV",
            file.display()
        )
    })
}
