//! Per-picture SEI messages and AV1 metadata OBUs: the client's payload arrays
//! (`seiPayloadArray` of H.264/H.265, `obuPayloadArray` of AV1) and NVENC 13.0's HDR fields
//! (`pMasteringDisplay` / `pMaxCll` with `outputMasteringDisplay` / `outputMaxCll`).
//!
//! They are read from client memory through `process_vm_readv` (a bad pointer is an error, not
//! a crash), checked against the header's contract, traced, kept with the frame, and written
//! into that picture's access unit when it comes out in coded order: H.264/H.265 as one SEI NAL
//! unit (H.265: prefix SEI) after the AUD and parameter sets, before the first slice; AV1 as
//! metadata OBUs after the temporal delimiter and sequence header, before the frame.
//!
//! What the header documents: `seiPayloadArrayCnt` / `obuPayloadArrayCnt` "number of elements
//! allocated in" the array; the array of payloads "which will be inserted for this frame";
//! `pMaxCll` / `pMasteringDisplay` "only valid when outputMaxCll / outputMasteringDisplay is set
//! to 1". Everything else here is the emulator's reading, marked *strict* or *undocumented*:
//! - *undocumented*: whether NVENC groups the messages of one picture into one SEI NAL unit (here
//!   one, in array order, native HDR messages first), that it applies emulation prevention (it
//!   must, for a valid stream), that it ends AV1 metadata OBUs with `trailing_bits` (the AV1
//!   syntax requires them; dav1d relies on them), and the units of `MASTERING_DISPLAY_INFO`
//!   (written as given: FFmpeg fills it in the coded syntax's units, H.265 SEI units for HEVC,
//!   AV1 fixed point for AV1).
//! - *strict*: a NULL or unreadable array or payload, or an empty payload, is refused
//!   (`NV_ENC_ERR_INVALID_PTR` / `NV_ENC_ERR_INVALID_PARAM`); so are payload types whose content
//!   NVENC owns (H.26x buffering period 0 and picture timing 1, H.265 active parameter sets 129
//!   and decoded picture hash 132, which is a suffix SEI), AV1 metadata types 0 and above 31
//!   (reserved), sizes that contradict the syntax of a known type (mastering display 24 bytes,
//!   content light level 4, T.35 at least the country code), and a message given twice for one
//!   picture (through the array and NVENC's own HDR field). A 13.0 HDR pointer without its
//!   output bit is a violation and is ignored (what "only valid when" suggests).

use crate::abi::{self, CodecKind, View};
use crate::st;
use crate::trace::Call;
use serde_json::{Map, Value};

/// One SEI message (H.26x `payloadType`) or metadata OBU (AV1 `metadata_type`) for a picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub ty: u32,
    pub body: Vec<u8>,
}

/// A refused call: status and message (traced as a contract violation).
pub struct Bad {
    pub status: i32,
    pub msg: String,
}

fn bad(status: i32, msg: impl Into<String>) -> Bad {
    Bad {
        status,
        msg: msg.into(),
    }
}

/// Copies `len` bytes of this process's memory at `addr`; `None` if any byte of the range is
/// not mapped readable (the kernel checks, nothing is dereferenced here).
pub fn read_client(addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    if len == 0 {
        return Some(buf);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` is our own writable buffer of `len` bytes; the remote range is only read
    // by the kernel, which fails with EFAULT instead of faulting if it is not readable.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == len as isize).then_some(buf)
}

/// SEI payload types H.26x clients must not pass: NVENC writes them from its own state.
fn owned_sei_type(codec: CodecKind, ty: u32) -> Option<&'static str> {
    match (codec, ty) {
        (_, 0) => Some("buffering period (NVENC's HRD: outputBufferingPeriodSEI)"),
        (_, 1) => Some("picture timing (NVENC's HRD: outputPictureTimingSEI)"),
        (CodecKind::Hevc, 129) => Some("active parameter sets (NVENC's own VPS/SPS ids)"),
        (CodecKind::Hevc, 132) => Some("decoded picture hash (a suffix SEI of the coded picture)"),
        _ => None,
    }
}

pub const SEI_T35: u32 = 4;
pub const SEI_MDCV: u32 = 137;
pub const SEI_CLL: u32 = 144;
pub const OBU_META_HDR_CLL: u32 = 1;
pub const OBU_META_HDR_MDCV: u32 = 2;
pub const OBU_META_ITUT_T35: u32 = 4;

/// (mastering display type, content light level type) of a codec.
fn hdr_types(codec: CodecKind) -> (u32, u32) {
    match codec {
        CodecKind::Av1 => (OBU_META_HDR_MDCV, OBU_META_HDR_CLL),
        _ => (SEI_MDCV, SEI_CLL),
    }
}

/// Checks one payload's type and size for `codec`.
fn check_payload(codec: CodecKind, i: usize, p: &Payload) -> Result<(), Bad> {
    let what = if codec == CodecKind::Av1 {
        "obuPayloadArray"
    } else {
        "seiPayloadArray"
    };
    let (mdcv, cll) = hdr_types(codec);
    let t35 = if codec == CodecKind::Av1 {
        OBU_META_ITUT_T35
    } else {
        SEI_T35
    };
    if codec == CodecKind::Av1 && (p.ty == 0 || p.ty > 31) {
        return Err(bad(
            st::INVALID_PARAM,
            format!(
                "{what}[{i}].payloadType {} is a reserved AV1 metadata_type (1..=5 defined, 6..=31 private)",
                p.ty
            ),
        ));
    }
    if codec != CodecKind::Av1
        && let Some(why) = owned_sei_type(codec, p.ty)
    {
        return Err(bad(
            st::INVALID_PARAM,
            format!(
                "{what}[{i}].payloadType {}: {why} is NVENC's to write, not the client's",
                p.ty
            ),
        ));
    }
    let want = match p.ty {
        t if t == mdcv => Some(24),
        t if t == cll => Some(4),
        _ => None,
    };
    if let Some(n) = want
        && p.body.len() != n
    {
        return Err(bad(
            st::INVALID_PARAM,
            format!(
                "{what}[{i}]: payloadType {} ({}) has {n} bytes, payloadSize is {}",
                p.ty,
                if p.ty == mdcv {
                    "mastering display colour volume"
                } else {
                    "content light level"
                },
                p.body.len()
            ),
        ));
    }
    if p.ty == t35 {
        let need = if p.body.first() == Some(&0xff) { 2 } else { 1 };
        if p.body.len() < need {
            return Err(bad(
                st::INVALID_PARAM,
                format!(
                    "{what}[{i}]: an ITU-T T.35 payload starts with the country code (and its extension after 0xFF); payloadSize {}",
                    p.body.len()
                ),
            ));
        }
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads, checks and traces the payloads of one picture. `v` is the client's
/// `NV_ENC_PIC_PARAMS`; `outputs` the session's (`outputMasteringDisplay`, `outputMaxCll`)
/// (13.0; false before). Returns them in the order NVENC writes them: its own HDR messages,
/// then the array's. Soft violations are recorded on `call`.
pub fn picture_payloads(
    v: &View,
    codec: CodecKind,
    outputs: (bool, bool),
    call: &mut Call,
) -> Result<Vec<Payload>, Bad> {
    let (member, cnt_f, arr_f) = match codec {
        CodecKind::H264 => (
            "codecPicParams.h264PicParams.",
            "seiPayloadArrayCnt",
            "seiPayloadArray",
        ),
        CodecKind::Hevc => (
            "codecPicParams.hevcPicParams.",
            "seiPayloadArrayCnt",
            "seiPayloadArray",
        ),
        CodecKind::Av1 => (
            "codecPicParams.av1PicParams.",
            "obuPayloadArrayCnt",
            "obuPayloadArray",
        ),
    };
    let mut out = Vec::new();
    // NVENC 13.0's own HDR messages (fields absent from older layouts read as 0).
    let (mdcv_t, cll_t) = hdr_types(codec);
    for (ptr_f, bit_f, on, strukt, ty) in [
        (
            "pMasteringDisplay",
            "outputMasteringDisplay",
            outputs.0,
            "MASTERING_DISPLAY_INFO",
            mdcv_t,
        ),
        (
            "pMaxCll",
            "outputMaxCll",
            outputs.1,
            "CONTENT_LIGHT_LEVEL",
            cll_t,
        ),
    ] {
        let key = format!("{member}{ptr_f}");
        if codec == CodecKind::H264 || !v.has(&key) {
            continue;
        }
        let p = v.get(&key);
        if p == 0 {
            continue;
        }
        if !on {
            call.violation(format!(
                "{ptr_f} given while the config's {bit_f} is 0: the header says it is only valid with {bit_f}=1; ignored"
            ));
            continue;
        }
        let size = abi::size_of(v.sdk, strukt);
        let mut bytes = read_client(p, size).ok_or_else(|| {
            bad(
                st::INVALID_PTR,
                format!("{ptr_f} {p:#x}: {size} bytes not readable"),
            )
        })?;
        // SAFETY: `bytes` is our copy, exactly the struct's size in this layout.
        let s = unsafe { View::new(bytes.as_mut_ptr(), v.sdk, strukt) };
        let mut m = Map::new();
        s.decode(&format!("{key}."), Some(codec), &mut m, &|_, _| None);
        call.args.remove(&key);
        call.args.extend(m);
        let be16 = |f: &str| (s.get(f) as u16).to_be_bytes();
        let be32 = |f: &str| (s.get(f) as u32).to_be_bytes();
        let body: Vec<u8> = if ty == mdcv_t {
            // H.26x SEI: primaries in the order G, B, R (c = 0, 1, 2); AV1: R, G, B.
            let order: [&str; 3] = if codec == CodecKind::Av1 {
                ["r", "g", "b"]
            } else {
                ["g", "b", "r"]
            };
            let mut b = Vec::with_capacity(24);
            for c in order.iter().chain(["whitePoint"].iter()) {
                b.extend(be16(&format!("{c}.x")));
                b.extend(be16(&format!("{c}.y")));
            }
            b.extend(be32("maxLuma"));
            b.extend(be32("minLuma"));
            b
        } else {
            [
                be16("maxContentLightLevel"),
                be16("maxPicAverageLightLevel"),
            ]
            .concat()
        };
        out.push(Payload { ty, body });
    }
    let cnt = v.get(&format!("{member}{cnt_f}")) as usize;
    let arr = v.get(&format!("{member}{arr_f}"));
    if cnt > 0 {
        if arr == 0 {
            return Err(bad(
                st::INVALID_PTR,
                format!("{cnt_f} {cnt} with a NULL {arr_f}"),
            ));
        }
        let esize = abi::size_of(v.sdk, "NV_ENC_SEI_PAYLOAD");
        let mut raw = read_client(arr, cnt * esize).ok_or_else(|| {
            bad(
                st::INVALID_PTR,
                format!(
                    "{arr_f} {arr:#x}: {cnt} elements ({} bytes) not readable",
                    cnt * esize
                ),
            )
        })?;
        let mut traced = Vec::with_capacity(cnt);
        for i in 0..cnt {
            // SAFETY: element `i` of our copy, `esize` bytes, the table's size.
            let e =
                unsafe { View::new(raw.as_mut_ptr().add(i * esize), v.sdk, "NV_ENC_SEI_PAYLOAD") };
            let (size, ty, p) = (
                e.get("payloadSize") as usize,
                e.get("payloadType") as u32,
                e.get("payload"),
            );
            if size == 0 {
                return Err(bad(
                    st::INVALID_PARAM,
                    format!("{arr_f}[{i}]: payloadSize 0 (an empty message)"),
                ));
            }
            if p == 0 {
                return Err(bad(
                    st::INVALID_PTR,
                    format!("{arr_f}[{i}]: NULL payload of {size} bytes"),
                ));
            }
            let body = read_client(p, size).ok_or_else(|| {
                bad(
                    st::INVALID_PTR,
                    format!("{arr_f}[{i}].payload {p:#x}: {size} bytes not readable"),
                )
            })?;
            let pl = Payload { ty, body };
            let mut t = Map::new();
            t.insert("payloadSize".into(), size.into());
            t.insert("payloadType".into(), ty.into());
            t.insert("payload".into(), hex(&pl.body).into());
            traced.push(Value::Object(t));
            check_payload(codec, i, &pl)?;
            if (ty == mdcv_t || ty == cll_t) && out.iter().any(|o| o.ty == ty) {
                return Err(bad(
                    st::INVALID_PARAM,
                    format!(
                        "{arr_f}[{i}]: payloadType {ty} again, though NVENC writes it from {} for this picture",
                        if ty == mdcv_t {
                            "pMasteringDisplay"
                        } else {
                            "pMaxCll"
                        }
                    ),
                ));
            }
            out.push(pl);
        }
        call.args
            .insert(format!("{member}{arr_f}"), Value::Array(traced));
    }
    Ok(out)
}

/// Adds H.264/H.265 emulation prevention bytes to an RBSP.
fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 2);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// One SEI NAL unit (Annex B, 4-byte start code) carrying `payloads` as `sei_message()`s.
/// H.265: a prefix SEI (type 39) with the access unit's `nuh_temporal_id_plus1`.
pub fn sei_nal(codec: CodecKind, payloads: &[Payload], temporal_id_plus1: u8) -> Vec<u8> {
    let mut rbsp = Vec::new();
    for p in payloads {
        for mut v in [p.ty as usize, p.body.len()] {
            while v >= 255 {
                rbsp.push(0xff);
                v -= 255;
            }
            rbsp.push(v as u8);
        }
        rbsp.extend_from_slice(&p.body);
    }
    rbsp.push(0x80); // rbsp_trailing_bits
    let mut nal = vec![0, 0, 0, 1];
    match codec {
        CodecKind::H264 => nal.push(6),
        _ => nal.extend_from_slice(&[39 << 1, temporal_id_plus1.max(1)]),
    }
    nal.extend(escape(&rbsp));
    nal
}

fn leb128(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

/// One AV1 `OBU_METADATA` (with `obu_size`): `metadata_type`, the body, `trailing_bits`.
pub fn metadata_obu(p: &Payload) -> Vec<u8> {
    let mut payload = Vec::with_capacity(p.body.len() + 4);
    leb128(p.ty as usize, &mut payload);
    payload.extend_from_slice(&p.body);
    payload.push(0x80);
    let mut obu = vec![(5 << 3) | 0x2];
    leb128(payload.len(), &mut obu);
    obu.extend(payload);
    obu
}

/// `data` (one picture's access unit / temporal unit) with `payloads` written where NVENC puts
/// them (see the module docs).
pub fn insert(codec: CodecKind, data: &[u8], payloads: &[Payload]) -> Vec<u8> {
    if payloads.is_empty() {
        return data.to_vec();
    }
    match codec {
        CodecKind::Av1 => {
            // Before the first frame header / frame / tile group OBU (types 3, 4, 6, 7, 8).
            let at = crate::hdr::obus(data)
                .and_then(|o| o.into_iter().find(|x| matches!(x.2, 3 | 4 | 6 | 7 | 8)))
                .map(|x| x.0)
                .unwrap_or(0);
            let mut out = data[..at].to_vec();
            for p in payloads {
                out.extend(metadata_obu(p));
            }
            out.extend_from_slice(&data[at..]);
            out
        }
        _ => {
            // Before the first VCL NAL unit (H.264 types 1..=5, H.265 0..=31).
            let units = crate::hdr::nal_units(data);
            let vcl = units.iter().find(|(_, p, e)| {
                p < e
                    && match codec {
                        CodecKind::H264 => (1..=5).contains(&(data[*p] & 0x1f)),
                        _ => (data[*p] >> 1) & 0x3f <= 31,
                    }
            });
            let (at, tid) = match vcl {
                Some((sc, p, _)) => (*sc, data.get(p + 1).map_or(1, |b| b & 7)),
                None => (data.len(), 1),
            };
            let mut out = data[..at].to_vec();
            out.extend(sei_nal(codec, payloads, tid));
            out.extend_from_slice(&data[at..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sei_nal_escapes_and_codes_types() {
        let p = [
            Payload {
                ty: 137,
                body: vec![0, 0, 1, 2],
            },
            Payload {
                ty: 300,
                body: vec![9],
            },
        ];
        let n = sei_nal(CodecKind::Hevc, &p, 1);
        // type 137, size 4, 00 00 03 01 02, type 255+45, size 1, 09, trailing.
        assert_eq!(
            n,
            [
                0, 0, 0, 1, 78, 1, 137, 4, 0, 0, 3, 1, 2, 0xff, 45, 1, 9, 0x80
            ]
        );
        assert_eq!(sei_nal(CodecKind::H264, &p[1..], 1)[4], 6);
    }

    #[test]
    fn insert_before_first_slice() {
        let aud = [0, 0, 0, 1, 35 << 1, 1, 0x50];
        let vps = [0, 0, 0, 1, 32 << 1, 1, 7];
        let idr = [0, 0, 0, 1, 19 << 1, 1, 0xaa];
        let au = [aud.as_slice(), vps.as_slice(), idr.as_slice()].concat();
        let p = [Payload {
            ty: 144,
            body: vec![3, 0xe8, 1, 0x90],
        }];
        let got = insert(CodecKind::Hevc, &au, &p);
        let sei = sei_nal(CodecKind::Hevc, &p, 1);
        assert_eq!(
            got,
            [
                aud.as_slice(),
                vps.as_slice(),
                sei.as_slice(),
                idr.as_slice()
            ]
            .concat()
        );
    }

    #[test]
    fn av1_metadata_after_sequence_header() {
        let td = [0x12, 0];
        let sh = [0x0a, 2, 7, 7];
        let fr = [0x32, 1, 9];
        let tu = [td.as_slice(), sh.as_slice(), fr.as_slice()].concat();
        let p = Payload {
            ty: 1,
            body: vec![3, 0xe8, 1, 0x90],
        };
        let obu = metadata_obu(&p);
        assert_eq!(obu, [0x2a, 6, 1, 3, 0xe8, 1, 0x90, 0x80]);
        let got = insert(CodecKind::Av1, &tu, std::slice::from_ref(&p));
        assert_eq!(
            got,
            [td.as_slice(), sh.as_slice(), obu.as_slice(), fr.as_slice()].concat()
        );
    }

    #[test]
    fn checks() {
        let ok = |c, ty, n| {
            check_payload(
                c,
                0,
                &Payload {
                    ty,
                    body: vec![1; n],
                },
            )
            .is_ok()
        };
        assert!(ok(CodecKind::Hevc, 137, 24));
        assert!(!ok(CodecKind::Hevc, 137, 23));
        assert!(!ok(CodecKind::Hevc, 132, 16));
        assert!(!ok(CodecKind::H264, 1, 4));
        assert!(ok(CodecKind::H264, 5, 20));
        assert!(ok(CodecKind::Av1, 4, 1));
        assert!(!ok(CodecKind::Av1, 0, 4));
        assert!(!ok(CodecKind::Av1, 32, 4));
        assert!(!ok(CodecKind::Av1, 1, 5));
        let b = vec![0u8; 7];
        assert_eq!(read_client(b.as_ptr() as u64, 7), Some(b.clone()));
        assert_eq!(read_client(8, 4), None);
    }
}
