//! H.264 / H.265 NAL unit helpers: Annex B byte-stream splitting and
//! conversion to the length-prefixed form used by ISO-BMFF
//! (`stream-format=avc`/`hvc1`).
//!
//! Also emulation prevention removal ([`unescape`]), which the parameter-set parsers share
//! (they read the RBSP with the crate's one bit reader, `crate::bits::BitReader`).
//!
//! Pure `std`, no `unsafe`, never panics.
//!
//! References: ITU-T H.264 Annex B and §7.3.1 / §7.4.1, ITU-T H.265 Annex B
//! and §7.3.1.2 / §7.4.2, ISO/IEC 14496-15 §5.3.2 / §8.3.2 (length-prefixed
//! samples).

/// H.265 `nal_unit_type` of a video parameter set (H.265 Table 7-1).
pub const HEVC_NAL_VPS: u8 = 32;
/// H.265 `nal_unit_type` of a sequence parameter set.
pub const HEVC_NAL_SPS: u8 = 33;
/// H.265 `nal_unit_type` of a picture parameter set.
pub const HEVC_NAL_PPS: u8 = 34;
/// H.265 `nal_unit_type` of an access unit delimiter.
pub const HEVC_NAL_AUD: u8 = 35;
/// H.265 `nal_unit_type` of a prefix SEI message.
pub const HEVC_NAL_PREFIX_SEI: u8 = 39;
/// H.265 `nal_unit_type` of a suffix SEI message.
pub const HEVC_NAL_SUFFIX_SEI: u8 = 40;
/// H.264 `nal_unit_type` of an IDR slice (H.264 Table 7-1).
pub const H264_NAL_IDR: u8 = 5;
/// H.264 `nal_unit_type` of a sequence parameter set.
pub const H264_NAL_SPS: u8 = 7;
/// H.264 `nal_unit_type` of a picture parameter set.
pub const H264_NAL_PPS: u8 = 8;
/// H.264 `nal_unit_type` of an access unit delimiter.
pub const H264_NAL_AUD: u8 = 9;

/// Returned by [`hevc_nal_type`] / [`h264_nal_type`] for an empty NAL unit;
/// no valid type has this value.
pub const NAL_TYPE_INVALID: u8 = u8::MAX;

/// Splits an Annex B byte stream (H.264/H.265 Annex B) into NAL units,
/// without their start codes, in stream order.
///
/// Both 3-byte (`00 00 01`) and 4-byte (`00 00 00 01`) start codes are
/// recognised. Bytes before the first start code (`leading_zero_8bits` or
/// garbage) are skipped. Zero bytes at the end of each NAL unit are
/// `trailing_zero_8bits` (or the `zero_byte` of the next 4-byte start code)
/// and are removed, which is exact because a NAL unit never ends in `0x00`
/// (H.264 §7.4.1, H.265 §7.4.2). Empty NAL units are not returned.
///
/// The returned slices borrow from `data`.
pub fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_trimmed(&mut nals, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else if data[i + 2] > 1 {
            // No start code can begin at i, i + 1 or i + 2.
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut nals, &data[s..]);
    }
    nals
}

fn push_trimmed<'a>(nals: &mut Vec<&'a [u8]>, nal: &'a [u8]) {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if end > 0 {
        nals.push(&nal[..end]);
    }
}

/// Converts an Annex B byte stream to length-prefixed NAL units, appending to
/// `out` (which is not cleared): each NAL unit from [`split_annexb`] is
/// written as a 4-byte big-endian length followed by the NAL unit
/// (ISO/IEC 14496-15 sample format with `lengthSizeMinusOne = 3`).
///
/// A NAL unit longer than `u32::MAX` bytes cannot be represented and is
/// dropped.
pub fn annexb_to_length_prefixed(data: &[u8], out: &mut Vec<u8>) {
    for nal in split_annexb(data) {
        if let Ok(len) = u32::try_from(nal.len()) {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
}

/// Returns the H.265 `nal_unit_type` (0..=63) from the first byte of the
/// two-byte NAL unit header (H.265 §7.3.1.2), or [`NAL_TYPE_INVALID`] if
/// `nal` is empty. `nal` is a NAL unit without start code or length prefix.
pub fn hevc_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(NAL_TYPE_INVALID, |b| (b >> 1) & 0x3f)
}

/// Returns the H.264 `nal_unit_type` (0..=31) from the NAL unit header
/// (H.264 §7.3.1), or [`NAL_TYPE_INVALID`] if `nal` is empty. `nal` is a NAL
/// unit without start code or length prefix.
pub fn h264_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(NAL_TYPE_INVALID, |b| b & 0x1f)
}

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`, H.264 §7.4.1,
/// H.265 §7.3.1.1) from a NAL unit, returning its RBSP bytes (header included).
pub fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x40, 0x01, 0x0c, // VPS, 4-byte start code
            0, 0, 1, 0x42, 0x01, 0x01, // SPS, 3-byte start code
            0, 0, 0, 1, 0x44, 0x01, 0xc1, // PPS
            0, 0, 1, 0x26, 0x01, 0xaf, 0x00, 0x00, 0x03, 0x00, 0x80, // slice with EPB
        ];
        let nals = split_annexb(&data);
        assert_eq!(
            nals,
            vec![
                &[0x40, 0x01, 0x0c][..],
                &[0x42, 0x01, 0x01][..],
                &[0x44, 0x01, 0xc1][..],
                &[0x26, 0x01, 0xaf, 0x00, 0x00, 0x03, 0x00, 0x80][..],
            ]
        );
        let types: Vec<u8> = nals.iter().map(|n| hevc_nal_type(n)).collect();
        assert_eq!(types, vec![HEVC_NAL_VPS, HEVC_NAL_SPS, HEVC_NAL_PPS, 19]);
    }

    #[test]
    fn leading_and_trailing_zeros() {
        // leading_zero_8bits, trailing_zero_8bits, garbage before first start code.
        let data = [
            0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x67, 0x42, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x68, 0xce, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            split_annexb(&data),
            vec![&[0x67, 0x42][..], &[0x68, 0xce][..]]
        );
        assert_eq!(h264_nal_type(&[0x67]), H264_NAL_SPS);
        assert_eq!(h264_nal_type(&[0x68]), H264_NAL_PPS);
        assert_eq!(h264_nal_type(&[0x65]), H264_NAL_IDR);
        assert_eq!(h264_nal_type(&[0x09]), H264_NAL_AUD);
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        assert!(split_annexb(&[]).is_empty());
        assert!(split_annexb(&[0, 0]).is_empty());
        assert!(split_annexb(&[0, 0, 1]).is_empty());
        assert!(split_annexb(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 1]).is_empty());
        assert!(split_annexb(&[0x12, 0x34, 0x56]).is_empty()); // no start code
        assert_eq!(split_annexb(&[0, 0, 1, 0, 0, 1, 5]), vec![&[5u8][..]]);
        assert_eq!(split_annexb(&[0, 0, 1, 0x80]), vec![&[0x80u8][..]]);
        assert_eq!(split_annexb(&[0, 0, 1, 2, 0, 0, 1]), vec![&[2u8][..]]);
        assert_eq!(hevc_nal_type(&[]), NAL_TYPE_INVALID);
        assert_eq!(h264_nal_type(&[]), NAL_TYPE_INVALID);
        // forbidden_zero_bit is ignored by the type accessors.
        assert_eq!(hevc_nal_type(&[0xff]), 63);
        assert_eq!(h264_nal_type(&[0xff]), 31);
    }

    #[test]
    fn length_prefixed_appends() {
        let mut out = vec![0xaa];
        annexb_to_length_prefixed(
            &[0, 0, 0, 1, 0x40, 0x01, 0, 0, 1, 0x02, 0x01, 0x03],
            &mut out,
        );
        assert_eq!(
            out,
            vec![0xaa, 0, 0, 0, 2, 0x40, 0x01, 0, 0, 0, 3, 0x02, 0x01, 0x03]
        );
        let mut out = Vec::new();
        annexb_to_length_prefixed(&[], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn real_x265_stream() {
        let data = include_bytes!("testdata/hevc_420_8.h265");
        let nals = split_annexb(data);
        let types: Vec<u8> = nals.iter().map(|n| hevc_nal_type(n)).collect();
        // VPS, SPS, PPS, prefix SEI (x265 info), then 3 slices.
        assert_eq!(&types[..4], &[32, 33, 34, 39]);
        assert_eq!(types.len(), 7);
        assert!(types[4..].iter().all(|&t| t < 32));
        // The length-prefixed form has the same payload bytes plus 4 per NAL.
        let mut out = Vec::new();
        annexb_to_length_prefixed(data, &mut out);
        let total: usize = nals.iter().map(|n| n.len() + 4).sum();
        assert_eq!(out.len(), total);
        // Walk it back.
        let mut pos = 0;
        for nal in &nals {
            let len = u32::from_be_bytes([out[pos], out[pos + 1], out[pos + 2], out[pos + 3]]);
            assert_eq!(len as usize, nal.len());
            assert_eq!(&out[pos + 4..pos + 4 + nal.len()], *nal);
            pos += 4 + nal.len();
        }
        // Every NAL is intact: no start code inside, non-zero last byte.
        for nal in &nals {
            assert!(nal.windows(3).all(|w| w != [0, 0, 1]));
            assert_ne!(nal.last(), Some(&0));
        }
    }

    #[test]
    fn matches_naive_reference_on_random_streams() {
        // Reference: find every 00 00 01, cut, trim trailing zeros.
        fn naive(data: &[u8]) -> Vec<Vec<u8>> {
            let mut starts = Vec::new();
            let mut i = 0;
            while i + 3 <= data.len() {
                if data[i..i + 3] == [0, 0, 1] {
                    starts.push(i);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            let mut out = Vec::new();
            for (k, &s) in starts.iter().enumerate() {
                let end = starts.get(k + 1).copied().unwrap_or(data.len());
                let mut nal = data[s + 3..end].to_vec();
                while nal.last() == Some(&0) {
                    nal.pop();
                }
                if !nal.is_empty() {
                    out.push(nal);
                }
            }
            out
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            let mut s2 = state;
            // Mostly 0/1 bytes so start codes are frequent.
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    s2 ^= s2 << 13;
                    s2 ^= s2 >> 7;
                    s2 ^= s2 << 17;
                    match s2 % 5 {
                        0 | 1 => 0,
                        2 => 1,
                        3 => 2,
                        _ => (s2 >> 8) as u8,
                    }
                })
                .collect();
            let got: Vec<Vec<u8>> = split_annexb(&data).iter().map(|n| n.to_vec()).collect();
            assert_eq!(got, naive(&data), "input {data:02x?}");
        }
    }

    #[test]
    fn unescape_and_length_prefix_on_random_data() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut s2 = state;
            let data: Vec<u8> = (0..state % 80)
                .map(|_| {
                    s2 ^= s2 << 13;
                    s2 ^= s2 >> 7;
                    s2 ^= s2 << 17;
                    [0, 0, 1, 3, s2 as u8][(s2 % 5) as usize]
                })
                .collect();
            let rbsp = unescape(&data);
            assert!(rbsp.len() <= data.len());
            // Emulation prevention (H.264 §7.4.1) undone gives the bytes back.
            let mut escaped = Vec::new();
            let mut zeros = 0;
            for &b in &data {
                if zeros >= 2 && b <= 3 {
                    escaped.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                escaped.push(b);
            }
            assert_eq!(unescape(&escaped), data);
            let mut out = Vec::new();
            annexb_to_length_prefixed(&data, &mut out);
            let nals = split_annexb(&data);
            assert_eq!(out.len(), nals.iter().map(|n| n.len() + 4).sum::<usize>());
            for nal in nals {
                let _ = (h264_nal_type(nal), hevc_nal_type(nal));
            }
        }
    }
}
