//! One pass over a run of bytes (in provdb, the inside of a stored JSON string literal): does it
//! hold a `"` or `\` (then the literal is not its own value), and is every byte ASCII (then it
//! is valid UTF-8 without a further check). SQL scans ask this of every record's text, so the
//! AVX2 variant does it 32 bytes at a time; [`Variant::Avx512`] uses the same AVX2 pass. Every
//! variant gives the same answer for every input. [`copy_scan`] does the same pass while copying
//! the bytes out, for the Arrow export of the text column.

use crate::select::{Family, Variant};

/// What one pass over the bytes found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextScan {
    /// A `"` or `\` occurs.
    pub quote_or_backslash: bool,
    /// Every byte is below 0x80.
    pub ascii: bool,
}

/// The text kernels of one variant.
#[derive(Clone, Copy)]
pub struct TextKernels {
    /// Name of its variant ([`Variant::name`]), for reports.
    pub name: &'static str,
    /// Scans the bytes.
    pub scan: fn(&[u8]) -> TextScan,
    /// Appends the bytes to the vector and scans them, in one pass.
    pub copy_scan: fn(&[u8], &mut Vec<u8>) -> TextScan,
}

const PORTABLE: TextKernels = TextKernels {
    name: "portable",
    scan: scan_portable,
    copy_scan: copy_scan_portable,
};

/// The kernels of `variant`.
///
/// # Safety
/// The CPU runs `variant` (the functions returned use its instructions).
unsafe fn build(variant: Variant) -> TextKernels {
    match variant {
        Variant::Portable => PORTABLE,
        #[cfg(target_arch = "x86_64")]
        Variant::Avx2 | Variant::Avx512 => TextKernels {
            name: variant.name(),
            scan: avx2::scan,
            copy_scan: avx2::copy_scan,
        },
        #[cfg(not(target_arch = "x86_64"))]
        Variant::Avx2 | Variant::Avx512 => TextKernels {
            name: variant.name(),
            ..PORTABLE
        },
    }
}

static TEXT: Family<TextKernels> = Family::new(build);

/// The text kernels of the [`crate::select::selected`] variant.
pub fn kernels() -> &'static TextKernels {
    TEXT.selected()
}

/// The kernels of `variant`; `None` when this CPU does not run it.
pub fn for_variant(variant: Variant) -> Option<&'static TextKernels> {
    TEXT.for_variant(variant)
}

/// The portable kernels.
pub(crate) fn portable() -> &'static TextKernels {
    &PORTABLE
}

/// Scans `bytes` once with the selected kernels (see the module docs).
pub fn scan(bytes: &[u8]) -> TextScan {
    (kernels().scan)(bytes)
}

/// Appends `bytes` to `out` and scans them (what [`scan`] finds), in one pass.
pub fn copy_scan(bytes: &[u8], out: &mut Vec<u8>) -> TextScan {
    (kernels().copy_scan)(bytes, out)
}

fn scan_portable(bytes: &[u8]) -> TextScan {
    let (mut special, mut high) = (false, 0u8);
    for &b in bytes {
        special |= (b == b'"') | (b == b'\\');
        high |= b;
    }
    TextScan {
        quote_or_backslash: special,
        ascii: high < 0x80,
    }
}

fn copy_scan_portable(bytes: &[u8], out: &mut Vec<u8>) -> TextScan {
    out.extend_from_slice(bytes);
    scan_portable(bytes)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_storeu_si256,
    };

    use super::{TextScan, scan_portable};

    pub(super) fn scan(bytes: &[u8]) -> TextScan {
        // SAFETY: handed out only for a variant the CPU runs, which includes AVX2
        // (`text::build`'s contract); no target is written.
        unsafe { pass(bytes, None) }
    }

    pub(super) fn copy_scan(bytes: &[u8], out: &mut Vec<u8>) -> TextScan {
        out.reserve(bytes.len());
        let start = out.len();
        let target = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: the CPU has AVX2 (as in `scan`); `target` is the spare capacity just
        // reserved for `bytes.len()` bytes, which cannot overlap `bytes` while `out` is
        // borrowed mutably.
        let scan = unsafe { pass(bytes, Some(target)) };
        // SAFETY: the pass wrote every one of the first `bytes.len()` spare bytes.
        unsafe { out.set_len(start + bytes.len()) };
        scan
    }

    /// `scan_portable` 32 bytes at a time (compare with `"` and `\`, OR the bytes for the high
    /// bit), storing each loaded vector at the same offset from `target` when there is one. An
    /// input of 32 bytes or more ends with a vector overlapping the one before: scanning (and
    /// storing) bytes twice changes nothing, and no byte is handled one at a time.
    ///
    /// # Safety
    /// The CPU has AVX2; `target`, when given, is valid for writes of `bytes.len()` bytes that
    /// do not overlap `bytes`.
    #[target_feature(enable = "avx2")]
    unsafe fn pass(bytes: &[u8], target: Option<*mut u8>) -> TextScan {
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
            let found =
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
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
        TextScan {
            quote_or_backslash: _mm256_movemask_epi8(special) != 0,
            ascii: _mm256_movemask_epi8(high) == 0,
        }
    }
}
