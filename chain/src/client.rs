//! Connecting to an EVM JSON-RPC endpoint, and running one step against it with retries.
//!
//! A step is the unit that is retried: it reads the contract's state first and acts only on
//! what is still to do, so running it again after a timeout, a dropped connection or a crash
//! between sending and the receipt neither skips nor doubles anything. Transport failures and
//! timeouts are retried with exponential backoff; a contract's refusal (a revert, decoded to
//! its named custom error) is not.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::{Ethereum, EthereumWallet};
use alloy::primitives::Address as EvmAddress;
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportError};

use crate::bindings::{AttributionDistributor, ProvenanceRegistry};
use crate::error::{ChainError, Result};

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per step (at least 1).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// The longest one attempt may take (RPC calls and waiting for a receipt).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a step failed: worth another attempt, or not.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The endpoint failed or was too slow: try again.
    Transient(String),
    /// Retrying cannot help.
    Fatal(ChainError),
}

impl From<ChainError> for StepError {
    fn from(e: ChainError) -> Self {
        Self::Fatal(e)
    }
}

impl From<provdb_storage::StorageError> for StepError {
    fn from(e: provdb_storage::StorageError) -> Self {
        Self::Fatal(e.into())
    }
}

fn transport_is_transient(e: &TransportError) -> bool {
    match e {
        RpcError::Transport(_) | RpcError::NullResp => true,
        RpcError::ErrorResp(payload) => payload.is_retry_err(),
        _ => false,
    }
}

/// Turns an alloy contract error from `operation` into a [`StepError`], decoding a revert
/// into the contract's named custom error.
/// An error with its causes (`top: cause: root cause`), so that what went wrong deep in the
/// transport (a refused connection, an untrusted certificate) reaches the user.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(crate) fn classify(operation: &str, e: alloy::contract::Error) -> StepError {
    use alloy::contract::Error as E;
    if let Some(decoded) =
        e.as_decoded_interface_error::<AttributionDistributor::AttributionDistributorErrors>()
    {
        return reverted(operation, format!("{decoded:?}"));
    }
    if let Some(decoded) =
        e.as_decoded_interface_error::<ProvenanceRegistry::ProvenanceRegistryErrors>()
    {
        return reverted(operation, format!("{decoded:?}"));
    }
    match &e {
        E::TransportError(t) if transport_is_transient(t) => StepError::Transient(with_causes(&e)),
        E::PendingTransactionError(_) => StepError::Transient(with_causes(&e)),
        E::TransportError(RpcError::ErrorResp(payload)) => {
            reverted(operation, payload.message.to_string())
        }
        _ => StepError::Transient(with_causes(&e)),
    }
}

fn reverted(operation: &str, reason: String) -> StepError {
    // Debug of a decoded error reads `Name(Name { .. })`: keep the inner part.
    let reason = match reason.split_once('(') {
        Some((_, inner)) if inner.ends_with(')') => inner[..inner.len() - 1].to_string(),
        _ => reason,
    };
    StepError::Fatal(ChainError::Reverted {
        operation: operation.to_string(),
        reason,
    })
}

/// Turns a provider (non-contract) RPC error into a [`StepError`].
pub(crate) fn classify_rpc(e: TransportError) -> StepError {
    if transport_is_transient(&e) {
        StepError::Transient(with_causes(&e))
    } else {
        StepError::Fatal(ChainError::Invalid(format!(
            "the RPC endpoint refused: {}",
            with_causes(&e)
        )))
    }
}

/// Sends `call`, waits for its receipt and checks that the transaction succeeded.
pub(crate) async fn send_and_confirm<D: CallDecoder>(
    operation: &str,
    call: CallBuilder<&DynProvider, D>,
) -> Result<TransactionReceipt, StepError> {
    let pending = call.send().await.map_err(|e| classify(operation, e))?;
    confirm(operation, pending).await
}

/// Waits for a sent transaction's receipt and checks that it succeeded.
pub(crate) async fn confirm(
    operation: &str,
    pending: PendingTransactionBuilder<Ethereum>,
) -> Result<TransactionReceipt, StepError> {
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|e| StepError::Transient(e.to_string()))?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(StepError::Fatal(ChainError::Reverted {
            operation: operation.to_string(),
            reason: format!("transaction {} reverted on chain", receipt.transaction_hash),
        }))
    }
}

/// A connection to one endpoint, with the signer when one was given.
pub(crate) struct Client {
    pub(crate) url: String,
    pub(crate) provider: DynProvider,
    pub(crate) sender: Option<EvmAddress>,
    pub(crate) retry: RetryPolicy,
}

/// Parses a 32-byte private key in hex (with or without 0x).
pub(crate) fn parse_key(key: &str) -> Result<PrivateKeySigner> {
    PrivateKeySigner::from_str(key.trim())
        .map_err(|_| ChainError::Invalid("invalid private key: expected 32 bytes in hex".into()))
}

impl Client {
    /// Connects to `url`, signing with `key` when given. Nothing is sent yet.
    pub(crate) fn connect(url: &str, key: Option<&str>, retry: RetryPolicy) -> Result<Self> {
        let parsed = url
            .parse()
            .map_err(|e| ChainError::Invalid(format!("invalid RPC URL '{url}': {e}")))?;
        let (provider, sender) = match key {
            Some(key) => {
                let signer = parse_key(key)?;
                let sender = signer.address();
                // The nonce is read from the node for every transaction (not cached): a
                // transaction lost with a node that restarted is then sent again with its
                // nonce instead of leaving a gap that stalls every later one.
                let provider = ProviderBuilder::default()
                    .with_gas_estimation()
                    .with_simple_nonce_management()
                    .fetch_chain_id()
                    .wallet(EthereumWallet::from(signer))
                    .connect_http(parsed)
                    .erased();
                (provider, Some(sender))
            }
            None => (ProviderBuilder::new().connect_http(parsed).erased(), None),
        };
        Ok(Self {
            url: url.to_string(),
            provider,
            sender,
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
        })
    }

    /// Runs `step` until it succeeds, fails for good, or has failed `attempts` times
    /// (transient failures and attempts slower than `attempt_timeout`), waiting with
    /// exponential backoff in between.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &str, mut step: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, StepError>>,
    {
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            match tokio::time::timeout(self.retry.attempt_timeout, step()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(StepError::Fatal(e))) => return Err(e),
                Ok(Err(StepError::Transient(message))) => last = message,
                Err(_) => {
                    last = format!(
                        "no answer within {} s",
                        self.retry.attempt_timeout.as_secs_f64()
                    )
                }
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
        }
        Err(ChainError::Rpc {
            url: self.url.clone(),
            operation: operation.to_string(),
            attempts: self.retry.attempts,
            message: last,
        })
    }

    /// The signer's address ([`ChainError::Invalid`] without a key).
    pub(crate) fn sender(&self) -> Result<EvmAddress> {
        self.sender.ok_or_else(|| {
            ChainError::Invalid(
                "this command needs a private key (--key-file PATH or PROVDB_CHAIN_KEY)".into(),
            )
        })
    }

    /// The chain id (retried).
    pub(crate) async fn chain_id(&self) -> Result<u64> {
        self.run("eth_chainId", || async {
            self.provider.get_chain_id().await.map_err(classify_rpc)
        })
        .await
    }
}
