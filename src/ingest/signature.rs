//! Contributor signatures: EIP-191 `personal_sign` over the 32 bytes of the record id, checked
//! by recovering the signer's address (alloy's secp256k1 recovery).

use alloy_primitives::{B256, Signature};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use provdb_storage::{Address, RecordId};

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
    let signature = Signature::from_raw(&bytes).map_err(|e| format!("malformed signature: {e}"))?;
    let signer = signature
        .recover_address_from_msg(record_id.0)
        .map_err(|e| format!("signature does not recover to an address: {e}"))?;
    if signer.0.0 != contributor.0 {
        return Err(format!(
            "signature was made by {signer:#x}, not by the contributor {contributor}"
        ));
    }
    Ok(bytes)
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
