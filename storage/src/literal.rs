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
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { scan_avx2(bytes) };
    }
    scan_portable(bytes)
}

/// Appends `bytes` to `out` and scans them (what [`scan_literal`] finds), in one pass.
pub(crate) fn copy_literal(bytes: &[u8], out: &mut Vec<u8>) -> LiteralScan {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { copy_avx2(bytes, out) };
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

/// `scan_portable` 32 bytes at a time: compare with `"` and `\`, OR the bytes for the high bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(bytes: &[u8]) -> LiteralScan {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_setzero_si256,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let (mut special, mut high) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 32 readable bytes; the load has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()) };
        let found = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
        special = _mm256_or_si256(special, found);
        high = _mm256_or_si256(high, v);
    }
    let tail = scan_portable(chunks.remainder());
    LiteralScan {
        quote_or_backslash: _mm256_movemask_epi8(special) != 0 || tail.quote_or_backslash,
        ascii: _mm256_movemask_epi8(high) == 0 && tail.ascii,
    }
}

/// `copy_literal` 32 bytes at a time: each loaded vector is scanned and stored.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_avx2(bytes: &[u8], out: &mut Vec<u8>) -> LiteralScan {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_storeu_si256,
    };
    out.reserve(bytes.len());
    let start = out.len();
    let target = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let (mut special, mut high) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut chunks = bytes.chunks_exact(32);
    for (index, chunk) in (&mut chunks).enumerate() {
        // SAFETY: `chunk` is 32 readable bytes; the load has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()) };
        // SAFETY: the 32 bytes at `index * 32` lie within the first `bytes.len()` bytes of
        // the spare capacity reserved above; the store has no alignment requirement.
        unsafe { _mm256_storeu_si256(target.add(index * 32).cast::<__m256i>(), v) };
        let found = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
        special = _mm256_or_si256(special, found);
        high = _mm256_or_si256(high, v);
    }
    let tail = chunks.remainder();
    let copied = bytes.len() - tail.len();
    // SAFETY: `tail` ends the input and its bytes go to the spare capacity's matching (and
    // reserved) positions; source and target cannot overlap, `out` being borrowed mutably.
    unsafe { std::ptr::copy_nonoverlapping(tail.as_ptr(), target.add(copied), tail.len()) };
    // SAFETY: the first `bytes.len()` bytes of the spare capacity were all written above.
    unsafe { out.set_len(start + bytes.len()) };
    let tail = scan_portable(tail);
    LiteralScan {
        quote_or_backslash: _mm256_movemask_epi8(special) != 0 || tail.quote_or_backslash,
        ascii: _mm256_movemask_epi8(high) == 0 && tail.ascii,
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
    fn each_finding_is_seen_in_the_vector_part_and_in_the_tail() {
        for position in [0, 31, 32, 63, 64, 70] {
            let mut bytes = vec![b'a'; 71];
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
                assert_eq!(
                    (found.quote_or_backslash, found.ascii),
                    (special, ascii),
                    "{byte} at {position}"
                );
            }
        }
    }
}
