//! `deposit` and `fund`: paying into the distributor from a key of one's own. A deposit
//! prepays answers for the account it names (credited by the operator's next `sync`); funding
//! backs credits provdb granted off chain and credits no account.
//!
//! Invariants: each payment is sent exactly once ([`Client::send_once`](crate::client::Client):
//! signed before it is broadcast, retried as the same bytes), so a lost answer from the node
//! never pays twice; in ERC-20 mode the distributor is approved for exactly the amount first
//! (only when its allowance is short), and the amount counted is what the contract received.
//! Nothing here writes to the database: deposits are credited by `sync` only, after their
//! confirmations.

use std::path::Path;

use alloy::primitives::{Address as EvmAddress, U256};
use alloy::providers::DynProvider;
use alloy::rpc::types::TransactionReceipt;
use provdb_storage::Address;
use serde::Serialize;

use super::deploying::{Deployment, parse_address};
use crate::bindings::{AttributionDistributor, Erc20};
use crate::client::{RetryPolicy, classify};
use crate::error::{ChainError, Result};

/// What `deposit` sent.
#[derive(Clone, Debug, Serialize)]
pub struct DepositReport {
    /// The contract's id of the deposit (provdb credits it once by this id).
    pub deposit_id: u64,
    /// The account it credits.
    pub account: String,
    /// Who paid it (the key's account).
    pub from: String,
    /// What the contract received, in wei or the token's smallest unit (decimal).
    pub amount_wei: String,
    /// "ETH" or the token's address.
    pub asset: String,
    /// The approval sent first (ERC-20 mode, when the allowance was short).
    pub approve_tx: Option<String>,
    /// The deposit's transaction.
    pub tx: String,
    /// Its block.
    pub block: Option<u64>,
    /// Gas it used.
    pub gas_used: u64,
}

/// What `fund` sent.
#[derive(Clone, Debug, Serialize)]
pub struct FundReport {
    /// Who paid (the key's account).
    pub from: String,
    /// What the contract received (decimal).
    pub amount_wei: String,
    /// "ETH" or the token's address.
    pub asset: String,
    /// The approval sent first (ERC-20 mode, when the allowance was short).
    pub approve_tx: Option<String>,
    /// The transaction.
    pub tx: String,
    /// Gas it used.
    pub gas_used: u64,
    /// Everything paid in on chain afterwards (decimal).
    pub total_deposited_wei: String,
}

impl Deployment {
    /// The ERC-20 the distributor takes, or None for ETH.
    fn token(&self) -> Result<Option<Erc20::Erc20Instance<DynProvider>>> {
        self.state
            .token
            .as_deref()
            .map(|text| {
                let address = parse_address(text, "token")?;
                Ok(Erc20::new(address, self.client.provider.clone()))
            })
            .transpose()
    }

    fn asset(&self) -> String {
        self.state.token.clone().unwrap_or_else(|| "ETH".into())
    }

    /// Approves the distributor for `amount` of `token` unless its allowance already covers
    /// it; the approval's transaction when one was sent.
    async fn approve(
        &self,
        token: &Erc20::Erc20Instance<DynProvider>,
        amount: U256,
    ) -> Result<Option<String>> {
        let owner = self.client.sender()?;
        let spender = *self.distributor().address();
        let allowance = self
            .client
            .run("read allowance", || async {
                token
                    .allowance(owner, spender)
                    .call()
                    .await
                    .map_err(|e| classify("allowance", e))
            })
            .await?;
        if allowance >= amount {
            return Ok(None);
        }
        let receipt = self
            .client
            .send_once("approve the distributor", token.approve(spender, amount))
            .await?;
        Ok(Some(format!("{}", receipt.transaction_hash)))
    }
}

fn positive(amount_wei: u128) -> Result<U256> {
    if amount_wei == 0 {
        return Err(ChainError::Invalid("the amount must be above 0 wei".into()));
    }
    Ok(U256::from(amount_wei))
}

/// Deposits `amount_wei` (ETH, or the token the distributor was deployed with) from `key`'s
/// account for `account`, which the operator's next sync credits.
pub async fn deposit(
    data_dir: &Path,
    account: Address,
    amount_wei: u128,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<DepositReport> {
    let amount = positive(amount_wei)?;
    if account == Address([0; 20]) {
        return Err(ChainError::Invalid(
            "a deposit must credit an account, not the zero address".into(),
        ));
    }
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let from = d.client.sender()?;
    let beneficiary = EvmAddress::from(account.0);
    let operation = format!("deposit for {account}");
    let (approve_tx, receipt) = match d.token()? {
        Some(token) => {
            let approve_tx = d.approve(&token, amount).await?;
            let call = d.distributor().depositToken(beneficiary, amount);
            (approve_tx, d.client.send_once(&operation, call).await?)
        }
        None => {
            let call = d.distributor().deposit(beneficiary).value(amount);
            (None, d.client.send_once(&operation, call).await?)
        }
    };
    let event = deposited(&receipt, &operation)?;
    Ok(DepositReport {
        deposit_id: u64::try_from(event.depositId).map_err(|_| {
            ChainError::Invalid(format!("deposit id {} is 2^64 or more", event.depositId))
        })?,
        account: account.to_string(),
        from: format!("{from}"),
        amount_wei: event.amount.to_string(),
        asset: d.asset(),
        approve_tx,
        tx: format!("{}", receipt.transaction_hash),
        block: receipt.block_number,
        gas_used: receipt.gas_used,
    })
}

/// The `Deposited` event of a deposit's receipt.
fn deposited(
    receipt: &TransactionReceipt,
    operation: &str,
) -> Result<AttributionDistributor::Deposited> {
    receipt
        .decoded_log::<AttributionDistributor::Deposited>()
        .map(|log| log.data)
        .ok_or_else(|| ChainError::Reverted {
            operation: operation.to_string(),
            reason: format!(
                "transaction {} succeeded without a Deposited event",
                receipt.transaction_hash
            ),
        })
}

/// Pays `amount_wei` into the distributor from `key`'s account without crediting any account:
/// the on-chain backing of credits granted off chain.
pub async fn fund(
    data_dir: &Path,
    amount_wei: u128,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<FundReport> {
    let amount = positive(amount_wei)?;
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let from = d.client.sender()?;
    let operation = "fund the distributor";
    let (approve_tx, receipt) = match d.token()? {
        Some(token) => {
            let approve_tx = d.approve(&token, amount).await?;
            let call = d.distributor().fundToken(amount);
            (approve_tx, d.client.send_once(operation, call).await?)
        }
        None => {
            let call = d.distributor().fund().value(amount);
            (None, d.client.send_once(operation, call).await?)
        }
    };
    let received = receipt
        .decoded_log::<AttributionDistributor::Funded>()
        .map_or(amount, |log| log.data.amount);
    let total = d.total_deposited().await?;
    Ok(FundReport {
        from: format!("{from}"),
        amount_wei: received.to_string(),
        asset: d.asset(),
        approve_tx,
        tx: format!("{}", receipt.transaction_hash),
        gas_used: receipt.gas_used,
        total_deposited_wei: total.to_string(),
    })
}
