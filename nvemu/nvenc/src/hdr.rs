//! Putting sequence headers on (or taking them off) a coded frame, so that in-band headers are
//! exactly where the client asked for them, whatever the software encoder did.

use crate::abi::CodecKind;

/// Annex B NAL units: (start of the start code, start of the payload, end).
pub(crate) fn nal_units(d: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= d.len() {
        if d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 {
            let sc = if i > 0 && d[i - 1] == 0 { i - 1 } else { i };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut v = Vec::new();
    for (k, (sc, p)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|x| x.0).unwrap_or(d.len());
        v.push((*sc, *p, end));
    }
    v
}

fn is_param_set(codec: CodecKind, b: u8) -> bool {
    match codec {
        CodecKind::H264 => matches!(b & 0x1f, 7 | 8 | 13 | 15),
        CodecKind::Hevc => matches!((b >> 1) & 0x3f, 32..=34),
        CodecKind::Av1 => false,
    }
}

fn is_aud(codec: CodecKind, b: u8) -> bool {
    match codec {
        CodecKind::H264 => b & 0x1f == 9,
        CodecKind::Hevc => (b >> 1) & 0x3f == 35,
        CodecKind::Av1 => false,
    }
}

/// AV1 OBUs: (start, end, type).
pub(crate) fn obus(d: &[u8]) -> Option<Vec<(usize, usize, u8)>> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < d.len() {
        let h = d[i];
        let ty = (h >> 3) & 0xf;
        let ext = (h >> 2) & 1;
        let has_size = (h >> 1) & 1;
        let mut j = i + 1 + ext as usize;
        if has_size == 0 {
            v.push((i, d.len(), ty));
            break;
        }
        let mut size: u64 = 0;
        for k in 0..8 {
            let b = *d.get(j)?;
            j += 1;
            size |= ((b & 0x7f) as u64) << (7 * k);
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = j.checked_add(size as usize)?;
        if end > d.len() {
            return None;
        }
        v.push((i, end, ty));
        i = end;
    }
    Some(v)
}

/// Whether the frame carries in-band sequence headers.
pub fn has_headers(codec: CodecKind, d: &[u8]) -> bool {
    match codec {
        CodecKind::Av1 => obus(d).is_some_and(|o| o.iter().any(|x| x.2 == 1)),
        _ => nal_units(d)
            .iter()
            .any(|(_, p, e)| p < e && is_param_set(codec, d[*p])),
    }
}

/// Returns the frame with headers removed.
pub fn strip(codec: CodecKind, d: &[u8]) -> Vec<u8> {
    match codec {
        CodecKind::Av1 => match obus(d) {
            Some(o) => o
                .iter()
                .filter(|x| x.2 != 1)
                .flat_map(|x| d[x.0..x.1].iter().copied())
                .collect(),
            None => d.to_vec(),
        },
        _ => {
            let units = nal_units(d);
            if units.is_empty() {
                return d.to_vec();
            }
            let mut out = d[..units[0].0].to_vec();
            for (sc, p, e) in units {
                if p < e && is_param_set(codec, d[p]) {
                    continue;
                }
                out.extend_from_slice(&d[sc..e]);
            }
            out
        }
    }
}

/// Returns the frame with `seq` (the encoder's sequence header) inserted: after a leading
/// access unit delimiter / temporal delimiter, before everything else.
pub fn insert(codec: CodecKind, d: &[u8], seq: &[u8]) -> Vec<u8> {
    let at = match codec {
        CodecKind::Av1 => match obus(d) {
            Some(o) => o.first().filter(|x| x.2 == 2).map(|x| x.1).unwrap_or(0),
            None => 0,
        },
        _ => {
            let units = nal_units(d);
            match units.first() {
                Some((_, p, e)) if p < e && is_aud(codec, d[*p]) => *e,
                _ => 0,
            }
        }
    };
    let mut out = Vec::with_capacity(d.len() + seq.len());
    out.extend_from_slice(&d[..at]);
    out.extend_from_slice(seq);
    out.extend_from_slice(&d[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_strip_insert() {
        let seq = [
            0, 0, 0, 1, 0x40, 1, 0, 0, 0, 1, 0x42, 1, 0, 0, 0, 1, 0x44, 1,
        ];
        let aud = [0, 0, 0, 1, 35 << 1, 1, 0x50];
        let idr = [0, 0, 0, 1, 19 << 1, 1, 0xaa];
        let mut f = aud.to_vec();
        f.extend(seq);
        f.extend(idr);
        assert!(has_headers(CodecKind::Hevc, &f));
        let s = strip(CodecKind::Hevc, &f);
        assert!(!has_headers(CodecKind::Hevc, &s));
        assert_eq!(s, [aud.as_slice(), idr.as_slice()].concat());
        let back = insert(CodecKind::Hevc, &s, &seq);
        assert_eq!(back, f);
    }

    #[test]
    fn av1_strip_insert() {
        let td = [0x12, 0];
        let sh = [0x0a, 2, 7, 7];
        let fr = [0x32, 1, 9];
        let f = [td.as_slice(), sh.as_slice(), fr.as_slice()].concat();
        assert!(has_headers(CodecKind::Av1, &f));
        let s = strip(CodecKind::Av1, &f);
        assert_eq!(s, [td.as_slice(), fr.as_slice()].concat());
        assert_eq!(insert(CodecKind::Av1, &s, &sh), f);
    }
}
