//! Connecting to an EVM JSON-RPC endpoint, and running one step against it with retries.
//!
//! A step is the unit that is retried: it reads the contract's state first and acts only on
//! what is still to do, so running it again after a timeout, a dropped connection or a crash
//! between sending and the receipt neither skips nor doubles anything. Transport failures and
//! timeouts are retried with exponential backoff; a contract's refusal (a revert, decoded to
//! its named custom error) is not.
//!
//! A transaction whose effect cannot be read back first (a deposit, a funding: a second one
//! would pay twice) goes through [`Client::send_once`] instead: it is signed here, so its hash is
//! known before it is broadcast, and every retry broadcasts the same signed bytes and waits for
//! that hash. One nonce can be mined once, so it is paid at most once whatever the node loses.

use std::future::Future;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::eip2718::Encodable2718;
use alloy::network::{
    Ethereum, EthereumWallet, Network, NetworkTransactionBuilder, TransactionBuilder,
};
use alloy::primitives::{Address as EvmAddress, TxHash};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportError};

use crate::bindings::{AttributionDistributor, Erc20, Erc3009, ProvenanceRegistry};
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
    if let Some(decoded) = e.as_decoded_interface_error::<Erc20::Erc20Errors>() {
        return reverted(operation, format!("{decoded:?}"));
    }
    if let Some(decoded) = e.as_decoded_interface_error::<Erc3009::Erc3009Errors>() {
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
    checked(operation, receipt)
}

/// A connection to one endpoint, with the signer when one was given.
pub(crate) struct Client {
    pub(crate) url: String,
    pub(crate) provider: DynProvider,
    pub(crate) sender: Option<EvmAddress>,
    /// The signer again, for [`Client::send_once`], which signs by itself.
    wallet: Option<EthereumWallet>,
    pub(crate) retry: RetryPolicy,
}

/// A signed transaction: its hash and the bytes broadcast.
type Signed = (TxHash, Vec<u8>);

/// Whether a node's refusal of a raw transaction says it has it already (pending, or mined:
/// its nonce is used), so that waiting for its receipt is what is left to do.
fn already_sent(e: &TransportError) -> bool {
    let text = with_causes(e).to_ascii_lowercase();
    [
        "already known",
        "already imported",
        "known transaction",
        "nonce too low",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Parses a 32-byte private key in hex (with or without 0x).
/// The address of the account `key` (0x-hex private key) signs for.
pub fn key_address(key: &str) -> Result<provdb_storage::Address> {
    Ok(provdb_storage::Address(
        parse_key(key)?.address().into_array(),
    ))
}

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
        let (provider, sender, wallet) = match key {
            Some(key) => {
                let signer = parse_key(key)?;
                let sender = signer.address();
                let wallet = EthereumWallet::from(signer);
                // The nonce is read from the node for every transaction (not cached): a
                // transaction lost with a node that restarted is then sent again with its
                // nonce instead of leaving a gap that stalls every later one.
                let provider = ProviderBuilder::default()
                    .with_gas_estimation()
                    .with_simple_nonce_management()
                    .fetch_chain_id()
                    .wallet(wallet.clone())
                    .connect_http(parsed)
                    .erased();
                (provider, Some(sender), Some(wallet))
            }
            None => (
                ProviderBuilder::new().connect_http(parsed).erased(),
                None,
                None,
            ),
        };
        Ok(Self {
            url: url.to_string(),
            provider,
            sender,
            wallet,
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

    /// Sends `call` exactly once and waits for its receipt (see the module docs): signed here,
    /// then broadcast, and on every retry broadcast again as the same bytes and waited for by
    /// its hash. A transaction the node refuses (a revert while estimating gas, decoded to the
    /// contract's named error) fails at once and was never sent.
    pub(crate) async fn send_once<D: CallDecoder>(
        &self,
        operation: &str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt> {
        let request = call.into_transaction_request();
        // A Mutex, not a RefCell, so that the future is Send (the server awaits it in request
        // handlers); it is never held across an await.
        let signed: Mutex<Option<Signed>> = Mutex::new(None);
        self.run(operation, || async {
            let known = signed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let (hash, raw) = match known {
                Some(known) => known,
                None => {
                    let fresh = self.sign(operation, request.clone()).await?;
                    *signed.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
                    fresh
                }
            };
            // Mined after an earlier attempt lost its answer: nothing to send.
            if let Some(receipt) = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(classify_rpc)?
            {
                return checked(operation, receipt);
            }
            if let Err(e) = self.provider.send_raw_transaction(&raw).await
                && !already_sent(&e)
            {
                return Err(classify_rpc(e));
            }
            let pending = PendingTransactionBuilder::new(self.provider.root().clone(), hash);
            confirm(operation, pending).await
        })
        .await
    }

    /// Fills (nonce, gas, fees, chain id) and signs `request` with the client's key.
    async fn sign(&self, operation: &str, mut request: TransactionRequest) -> StepResult<Signed> {
        let wallet = self.wallet.as_ref().ok_or_else(|| {
            StepError::Fatal(ChainError::Invalid(
                "this command needs a private key (--key-file PATH)".into(),
            ))
        })?;
        let from = self.sender()?;
        request.set_from(from);
        let chain_id = self.provider.get_chain_id().await.map_err(classify_rpc)?;
        request.set_chain_id(chain_id);
        let nonce = self
            .provider
            .get_transaction_count(from)
            .pending()
            .await
            .map_err(classify_rpc)?;
        request.set_nonce(nonce);
        let gas = self
            .provider
            .estimate_gas(request.clone())
            .await
            .map_err(|e| classify(operation, alloy::contract::Error::TransportError(e)))?;
        request.set_gas_limit(gas);
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(classify_rpc)?;
        request.set_max_fee_per_gas(fees.max_fee_per_gas);
        request.set_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope: <Ethereum as Network>::TxEnvelope =
            request.build(wallet).await.map_err(|e| {
                StepError::Fatal(ChainError::Invalid(format!("signing {operation}: {e}")))
            })?;
        Ok((*envelope.tx_hash(), envelope.encoded_2718()))
    }
}

type StepResult<T> = std::result::Result<T, StepError>;

/// `receipt` when its transaction succeeded, else the revert.
fn checked(operation: &str, receipt: TransactionReceipt) -> StepResult<TransactionReceipt> {
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(StepError::Fatal(ChainError::Reverted {
            operation: operation.to_string(),
            reason: format!("transaction {} reverted on chain", receipt.transaction_hash),
        }))
    }
}
