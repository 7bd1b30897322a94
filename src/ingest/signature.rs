//! Contributor signatures: EIP-191 `personal_sign` over the 32 bytes of the record id, checked
//! by recovering the signer's address. Recovery is the ingest hot path, so it uses
//! libsecp256k1 (the `secp256k1` crate, as reth does for sender recovery); signing, for demos
//! and tests, uses alloy's signer, so the two implementations check each other.

use alloy_primitives::B256;
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use provdb_storage::{Address, RecordId, keccak256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, SECP256K1};

use crate::error::{Error, Result};

/// Parses a `0x` hex signature of 65 bytes (r ‖ s ‖ v, v in {0, 1, 27, 28}) and checks that it
/// was made by `contributor` over `record_id`. Returns the 65 bytes, or why it is refused.
pub fn verify_signature(
    record_id: &RecordId,
    signature_hex: &str,
    contributor: &Address,
) -> Result<Vec<u8>, String> {
    let digits = signature_hex.strip_prefix("0x").unwrap_or(signature_hex);
    let bytes = hex::decode(digits).map_err(|e| format!("signature is not hex: {e}"))?;
    if bytes.len() != 65 {
        return Err(format!("signature must be 65 bytes, found {}", bytes.len()));
    }
    let signer = recover_signer(record_id, &bytes)?;
    if signer != *contributor {
        return Err(format!(
            "signature was made by {signer}, not by the contributor {contributor}"
        ));
    }
    Ok(bytes)
}

/// The address whose key made `signature` (r ‖ s ‖ v) over the EIP-191 message of `record_id`.
fn recover_signer(record_id: &RecordId, signature: &[u8]) -> Result<Address, String> {
    let recovery = match signature[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        v => {
            return Err(format!(
                "malformed signature: v must be 27 or 28 (or 0 or 1), found {v}"
            ));
        }
    };
    let recovery =
        RecoveryId::try_from(recovery).map_err(|e| format!("malformed signature: {e}"))?;
    let signature = RecoverableSignature::from_compact(&signature[..64], recovery)
        .map_err(|e| format!("malformed signature: {e}"))?;
    let mut message = Vec::with_capacity(60);
    message.extend_from_slice(b"\x19Ethereum Signed Message:\n32");
    message.extend_from_slice(&record_id.0);
    let digest = Message::from_digest(keccak256(&message));
    let key = SECP256K1
        .recover_ecdsa(digest, &signature)
        .map_err(|e| format!("signature does not recover to an address: {e}"))?;
    let hash = keccak256(&key.serialize_uncompressed()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    Ok(Address(address))
}

/// The address of a secp256k1 private key.
pub fn address_of_key(key: &[u8; 32]) -> Result<Address> {
    Ok(Address(signer(key)?.address().0.0))
}

/// Signs a record id as its contributor would (EIP-191 `personal_sign` over the 32 bytes).
pub fn sign_record_id(key: &[u8; 32], record_id: &RecordId) -> Result<[u8; 65]> {
    let signature = signer(key)?
        .sign_message_sync(&record_id.0)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))?;
    Ok(signature.as_bytes())
}

fn signer(key: &[u8; 32]) -> Result<PrivateKeySigner> {
    PrivateKeySigner::from_bytes(&B256::from(*key))
        .map_err(|e| Error::Invalid(format!("invalid private key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    #[test]
    fn a_signature_verifies_only_for_its_signer_and_record() {
        let id = RecordId([7; 32]);
        let signature = format!("0x{}", hex::encode(sign_record_id(&key(1), &id).unwrap()));
        let alice = address_of_key(&key(1)).unwrap();
        let bob = address_of_key(&key(2)).unwrap();
        assert!(verify_signature(&id, &signature, &alice).is_ok());
        let wrong_signer = verify_signature(&id, &signature, &bob).unwrap_err();
        assert!(
            wrong_signer.contains("not by the contributor"),
            "{wrong_signer}"
        );
        assert!(verify_signature(&RecordId([8; 32]), &signature, &alice).is_err());
        assert!(
            verify_signature(&id, "0xzz", &alice)
                .unwrap_err()
                .contains("not hex")
        );
        assert!(
            verify_signature(&id, "0x1234", &alice)
                .unwrap_err()
                .contains("65 bytes")
        );
    }

    #[test]
    fn matches_a_known_ethereum_vector() {
        // Private key 1 is a well-known test key; its address is fixed by secp256k1.
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(
            address_of_key(&one).unwrap().to_string(),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }
}
