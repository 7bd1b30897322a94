//! Money on the embedded API: who may set which price, callers' prepaid accounts (admin
//! credits, refunds), and the local operator's account.
//!
//! Rules (each checked here, on every path: CLI, HTTP and embedded alike):
//! - a model's price is set by an admin; a Datanet's by its owner or an admin; an adapter's by
//!   its owner or an admin; no price is above the operator's cap on one fee
//!   ([`Db::max_fee_wei`]); everyone may read every price;
//! - only an admin credits an account off-chain, with a reason (a ledger entry of its own);
//! - an account is refunded by itself or an admin, and not while one of its answers is in
//!   flight (its balance is held);
//! - the local operator (the CLI without `--as`) has an account of its own: the address of
//!   the key in `DIR/operator.key`, made on first use, which owns what the CLI creates and
//!   claims what that earns.

use std::path::Path;

use alloy_signer_local::PrivateKeySigner;
use provdb_query::Caller;
use provdb_storage::{
    AccountState, Address, CreditSource, LedgerEntry, Price, PriceScope, StorageError,
};

use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

/// The file holding the local operator's key (hex, readable by its owner only).
pub const OPERATOR_KEY_FILE: &str = "operator.key";

impl Db {
    /// The local operator's address (see the module docs), making its key on first use; read
    /// once per open database (every answer needs it).
    pub fn operator(&self) -> Result<Address> {
        if let Some(address) = self.operator.get() {
            return Ok(*address);
        }
        let signer = operator_key(self.dir())?;
        Ok(*self.operator.get_or_init(|| Address(signer.address().0.0)))
    }

    /// Sets the price of `scope` as `caller` (see the module docs). `per_1k_tokens_wei` is for
    /// models only.
    pub fn set_price(
        &self,
        caller: &Caller,
        scope: PriceScope,
        per_answer_wei: u128,
        per_1k_tokens_wei: u128,
    ) -> Result<Price> {
        self.may_set_price(caller, &scope)?;
        for wei in [per_answer_wei, per_1k_tokens_wei] {
            crate::answer::check_fee(wei, self.max_fee_wei)?;
        }
        Ok(self.store.set_price(
            scope,
            per_answer_wei,
            per_1k_tokens_wei,
            caller.who(),
            now_ms(),
        )?)
    }

    /// Whether `caller` may set the price of `scope`, which must exist and be visible to it
    /// (one it may not see is reported as unknown, whoever asks).
    fn may_set_price(&self, caller: &Caller, scope: &PriceScope) -> Result<()> {
        let (owns, who) = match scope {
            PriceScope::Model(_) => (false, "an admin"),
            PriceScope::Datanet(id) => {
                let datanet = self.store.datanet_by_id(*id)?;
                if !caller.may_read(&self.store, &datanet)? {
                    return Err(StorageError::UnknownDatanet(datanet.name).into());
                }
                (caller.owns(&datanet), "its owner or an admin")
            }
            PriceScope::Adapter(id) => {
                let spec = format!("0x{}", hex::encode(id));
                let (info, _) = self.resolve_visible_adapter(caller, &spec)?;
                let owner = info.owner.and_then(|o| o.parse::<Address>().ok());
                (
                    owner.is_some() && owner == caller.who(),
                    "its owner or an admin",
                )
            }
        };
        if !owns && !caller.is_admin() {
            return Err(Error::Forbidden(format!(
                "only {who} may set the price of a {}",
                scope.kind()
            )));
        }
        Ok(())
    }

    /// The id of the adapter `spec` names (an id or a unique prefix) among those `caller` may
    /// see.
    pub fn adapter_id_for(&self, caller: &Caller, spec: &str) -> Result<[u8; 32]> {
        let (info, _) = self.resolve_visible_adapter(caller, spec)?;
        hex::decode(info.id.trim_start_matches("0x"))
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| Error::Internal(format!("adapter id '{}' is not 32 bytes", info.id)))
    }

    /// The price of a Datanet, model or adapter: `None` when none was set (free).
    pub fn price(&self, scope: &PriceScope) -> Result<Option<Price>> {
        Ok(self.store.price(scope)?)
    }

    /// Every price set.
    pub fn prices(&self) -> Result<Vec<Price>> {
        Ok(self.store.prices()?)
    }

    /// The prices `caller` may see: every model's, those of the Datanets it may read and of
    /// the adapters it may see (another's is as unknown to it as one never priced).
    pub fn prices_for(&self, caller: &Caller) -> Result<Vec<Price>> {
        let mut visible = Vec::new();
        for price in self.store.prices()? {
            let sees = match &price.scope {
                PriceScope::Model(_) => true,
                PriceScope::Datanet(id) => {
                    caller.may_read(&self.store, &self.store.datanet_by_id(*id)?)?
                }
                PriceScope::Adapter(id) => {
                    let spec = format!("0x{}", hex::encode(id));
                    self.resolve_visible_adapter(caller, &spec).is_ok()
                }
            };
            if sees {
                visible.push(price);
            }
        }
        Ok(visible)
    }

    /// Refuses plain generation (no Datanets: no answer recorded, no one charged) with a model
    /// or adapter (`0xID[:WEIGHT]` specs) whose owner set a price: a priced model serves only
    /// cited answers, which charge for it.
    pub fn check_unpriced(&self, model: &str, adapter_specs: &[String]) -> Result<()> {
        let mut scopes = vec![PriceScope::Model(model.to_string())];
        for spec in adapter_specs {
            let id = spec.split(':').next().unwrap_or_default();
            let bytes = hex::decode(id.trim_start_matches("0x")).ok();
            if let Some(id) = bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                scopes.push(PriceScope::Adapter(id));
            }
        }
        for scope in scopes {
            if let Some(price) = self.store.price(&scope)?
                && (price.per_answer_wei > 0 || price.per_1k_tokens_wei > 0)
            {
                return Err(Error::PaymentRequired(format!(
                    "this {} is priced ({} wei per answer, {} wei per 1,000 tokens): it answers \
                     only cited questions over Datanets, which charge for it; name `datanets`",
                    scope.kind(),
                    price.per_answer_wei,
                    price.per_1k_tokens_wei
                )));
            }
        }
        Ok(())
    }

    /// An account's state, with what its answers in flight hold of its balance.
    pub fn account(&self, address: &Address) -> Result<(AccountState, u128)> {
        Ok((self.store.account(address)?, self.holds.held(address)?))
    }

    /// Credits `address` off-chain as an admin, with a reason; returns the credit entry.
    pub fn credit(
        &self,
        caller: &Caller,
        address: Address,
        amount_wei: u128,
        reason: &str,
    ) -> Result<LedgerEntry> {
        if !caller.is_admin() {
            return Err(Error::Forbidden(
                "only an admin may credit an account off-chain".into(),
            ));
        }
        let source = CreditSource::Admin {
            by: caller.who(),
            reason: reason.to_string(),
        };
        self.store
            .credit(address, amount_wei, source, now_ms())?
            .ok_or_else(|| Error::Internal("an admin credit was skipped".into()))
    }

    /// Refunds `address`'s whole balance as a payout of role `refund`, claimed after the next
    /// epoch; `caller` is the account itself or an admin. Returns the amount.
    pub fn refund(&self, caller: &Caller, address: Address) -> Result<u128> {
        if !caller.is_admin() && caller.who() != Some(address) {
            return Err(Error::Forbidden(
                "only the account itself or an admin may refund it".into(),
            ));
        }
        if self.holds.held(&address)? > 0 {
            return Err(Error::Invalid(format!(
                "account {address} has answers in flight; refund it once they are recorded"
            )));
        }
        let entries = self.store.refund(address, now_ms())?;
        Ok(entries.first().map_or(0, |e| e.payment.amount_wei))
    }
}

/// The operator's key in `dir`, made (readable by its owner only) when missing.
fn operator_key(dir: &Path) -> Result<PrivateKeySigner> {
    let path = dir.join(OPERATOR_KEY_FILE);
    match fs_err::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| Error::Invalid(format!("{}: not a private key: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = PrivateKeySigner::random();
            let hex = format!("0x{}\n", hex::encode(signer.to_bytes()));
            if write_private(&path, &hex)? {
                return Ok(signer);
            }
            // Another process made it first: its key is the operator's.
            operator_key(dir)
        }
        Err(e) => Err(Error::io(&path)(e)),
    }
}

/// Writes a new file readable by its owner only; false when one was already there (two
/// processes making the key at once: the loser reads the winner's).
fn write_private(path: &Path, text: &str) -> Result<bool> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map(|()| true)
            .map_err(Error::io(path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::init(dir.path()).unwrap();
        (dir, db)
    }

    #[test]
    fn the_operator_key_is_made_once_and_owns_cli_datanets() {
        let (dir, db) = db();
        let operator = db.operator().unwrap();
        assert_eq!(
            db.operator().unwrap(),
            operator,
            "read back, not made again"
        );
        let info = db
            .create_datanet(provdb_storage::Datanet::new("t"))
            .unwrap();
        assert_eq!(info.owner, Some(operator.to_string()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(OPERATOR_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is its owner's only: {mode:o}");
        }
    }

    #[test]
    fn a_refund_waits_for_answers_in_flight() {
        let (_dir, db) = db();
        let alice = Address([0xa1; 20]);
        let admin = Caller::admin(db.operator().unwrap());
        db.credit(&admin, alice, 100, "card").unwrap();
        let hold = db.holds.hold(db.store(), Some(alice), 40).unwrap();
        let refused = db.refund(&Caller::address(alice), alice).unwrap_err();
        assert!(refused.to_string().contains("in flight"), "{refused}");
        assert_eq!(
            db.account(&alice).unwrap(),
            (db.store.account(&alice).unwrap(), 40)
        );
        drop(hold);
        assert_eq!(db.refund(&Caller::address(alice), alice).unwrap(), 100);
    }

    #[test]
    fn plain_chat_serves_only_unpriced_models_and_adapters() {
        let (_dir, db) = db();
        let admin = Caller::admin(db.operator().unwrap());
        let adapter = format!("0x{}:0.5", "ab".repeat(32));
        db.check_unpriced("m", std::slice::from_ref(&adapter))
            .unwrap();
        // No adapter of that id: nothing to price, even for an admin.
        assert!(
            db.set_price(&admin, PriceScope::Adapter([0xab; 32]), 1, 0)
                .is_err()
        );
        db.set_price(&admin, PriceScope::Model("m".into()), 0, 2)
            .unwrap();
        let refused = db.check_unpriced("m", &[adapter]).unwrap_err();
        assert!(matches!(refused, Error::PaymentRequired(_)), "{refused}");
        db.set_price(&admin, PriceScope::Model("m".into()), 0, 0)
            .unwrap();
        db.check_unpriced("m", &[]).unwrap();
    }
}
