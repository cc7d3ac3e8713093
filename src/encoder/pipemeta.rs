// SPDX-License-Identifier: MPL-2.0
//! Metadata that pipelines carry on buffers, written into the coded stream of the same picture:
//!
//! - `GstVideoSEIUserDataUnregisteredMeta` (a UUID and opaque bytes, as `h264parse` attaches
//!   them) becomes SEI `user_data_unregistered` (payloadType 5, H.264 D.1.7, H.265 D.2.7): the
//!   UUID, then the bytes. AV1 has no such syntax: not written (logged).
//! - `GstVideoTimeCodeMeta` becomes the H.265 `time_code` SEI (payloadType 136, D.2.27) and the
//!   AV1 `metadata_timecode` OBU (`metadata_type` 5, AV1 spec 5.8.7 / 6.7.7), through NVENC's
//!   payload arrays. H.264 carries clock timestamps only in picture timing SEI, whose content
//!   NVENC owns (clients must not pass payloadType 1; NVENC's own `enableTimeCode` path is not
//!   driven here): H.264 time codes are not written (logged once).
//!
//! Both time code syntaxes end on a byte boundary here: a 5-bit (H.265) or 1-bit (AV1)
//! `time_offset_value` of 0 fills the message to 48 or 40 bits, so no alignment bits follow the
//! syntax inside the payload (NVENC adds the SEI / OBU trailing bits).

use bitstream_io::{BigEndian, BitWrite, BitWriter};

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
    fn unregistered_user_data() {
        let p = user_data_unregistered(&[7; 16], b"abc");
        assert_eq!(&p[..16], &[7; 16]);
        assert_eq!(&p[16..], b"abc");
    }
}
