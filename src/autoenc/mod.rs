// SPDX-License-Identifier: MPL-2.0
//! `rsautoh264enc`, `rsautoh265enc`, `rsautoav1enc`: encoder bins that use this plugin's NVENC
//! element and fall back to the best software encoder installed when NVENC cannot encode.
//!
//! Names: GStreamer calls elements that pick an implementation at run time `auto<what>`
//! (`autovideosink`, `autovideoconvert`, nvcodec's `nvautogpuh264enc`), encoders end in
//! `<codec>enc`, and this plugin's elements start with `rs`. Not `rsnvenc...`: the bin is not
//! always NVENC.
//!
//! Inside: `videoconvert ! <encoder> ! capsfilter`, ghost pads `sink` and `src`.
//! - Choice: NVENC (`rsnvench264enc`, ...) unless its element is missing or no NVIDIA driver
//!   loads; then, and when the NVENC element reports that it cannot open a session (its error,
//!   caught before it leaves the bin, while no output has come), the best software encoder
//!   present: H.264 `x264enc`, `openh264enc`; H.265 `x265enc`; AV1 `svtav1enc`, `av1enc`,
//!   `rav1enc`. The element message `rsautoenc-selected` (`encoder`, `kind` = nvenc|software,
//!   `reason`) says which and why, and the read-only `active-encoder` property names it.
//! - Properties mapped where they mean the same ([`map_properties`]): `bitrate` (kbit/s),
//!   `gop-size` (frames between key frames), `bframes`, `rate-control` (cbr, vbr, cqp).
//! - Negotiation and output caps do not depend on the encoder: the sink takes raw video in
//!   system memory (videoconvert adapts it to the encoder), the output is forced to one stream
//!   format (H.26x byte-stream/au, AV1 obu-stream/tu) and profile (H.264: `high` where x264enc
//!   is the fallback, `constrained-baseline` where only openh264enc is; H.265 `main`), and the
//!   caps the bin sends downstream keep only the fields every encoder sets ([`canonical_caps`];
//!   `level`, `tier`, bit depths and `codec_data` are left to a downstream parser).

mod imp;

use gst::glib;
use gst::prelude::*;

/// The codec of one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Av1,
}

impl Codec {
    /// The NVENC element of this plugin.
    pub fn nvenc_factory(self) -> &'static str {
        match self {
            Codec::H264 => "rsnvench264enc",
            Codec::H265 => "rsnvench265enc",
            Codec::Av1 => "rsnvencav1enc",
        }
    }

    /// Software encoders, best first.
    pub fn software_factories(self) -> &'static [&'static str] {
        match self {
            Codec::H264 => &["x264enc", "openh264enc"],
            Codec::H265 => &["x265enc"],
            Codec::Av1 => &["svtav1enc", "av1enc", "rav1enc"],
        }
    }

    /// The best software encoder installed, if any.
    pub fn software_factory(self) -> Option<&'static str> {
        self.software_factories()
            .iter()
            .copied()
            .find(|f| gst::ElementFactory::find(f).is_some())
    }

    fn media_type(self) -> &'static str {
        match self {
            Codec::H264 => "video/x-h264",
            Codec::H265 => "video/x-h265",
            Codec::Av1 => "video/x-av1",
        }
    }

    /// The caps every encoder of the bin is made to produce (the capsfilter's).
    pub fn forced_caps(self) -> gst::Caps {
        match self {
            Codec::H264 => gst::Caps::builder(self.media_type())
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .field(
                    "profile",
                    if gst::ElementFactory::find("x264enc").is_some() {
                        "high"
                    } else {
                        "constrained-baseline"
                    },
                )
                .build(),
            Codec::H265 => gst::Caps::builder(self.media_type())
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .field("profile", "main")
                .build(),
            Codec::Av1 => gst::Caps::builder(self.media_type())
                .field("alignment", "tu")
                .build(),
        }
    }
}

/// Fields of the output caps the bin passes on: those every encoder sets the same way.
const KEPT: &[&str] = &[
    "stream-format",
    "alignment",
    "profile",
    "width",
    "height",
    "framerate",
    "pixel-aspect-ratio",
    "interlace-mode",
    "colorimetry",
    "chroma-site",
    "multiview-mode",
    "multiview-flags",
];

/// The caps the bin sends downstream for an encoder's output caps `caps`: the fields of
/// [`KEPT`], AV1 with `stream-format=obu-stream` and without `profile` (not every AV1 encoder
/// sets it).
pub fn canonical_caps(codec: Codec, caps: &gst::CapsRef) -> gst::Caps {
    let Some(s) = caps.structure(0) else {
        return caps.to_owned();
    };
    let mut out = gst::Structure::new_empty(codec.media_type());
    for f in KEPT {
        if codec == Codec::Av1 && *f == "profile" {
            continue;
        }
        if let Ok(v) = s.value(*f) {
            out.set_value(*f, v.clone());
        }
    }
    if codec == Codec::Av1 {
        out.set("stream-format", "obu-stream");
    }
    gst::Caps::builder_full().structure(out).build()
}

/// Rate control of the bin (`rate-control`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRsAutoEncRateControl")]
pub enum RateControl {
    /// The encoder's own default.
    #[default]
    #[enum_value(name = "The encoder's default", nick = "default")]
    Default = 0,
    #[enum_value(name = "Constant bitrate", nick = "cbr")]
    Cbr = 1,
    #[enum_value(name = "Variable bitrate", nick = "vbr")]
    Vbr = 2,
    #[enum_value(name = "Constant quantizer", nick = "cqp")]
    Cqp = 3,
}

/// The bin's common properties, as set by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    /// kbit/s, 0 = the encoder's default.
    pub bitrate: u32,
    /// Frames between key frames, -1 = the encoder's default.
    pub gop_size: i32,
    /// B-frames between references, -1 = the encoder's default.
    pub bframes: i32,
    pub rate_control: RateControl,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            bitrate: 0,
            gop_size: -1,
            bframes: -1,
            rate_control: RateControl::Default,
        }
    }
}

/// One property setting: (property, value as `gst_util_set_object_arg` takes it).
type Setting = (&'static str, String);

/// What `common` becomes on the encoder made by `factory`, and what could not be mapped.
/// Mappings (units converted): bitrate -> `bitrate` (rsnvenc, x264enc, x265enc: kbit/s;
/// openh264enc, rav1enc: bit/s), `target-bitrate` (svtav1enc, av1enc: kbit/s); gop-size ->
/// `gop-size` (rsnvenc, openh264enc), `key-int-max` (x264enc, x265enc), `intra-period-length`
/// (svtav1enc, which counts the frames after the key frame), `keyframe-max-dist` (av1enc),
/// `max-key-frame-interval` (rav1enc); bframes -> `bframes` (rsnvenc, x264enc),
/// x265enc's `option-string` `bframes=N`; rate-control -> rsnvenc `rc-mode` (cbr, vbr,
/// constqp), x264enc `pass` (cbr: cbr, cqp: quant), openh264enc `rate-control` (cbr: bitrate),
/// av1enc `end-usage` (cbr, vbr, cqp: q).
pub fn map_properties(factory: &str, common: &Common) -> (Vec<Setting>, Vec<String>) {
    let mut set: Vec<Setting> = Vec::new();
    let mut unmapped = Vec::new();
    let nvenc = factory.starts_with("rsnvenc");
    if common.bitrate > 0 {
        let kbps = common.bitrate;
        match factory {
            f if nvenc || f == "x264enc" || f == "x265enc" => {
                set.push(("bitrate", kbps.to_string()))
            }
            "openh264enc" | "rav1enc" => set.push(("bitrate", (kbps as u64 * 1000).to_string())),
            "svtav1enc" | "av1enc" => set.push(("target-bitrate", kbps.to_string())),
            _ => unmapped.push("bitrate".into()),
        }
    }
    if common.gop_size >= 0 {
        let g = common.gop_size;
        match factory {
            f if nvenc || f == "openh264enc" => set.push(("gop-size", g.to_string())),
            "x264enc" | "x265enc" => set.push(("key-int-max", g.to_string())),
            "svtav1enc" => set.push(("intra-period-length", (g - 1).max(-1).to_string())),
            "av1enc" => set.push(("keyframe-max-dist", g.to_string())),
            "rav1enc" => set.push(("max-key-frame-interval", g.to_string())),
            _ => unmapped.push("gop-size".into()),
        }
    }
    if common.bframes >= 0 {
        let b = common.bframes;
        match factory {
            f if nvenc || f == "x264enc" => set.push(("bframes", b.to_string())),
            "x265enc" => set.push(("option-string", format!("bframes={b}"))),
            _ if b == 0 => {}
            _ => unmapped.push(format!("bframes={b} ({factory} codes no B-frames)")),
        }
    }
    let rc = common.rate_control;
    if rc != RateControl::Default {
        let v = match (factory, rc) {
            (f, RateControl::Cbr) if f.starts_with("rsnvenc") => Some(("rc-mode", "cbr")),
            (f, RateControl::Vbr) if f.starts_with("rsnvenc") => Some(("rc-mode", "vbr")),
            (f, RateControl::Cqp) if f.starts_with("rsnvenc") => Some(("rc-mode", "constqp")),
            ("x264enc", RateControl::Cbr) => Some(("pass", "cbr")),
            ("x264enc", RateControl::Cqp) => Some(("pass", "quant")),
            ("openh264enc", RateControl::Cbr) => Some(("rate-control", "bitrate")),
            ("av1enc", RateControl::Cbr) => Some(("end-usage", "cbr")),
            ("av1enc", RateControl::Vbr) => Some(("end-usage", "vbr")),
            ("av1enc", RateControl::Cqp) => Some(("end-usage", "q")),
            _ => None,
        };
        match v {
            Some((p, v)) => set.push((p, v.to_string())),
            None => unmapped.push(format!(
                "rate-control={} (no equivalent in {factory})",
                rc.nick()
            )),
        }
    }
    (set, unmapped)
}

impl RateControl {
    /// The property value's nick.
    pub fn nick(self) -> &'static str {
        match self {
            RateControl::Default => "default",
            RateControl::Cbr => "cbr",
            RateControl::Vbr => "vbr",
            RateControl::Cqp => "cqp",
        }
    }
}

glib::wrapper! {
    pub struct AutoH264Enc(ObjectSubclass<imp::AutoH264Enc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

glib::wrapper! {
    pub struct AutoH265Enc(ObjectSubclass<imp::AutoH265Enc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

glib::wrapper! {
    pub struct AutoAv1Enc(ObjectSubclass<imp::AutoAv1Enc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

/// Registers the three bins (rank none: applications ask for them by name).
///
/// # Errors
/// GStreamer's registration error.
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    for (name, ty) in [
        ("rsautoh264enc", AutoH264Enc::static_type()),
        ("rsautoh265enc", AutoH265Enc::static_type()),
        ("rsautoav1enc", AutoAv1Enc::static_type()),
    ] {
        match plugin {
            Some(p) => gst::Element::register(Some(p), name, gst::Rank::NONE, ty)?,
            None => gst::Element::register(None, name, gst::Rank::NONE, ty)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_map_with_units() {
        let c = Common {
            bitrate: 2000,
            gop_size: 60,
            bframes: 2,
            rate_control: RateControl::Cbr,
        };
        let (set, un) = map_properties("rsnvench264enc", &c);
        assert_eq!(
            set,
            vec![
                ("bitrate", "2000".into()),
                ("gop-size", "60".into()),
                ("bframes", "2".into()),
                ("rc-mode", "cbr".into())
            ]
        );
        assert!(un.is_empty());
        let (set, un) = map_properties("openh264enc", &c);
        assert_eq!(
            set,
            vec![
                ("bitrate", "2000000".into()),
                ("gop-size", "60".into()),
                ("rate-control", "bitrate".into())
            ]
        );
        assert_eq!(un, vec!["bframes=2 (openh264enc codes no B-frames)"]);
        let (set, un) = map_properties("x265enc", &c);
        assert_eq!(
            set,
            vec![
                ("bitrate", "2000".into()),
                ("key-int-max", "60".into()),
                ("option-string", "bframes=2".into())
            ]
        );
        assert_eq!(un, vec!["rate-control=cbr (no equivalent in x265enc)"]);
        let (set, _) = map_properties("av1enc", &c);
        assert_eq!(set[0], ("target-bitrate", "2000".into()));
        assert_eq!(set[1], ("keyframe-max-dist", "60".into()));
        // Defaults set nothing.
        assert_eq!(
            map_properties("x264enc", &Common::default()),
            (vec![], vec![])
        );
    }

    #[test]
    fn caps_are_canonical() {
        gst::init().unwrap();
        let nv: gst::Caps = "video/x-h265, stream-format=byte-stream, alignment=au, profile=main, level=2, tier=main, chroma-format=4:2:0, bit-depth-luma=(uint)8, width=320, height=240, framerate=30/1, pixel-aspect-ratio=1/1".parse().unwrap();
        let sw: gst::Caps = "video/x-h265, stream-format=byte-stream, alignment=au, level=2.1, tier=main, profile=main, width=320, height=240, pixel-aspect-ratio=1/1, framerate=30/1".parse().unwrap();
        let a = canonical_caps(Codec::H265, &nv);
        assert_eq!(a, canonical_caps(Codec::H265, &sw));
        assert!(a.structure(0).unwrap().get::<&str>("level").is_err());
        let av1: gst::Caps = "video/x-av1, stream-format=obu-stream, alignment=tu, codec_data=(buffer)81, profile=main, width=320, height=240".parse().unwrap();
        let sw: gst::Caps = "video/x-av1, alignment=tu, width=320, height=240"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_caps(Codec::Av1, &av1),
            canonical_caps(Codec::Av1, &sw)
        );
    }
}
