//! One pass over the inside of a stored JSON string literal: does it hold a `"` or `\` (then
//! it is not its own value), and is every byte ASCII (then it is valid UTF-8 without a further
//! check). SQL scans ask this of every record's text, so it uses AVX2 when the CPU has it
//! (detected at run time: the binary targets baseline x86-64) and a portable loop otherwise;
//! both give the same answer for every input (property test below). [`copy_literal`] does the
//! same pass while copying the bytes out, for the Arrow export of the text column.

/// What one pass over a literal's bytes found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiteralScan {
    /// A `"` or `\` occurs.
    pub(crate) quote_or_backslash: bool,
    /// Every byte is below 0x80.
    pub(crate) ascii: bool,
}

/// Scans `bytes` once (see the module doc).
pub(crate) fn scan_literal(bytes: &[u8]) -> LiteralScan {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above; no target is written.
        return unsafe { pass_avx2(bytes, None) };
    }
    scan_portable(bytes)
}

/// Appends `bytes` to `out` and scans them (what [`scan_literal`] finds), in one pass.
pub(crate) fn copy_literal(bytes: &[u8], out: &mut Vec<u8>) -> LiteralScan {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        out.reserve(bytes.len());
        let start = out.len();
        let target = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: the CPU has AVX2, checked just above; `target` is the spare capacity just
        // reserved for `bytes.len()` bytes, which cannot overlap `bytes` while `out` is
        // borrowed mutably.
        let scan = unsafe { pass_avx2(bytes, Some(target)) };
        // SAFETY: the pass wrote every one of the first `bytes.len()` spare bytes.
        unsafe { out.set_len(start + bytes.len()) };
        return scan;
    }
    out.extend_from_slice(bytes);
    scan_portable(bytes)
}

fn scan_portable(bytes: &[u8]) -> LiteralScan {
    let (mut special, mut high) = (false, 0u8);
    for &b in bytes {
        special |= (b == b'"') | (b == b'\\');
        high |= b;
    }
    LiteralScan {
        quote_or_backslash: special,
        ascii: high < 0x80,
    }
}

/// `scan_portable` 32 bytes at a time (compare with `"` and `\`, OR the bytes for the high
/// bit), storing each loaded vector at the same offset from `target` when there is one. An
/// input of 32 bytes or more ends with a vector overlapping the one before: scanning (and
/// storing) bytes twice changes nothing, and no byte is handled one at a time.
///
/// # Safety
/// The CPU has AVX2; `target`, when given, is valid for writes of `bytes.len()` bytes that do
/// not overlap `bytes`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pass_avx2(bytes: &[u8], target: Option<*mut u8>) -> LiteralScan {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_storeu_si256,
    };
    let length = bytes.len();
    if length < 32 {
        if let Some(target) = target {
            // SAFETY: the caller's promise for `target`.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), target, length) };
        }
        return scan_portable(bytes);
    }
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let (mut special, mut high) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut lane = |at: usize| {
        // SAFETY: every `at` below is at most `length - 32`, so 32 bytes are readable from
        // `bytes` and (by the caller's promise) writable at `target`; neither the load nor
        // the store has an alignment requirement.
        let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().add(at).cast::<__m256i>()) };
        if let Some(target) = target {
            unsafe { _mm256_storeu_si256(target.add(at).cast::<__m256i>(), v) };
        }
        let found = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
        special = _mm256_or_si256(special, found);
        high = _mm256_or_si256(high, v);
    };
    let mut at = 0;
    while at + 32 <= length {
        lane(at);
        at += 32;
    }
    if at < length {
        lane(length - 32);
    }
    LiteralScan {
        quote_or_backslash: _mm256_movemask_epi8(special) != 0,
        ascii: _mm256_movemask_epi8(high) == 0,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_dispatched_scan_agrees_with_the_portable_one(
            bytes in proptest::collection::vec(
                prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')],
                0..200,
            ),
            cut in 0usize..200,
        ) {
            // Also every suffix start, so specials land at each position of a 32-byte lane.
            let bytes = &bytes[cut.min(bytes.len())..];
            prop_assert_eq!(scan_literal(bytes), scan_portable(bytes));
        }

        #[test]
        fn the_copy_appends_the_bytes_and_scans_them(
            before in proptest::collection::vec(any::<u8>(), 0..40),
            bytes in proptest::collection::vec(
                prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"')],
                0..200,
            ),
        ) {
            let mut out = before.clone();
            let found = copy_literal(&bytes, &mut out);
            prop_assert_eq!(found, scan_portable(&bytes));
            prop_assert_eq!(&out[..before.len()], &before[..]);
            prop_assert_eq!(&out[before.len()..], &bytes[..]);
        }
    }

    #[test]
    fn each_finding_is_seen_in_every_lane_the_overlapping_last_one_and_short_inputs() {
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
                scan_literal(&bytes),
                LiteralScan {
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
                let found = scan_literal(&bytes);
                let mut copy = Vec::new();
                assert_eq!(copy_literal(&bytes, &mut copy), found);
                assert_eq!(copy, bytes);
                assert_eq!(
                    (found.quote_or_backslash, found.ascii),
                    (special, ascii),
                    "{byte} at {position}"
                );
            }
        }
    }
}
