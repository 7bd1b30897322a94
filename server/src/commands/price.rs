//! `provdb price list|set`: the prices owners set. Without `--as` the CLI acts as the local
//! operator (an admin); with `--as ADDRESS` it acts as that address and meets the same rules
//! as the HTTP API (a Datanet's price by its owner, a model's by an admin).

use std::path::Path;

use clap::{Args, Subcommand};
use provdb::{Caller, Db, PriceScope};

use crate::cli::options::CallerArgs;
use crate::commands::ask::parse_wei;
use crate::output::{UserError, print_json, print_table};
use crate::views::PriceView;

/// `provdb price`.
#[derive(Debug, Subcommand)]
pub(crate) enum PriceCommand {
    /// Every price set (anything unset is free), or those `--as` ADDRESS may see; JSON: a
    /// list of prices.
    List {
        #[command(flatten)]
        caller: CallerArgs,
    },
    /// Set the price of a Datanet (its owner), a model (an admin) or an adapter (its owner).
    Set(SetArgs),
}

/// `provdb price set`.
#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// The Datanet to price.
    #[arg(long, conflicts_with_all = ["model", "adapter"], required_unless_present_any = ["model", "adapter"])]
    datanet: Option<String>,
    /// The model to price (its name in answers, e.g. the GGUF file name).
    #[arg(long, conflicts_with = "adapter")]
    model: Option<String>,
    /// The adapter to price (an id or a unique prefix).
    #[arg(long)]
    adapter: Option<String>,
    /// Wei per answer.
    #[arg(long, default_value_t = 0, value_name = "WEI", value_parser = parse_wei)]
    per_answer: u128,
    /// Wei per 1,000 generated tokens (models only).
    #[arg(long = "per-1k-tokens", default_value_t = 0, value_name = "WEI", value_parser = parse_wei)]
    per_1k_tokens: u128,
    #[command(flatten)]
    caller: CallerArgs,
}

/// The caller a money command acts as: `--as ADDRESS`, else the local operator as admin.
pub(crate) fn acting(db: &Db, caller: &CallerArgs) -> anyhow::Result<Caller> {
    Ok(match caller.as_address {
        Some(address) => Caller::address(address),
        None => Caller::admin(db.operator()?),
    })
}

pub(crate) fn run(data: &Path, json: bool, command: PriceCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        PriceCommand::List { caller } => {
            let views = db
                .prices_for(&acting(&db, &caller)?)?
                .iter()
                .map(|p| PriceView::new(&db, p))
                .collect::<provdb::Result<Vec<_>>>()?;
            print_views(json, &views)
        }
        PriceCommand::Set(args) => {
            let caller = acting(&db, &args.caller)?;
            let scope = match (&args.datanet, &args.model, &args.adapter) {
                (Some(name), _, _) => PriceScope::Datanet(db.datanet_info(name)?.id),
                (_, Some(model), _) => PriceScope::Model(model.clone()),
                (_, _, Some(adapter)) => PriceScope::Adapter(db.adapter_id_for(&caller, adapter)?),
                _ => return Err(UserError("name --datanet, --model or --adapter".into()).into()),
            };
            let price = db.set_price(&caller, scope, args.per_answer, args.per_1k_tokens)?;
            print_views(json, &[PriceView::new(&db, &price)?])
        }
    }
}

fn print_views(json: bool, views: &[PriceView]) -> anyhow::Result<()> {
    if json {
        return print_json(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.kind.to_string(),
                v.name.clone(),
                v.per_answer_wei.clone(),
                v.per_1k_tokens_wei.clone(),
                v.set_by.clone().unwrap_or_else(|| "operator".into()),
                v.sequence.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "kind",
            "name",
            "per_answer_wei",
            "per_1k_tokens_wei",
            "set_by",
            "sequence",
        ],
        &rows,
    );
    Ok(())
}
