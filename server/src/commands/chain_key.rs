//! Where a chain command's private key comes from: a file (`--key-file PATH`) or the
//! environment (`PROVDB_CHAIN_KEY` for the operator, `PROVDB_CLAIM_KEY` for a claim's sender,
//! `PROVDB_DEPOSIT_KEY` for a depositor, `PROVDB_X402_KEY` for x402 settlements), never the
//! command line.
//!
//! Invariant: a key is never taken from an argument. Arguments are visible to every user of
//! the machine (`ps`, `/proc/PID/cmdline`) and stay in shell history, so the removed `--key HEX`
//! is still recognised (hidden) only to refuse it with a message that names the rule and the
//! two ways that remain. The key's text never appears in an error.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::output::UserError;

/// The operator's key (deploy, sync).
#[derive(Debug, Args)]
pub(crate) struct OperatorKeyArgs {
    /// A file holding the operator's private key (hex, `0x` optional); else PROVDB_CHAIN_KEY.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Removed: a key on the command line is visible to every user of the machine.
    #[arg(long, hide = true, allow_hyphen_values = true)]
    key: Option<String>,
}

/// The key of the account that sends a claim.
#[derive(Debug, Args)]
pub(crate) struct ClaimKeyArgs {
    /// A file holding the sender's private key (hex, `0x` optional); else PROVDB_CLAIM_KEY.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Removed: a key on the command line is visible to every user of the machine.
    #[arg(long, hide = true, allow_hyphen_values = true)]
    key: Option<String>,
}

/// The key of the account that pays a deposit.
#[derive(Debug, Args)]
pub(crate) struct DepositKeyArgs {
    /// A file holding the depositor's private key (hex, `0x` optional); else PROVDB_DEPOSIT_KEY.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Removed: a key on the command line is visible to every user of the machine.
    #[arg(long, hide = true, allow_hyphen_values = true)]
    key: Option<String>,
}

/// The key x402 settlements are sent with (`provdb serve --x402`).
#[derive(Debug, Args)]
pub(crate) struct FacilitatorKeyArgs {
    /// A file holding the key that settles x402 payments on chain and pays their gas (hex,
    /// `0x` optional); else PROVDB_X402_KEY.
    #[arg(long = "x402-key-file", value_name = "PATH")]
    key_file: Option<PathBuf>,
}

/// The environment variable of the x402 facilitator's key.
pub(crate) const FACILITATOR_KEY_ENV: &str = "PROVDB_X402_KEY";

impl FacilitatorKeyArgs {
    /// The facilitator's key, from `--x402-key-file` or `PROVDB_X402_KEY`.
    pub(crate) fn load(&self) -> Result<String, UserError> {
        resolve(
            None,
            self.key_file.as_deref(),
            FACILITATOR_KEY_ENV,
            std::env::var(FACILITATOR_KEY_ENV).ok(),
        )
    }
}

/// The environment variable of the operator's key.
pub(crate) const OPERATOR_KEY_ENV: &str = "PROVDB_CHAIN_KEY";
/// The environment variable of a claim sender's key.
pub(crate) const CLAIM_KEY_ENV: &str = "PROVDB_CLAIM_KEY";
/// The environment variable of a depositor's key.
pub(crate) const DEPOSIT_KEY_ENV: &str = "PROVDB_DEPOSIT_KEY";

impl OperatorKeyArgs {
    /// The operator's key, from `--key-file` or `PROVDB_CHAIN_KEY`.
    pub(crate) fn load(&self) -> Result<String, UserError> {
        resolve(
            self.key.as_deref(),
            self.key_file.as_deref(),
            OPERATOR_KEY_ENV,
            std::env::var(OPERATOR_KEY_ENV).ok(),
        )
    }
}

impl ClaimKeyArgs {
    /// The sender's key, from `--key-file` or `PROVDB_CLAIM_KEY`.
    pub(crate) fn load(&self) -> Result<String, UserError> {
        resolve(
            self.key.as_deref(),
            self.key_file.as_deref(),
            CLAIM_KEY_ENV,
            std::env::var(CLAIM_KEY_ENV).ok(),
        )
    }
}

impl DepositKeyArgs {
    /// The depositor's key, from `--key-file` or `PROVDB_DEPOSIT_KEY`.
    pub(crate) fn load(&self) -> Result<String, UserError> {
        resolve(
            self.key.as_deref(),
            self.key_file.as_deref(),
            DEPOSIT_KEY_ENV,
            std::env::var(DEPOSIT_KEY_ENV).ok(),
        )
    }
}

/// The key from the file, else from the environment's value; refuses `--key` whatever else is
/// given. A file wins over the environment (it was named on this command line).
fn resolve(
    on_command_line: Option<&str>,
    file: Option<&Path>,
    env_name: &str,
    env_value: Option<String>,
) -> Result<String, UserError> {
    if on_command_line.is_some() {
        return Err(UserError(format!(
            "--key is not accepted: a private key on the command line is visible to every user \
             of this machine (ps, /proc) and stays in shell history; put it in a file readable \
             only by you and pass --key-file PATH, or set {env_name}"
        )));
    }
    let text = match (file, env_value) {
        (Some(path), _) => read_key_file(path)?,
        (None, Some(value)) => value,
        (None, None) => {
            return Err(UserError(format!(
                "this command needs a private key: pass --key-file PATH or set {env_name}"
            )));
        }
    };
    let key = text.trim().to_string();
    let digits = key.strip_prefix("0x").unwrap_or(&key);
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        let from = match file {
            Some(path) => format!("the key file {}", path.display()),
            None => env_name.to_string(),
        };
        return Err(UserError(format!(
            "{from} does not hold a private key: expected 64 hex digits (0x optional)"
        )));
    }
    Ok(key)
}

fn read_key_file(path: &Path) -> Result<String, UserError> {
    let text = fs_err::read_to_string(path).map_err(|e| UserError(e.to_string()))?;
    warn_if_shared(path);
    Ok(text)
}

/// Warns when others than the owner may read the key file (the key stays usable: refusing
/// would break a read-only mount such as a container secret whose mode provdb cannot change).
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs_err::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "provdb: warning: the key file {} can be read by other users (chmod 600 it)",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn a_key_on_the_command_line_is_refused_naming_the_ways_that_remain() {
        let refused = resolve(Some(KEY), None, OPERATOR_KEY_ENV, Some(KEY.into()))
            .unwrap_err()
            .0;
        assert!(refused.contains("--key is not accepted"), "{refused}");
        assert!(refused.contains("--key-file PATH"), "{refused}");
        assert!(refused.contains(OPERATOR_KEY_ENV), "{refused}");
        assert!(!refused.contains(&KEY[2..]), "the key is never echoed");
    }

    #[test]
    fn the_file_wins_over_the_environment_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        let other = format!("0x{}", "1".repeat(64));
        assert_eq!(
            resolve(None, Some(&path), OPERATOR_KEY_ENV, Some(other.clone())).unwrap(),
            KEY
        );
        assert_eq!(
            resolve(None, None, OPERATOR_KEY_ENV, Some(other.clone())).unwrap(),
            other
        );
    }

    #[test]
    fn a_missing_or_malformed_key_is_a_clear_error() {
        let missing = resolve(None, None, CLAIM_KEY_ENV, None).unwrap_err().0;
        assert!(missing.contains("--key-file PATH or set PROVDB_CLAIM_KEY"));
        let bad = resolve(None, None, CLAIM_KEY_ENV, Some("0x1234".into()))
            .unwrap_err()
            .0;
        assert!(bad.contains("64 hex digits"), "{bad}");
        let dir = tempfile::tempdir().unwrap();
        let absent = resolve(None, Some(&dir.path().join("nope")), CLAIM_KEY_ENV, None)
            .unwrap_err()
            .0;
        assert!(absent.contains("nope"), "names the file: {absent}");
    }
}
