// SPDX-License-Identifier: MPL-2.0
//! HDR10 static metadata and CEA-708 closed captions, as NVENC takes them.
//!
//! - HDR10 (SMPTE ST 2086 mastering display colour volume, CTA-861.3 content light level) comes
//!   from the input caps (`mastering-display-info`, `content-light-level`, read with
//!   gstreamer-video's parsers) and goes on every IDR: in H.265 and H.264 as SEI messages 137
//!   and 144, in AV1 as `METADATA_TYPE_HDR_MDCV` (2) and `METADATA_TYPE_HDR_CLL` (1) OBUs.
//!   With NVENC API 13.0, H.265 and AV1 use NVENC's own fields (`outputMasteringDisplay`,
//!   `outputMaxCll`, `pMasteringDisplay`, `pMaxCll`); before 13.0, and for H.264 (which has
//!   no such fields), the payload arrays (`seiPayloadArray`, `obuPayloadArray`).
//! - Captions: `GstVideoCaptionMeta` of type CEA-708 raw (`cc_data` triplets, as nvcodec takes
//!   them) or CEA-708 CDP (whose `ccdata_section` is taken out) become an ATSC A/53 Part 4
//!   `user_data_registered_itu_t_t35` payload ("GA94", built as nvcodec builds it), in SEI
//!   payload type 4 (H.264, H.265) or an ITU-T T.35 metadata OBU (`metadata_type` 4, AV1).
//!
//! Units: GStreamer's `GstVideoMasteringDisplayInfo` holds chromaticity in 0.00002 and
//! luminance in 0.0001 cd/m², which are the H.264/H.265 SEI units; AV1's `metadata_hdr_mdcv`
//! wants 0.16 fixed-point chromaticity, 24.8 fixed-point maximum and 18.14 fixed-point minimum
//! luminance (cd/m²), converted here with rounding. Content light levels are cd/m² everywhere.

use crate::nvenc::api::{ApiVersion, Codec};
use crate::nvenc::ffi;

/// SEI `payloadType` of `user_data_registered_itu_t_t35` (H.264 D.1.6, H.265 D.2.6).
pub const SEI_USER_DATA_REGISTERED_ITU_T_T35: u32 = 4;
/// SEI `payloadType` of `mastering_display_colour_volume` (H.264 D.1.29, H.265 D.2.28).
pub const SEI_MASTERING_DISPLAY_COLOUR_VOLUME: u32 = 137;
/// SEI `payloadType` of `content_light_level_info` (H.264 D.1.31, H.265 D.2.35).
pub const SEI_CONTENT_LIGHT_LEVEL_INFO: u32 = 144;
/// AV1 `metadata_type` values (AV1 spec 6.7.1).
pub const AV1_METADATA_TYPE_HDR_CLL: u32 = 1;
pub const AV1_METADATA_TYPE_HDR_MDCV: u32 = 2;
pub const AV1_METADATA_TYPE_ITUT_T35: u32 = 4;

/// Most `cc_data` triplets one A/53 `cc_data()` carries (`cc_count` is 5 bits).
pub const MAX_CC_COUNT: usize = 31;

/// SMPTE ST 2086 mastering display colour volume in GStreamer's units, which are the H.264 /
/// H.265 SEI units: chromaticity (CIE 1931 x, y) in 0.00002, luminance in 0.0001 cd/m².
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MasteringDisplay {
    /// Red, green, blue (GStreamer's order).
    pub primaries: [(u16, u16); 3],
    pub white_point: (u16, u16),
    pub max_luminance: u32,
    pub min_luminance: u32,
}

/// CTA-861.3 content light level: MaxCLL and MaxFALL in cd/m².
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentLightLevel {
    pub max_cll: u16,
    pub max_fall: u16,
}

/// HDR10 static metadata of a stream (either part may be absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hdr10 {
    pub mastering: Option<MasteringDisplay>,
    pub light: Option<ContentLightLevel>,
}

impl Hdr10 {
    /// From the `mastering-display-info` and `content-light-level` fields of `caps`
    /// (gstreamer-video's `VideoMasteringDisplayInfo::from_caps`,
    /// `VideoContentLightLevel::from_caps`).
    pub fn from_caps(caps: &gst::CapsRef) -> Self {
        let mastering = gst_video::VideoMasteringDisplayInfo::from_caps(caps)
            .ok()
            .map(|m| {
                let p = m.display_primaries();
                let w = m.white_point();
                MasteringDisplay {
                    primaries: [(p[0].x, p[0].y), (p[1].x, p[1].y), (p[2].x, p[2].y)],
                    white_point: (w.x, w.y),
                    max_luminance: m.max_display_mastering_luminance(),
                    min_luminance: m.min_display_mastering_luminance(),
                }
            });
        let light = gst_video::VideoContentLightLevel::from_caps(caps)
            .ok()
            .map(|l| ContentLightLevel {
                max_cll: l.max_content_light_level(),
                max_fall: l.max_frame_average_light_level(),
            });
        Hdr10 { mastering, light }
    }

    pub fn is_empty(&self) -> bool {
        self.mastering.is_none() && self.light.is_none()
    }
}

/// How HDR metadata reaches NVENC for a codec and API: NVENC's own fields (13.0, H.265 and
/// AV1), else payload arrays.
pub fn native_hdr(codec: Codec, api: ApiVersion) -> bool {
    api == ApiVersion::V13_0 && codec != Codec::H264
}

/// GStreamer's primaries are red, green, blue (index 0, 1, 2).
const RED: usize = 0;
const GREEN: usize = 1;
const BLUE: usize = 2;

/// `mastering_display_colour_volume` SEI body (24 bytes, H.264/H.265 units): primaries in the
/// order green, blue, red (as SMPTE ST 2086 and HEVC decoders expect), white point, max and
/// min luminance.
pub fn sei_mastering_display(m: &MasteringDisplay) -> [u8; 24] {
    let (p, w) = (m.primaries, m.white_point);
    let mut out = [0u8; 24];
    let mut i = 0;
    let mut put = |b: &[u8]| {
        out[i..i + b.len()].copy_from_slice(b);
        i += b.len();
    };
    for c in [GREEN, BLUE, RED] {
        put(&p[c].0.to_be_bytes());
        put(&p[c].1.to_be_bytes());
    }
    put(&w.0.to_be_bytes());
    put(&w.1.to_be_bytes());
    put(&m.max_luminance.to_be_bytes());
    put(&m.min_luminance.to_be_bytes());
    out
}

/// `content_light_level_info` SEI body, also the AV1 `metadata_hdr_cll` body (4 bytes):
/// MaxCLL, MaxFALL in cd/m².
pub fn content_light_level(l: &ContentLightLevel) -> [u8; 4] {
    let mut out = [0u8; 4];
    out[..2].copy_from_slice(&l.max_cll.to_be_bytes());
    out[2..].copy_from_slice(&l.max_fall.to_be_bytes());
    out
}

/// `v` (in units of 1/`from`) in units of 1/`to`, rounded, saturated to `max`.
fn rescale(v: u64, from: u64, to: u64, max: u64) -> u64 {
    ((v * to + from / 2) / from).min(max)
}

/// AV1 units of one chromaticity coordinate (0.00002 -> 0.16 fixed point).
fn av1_chroma(v: u16) -> u16 {
    rescale(v as u64, 50_000, 1 << 16, u16::MAX as u64) as u16
}

/// AV1 maximum luminance (0.0001 cd/m² -> 24.8 fixed point).
fn av1_max_luma(v: u32) -> u32 {
    rescale(v as u64, 10_000, 1 << 8, u32::MAX as u64) as u32
}

/// AV1 minimum luminance (0.0001 cd/m² -> 18.14 fixed point).
fn av1_min_luma(v: u32) -> u32 {
    rescale(v as u64, 10_000, 1 << 14, u32::MAX as u64) as u32
}

/// AV1 `metadata_hdr_mdcv` body (24 bytes, AV1 units): primaries red, green, blue (AV1 6.7.4),
/// white point, max and min luminance.
pub fn av1_mastering_display(m: &MasteringDisplay) -> [u8; 24] {
    let n = nvenc_mastering_display(m, Codec::Av1);
    let mut out = [0u8; 24];
    let mut i = 0;
    let mut put = |b: &[u8]| {
        out[i..i + b.len()].copy_from_slice(b);
        i += b.len();
    };
    for c in [n.r, n.g, n.b, n.whitePoint] {
        put(&c.x.to_be_bytes());
        put(&c.y.to_be_bytes());
    }
    put(&n.maxLuma.to_be_bytes());
    put(&n.minLuma.to_be_bytes());
    out
}

/// NVENC 13.0's `MASTERING_DISPLAY_INFO` for `codec`, in the units of the coded syntax (H.265
/// SEI units as GStreamer has them; AV1 fixed point for AV1), as FFmpeg fills it.
pub fn nvenc_mastering_display(m: &MasteringDisplay, codec: Codec) -> ffi::MASTERING_DISPLAY_INFO {
    let (p, w) = (m.primaries, m.white_point);
    let av1 = codec == Codec::Av1;
    let pt = |x: u16, y: u16| {
        if av1 {
            ffi::CHROMA_POINTS {
                x: av1_chroma(x),
                y: av1_chroma(y),
            }
        } else {
            ffi::CHROMA_POINTS { x, y }
        }
    };
    let (max, min) = (m.max_luminance, m.min_luminance);
    ffi::MASTERING_DISPLAY_INFO {
        g: pt(p[GREEN].0, p[GREEN].1),
        b: pt(p[BLUE].0, p[BLUE].1),
        r: pt(p[RED].0, p[RED].1),
        whitePoint: pt(w.0, w.1),
        maxLuma: if av1 { av1_max_luma(max) } else { max },
        minLuma: if av1 { av1_min_luma(min) } else { min },
    }
}

/// NVENC 13.0's `CONTENT_LIGHT_LEVEL` (cd/m² for both codecs).
pub fn nvenc_content_light_level(l: &ContentLightLevel) -> ffi::CONTENT_LIGHT_LEVEL {
    ffi::CONTENT_LIGHT_LEVEL {
        maxContentLightLevel: l.max_cll,
        maxPicAverageLightLevel: l.max_fall,
    }
}

/// The `cc_data` triplets of a caption meta: CEA-708 raw as it is, the `ccdata_section` of a
/// CEA-708 CDP (SMPTE 334-2); `None` for CEA-608 captions, which nvcodec does not insert either,
/// and for a malformed CDP. At most [`MAX_CC_COUNT`] whole triplets.
pub fn cc_data(ty: gst_video::VideoCaptionType, data: &[u8]) -> Option<Vec<u8>> {
    let cc = match ty {
        gst_video::VideoCaptionType::Cea708Raw => data,
        gst_video::VideoCaptionType::Cea708Cdp => cdp_cc_data(data)?,
        _ => return None,
    };
    let n = (cc.len() / 3).min(MAX_CC_COUNT);
    (n > 0).then(|| cc[..3 * n].to_vec())
}

/// The triplets of the `ccdata_section` of a CEA-708 caption distribution packet
/// (SMPTE 334-2 §5): `None` without the `0x9669` identifier, without `ccdata_present`, or when
/// the `time_code_section` / `ccdata_section` identifiers are missing or the triplets run past
/// `cdp_length` or the data.
///
/// Hand-written on purpose, not `cdp-types`: its `CDPParser` gives decoded DTVCC packets
/// (reassembled across CDPs, so a packet split over two frames comes out on the second) and
/// CEA-608 pairs, never the `cc_data` triplets that A/53 carries verbatim; and it rejects packets
/// that GStreamer's `ccconverter` (and gst-plugins-rs `closedcaption`'s `extract_cdp`) pass on:
/// a wrong `packet_checksum`, reserved time-code bits not set, an unknown frame rate, trailing
/// bytes after `cdp_length`. Captions are best effort metadata; an encoder passes them on as
/// it gets them.
fn cdp_cc_data(cdp: &[u8]) -> Option<&[u8]> {
    // cdp_header: identifier 0x9669, length, frame rate, flags, sequence counter (7 bytes).
    if cdp.len() < 7 || cdp[0] != 0x96 || cdp[1] != 0x69 {
        return None;
    }
    let len = (cdp[2] as usize).min(cdp.len());
    let flags = cdp[4];
    let (time_code, cc_present) = (flags & 0x80 != 0, flags & 0x40 != 0);
    if !cc_present {
        return None;
    }
    let mut i = 7;
    if time_code {
        // time_code_section: 0x71 and 4 bytes.
        if cdp.get(i) != Some(&0x71) {
            return None;
        }
        i += 5;
    }
    // ccdata_section: 0x72, marker bits and cc_count, then cc_count triplets.
    if cdp.get(i) != Some(&0x72) {
        return None;
    }
    let count = (*cdp.get(i + 1)? & 0x1f) as usize;
    cdp.get(i + 2..i + 2 + 3 * count)
        .filter(|_| i + 2 + 3 * count <= len)
}

/// The ATSC A/53 Part 4 `user_data_registered_itu_t_t35` payload for `cc` (whole triplets),
/// as nvcodec builds it: country code 0xB5 (USA), provider code 0x0031 (ATSC),
/// `ATSC_user_identifier` "GA94", `user_data_type_code` 3 (cc_data), `process_cc_data_flag`
/// and `cc_count`, `em_data` 0xFF, the triplets, marker bits 0xFF.
pub fn a53_t35_payload(cc: &[u8]) -> Vec<u8> {
    let n = (cc.len() / 3).min(MAX_CC_COUNT);
    let mut p = Vec::with_capacity(11 + 3 * n);
    p.extend_from_slice(&[0xb5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03]);
    p.push(0x40 | n as u8);
    p.push(0xff);
    p.extend_from_slice(&cc[..3 * n]);
    p.push(0xff);
    p
}

/// The SEI messages / metadata OBUs and HDR structs of one picture, owned here while
/// `nvEncEncodePicture` reads them (NVENC copies them during the call).
#[derive(Default)]
pub struct PicPayloads {
    bodies: Vec<(u32, Vec<u8>)>,
    array: Vec<ffi::NV_ENC_SEI_PAYLOAD>,
    mastering: Option<Box<ffi::MASTERING_DISPLAY_INFO>>,
    light: Option<Box<ffi::CONTENT_LIGHT_LEVEL>>,
}

impl PicPayloads {
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty() && self.mastering.is_none() && self.light.is_none()
    }

    /// Adds one SEI message (H.26x `payloadType`) or metadata OBU (AV1 `metadata_type`).
    pub fn push(&mut self, payload_type: u32, body: Vec<u8>) {
        self.bodies.push((payload_type, body));
    }

    /// Adds the HDR10 metadata for an IDR of `codec`: NVENC's own fields when `native` (API
    /// 13.0, H.265 or AV1), else SEI messages 137/144 or HDR_MDCV/HDR_CLL OBUs.
    pub fn push_hdr(&mut self, hdr: &Hdr10, codec: Codec, native: bool) {
        if let Some(m) = &hdr.mastering {
            if native {
                self.mastering = Some(Box::new(nvenc_mastering_display(m, codec)));
            } else if codec == Codec::Av1 {
                self.push(
                    AV1_METADATA_TYPE_HDR_MDCV,
                    av1_mastering_display(m).to_vec(),
                );
            } else {
                self.push(
                    SEI_MASTERING_DISPLAY_COLOUR_VOLUME,
                    sei_mastering_display(m).to_vec(),
                );
            }
        }
        if let Some(l) = &hdr.light {
            if native {
                self.light = Some(Box::new(nvenc_content_light_level(l)));
            } else if codec == Codec::Av1 {
                self.push(AV1_METADATA_TYPE_HDR_CLL, content_light_level(l).to_vec());
            } else {
                self.push(
                    SEI_CONTENT_LIGHT_LEVEL_INFO,
                    content_light_level(l).to_vec(),
                );
            }
        }
    }

    /// Adds a caption (`cc_data` triplets) as an A/53 T.35 payload: SEI type 4 or a T.35
    /// metadata OBU (`metadata_type` 4; the payload starts with the country code, as the AV1
    /// `metadata_itut_t35` syntax does).
    pub fn push_caption(&mut self, cc: &[u8], codec: Codec) {
        let t = if codec == Codec::Av1 {
            AV1_METADATA_TYPE_ITUT_T35
        } else {
            SEI_USER_DATA_REGISTERED_ITU_T_T35
        };
        self.push(t, a53_t35_payload(cc));
    }

    /// Points the codec parameters of `pic` at these payloads (the member of `codec`). `pic`
    /// must not be used after `self` is dropped or changed.
    pub fn attach(&mut self, pic: &mut ffi::NV_ENC_PIC_PARAMS, codec: Codec) {
        self.array = self
            .bodies
            .iter()
            .map(|(t, b)| ffi::NV_ENC_SEI_PAYLOAD {
                payloadSize: b.len() as u32,
                payloadType: *t,
                // NVENC only reads it (the header's type is `uint8_t *`).
                payload: b.as_ptr().cast_mut(),
            })
            .collect();
        let (count, array) = if self.array.is_empty() {
            (0, std::ptr::null_mut())
        } else {
            (self.array.len() as u32, self.array.as_mut_ptr())
        };
        let mastering = self
            .mastering
            .as_deref_mut()
            .map_or(std::ptr::null_mut(), |m| m as *mut _);
        let light = self
            .light
            .as_deref_mut()
            .map_or(std::ptr::null_mut(), |l| l as *mut _);
        // Field by field: the other fields of the codec's picture parameters (the per-picture
        // LTR controls, `sdkext::apply_pic_ltr`, set before) stay as they are.
        let c = &mut pic.codecPicParams;
        match codec {
            Codec::H264 => {
                c.h264PicParams.seiPayloadArrayCnt = count;
                c.h264PicParams.seiPayloadArray = array;
            }
            Codec::Hevc => {
                c.hevcPicParams.seiPayloadArrayCnt = count;
                c.hevcPicParams.seiPayloadArray = array;
                c.hevcPicParams.pMasteringDisplay = mastering;
                c.hevcPicParams.pMaxCll = light;
            }
            Codec::Av1 => {
                c.av1PicParams.obuPayloadArrayCnt = count;
                c.av1PicParams.obuPayloadArray = array;
                c.av1PicParams.pMasteringDisplay = mastering;
                c.av1PicParams.pMaxCll = light;
            }
        }
    }

    /// A short description for the log: `type:size` of each payload, and the native fields.
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .bodies
            .iter()
            .map(|(t, b)| format!("{t}:{}B", b.len()))
            .collect();
        if self.mastering.is_some() {
            v.push("pMasteringDisplay".into());
        }
        if self.light.is_some() {
            v.push("pMaxCll".into());
        }
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BT.2020 primaries, D65, 1000 / 0.005 cd/m² (the usual HDR10 values), GStreamer units.
    fn bt2020() -> MasteringDisplay {
        MasteringDisplay {
            primaries: [(35400, 14600), (8500, 39850), (6550, 2300)],
            white_point: (15635, 16450),
            max_luminance: 10_000_000,
            min_luminance: 50,
        }
    }

    #[test]
    fn caps_fields_parse_and_sei_orders_gbr() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-raw")
            .field(
                "mastering-display-info",
                "35400:14600:8500:39850:6550:2300:15635:16450:10000000:50",
            )
            .field("content-light-level", "1000:400")
            .build();
        let hdr = Hdr10::from_caps(&caps);
        assert_eq!(hdr.mastering, Some(bt2020()));
        let l = hdr.light.unwrap();
        assert_eq!(content_light_level(&l), [0x03, 0xe8, 0x01, 0x90]);
        let s = sei_mastering_display(&bt2020());
        // G (8500, 39850), B (6550, 2300), R (35400, 14600), W, 10000000, 50.
        assert_eq!(&s[..4], &[0x21, 0x34, 0x9b, 0xaa]);
        assert_eq!(&s[4..8], &[0x19, 0x96, 0x08, 0xfc]);
        assert_eq!(&s[8..12], &[0x8a, 0x48, 0x39, 0x08]);
        assert_eq!(&s[12..16], &[0x3d, 0x13, 0x40, 0x42]);
        assert_eq!(&s[16..20], &10_000_000u32.to_be_bytes());
        assert_eq!(&s[20..], &50u32.to_be_bytes());
    }

    #[test]
    fn av1_units() {
        let n = nvenc_mastering_display(&bt2020(), Codec::Av1);
        // 35400 / 50000 * 65536 = 46399.49 -> 46399.
        assert_eq!(n.r.x, 46399);
        assert_eq!(n.whitePoint.x, 20493); // 0.3127 * 65536 = 20493.1
        assert_eq!(n.maxLuma, 1000 * 256);
        assert_eq!(n.minLuma, 82); // 0.005 * 16384 = 81.92
        let h = nvenc_mastering_display(&bt2020(), Codec::Hevc);
        assert_eq!(
            (h.r.x, h.g.y, h.maxLuma, h.minLuma),
            (35400, 39850, 10_000_000, 50)
        );
        let b = av1_mastering_display(&bt2020());
        assert_eq!(
            &b[..2],
            &46399u16.to_be_bytes(),
            "AV1 order starts with red"
        );
        assert_eq!(&b[16..20], &(1000u32 * 256).to_be_bytes());
        // x = 1.0 saturates instead of wrapping.
        assert_eq!(av1_chroma(50000), u16::MAX);
    }

    #[test]
    fn captions() {
        let cc = [0xfc, 0x94, 0x20, 0xfd, 0x80, 0x80];
        let p = a53_t35_payload(&cc);
        assert_eq!(
            p,
            [
                0xb5, 0, 0x31, b'G', b'A', b'9', b'4', 3, 0x42, 0xff, 0xfc, 0x94, 0x20, 0xfd, 0x80,
                0x80, 0xff
            ]
        );
        let raw = cc_data(gst_video::VideoCaptionType::Cea708Raw, &cc).unwrap();
        assert_eq!(raw, cc);
        // CDP with a time code section, 2 triplets, footer.
        let mut cdp = vec![0x96, 0x69, 0, 0x4f, 0xc3, 0x12, 0x34];
        cdp.extend_from_slice(&[0x71, 1, 2, 3, 4]);
        cdp.extend_from_slice(&[0x72, 0xe2]);
        cdp.extend_from_slice(&cc);
        cdp.extend_from_slice(&[0x74, 0x12, 0x34, 0x00]);
        cdp[2] = cdp.len() as u8;
        assert_eq!(
            cc_data(gst_video::VideoCaptionType::Cea708Cdp, &cdp).unwrap(),
            cc
        );
        assert_eq!(
            cc_data(gst_video::VideoCaptionType::Cea708Cdp, &cdp[..14]),
            None
        );
        assert_eq!(
            cc_data(gst_video::VideoCaptionType::Cea608Raw, &[0x94, 0x20]),
            None
        );
        // More than 31 triplets: cut to 31.
        assert_eq!(
            cc_data(gst_video::VideoCaptionType::Cea708Raw, &[0xfa; 99])
                .unwrap()
                .len(),
            93
        );
    }

    /// The example CDP of cdp-types' documentation (time code, 2 CEA-608 and 2 DTVCC
    /// triplets, service information, footer with a valid checksum).
    const CDP_TYPES_EXAMPLE: [u8; 39] = [
        0x96, 0x69, 0x27, 0x3f, 0xf7, 0x12, 0x34, 0x71, 0xd7, 0xd9, 0xd7, 0x98, 0x72, 0xe4, 0xfc,
        0x20, 0x41, 0xfd, 0x42, 0x43, 0xff, 0x02, 0x21, 0xfe, 0x41, 0x00, 0x73, 0xd1, 0x80, b'e',
        b'n', b'g', 0x7e, 0x3f, 0xff, 0x74, 0x12, 0x34, 0xc4,
    ];

    #[test]
    fn cdp_with_service_information() {
        assert_eq!(
            cdp_cc_data(&CDP_TYPES_EXAMPLE),
            Some(&CDP_TYPES_EXAMPLE[14..26])
        );
        // No ccdata_present flag: nothing, whatever follows.
        let mut no_cc = CDP_TYPES_EXAMPLE;
        no_cc[4] &= !0x40;
        assert_eq!(cdp_cc_data(&no_cc), None);
        // cdp_length shorter than the triplets.
        let mut short = CDP_TYPES_EXAMPLE;
        short[2] = 20;
        assert_eq!(cdp_cc_data(&short), None);
    }

    #[test]
    fn cdp_truncated_and_corrupted_never_panic() {
        let mut state = 0x5eed_cafe_f00d_1234u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for cdp in [
            &CDP_TYPES_EXAMPLE[..],
            &[0x96, 0x69, 9, 0x4f, 0x43, 0, 0, 0x72, 0xff],
        ] {
            for n in 0..=cdp.len() {
                if let Some(cc) = cdp_cc_data(&cdp[..n]) {
                    assert!(cc.len() % 3 == 0 && cc.len() <= 31 * 3);
                }
            }
            for _ in 0..5000 {
                let mut v = cdp.to_vec();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % v.len() as u64) as usize;
                    v[i] ^= next() as u8;
                }
                v.truncate((next() % (v.len() as u64 + 1)) as usize);
                if let Some(cc) = cdp_cc_data(&v) {
                    assert!(cc.len() % 3 == 0 && cc.len() <= 31 * 3);
                    assert!(
                        cc_data(gst_video::VideoCaptionType::Cea708Cdp, &v)
                            .is_some_and(|c| c.len() <= 3 * MAX_CC_COUNT)
                            || cc.is_empty()
                    );
                }
            }
        }
    }
}
