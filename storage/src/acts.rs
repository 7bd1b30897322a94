//! Who signed a record and who stored a version: a record's signature scheme, the act that
//! stored a new version (by whom, in which role), the committer a batch is stored for, and a
//! Datanet's signature policy.
//!
//! On disk these are *extensions*: a few bytes appended after the postcard encoding of a
//! `Record` or a `Datanet`, which postcard and `RecordView` never read past. A value written
//! before extensions existed ends where its struct ends, and reads as the old rules had it:
//! a signed record was signed under EIP-191, no act was recorded, and a Datanet accepts both
//! signature schemes on chain id [`DEFAULT_CHAIN_ID`]. Invariant: every value written now
//! carries its extension, and an extension of an unknown version is corruption, never ignored.

use serde::{Deserialize, Serialize};

use crate::model::{Address, NearDuplicateAction, NearDuplicatePolicy, RecordId};

/// The rule a refused version breaks, as every path words it: who may supersede or remove
/// record `record_id` of `contributor` in Datanet `datanet`.
pub fn version_rule(record_id: &RecordId, contributor: &Address, datanet: &str) -> String {
    format!(
        "record {record_id} belongs to contributor {contributor}; only {contributor} or a \
         curator of datanet '{datanet}' may supersede or remove it"
    )
}

/// The chain id of a Datanet's EIP-712 domain unless it names another: Ethereum mainnet, what
/// a wallet shows by default.
pub const DEFAULT_CHAIN_ID: u64 = 1;

/// What a record's signature was made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureScheme {
    /// EIP-191 `personal_sign` over the 32 bytes of the record id: the old scheme, which
    /// covers nothing else. Accepted only by Datanets created before EIP-712.
    Eip191,
    /// EIP-712 typed data over the Datanet, record id, license, creation time and the version
    /// it supersedes.
    Eip712,
}

impl SignatureScheme {
    /// The lower-case name used in SQL, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eip191 => "eip191",
            Self::Eip712 => "eip712",
        }
    }
}

/// In which role a version was stored over another's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActingRole {
    /// The old version's own contributor.
    Contributor,
    /// A curator of the Datanet, acting as curator.
    Curator,
    /// The Datanet's owner, acting as curator.
    Owner,
    /// An administrator of the whole database, acting as curator.
    Admin,
}

impl ActingRole {
    /// The lower-case name used in SQL, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contributor => "contributor",
            Self::Curator => "curator",
            Self::Owner => "owner",
            Self::Admin => "admin",
        }
    }
}

/// Who stored a version that supersedes (or tombstones) another, and in which role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionAct {
    /// The address that acted.
    pub by: Address,
    /// Its role.
    pub role: ActingRole,
}

/// Whose word a batch's `supersedes` links (and a tombstone) are: storage decides from it,
/// and from the Datanet's owner and curators, whether a version may replace another's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committer {
    /// The records speak for their contributors: the local command line, whose operator is
    /// trusted with the contributor column. A version may then replace only a record of its
    /// own contributor.
    Contributors,
    /// An authenticated principal at this address (an API key). It speaks for a contributor
    /// when it is that contributor, or when the contributor signed the version under EIP-712
    /// (which covers `supersedes`); otherwise it acts as curator, and must be one.
    Principal(Address),
    /// An administrator at this address: as `Principal`, and may act as curator of every
    /// Datanet (recorded as admin).
    Admin(Address),
}

impl Committer {
    /// The acting address, when there is one.
    pub fn address(self) -> Option<Address> {
        match self {
            Self::Contributors => None,
            Self::Principal(address) | Self::Admin(address) => Some(address),
        }
    }
}

/// A Datanet's rules for signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturePolicy {
    /// The chain id of the EIP-712 domain its records are signed in.
    pub chain_id: u64,
    /// Whether EIP-191 signatures over the record id alone are still accepted: true only for
    /// Datanets created before EIP-712 signatures existed.
    pub accepts_eip191: bool,
}

impl Default for SignaturePolicy {
    /// The policy of a new Datanet: EIP-712 only, on [`DEFAULT_CHAIN_ID`].
    fn default() -> Self {
        Self {
            chain_id: DEFAULT_CHAIN_ID,
            accepts_eip191: false,
        }
    }
}

impl SignaturePolicy {
    /// The policy of a Datanet stored before signature policies: both schemes, default chain.
    pub(crate) fn legacy() -> Self {
        Self {
            chain_id: DEFAULT_CHAIN_ID,
            accepts_eip191: true,
        }
    }
}

/// The version byte that starts every extension written now.
const EXTENSION_V1: u8 = 1;

/// What a record's extension holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordExtension {
    pub(crate) scheme: Option<SignatureScheme>,
    pub(crate) act: Option<VersionAct>,
}

impl RecordExtension {
    /// Appends the extension: version, scheme (0 none, 1 EIP-191, 2 EIP-712), then the act
    /// (0, or 1, the 20-byte address and the role's index).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(EXTENSION_V1);
        out.push(match self.scheme {
            None => 0,
            Some(SignatureScheme::Eip191) => 1,
            Some(SignatureScheme::Eip712) => 2,
        });
        match self.act {
            None => out.push(0),
            Some(act) => {
                out.push(1);
                out.extend_from_slice(&act.by.0);
                out.push(act.role as u8);
            }
        }
    }

    /// Reads the extension from `bytes`, what follows a record's struct; `signed` says whether
    /// the record has a signature (which, in a value without extension, is EIP-191).
    pub(crate) fn decode(bytes: &[u8], signed: bool) -> Result<Self, String> {
        let Some((&version, rest)) = bytes.split_first() else {
            let scheme = signed.then_some(SignatureScheme::Eip191);
            return Ok(Self { scheme, act: None });
        };
        if version != EXTENSION_V1 {
            return Err(format!("unknown record extension version {version}"));
        }
        let scheme = match rest.first() {
            Some(0) => None,
            Some(1) => Some(SignatureScheme::Eip191),
            Some(2) => Some(SignatureScheme::Eip712),
            _ => return Err("bad signature scheme in the record extension".into()),
        };
        let act = match rest.get(1..) {
            Some([0, ..]) => None,
            Some([1, by @ .., role]) if by.len() == 20 => {
                let mut address = [0u8; 20];
                address.copy_from_slice(by);
                let role = match role {
                    0 => ActingRole::Contributor,
                    1 => ActingRole::Curator,
                    2 => ActingRole::Owner,
                    3 => ActingRole::Admin,
                    _ => return Err("bad acting role in the record extension".into()),
                };
                Some(VersionAct {
                    by: Address(address),
                    role,
                })
            }
            _ => return Err("bad version act in the record extension".into()),
        };
        Ok(Self { scheme, act })
    }
}

/// Appends a Datanet's extension: version, chain id (8 bytes big-endian), EIP-191 flag.
pub(crate) fn encode_policy(policy: &SignaturePolicy, out: &mut Vec<u8>) {
    out.push(EXTENSION_V1);
    out.extend_from_slice(&policy.chain_id.to_be_bytes());
    out.push(u8::from(policy.accepts_eip191));
}

/// The tag of a Datanet extension's near-duplicate policy, after its signature policy.
const NEAR_DUPLICATES: u8 = 2;

/// Appends a Datanet's near-duplicate policy: tag, action (0 allow, 1 pending, 2 refuse),
/// threshold in basis points (2 bytes big-endian), across Datanets (0 or 1).
pub(crate) fn encode_near_duplicates(policy: &NearDuplicatePolicy, out: &mut Vec<u8>) {
    out.push(NEAR_DUPLICATES);
    out.push(match policy.action {
        NearDuplicateAction::Allow => 0,
        NearDuplicateAction::Pending => 1,
        NearDuplicateAction::Refuse => 2,
    });
    out.extend_from_slice(&policy.threshold_bps.to_be_bytes());
    out.push(u8::from(policy.across_datanets));
}

/// Reads a Datanet's extension: its signature policy (none: stored before policies, see
/// [`SignaturePolicy::legacy`]) and its near-duplicate policy (none: stored before it, the
/// default, which allows).
pub(crate) fn decode_policy(
    bytes: &[u8],
) -> Result<(SignaturePolicy, NearDuplicatePolicy), String> {
    let bad = || "bad datanet extension".to_string();
    let (signatures, rest) = match bytes {
        [] => return Ok((SignaturePolicy::legacy(), NearDuplicatePolicy::default())),
        [EXTENSION_V1, rest @ ..] if rest.len() >= 9 && rest[8] <= 1 => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&rest[..8]);
            let policy = SignaturePolicy {
                chain_id: u64::from_be_bytes(id),
                accepts_eip191: rest[8] == 1,
            };
            (policy, &rest[9..])
        }
        _ => return Err(bad()),
    };
    let near_duplicates = match rest {
        [] => NearDuplicatePolicy::default(),
        [NEAR_DUPLICATES, action, high, low, across] if *across <= 1 => {
            let threshold_bps = u16::from_be_bytes([*high, *low]);
            if !(1..=10_000).contains(&threshold_bps) {
                return Err(bad());
            }
            let action = match action {
                0 => NearDuplicateAction::Allow,
                1 => NearDuplicateAction::Pending,
                2 => NearDuplicateAction::Refuse,
                _ => return Err(bad()),
            };
            NearDuplicatePolicy {
                action,
                threshold_bps,
                across_datanets: *across == 1,
            }
        }
        _ => return Err(bad()),
    };
    Ok((signatures, near_duplicates))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scheme() -> impl Strategy<Value = Option<SignatureScheme>> {
        proptest::option::of(prop_oneof![
            Just(SignatureScheme::Eip191),
            Just(SignatureScheme::Eip712)
        ])
    }

    fn role() -> impl Strategy<Value = ActingRole> {
        prop_oneof![
            Just(ActingRole::Contributor),
            Just(ActingRole::Curator),
            Just(ActingRole::Owner),
            Just(ActingRole::Admin),
        ]
    }

    proptest! {
        #[test]
        fn a_record_extension_round_trips(
            scheme in scheme(),
            act in proptest::option::of((any::<[u8; 20]>(), role())),
        ) {
            let extension = RecordExtension {
                scheme,
                act: act.map(|(by, role)| VersionAct { by: Address(by), role }),
            };
            let mut bytes = Vec::new();
            extension.encode_into(&mut bytes);
            prop_assert_eq!(RecordExtension::decode(&bytes, scheme.is_some()), Ok(extension));
        }

        #[test]
        fn a_policy_round_trips(
            chain_id in any::<u64>(),
            accepts_eip191 in any::<bool>(),
            action in 0usize..3,
            threshold_bps in 1u16..=10_000,
            across_datanets in any::<bool>(),
        ) {
            let policy = SignaturePolicy { chain_id, accepts_eip191 };
            let mut bytes = Vec::new();
            encode_policy(&policy, &mut bytes);
            // A value written before near-duplicate policies: the default, which allows.
            prop_assert_eq!(
                decode_policy(&bytes),
                Ok((policy, NearDuplicatePolicy::default()))
            );
            let near = NearDuplicatePolicy {
                action: [
                    NearDuplicateAction::Allow,
                    NearDuplicateAction::Pending,
                    NearDuplicateAction::Refuse,
                ][action],
                threshold_bps,
                across_datanets,
            };
            encode_near_duplicates(&near, &mut bytes);
            prop_assert_eq!(decode_policy(&bytes), Ok((policy, near)));
        }

        #[test]
        fn damaged_extensions_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 1..40)) {
            let _ = RecordExtension::decode(&bytes, true);
            let _ = decode_policy(&bytes);
        }
    }

    #[test]
    fn values_without_extension_read_as_the_old_rules() {
        assert_eq!(
            RecordExtension::decode(&[], true).unwrap().scheme,
            Some(SignatureScheme::Eip191)
        );
        assert_eq!(RecordExtension::decode(&[], false).unwrap().scheme, None);
        let (signatures, near) = decode_policy(&[]).unwrap();
        assert_eq!(signatures, SignaturePolicy::legacy());
        assert!(signatures.accepts_eip191);
        assert_eq!(near.action, NearDuplicateAction::Allow);
        // A threshold of 0 or above the whole, or an unknown action, is damage.
        let mut bytes = Vec::new();
        encode_policy(&SignaturePolicy::default(), &mut bytes);
        for tail in [
            [2, 0, 0, 0, 0],
            [2, 0, 0x27, 0x11, 0],
            [2, 3, 0x1f, 0x40, 0],
        ] {
            let mut damaged = bytes.clone();
            damaged.extend_from_slice(&tail);
            assert!(decode_policy(&damaged).is_err(), "{tail:?}");
        }
        assert!(!SignaturePolicy::default().accepts_eip191);
        assert!(RecordExtension::decode(&[2, 0, 0], false).is_err());
    }
}
