//! Signatures: each scheme verifies only for its signer and what it covers.

use super::*;

fn key(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn fields(record_id: RecordId) -> SignedFields<'static> {
    SignedFields {
        datanet: "papers",
        chain_id: 1,
        record_id,
        license: "CC-BY-4.0",
        created_at_ms: 1_700_000_000_000,
        supersedes: None,
    }
}

fn hex_of(signature: [u8; 65]) -> String {
    format!("0x{}", hex::encode(signature))
}

const NEW: SignaturePolicy = SignaturePolicy {
    chain_id: 1,
    accepts_eip191: false,
};
const OLD: SignaturePolicy = SignaturePolicy {
    chain_id: 1,
    accepts_eip191: true,
};

#[test]
fn an_eip712_signature_verifies_only_for_its_signer_and_fields() {
    let signed = fields(RecordId([7; 32]));
    let signature = hex_of(sign_record(&key(1), &signed).unwrap());
    let alice = address_of_key(&key(1)).unwrap();
    let bob = address_of_key(&key(2)).unwrap();
    let (bytes, scheme) = verify_signature(&signed, true, &signature, &alice, &NEW).unwrap();
    assert_eq!((bytes.len(), scheme), (65, SignatureScheme::Eip712));
    let wrong = verify_signature(&signed, true, &signature, &bob, &NEW).unwrap_err();
    assert!(wrong.contains("not by the contributor"), "{wrong}");
    let changed = [
        SignedFields {
            license: "proprietary",
            ..signed
        },
        SignedFields {
            created_at_ms: 1,
            ..signed
        },
        SignedFields {
            supersedes: Some(RecordId([9; 32])),
            ..signed
        },
        SignedFields {
            datanet: "other",
            ..signed
        },
        SignedFields {
            chain_id: 5,
            ..signed
        },
        SignedFields {
            record_id: RecordId([8; 32]),
            ..signed
        },
    ];
    for fields in changed {
        let error = verify_signature(&fields, true, &signature, &alice, &OLD).unwrap_err();
        assert!(error.contains("EIP-712 signature was made by"), "{error}");
    }
    let error = verify_signature(&signed, false, &signature, &alice, &NEW).unwrap_err();
    assert!(error.contains("give the created_at"), "{error}");
}

#[test]
fn eip191_is_accepted_only_where_the_policy_still_accepts_it() {
    let signed = fields(RecordId([7; 32]));
    let signature = hex_of(sign_record_id(&key(1), &signed.record_id).unwrap());
    let alice = address_of_key(&key(1)).unwrap();
    let (_, scheme) = verify_signature(&signed, false, &signature, &alice, &OLD).unwrap();
    assert_eq!(scheme, SignatureScheme::Eip191);
    let refused = verify_signature(&signed, true, &signature, &alice, &NEW).unwrap_err();
    assert!(
        refused.contains("EIP-191") && refused.contains("requires EIP-712"),
        "{refused}"
    );
    let bob = address_of_key(&key(2)).unwrap();
    assert!(verify_signature(&signed, false, &signature, &bob, &OLD).is_err());
}

#[test]
fn malformed_signatures_are_named() {
    let signed = fields(RecordId([7; 32]));
    let alice = address_of_key(&key(1)).unwrap();
    let not_hex = verify_signature(&signed, true, "0xzz", &alice, &NEW).unwrap_err();
    assert!(not_hex.contains("not hex"), "{not_hex}");
    let short = verify_signature(&signed, true, "0x1234", &alice, &NEW).unwrap_err();
    assert!(short.contains("65 bytes"), "{short}");
    let bad_v = format!("0x{}{}", "11".repeat(64), "05");
    let error = verify_signature(&signed, true, &bad_v, &alice, &NEW).unwrap_err();
    assert!(error.contains("v must be 27 or 28"), "{error}");
}

/// The digest is computed from the EIP-712 definition by hand, apart from alloy's `sol!`.
#[test]
fn the_digest_follows_eip712_by_hand() {
    let supersedes = RecordId([3; 32]);
    let signed = SignedFields {
        supersedes: Some(supersedes),
        created_at_ms: -5,
        ..fields(RecordId([7; 32]))
    };
    let word = |bytes: [u8; 32]| bytes.to_vec();
    let mut domain = word(keccak256(
        b"EIP712Domain(string name,string version,uint256 chainId)",
    ));
    domain.extend(word(keccak256(b"provdb")));
    domain.extend(word(keccak256(b"1")));
    let mut chain = [0u8; 32];
    chain[31] = 1;
    domain.extend(chain);
    let mut message = word(keccak256(EIP712_RECORD_TYPE.as_bytes()));
    message.extend(word(keccak256(b"papers")));
    message.extend([7u8; 32]);
    message.extend(word(keccak256(b"CC-BY-4.0")));
    message.extend([0xff; 31]);
    message.push(0xfb); // -5 as a two's complement word
    message.extend(supersedes.0);
    let mut digest = vec![0x19, 0x01];
    digest.extend(keccak256(&domain));
    digest.extend(keccak256(&message));
    assert_eq!(signed.signing_hash(), keccak256(&digest));
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

/// A known answer from ethers 6.17.0 (`scripts/ethers.sh`): `Wallet.signTypedData` with key
/// 0x11…11 over these fields gives this signature, byte for byte (both sign per RFC 6979).
#[test]
fn signs_as_ethers_does() {
    let signed = SignedFields {
        datanet: "d",
        license: "MIT",
        ..fields(RecordId([7; 32]))
    };
    let ethers = "0xc47e68708ed25d386994dbb2d39acb3c02b6f1722eeed8203aa572415967a796\
                  382ee7e6624273aade6b6fd3fd2f9551bf2bbb61ac9a572afb8a32a3ebf5a5961c";
    assert_eq!(hex_of(sign_record(&key(0x11), &signed).unwrap()), ethers);
}
