//! H.264 clock timestamps: `NV_ENC_CONFIG_H264::enableTimeCode` and
//! `NV_ENC_PIC_PARAMS_H264::timeCode` (`NV_ENC_TIME_CODE`), written as the picture timing SEI
//! (payloadType 1, H.264 D.1.3 / D.2.3).
//!
//! What the header documents: `enableTimeCode` "Set to 1 to enable writing of clock timestamp
//! sets in picture timing SEI"; `timeCode` "Applicable only when enableTimeCode is set to 1";
//! `NV_ENC_CLOCK_TIMESTAMP_SET` fields "Specifies the 'counting_type'" ... "'time_offset_value'",
//! `reserved2` "Reserved and must be set to 0"; `skipClockTimestampInsertion` (12.2+) "1 : Skips
//! insertion of Clock Timestamp for current frame". Everything else is the emulator's reading:
//! - *undocumented*, chosen here: with `enableTimeCode` every picture carries a picture timing
//!   SEI (so the SPS has `pic_struct_present_flag` 1: x264's `pic-struct`), without HRD
//!   (`CpbDpbDelaysPresentFlag` 0: x264 `nal-hrd=none`, so `time_offset_length` is inferred as
//!   24, H.264 E.2.2); `pic_struct` from `displayPicStruct` (FRAME 0, FIELD_TOP_BOTTOM 3,
//!   FIELD_BOTTOM_TOP 4, FRAME_DOUBLING 7, FRAME_TRIPLING 8) with its `NumClockTS` (Table D-1:
//!   1, 2, 2, 2, 3) timestamps from `clockTimestamp[0..NumClockTS]`; `ct_type` 0 (progressive)
//!   for the frame structures, 1 (interlaced) for the field pairs; `nuit_field_based_flag` 1
//!   (`n_frames` counts frames: the SPS's `time_scale` is 2 x `num_units_in_tick` x the frame
//!   rate, D-1 then gives `nFrames` frame durations); `full_timestamp_flag` 1; `counting_type`
//!   the 1-bit `countingType` as it is (0 or 1: the header's field cannot hold 2..6, so
//!   drop-frame counting 4 is not expressible before SDK 13.1); a picture without timestamps
//!   (`skipClockTimestampInsertion` 1) still gets the SEI, with `clock_timestamp_flag` 0.
//! - *strict*: `displayPicStruct` above 4, a non-zero `reserved2`, `secondsValue` or
//!   `minutesValue` above 59, `hoursValue` above 23, `nFrames` at or above the frame rate
//!   (rounded up; D.2.3 bounds it by MaxFPS), and a `timeOffset` outside `i(24)` are refused
//!   (`NV_ENC_ERR_INVALID_PARAM`): what the driver does with them is unknown.
//! - A `timeCode` with non-zero fields while `enableTimeCode` is 0 is ignored (noted).

use crate::abi::View;
use crate::payload::Bad;
use crate::st;
use crate::trace::Call;
use serde_json::{Map, Value};

/// SEI `payloadType` of the picture timing message.
pub const SEI_PIC_TIMING: u32 = 1;

const TC: &str = "codecPicParams.h264PicParams.timeCode";

/// MSB-first bit writer for one SEI payload.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    n: usize,
}

impl Bits {
    fn put(&mut self, width: u32, v: u64) {
        for k in (0..width).rev() {
            if self.n.is_multiple_of(8) {
                self.out.push(0);
            }
            let bit = ((v >> k) & 1) as u8;
            let last = self.out.len() - 1;
            self.out[last] |= bit << (7 - self.n % 8);
            self.n += 1;
        }
    }

    /// The payload, ended as `sei_payload()` ends one that is not byte aligned
    /// (`bit_equal_to_one`, then `bit_equal_to_zero` to the byte boundary).
    fn finish(mut self) -> Vec<u8> {
        if !self.n.is_multiple_of(8) {
            self.put(1, 1);
            while !self.n.is_multiple_of(8) {
                self.put(1, 0);
            }
        }
        self.out
    }
}

/// (`pic_struct`, `NumClockTS`, `ct_type`) of an `NV_ENC_DISPLAY_PIC_STRUCT`.
fn pic_struct_of(display: u64) -> Option<(u64, usize, u64)> {
    Some(match display {
        0 => (0, 1, 0),
        1 => (3, 2, 1),
        2 => (4, 2, 1),
        3 => (7, 2, 0),
        4 => (8, 3, 0),
        _ => return None,
    })
}

fn bad(msg: String) -> Bad {
    Bad {
        status: st::INVALID_PARAM,
        msg,
    }
}

/// The picture timing SEI payload of one picture from its `timeCode` (`v`: the client's
/// `NV_ENC_PIC_PARAMS`), checked and traced (`call`). `fps`: the session's frame rate.
pub fn picture_timing(v: &View, fps: (u32, u32), call: &mut Call) -> Result<Vec<u8>, Bad> {
    let display = v.get(&format!("{TC}.displayPicStruct"));
    let (pic_struct, num_clock_ts, ct_type) = pic_struct_of(display).ok_or_else(|| {
        bad(format!(
            "timeCode.displayPicStruct {display} is not an NV_ENC_DISPLAY_PIC_STRUCT (0..=4)"
        ))
    })?;
    // Absent before 12.2 (read as 0: timestamps inserted).
    let skip = v.get(&format!("{TC}.skipClockTimestampInsertion")) != 0;
    let arr = crate::abi::resolve(v.sdk, v.strukt, &format!("{TC}.clockTimestamp"))
        .ok_or_else(|| bad("this layout has no timeCode.clockTimestamp".into()))?;
    let esize = arr.info.size / arr.info.array_len.max(1);
    let max_fps = u64::from(fps.0.div_ceil(fps.1.max(1)));
    let mut w = Bits::default();
    w.put(4, pic_struct);
    let mut traced = Vec::new();
    for i in 0..num_clock_ts {
        // SAFETY: element `i` of the array inside the client's struct (`v`'s contract), the
        // table's element size; `i < NumClockTS <= 3 = array_len`.
        let c = unsafe {
            View::new(
                v.base.add(arr.offset + i * esize),
                v.sdk,
                "NV_ENC_CLOCK_TIMESTAMP_SET",
            )
        };
        let g = |f: &str| c.get(f);
        let mut t = Map::new();
        for f in [
            "countingType",
            "discontinuityFlag",
            "cntDroppedFrames",
            "nFrames",
            "secondsValue",
            "minutesValue",
            "hoursValue",
            "reserved2",
            "timeOffset",
        ] {
            t.insert(f.into(), g(f).into());
        }
        traced.push(Value::Object(t));
        w.put(1, u64::from(!skip)); // clock_timestamp_flag
        if skip {
            continue;
        }
        let what = format!("timeCode.clockTimestamp[{i}]");
        if g("reserved2") != 0 {
            return Err(bad(format!("{what}.reserved2 must be 0")));
        }
        for (f, max) in [
            ("secondsValue", 59),
            ("minutesValue", 59),
            ("hoursValue", 23),
            ("nFrames", max_fps.saturating_sub(1)),
        ] {
            if g(f) > max {
                return Err(bad(format!(
                    "{what}.{f} {} above {max} (frame rate {}/{})",
                    g(f),
                    fps.0,
                    fps.1
                )));
            }
        }
        let offset = g("timeOffset") as u32 as i32;
        if !(-(1 << 23)..(1 << 23)).contains(&offset) {
            return Err(bad(format!(
                "{what}.timeOffset {offset} does not fit time_offset i(24)"
            )));
        }
        w.put(2, ct_type);
        w.put(1, 1); // nuit_field_based_flag
        w.put(5, g("countingType"));
        w.put(1, 1); // full_timestamp_flag
        w.put(1, g("discontinuityFlag"));
        w.put(1, g("cntDroppedFrames"));
        w.put(8, g("nFrames"));
        w.put(6, g("secondsValue"));
        w.put(6, g("minutesValue"));
        w.put(5, g("hoursValue"));
        w.put(24, offset as u32 as u64 & 0xff_ffff); // time_offset, time_offset_length 24
    }
    call.args
        .insert(format!("{TC}.clockTimestamp"), Value::Array(traced));
    Ok(w.finish())
}

/// Notes a `timeCode` the client filled in for a session without `enableTimeCode`.
pub fn note_unused(v: &View, call: &mut Call) {
    let Some(r) = crate::abi::resolve(v.sdk, v.strukt, TC) else {
        return;
    };
    // SAFETY: the `timeCode` bytes inside the client's struct (`v`'s contract).
    let bytes = unsafe { std::slice::from_raw_parts(v.base.add(r.offset), r.info.size) };
    if bytes.iter().any(|&b| b != 0) {
        call.note(
            "timeCode set while enableTimeCode is 0: ignored (the header: applicable only when enableTimeCode is set to 1)",
        );
    }
}

/// Removes H.264 emulation prevention bytes.
fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// The SEI messages of an SEI RBSP: (payloadType, payload); `None` if malformed.
fn sei_messages(rbsp: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
    let mut v = Vec::new();
    let mut i = 0;
    // more_rbsp_data(): stop at the trailing bits (0x80 as the last byte).
    while i < rbsp.len() && !(i == rbsp.len() - 1 && rbsp[i] == 0x80) {
        let num = |i: &mut usize| -> Option<u32> {
            let mut n = 0u32;
            loop {
                let b = *rbsp.get(*i)?;
                *i += 1;
                n += u32::from(b);
                if b != 0xff {
                    return Some(n);
                }
            }
        };
        let ty = num(&mut i)?;
        let size = num(&mut i)? as usize;
        let body = rbsp.get(i..i + size)?.to_vec();
        i += size;
        v.push((ty, body));
    }
    Some(v)
}

/// The access unit `au` (Annex B) without the software encoder's picture timing SEI
/// messages (the SEI NAL units that held only them are removed), after checking that each is
/// the form x264's `pic-struct` writes without HRD: one byte, `pic_struct` 0 and
/// `clock_timestamp_flag` 0 (so no cpb/dpb delays precede `pic_struct`). Errors otherwise.
pub fn strip_pic_timing(au: &[u8]) -> Result<Vec<u8>, String> {
    let units = crate::hdr::nal_units(au);
    let mut out = au[..units.first().map_or(au.len(), |u| u.0)].to_vec();
    let mut found = 0;
    for (sc, p, e) in units {
        if p >= e || au[p] & 0x1f != 6 {
            out.extend_from_slice(&au[sc..e]);
            continue;
        }
        // Trailing zero bytes (trailing_zero_8bits) belong to no NAL unit.
        let mut end = e;
        while end > p + 1 && au[end - 1] == 0 {
            end -= 1;
        }
        let msgs = sei_messages(&unescape(&au[p + 1..end]))
            .ok_or("a malformed SEI NAL unit from the software encoder")?;
        if !msgs.iter().any(|(t, _)| *t == SEI_PIC_TIMING) {
            out.extend_from_slice(&au[sc..e]);
            continue;
        }
        for (_, b) in msgs.iter().filter(|(t, _)| *t == SEI_PIC_TIMING) {
            // pic_struct u(4) = 0, clock_timestamp_flag 0, then the alignment bits 1, 0, 0.
            if b.as_slice() != [0x04] {
                return Err(format!(
                    "the software encoder's picture timing SEI is {b:02x?}, not pic_struct 0 without HRD"
                ));
            }
            found += 1;
        }
        let rest: Vec<crate::payload::Payload> = msgs
            .into_iter()
            .filter(|(t, _)| *t != SEI_PIC_TIMING)
            .map(|(ty, body)| crate::payload::Payload { ty, body })
            .collect();
        if !rest.is_empty() {
            out.extend(crate::payload::sei_nal(
                crate::abi::CodecKind::H264,
                &rest,
                1,
            ));
        }
    }
    if found != 1 {
        return Err(format!(
            "{found} picture timing SEI messages from the software encoder in one access unit (1 expected)"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_alignment() {
        let mut w = Bits::default();
        w.put(4, 0);
        w.put(1, 0);
        assert_eq!(w.finish(), [0x04]);
        let mut w = Bits::default();
        w.put(8, 0xa5);
        assert_eq!(w.finish(), [0xa5]);
    }

    #[test]
    fn strip_keeps_other_messages() {
        // AUD, SEI [type 5 (3 bytes) + type 1 (x264's)], SEI [type 1], slice.
        let aud = [0, 0, 0, 1, 9, 0xf0];
        let sei_a = [0, 0, 0, 1, 6, 5, 3, 1, 2, 3, 1, 1, 0x04, 0x80];
        let sei_b = [0, 0, 0, 1, 6, 1, 1, 0x04, 0x80];
        let idr = [0, 0, 0, 1, 0x65, 0x88];
        let au = [&aud[..], &sei_a, &idr].concat();
        let got = strip_pic_timing(&au).unwrap();
        let want = [&aud[..], &[0, 0, 0, 1, 6, 5, 3, 1, 2, 3, 0x80], &idr].concat();
        assert_eq!(got, want);
        let au = [&aud[..], &sei_b, &idr].concat();
        assert_eq!(strip_pic_timing(&au).unwrap(), [&aud[..], &idr].concat());
        // None, or one with HRD delays (longer), is an error.
        assert!(strip_pic_timing(&[&aud[..], &idr].concat()).is_err());
        let hrd = [0, 0, 0, 1, 6, 1, 2, 0x12, 0x34, 0x80];
        assert!(strip_pic_timing(&[&aud[..], &hrd, &idr].concat()).is_err());
    }

    /// A zeroed `NV_ENC_PIC_PARAMS` of `sdk` with clock timestamp 0 set by `f`.
    fn pic(sdk: &str, f: &[(&str, u64)], skip: bool) -> (Vec<u64>, crate::abi::SdkIdx) {
        let sdk = crate::abi::sdk_by_name(sdk).unwrap();
        let mut buf = vec![0u64; crate::abi::size_of(sdk, "NV_ENC_PIC_PARAMS").div_ceil(8)];
        // SAFETY: `buf` is the struct's size, 8-aligned, alive while the views are used.
        let v = unsafe { View::new(buf.as_mut_ptr().cast(), sdk, "NV_ENC_PIC_PARAMS") };
        v.set(&format!("{TC}.skipClockTimestampInsertion"), skip as u64);
        let r =
            crate::abi::resolve(sdk, "NV_ENC_PIC_PARAMS", &format!("{TC}.clockTimestamp")).unwrap();
        // SAFETY: element 0 of the array inside `buf`.
        let c = unsafe { View::new(v.base.add(r.offset), sdk, "NV_ENC_CLOCK_TIMESTAMP_SET") };
        for (k, x) in f {
            c.set(k, *x);
        }
        (buf, sdk)
    }

    fn timing(sdk: &str, f: &[(&str, u64)], skip: bool, fps: (u32, u32)) -> Result<Vec<u8>, Bad> {
        let (mut buf, sdk) = pic(sdk, f, skip);
        // SAFETY: as in `pic`.
        let v = unsafe { View::new(buf.as_mut_ptr().cast(), sdk, "NV_ENC_PIC_PARAMS") };
        picture_timing(&v, fps, &mut Call::new("nvEncEncodePicture"))
    }

    #[test]
    fn picture_timing_syntax_and_checks() {
        let tc = [
            ("nFrames", 24),
            ("secondsValue", 59),
            ("minutesValue", 7),
            ("hoursValue", 23),
        ];
        for sdk in ["12.1", "12.2", "13.0"] {
            let b = timing(sdk, &tc, false, (25, 1)).unwrap_or_else(|e| panic!("{}", e.msg));
            // 0000 1 00 1 00000 1 0 0 00011000 111011 000111 10111 0x000000, then 1 000000.
            let mut bits = String::from("0000100100000100");
            bits += "00011000111011000111101110000000000000000000000001000000";
            let want: Vec<u8> = (0..bits.len() / 8)
                .map(|k| u8::from_str_radix(&bits[8 * k..8 * k + 8], 2).unwrap())
                .collect();
            assert_eq!(b, want, "API {sdk}");
        }
        // Without timestamps (12.2+): pic_struct and clock_timestamp_flag 0 only.
        assert_eq!(timing("12.2", &tc, true, (25, 1)).ok(), Some(vec![0x04]));
        for bad in [
            ("hoursValue", 24),
            ("minutesValue", 60),
            ("secondsValue", 60),
            ("nFrames", 25),
            ("reserved2", 1),
        ] {
            let mut f = tc.to_vec();
            f.push(bad);
            let e = timing("12.2", &f, false, (25, 1)).expect_err("refused");
            assert_eq!(e.status, st::INVALID_PARAM, "{bad:?}");
        }
        // 29.97 fps: frames 0..=29.
        assert!(timing("12.2", &[("nFrames", 29)], false, (30000, 1001)).is_ok());
        assert!(timing("12.2", &[("nFrames", 30)], false, (30000, 1001)).is_err());
        // time_offset: i(24).
        let neg = (-(1i64 << 23)) as u32 as u64;
        assert!(timing("12.2", &[("timeOffset", neg)], false, (25, 1)).is_ok());
        assert!(timing("12.2", &[("timeOffset", 1 << 23)], false, (25, 1)).is_err());
    }

    #[test]
    fn escapes_round_trip() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0]), [0, 0, 1, 0, 0, 0]);
    }
}
