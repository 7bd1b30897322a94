//! `provdb bench chain`: gas of one epoch commit and of one claim, on a fresh anvil started for
//! the run, against Uniswap's MerkleDistributor (about 78,000–92,000 gas per claim; target
//! at most 80,000), for epochs of several sizes (an epoch is one transaction whatever its
//! number of accounts).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use provdb::storage::{AnswerId, AnswerRecord, CreditSource, NewAnswer, NewEntry, Role, keccak256};
use provdb::{Address, Db};
use provdb_chain::RetryPolicy;
use serde::Serialize;

use crate::output::print_json;

/// The options of `provdb-bench chain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Accounts in the epoch (the claim's proof has about log2 of this many nodes).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: u64,
    /// The anvil binary (default: from scripts/chain-tools.sh, run from the repository).
    #[arg(long, env = "PROVDB_ANVIL")]
    pub(crate) anvil: Option<PathBuf>,
    /// Print JSON: epoch_commit_gas, claim_gas, ...
    #[arg(long)]
    pub(crate) json: bool,
}

/// The MerkleDistributor anchor, gas per claim.
const ANCHOR_CLAIM_GAS: (u64, u64) = (78_000, 92_000);
/// The target, gas per claim.
const TARGET_CLAIM_GAS: u64 = 80_000;

#[derive(Serialize)]
struct Report {
    accounts: u64,
    epoch_commit_gas: u64,
    claim_gas: u64,
    claim_new_account_gas: Option<u64>,
    claim_proof_length: usize,
    anchor_claim_gas_min: u64,
    anchor_claim_gas_max: u64,
    target_claim_gas: u64,
    claim_ratio_vs_anchor_min: f64,
}

struct Anvil(Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn anvil_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.anvil {
        return Ok(path.clone());
    }
    let out = Command::new("bash")
        .args(["scripts/chain-tools.sh", "path", "anvil"])
        .output()
        .context("running scripts/chain-tools.sh (run from the repository, or pass --anvil)")?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/chain-tools.sh path anvil failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The `i`th synthetic account of the epoch (never an account with ETH).
fn synthetic(i: u64) -> [u8; 20] {
    let mut account = [0u8; 20];
    account[..8].copy_from_slice(&(i + 1).to_be_bytes());
    account[19] = 0x01;
    account
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = temp.path().join("anvil.json");
    let _anvil = Anvil(
        Command::new(anvil_binary(&args)?)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .arg("--config-out")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting anvil")?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (keys, existing): (Vec<String>, Vec<String>) = loop {
        let parsed = fs_err::read(&config)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(v) = parsed
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            let strings = |field: &str| -> Vec<String> {
                v[field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            break (strings("private_keys"), strings("available_accounts"));
        }
        anyhow::ensure!(Instant::now() < deadline, "anvil did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    anyhow::ensure!(
        keys.len() >= 3 && existing.len() >= 3,
        "anvil printed no keys"
    );
    // Account 0 of the epoch is a funded anvil account (it exists on chain), account 1 a fresh
    // one: paying a fresh account costs 25,000 gas more (EIP-150's new-account charge).
    let funded: Address = existing[2]
        .parse()
        .map_err(|e| anyhow::anyhow!("anvil account: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");

    let data = temp.path().join("db");
    let db = Db::init(&data)?;
    let payer = Address([0xfa; 20]);
    let funds = CreditSource::Admin {
        by: None,
        reason: "bench funds".into(),
    };
    db.store().credit(payer, u128::MAX, funds, 0)?;
    let accounts = args.accounts.max(1);
    let answers: Vec<NewAnswer> = (0..accounts)
        .map(|i| {
            let account = if i == 0 { funded.0 } else { synthetic(i) };
            NewAnswer {
                record: AnswerRecord {
                    answer_id: AnswerId(keccak256(&i.to_be_bytes())),
                    ts_ms: 0,
                    caller: Some(payer),
                    datanet_ids: vec![],
                    question: String::new(),
                    text: String::new(),
                    model: "bench".into(),
                    adapter: None,
                    fee_wei: 1_000 + u128::from(i),
                    attribution: "cited".into(),
                    training_attribution: None,
                    citations: vec![],
                    first_seq: 0,
                    entries: 0,
                },
                entries: vec![NewEntry {
                    datanet_id: None,
                    record_id: None,
                    chunk_id: None,
                    to: Address(account),
                    role: Role::Contributor,
                    weight_ppm: 1_000_000,
                    amount_wei: 1_000 + u128::from(i),
                }],
            }
        })
        .collect();
    db.store().append_answers(answers)?;
    db.close_epoch()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let retry = RetryPolicy::default();
    rt.block_on(provdb_chain::deploy(
        &data, &url, &keys[0], None, false, retry,
    ))?;
    // The answers were paid from an off-chain credit: the operator backs their total on chain
    // (posting an epoch brings no money in).
    let total: u128 = (0..accounts).map(|i| 1_000 + u128::from(i)).sum();
    rt.block_on(provdb_chain::fund(&data, total, &keys[0], None, retry))?;
    let synced = rt.block_on(provdb_chain::sync(
        db.store(),
        &data,
        &keys[0],
        None,
        retry,
        &[],
        1,
    ))?;
    let epoch_commit_gas = synced
        .epochs_posted
        .first()
        .map(|e| e.gas_used)
        .context("sync posted no epoch")?;
    let claim = rt.block_on(provdb_chain::claim(
        db.store(),
        &data,
        funded,
        &keys[1],
        None,
        retry,
    ))?;
    let claim_new_account_gas = if accounts > 1 {
        let fresh = rt.block_on(provdb_chain::claim(
            db.store(),
            &data,
            Address(synthetic(1)),
            &keys[1],
            None,
            retry,
        ))?;
        Some(fresh.gas_used)
    } else {
        None
    };
    let report = Report {
        accounts,
        epoch_commit_gas,
        claim_gas: claim.gas_used,
        claim_new_account_gas,
        claim_proof_length: claim.proof.len(),
        anchor_claim_gas_min: ANCHOR_CLAIM_GAS.0,
        anchor_claim_gas_max: ANCHOR_CLAIM_GAS.1,
        target_claim_gas: TARGET_CLAIM_GAS,
        claim_ratio_vs_anchor_min: claim.gas_used as f64 / ANCHOR_CLAIM_GAS.0 as f64,
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "epoch commit ({} accounts): {} gas, one transaction\nclaim (proof of {} nodes): {} gas to an existing account, {} to a fresh one (target <= {}); MerkleDistributor {}-{} gas; ratio {:.2}",
        report.accounts,
        report.epoch_commit_gas,
        report.claim_proof_length,
        report.claim_gas,
        report
            .claim_new_account_gas
            .map_or("-".to_string(), |g| g.to_string()),
        report.target_claim_gas,
        report.anchor_claim_gas_min,
        report.anchor_claim_gas_max,
        report.claim_ratio_vs_anchor_min
    );
    Ok(())
}
