// SPDX-License-Identifier: MPL-2.0
//! Metadata that pipelines carry on buffers, written into the coded stream of the same picture:
//!
//! - `GstVideoSEIUserDataUnregisteredMeta` (a UUID and opaque bytes, as `h264parse` attaches
//!   them) becomes SEI `user_data_unregistered` (payloadType 5, H.264 D.1.7, H.265 D.2.7): the
//!   UUID, then the bytes. AV1 has no such syntax: not written (logged).
//! - `GstVideoTimeCodeMeta` becomes the H.265 `time_code` SEI (payloadType 136, D.2.27) and the
//!   AV1 `metadata_timecode` OBU (`metadata_type` 5, AV1 spec 5.8.7 / 6.7.7), through NVENC's
//!   payload arrays. H.264 carries clock timestamps only in picture timing SEI (D.1.3), whose
//!   content NVENC owns (clients must not pass payloadType 1): they go through NVENC's own
//!   time code path, `NV_ENC_CONFIG_H264::enableTimeCode` and
//!   `NV_ENC_PIC_PARAMS_H264::timeCode` ([`h264_time_code`]), from API 12.2 on (12.1's
//!   `NV_ENC_TIME_CODE` has no `skipClockTimestampInsertion` for the pictures without a time
//!   code; FFmpeg's nvenc.h, too, takes the path only from 12.2: "added in 12.0, but
//!   incomplete until 12.2").
//!
//! H.264 drop-frame time codes: `NV_ENC_CLOCK_TIMESTAMP_SET::countingType` is 1 bit in the
//! 12.x/13.0 headers, so only `counting_type` 0 and 1 (both "no dropping of n_frames count
//! values", Table D-3) can be asked for; 4 (the two lowest values dropped every minute but
//! every tenth), which GStreamer's `h264parse` reads as drop-frame, cannot. The values
//! (hours, minutes, seconds, frames) are written as they are, with `counting_type` 0 and
//! `cnt_dropped_flag` 0; readers see a non-drop time code with the drop-frame count's values.
//! (FFmpeg's nvenc sets `cntDroppedFrames` on every picture of a drop-frame time code instead;
//! with `counting_type` 0 that flag contradicts Table D-3 and FFmpeg's own reader ignores it.)
//!
//! Both time code syntaxes end on a byte boundary here: a 5-bit (H.265) or 1-bit (AV1)
//! `time_offset_value` of 0 fills the message to 48 or 40 bits, so no alignment bits follow the
//! syntax inside the payload (NVENC adds the SEI / OBU trailing bits).

use bitstream_io::{BigEndian, BitWrite, BitWriter};

use crate::nvenc::ffi;

/// SEI `payloadType` of `user_data_unregistered` (H.264 D.1.7, H.265 D.2.7).
pub const SEI_USER_DATA_UNREGISTERED: u32 = 5;
/// SEI `payloadType` of the H.265 `time_code` message (D.2.27).
pub const SEI_TIME_CODE: u32 = 136;
/// AV1 `metadata_type` of `metadata_timecode` (AV1 spec 6.7.1).
pub const AV1_METADATA_TYPE_TIMECODE: u32 = 5;

/// A SMPTE ST 12-1 time code as GStreamer's `GstVideoTimeCode` holds it (frame based: fields
/// are not counted apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeCode {
    /// 0..=23.
    pub hours: u32,
    /// 0..=59.
    pub minutes: u32,
    /// 0..=59.
    pub seconds: u32,
    /// Frames within the second (fields for field-based time codes are counted as frames).
    pub frames: u32,
    /// Drop-frame counting (frames 0 and 1 skipped at the start of each minute but every
    /// tenth): `GST_VIDEO_TIME_CODE_FLAGS_DROP_FRAME`; `counting_type` 4 in both syntaxes.
    pub drop_frame: bool,
}

impl TimeCode {
    /// From GStreamer's time code (`GstVideoTimeCodeMeta`).
    pub fn from_gst(tc: &gst_video::ValidVideoTimeCode) -> TimeCode {
        TimeCode {
            hours: tc.hours(),
            minutes: tc.minutes(),
            seconds: tc.seconds(),
            frames: tc.frames(),
            drop_frame: tc
                .flags()
                .contains(gst_video::VideoTimeCodeFlags::DROP_FRAME),
        }
    }

    /// `counting_type` (H.265 Table D.11, AV1 6.7.7): 4 for drop-frame, else 0 (no dropping).
    fn counting_type(&self) -> u32 {
        if self.drop_frame { 4 } else { 0 }
    }
}

/// `clock_timestamp` fields shared by H.265 and AV1 after `counting_type`:
/// `full_timestamp_flag` 1, `discontinuity_flag` 0, `cnt_dropped_flag` 0, `n_frames`,
/// `seconds_value`, `minutes_value`, `hours_value`, `time_offset_length`, `time_offset_value`.
fn clock_timestamp(
    w: &mut BitWriter<Vec<u8>, BigEndian>,
    tc: &TimeCode,
    offset_bits: u32,
) -> std::io::Result<()> {
    w.write::<5, u32>(tc.counting_type())?;
    w.write_bit(true)?; // full_timestamp_flag
    w.write_bit(false)?; // discontinuity_flag
    w.write_bit(false)?; // cnt_dropped_flag
    w.write::<9, u32>(tc.frames)?;
    w.write::<6, u32>(tc.seconds)?;
    w.write::<6, u32>(tc.minutes)?;
    w.write::<5, u32>(tc.hours)?;
    w.write::<5, u32>(offset_bits)?; // time_offset_length
    w.write_var::<u32>(offset_bits, 0)?; // time_offset_value
    Ok(())
}

fn finish(w: BitWriter<Vec<u8>, BigEndian>) -> std::io::Result<Vec<u8>> {
    if !w.byte_aligned() {
        return Err(std::io::Error::other("time code syntax not byte aligned"));
    }
    Ok(w.into_writer())
}

/// The H.265 `time_code` SEI payload (D.2.27) for one frame-based clock timestamp: 6 bytes.
/// `units_field_based_flag` 0 and `n_frames` = the frame count: with the VUI's clock tick one
/// frame (field_seq_flag 0), D-26's nFrames x vui_num_units_in_tick x (1 +
/// units_field_based_flag) is n_frames frames. GStreamer 1.22's h265parse halves it (it divides
/// by 2 - units_field_based_flag whatever the VUI, H.264's rule); fixed in GStreamer 1.24
/// (commit 2c4cb82afc): docs/verified.md.
/// Errors if a value does not fit its syntax element (`n_frames` 9 bits, `seconds_value`
/// and `minutes_value` 6, `hours_value` 5).
pub fn h265_time_code_sei(tc: &TimeCode) -> std::io::Result<Vec<u8>> {
    let mut w = BitWriter::endian(Vec::with_capacity(6), BigEndian);
    w.write::<2, u32>(1)?; // num_clock_ts
    w.write_bit(true)?; // clock_timestamp_flag[0]
    w.write_bit(false)?; // units_field_based_flag[0]
    // 2 + 2 + 38 bits of the timestamp + 5 bits of time_offset_value = 48.
    clock_timestamp(&mut w, tc, 5)?;
    finish(w)
}

/// The AV1 `metadata_timecode` payload (6.7.7, after `metadata_type`): 5 bytes. Errors if a
/// value does not fit its syntax element, as [`h265_time_code_sei`].
pub fn av1_timecode_metadata(tc: &TimeCode) -> std::io::Result<Vec<u8>> {
    let mut w = BitWriter::endian(Vec::with_capacity(5), BigEndian);
    // 39 bits of the timestamp + 1 bit of time_offset_value = 40.
    clock_timestamp(&mut w, tc, 1)?;
    finish(w)
}

/// NVENC's H.264 time code for a progressive frame: `displayPicStruct` FRAME (`pic_struct` 0,
/// one clock timestamp), `countingType` 0 (see the module docs for drop-frame),
/// `discontinuityFlag` 0, `cntDroppedFrames` 0, the time code's values, `timeOffset` 0.
/// Errors if a value is outside its syntax element's range (H.264 D.2.3: `n_frames` 0..=255
/// in 8 bits, `seconds_value` and `minutes_value` 0..=59, `hours_value` 0..=23).
pub fn h264_time_code(tc: &TimeCode) -> Result<ffi::NV_ENC_TIME_CODE, String> {
    if tc.frames > 255 || tc.seconds > 59 || tc.minutes > 59 || tc.hours > 23 {
        return Err(format!(
            "{:02}:{:02}:{:02}:{:02} is outside H.264's clock timestamp (n_frames <= 255, seconds and minutes <= 59, hours <= 23)",
            tc.hours, tc.minutes, tc.seconds, tc.frames
        ));
    }
    let mut w = 0;
    w = ffi::CTS_N_FRAMES.set(w, tc.frames);
    w = ffi::CTS_SECONDS_VALUE.set(w, tc.seconds);
    w = ffi::CTS_MINUTES_VALUE.set(w, tc.minutes);
    w = ffi::CTS_HOURS_VALUE.set(w, tc.hours);
    let mut t = ffi::NV_ENC_TIME_CODE {
        displayPicStruct: ffi::NV_ENC_PIC_STRUCT_DISPLAY_FRAME,
        ..Default::default()
    };
    t.clockTimestamp[0].flags = w;
    Ok(t)
}

/// NVENC's H.264 time code for a picture without one: no clock timestamp
/// (`skipClockTimestampInsertion`, API 12.2+).
pub fn h264_no_time_code() -> ffi::NV_ENC_TIME_CODE {
    ffi::NV_ENC_TIME_CODE {
        displayPicStruct: ffi::NV_ENC_PIC_STRUCT_DISPLAY_FRAME,
        skipClockTimestampInsertion: 1,
        ..Default::default()
    }
}

/// The `user_data_unregistered` SEI payload: `uuid_iso_iec_11578`, then the user data.
pub fn user_data_unregistered(uuid: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + data.len());
    p.extend_from_slice(uuid);
    p.extend_from_slice(data);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `n` bits MSB first from `bits` at `*pos`.
    fn get(bytes: &[u8], pos: &mut usize, n: usize) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            let bit = (bytes[*pos / 8] >> (7 - *pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            *pos += 1;
        }
        v
    }

    #[test]
    fn h265_time_code_layout() {
        let tc = TimeCode {
            hours: 10,
            minutes: 20,
            seconds: 30,
            frames: 24,
            drop_frame: true,
        };
        let b = h265_time_code_sei(&tc).unwrap();
        assert_eq!(b.len(), 6);
        let mut p = 0;
        let fields: Vec<u32> = [2, 1, 1, 5, 1, 1, 1, 9, 6, 6, 5, 5, 5]
            .iter()
            .map(|&n| get(&b, &mut p, n))
            .collect();
        assert_eq!(fields, [1, 1, 0, 4, 1, 0, 0, 24, 30, 20, 10, 5, 0]);
        assert_eq!(p, 48);
    }

    #[test]
    fn av1_timecode_layout() {
        let tc = TimeCode {
            hours: 23,
            minutes: 59,
            seconds: 59,
            frames: 29,
            drop_frame: false,
        };
        let b = av1_timecode_metadata(&tc).unwrap();
        assert_eq!(b.len(), 5);
        let mut p = 0;
        let fields: Vec<u32> = [5, 1, 1, 1, 9, 6, 6, 5, 5, 1]
            .iter()
            .map(|&n| get(&b, &mut p, n))
            .collect();
        assert_eq!(fields, [0, 1, 0, 0, 29, 59, 59, 23, 1, 0]);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let tc = TimeCode {
            hours: 40,
            ..Default::default()
        };
        assert!(h265_time_code_sei(&tc).is_err());
        assert!(av1_timecode_metadata(&tc).is_err());
    }

    #[test]
    fn h264_time_code_fields() {
        let tc = TimeCode {
            hours: 23,
            minutes: 59,
            seconds: 58,
            frames: 29,
            drop_frame: true,
        };
        let t = h264_time_code(&tc).unwrap();
        let w = t.clockTimestamp[0].flags;
        assert_eq!(t.displayPicStruct, ffi::NV_ENC_PIC_STRUCT_DISPLAY_FRAME);
        assert_eq!(t.skipClockTimestampInsertion, 0);
        assert_eq!(
            [
                ffi::CTS_COUNTING_TYPE.get(w),
                ffi::CTS_DISCONTINUITY_FLAG.get(w),
                ffi::CTS_CNT_DROPPED_FRAMES.get(w),
                ffi::CTS_N_FRAMES.get(w),
                ffi::CTS_SECONDS_VALUE.get(w),
                ffi::CTS_MINUTES_VALUE.get(w),
                ffi::CTS_HOURS_VALUE.get(w),
            ],
            [0, 0, 0, 29, 58, 59, 23]
        );
        // The header's bit order: countingType bit 0, nFrames bits 3..11, hours bits 23..28.
        assert_eq!(w, (29 << 3) | (58 << 11) | (59 << 17) | (23 << 23));
        assert_eq!(t.clockTimestamp[1], Default::default());
        for bad in [
            TimeCode { hours: 24, ..tc },
            TimeCode { minutes: 60, ..tc },
            TimeCode { seconds: 60, ..tc },
            TimeCode { frames: 256, ..tc },
        ] {
            assert!(h264_time_code(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(h264_no_time_code().skipClockTimestampInsertion, 1);
    }

    #[test]
    fn unregistered_user_data() {
        let p = user_data_unregistered(&[7; 16], b"abc");
        assert_eq!(&p[..16], &[7; 16]);
        assert_eq!(&p[16..], b"abc");
    }
}
