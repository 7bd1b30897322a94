//! `provdb ledger verify|policy` and `provdb audit`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, Subcommand};
use provdb::storage::{LedgerPolicy, PolicyScope};
use provdb::{Address, Db};
use serde::Serialize;

use crate::output::{UserError, print_json, print_table};

/// `provdb ledger`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Recompute the hash chain and name the first broken entry (exit 1 when broken); JSON:
    /// entries, ok, head, broken.
    Verify,
    /// Show the fee policy (who owns the model, the protocol's account and share); with
    /// options, change it. Prices are `provdb price`.
    Policy(PolicyArgs),
}

/// `provdb ledger policy`.
#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// The policy of answers by this model (name as in answers, e.g. the GGUF file name).
    #[arg(long, conflicts_with = "for_datanet")]
    for_model: Option<String>,
    /// The policy of answers that read only this Datanet.
    #[arg(long)]
    for_datanet: Option<String>,
    /// The model owner's account: paid the model's price (`provdb price set --model`), less
    /// the protocol's share (the operator when unset).
    #[arg(long)]
    model_owner: Option<Address>,
    /// The protocol's account (the operator when unset).
    #[arg(long)]
    protocol: Option<Address>,
    /// The protocol's share of every price, basis points.
    #[arg(long)]
    protocol_bps: Option<u16>,
}

/// `provdb audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this account's entries.
    #[arg(long)]
    contributor: Option<Address>,
}

pub(crate) fn run(data: &Path, json: bool, command: LedgerCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        LedgerCommand::Verify => verify(&db, json),
        LedgerCommand::Policy(args) => policy(&db, json, args),
    }
}

#[derive(Serialize)]
struct Broken {
    seq: u64,
    reason: String,
}

#[derive(Serialize)]
struct VerifyOutput {
    entries: u64,
    ok: bool,
    head: String,
    broken: Option<Broken>,
}

fn verify(db: &Db, json: bool) -> anyhow::Result<()> {
    let check = db.verify_ledger()?;
    let output = VerifyOutput {
        entries: check.entries,
        ok: check.broken.is_none(),
        head: format!("0x{}", hex::encode(check.head)),
        broken: check
            .broken
            .clone()
            .map(|(seq, reason)| Broken { seq, reason }),
    };
    if json {
        print_json(&output)?;
    } else if output.ok {
        println!(
            "ledger ok: {} entries, head {}",
            output.entries, output.head
        );
    }
    match check.broken {
        Some((seq, reason)) => {
            Err(UserError(format!("ledger broken at entry {seq}: {reason}")).into())
        }
        None => Ok(()),
    }
}

#[derive(Serialize)]
struct PolicyOutput {
    scope: String,
    /// False when nothing is set for this scope (a wider policy applies).
    set: bool,
    model_owner: Option<String>,
    protocol: Option<String>,
    protocol_bps: u16,
}

fn policy(db: &Db, json: bool, args: PolicyArgs) -> anyhow::Result<()> {
    let scope = match (&args.for_model, &args.for_datanet) {
        (Some(model), _) => PolicyScope::Model(model.clone()),
        (None, Some(name)) => PolicyScope::Datanet(db.datanet_info(name)?.id),
        (None, None) => PolicyScope::Default,
    };
    let stored = db.ledger_policy(&scope)?;
    let mut policy: LedgerPolicy = stored.unwrap_or_default();
    let changes =
        args.model_owner.is_some() || args.protocol.is_some() || args.protocol_bps.is_some();
    if let Some(owner) = args.model_owner {
        policy.model_owner = Some(owner);
    }
    if let Some(protocol) = args.protocol {
        policy.protocol = Some(protocol);
    }
    policy.protocol_bps = args.protocol_bps.unwrap_or(policy.protocol_bps);
    if changes {
        db.set_scoped_ledger_policy(&scope, &policy)?;
    }
    let output = PolicyOutput {
        scope: match &scope {
            PolicyScope::Default => "default".into(),
            PolicyScope::Model(name) => format!("model {name}"),
            PolicyScope::Datanet(_) => format!("datanet {}", args.for_datanet.unwrap_or_default()),
        },
        set: changes || stored.is_some(),
        model_owner: policy.model_owner.map(|a| a.to_string()),
        protocol: policy.protocol.map(|a| a.to_string()),
        protocol_bps: policy.protocol_bps,
    };
    if json {
        return print_json(&output);
    }
    if !output.set {
        println!(
            "no policy set for the {}: a wider one applies",
            output.scope
        );
    }
    let show = |a: &Option<String>| a.clone().unwrap_or_else(|| "-".into());
    print_table(
        &["share", "account", "bps"],
        &[
            vec![
                "model owner".into(),
                show(&output.model_owner),
                "its price".into(),
            ],
            vec![
                "protocol".into(),
                show(&output.protocol),
                output.protocol_bps.to_string(),
            ],
        ],
    );
    Ok(())
}

/// One account's payments while the ledger is read.
#[derive(Default)]
struct Tally {
    roles: Vec<&'static str>,
    entries: u64,
    amount: u128,
    answers: Vec<String>,
}

#[derive(Default, Serialize)]
struct AccountTotal {
    account: String,
    roles: Vec<&'static str>,
    entries: u64,
    answers: u64,
    amount_wei: String,
}

#[derive(Serialize)]
struct EntryRow {
    seq: u64,
    answer_id: String,
    role: &'static str,
    datanet_id: Option<u32>,
    record_id: Option<String>,
    chunk_id: Option<u64>,
    weight_ppm: u32,
    amount_wei: String,
}

/// `provdb audit [--contributor ADDR] [--json]`.
pub(crate) fn audit(data: &Path, json: bool, args: AuditArgs) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let only = args.contributor;
    let mut totals: BTreeMap<Address, Tally> = BTreeMap::new();
    let mut rows = Vec::new();
    db.store().visit_ledger(1, &mut |entry| {
        let payment = &entry.payment;
        // Who was paid: credits and charges move prepaid balances (`provdb account show`).
        if !payment.role.is_payout() || only.is_some_and(|a| a != payment.to) {
            return Ok(true);
        }
        let total = totals.entry(payment.to).or_default();
        if !total.roles.contains(&payment.role.as_str()) {
            total.roles.push(payment.role.as_str());
        }
        total.entries += 1;
        // A ledger written by this version cannot overflow here (its total fits a u128); an
        // older one that does is named instead of wrapping.
        total.amount = total
            .amount
            .checked_add(payment.amount_wei)
            .ok_or_else(|| {
                provdb::storage::StorageError::Invalid(format!(
                    "account {} is owed more than 2^128 - 1 wei in the ledger (entry {})",
                    payment.to, entry.seq
                ))
            })?;
        let answer = entry.answer_id.to_string();
        if total.answers.last() != Some(&answer) {
            total.answers.push(answer.clone());
        }
        if only.is_some() {
            rows.push(EntryRow {
                seq: entry.seq,
                answer_id: answer,
                role: payment.role.as_str(),
                datanet_id: payment.datanet_id,
                record_id: payment.record_id.map(|r| r.to_string()),
                chunk_id: payment.chunk_id,
                weight_ppm: payment.weight_ppm,
                amount_wei: payment.amount_wei.to_string(),
            });
        }
        Ok(true)
    })?;
    let mut accounts: Vec<AccountTotal> = totals
        .into_iter()
        .map(|(account, tally)| AccountTotal {
            account: account.to_string(),
            roles: tally.roles,
            entries: tally.entries,
            answers: tally.answers.len() as u64,
            amount_wei: tally.amount.to_string(),
        })
        .collect();
    accounts.sort_by(|a, b| {
        let amount = |t: &AccountTotal| t.amount_wei.parse::<u128>().unwrap_or(0);
        amount(b).cmp(&amount(a)).then(a.account.cmp(&b.account))
    });
    if json {
        #[derive(Serialize)]
        struct Output {
            accounts: Vec<AccountTotal>,
            entries: Vec<EntryRow>,
        }
        return print_json(&Output {
            accounts,
            entries: rows,
        });
    }
    let table: Vec<Vec<String>> = accounts
        .iter()
        .map(|t| {
            vec![
                t.account.clone(),
                t.roles.join(","),
                t.answers.to_string(),
                t.entries.to_string(),
                t.amount_wei.clone(),
            ]
        })
        .collect();
    print_table(
        &["account", "roles", "answers", "entries", "amount_wei"],
        &table,
    );
    if !rows.is_empty() {
        println!();
        let entries: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    r.answer_id[..18].to_string(),
                    r.role.into(),
                    r.record_id
                        .as_deref()
                        .map_or("-".into(), |id| id[..18].to_string()),
                    r.weight_ppm.to_string(),
                    r.amount_wei.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "seq",
                "answer",
                "role",
                "record",
                "weight_ppm",
                "amount_wei",
            ],
            &entries,
        );
    }
    Ok(())
}
