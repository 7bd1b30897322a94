//! The text scan: every variant finds what the portable pass finds, for random bytes, for every
//! position of a special byte in a 32-byte lane (the overlapping last lane included) and for
//! short inputs, and the copying scan appends exactly the bytes it scanned.

use std::sync::LazyLock;

use proptest::prelude::*;
use provdb_kernels::Kernels;
use provdb_kernels::text::TextScan;

use crate::{fast_variants, reference_kernels};

/// The variants the property tests compare, found (and reported) once for all their cases.
static SCANS: LazyLock<Vec<&Kernels>> = LazyLock::new(|| fast_variants("text scan"));
static COPIES: LazyLock<Vec<&Kernels>> = LazyLock::new(|| {
    let mut sets = fast_variants("text copy");
    sets.push(reference_kernels());
    sets
});

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')],
        0..200,
    )
}

proptest! {
    #[test]
    fn every_variant_agrees_with_the_portable_scan(bytes in bytes(), cut in 0usize..200) {
        // Also every suffix start, so specials land at each position of a 32-byte lane.
        let bytes = &bytes[cut.min(bytes.len())..];
        let reference = (reference_kernels().text.scan)(bytes);
        for set in SCANS.iter() {
            prop_assert_eq!((set.text.scan)(bytes), reference, "{}", set.variant);
        }
    }

    #[test]
    fn every_variant_s_copy_appends_the_bytes_and_scans_them(
        before in proptest::collection::vec(any::<u8>(), 0..40),
        bytes in bytes(),
    ) {
        let reference = (reference_kernels().text.scan)(&bytes);
        for set in COPIES.iter() {
            let mut out = before.clone();
            prop_assert_eq!((set.text.copy_scan)(&bytes, &mut out), reference, "{}", set.variant);
            prop_assert_eq!(&out[..before.len()], &before[..]);
            prop_assert_eq!(&out[before.len()..], &bytes[..]);
        }
    }
}

#[test]
fn each_finding_is_seen_in_every_lane_the_overlapping_last_one_and_short_inputs() {
    let mut sets = fast_variants("text lanes");
    sets.push(reference_kernels());
    for set in sets {
        for (length, position) in [
            (71, 0),
            (71, 31),
            (71, 32),
            (71, 63),
            (71, 64),
            (71, 70),
            (20, 19),
        ] {
            let mut bytes = vec![b'a'; length];
            assert_eq!(
                (set.text.scan)(&bytes),
                TextScan {
                    quote_or_backslash: false,
                    ascii: true
                }
            );
            for (byte, special, ascii) in [
                (b'"', true, true),
                (b'\\', true, true),
                (0xc3, false, false),
            ] {
                bytes[position] = byte;
                let found = (set.text.scan)(&bytes);
                let mut copy = Vec::new();
                assert_eq!((set.text.copy_scan)(&bytes, &mut copy), found);
                assert_eq!(copy, bytes);
                assert_eq!(
                    (found.quote_or_backslash, found.ascii),
                    (special, ascii),
                    "{}: {byte} at {position}",
                    set.variant
                );
            }
        }
    }
}
