//! Capability models (`NVEMU_GPU`) and preset configurations.

use crate::abi::{self, CodecKind, Guid, SdkIdx, View};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gpu {
    /// GeForce RTX 4090 (AD102).
    Ada,
    /// RTX A4000 (GA104, a professional card).
    Ampere,
    /// GeForce RTX 2080 (TU104).
    Turing,
    /// H100: no NVENC.
    NoNvenc,
}

/// The GeForce driver's cap on concurrent encode sessions. NVENC Application Note, Video Codec
/// SDK 13.0, section 3 "NVENC Licensing Policy"
/// (https://docs.nvidia.com/video-technologies/video-codec-sdk/13.0/nvenc-application-note/index.html):
/// "On non-qualified GPUs, the number of concurrent encode sessions is limited to 8 per
/// system", combined over every non-qualified (GeForce) card; on qualified (professional)
/// GPUs it is "limited by available system resources". NVIDIA's Video Encode and Decode GPU
/// Support Matrix ("Max # of concurrent sessions") gives the same 8 for GeForce since driver 551
/// (it was 3, then 5); the matrix itself was not in the sources read for this.
pub const GEFORCE_SESSION_CAP: usize = 8;

impl Gpu {
    /// The model `NVEMU_GPU` names (every GPU's unless `NVEMU_GPU_MODELS` says otherwise; see
    /// [`Gpu::for_device`]). The session caps are in `crate::system`.
    pub fn from_env() -> Gpu {
        match std::env::var("NVEMU_GPU").as_deref() {
            Ok("ampere") => Gpu::Ampere,
            Ok("turing") => Gpu::Turing,
            Ok("no-nvenc") => Gpu::NoNvenc,
            _ => Gpu::Ada,
        }
    }

    /// The model of GPU `ordinal` (CUDA ordinal): `NVEMU_GPU_MODELS`' entry, else `NVEMU_GPU`
    /// (`crate::gpus`).
    pub fn for_device(ordinal: u32) -> Gpu {
        match crate::gpus::model_of(ordinal as usize).key {
            "ampere" => Gpu::Ampere,
            "turing" => Gpu::Turing,
            "no-nvenc" => Gpu::NoNvenc,
            _ => Gpu::Ada,
        }
    }

    /// The model's name in `NVEMU_GPU`.
    pub fn name(self) -> &'static str {
        match self {
            Gpu::Ada => "ada",
            Gpu::Ampere => "ampere",
            Gpu::Turing => "turing",
            Gpu::NoNvenc => "no-nvenc",
        }
    }

    /// NVENC engines on the chip (`NV_ENC_CAPS_NUM_ENCODER_ENGINES`).
    /// - RTX 4090: 2. NVIDIA's blog "Video Encoding at 8K60 with Split-Frame Encoding and NVIDIA
    ///   Ada Lovelace Architecture"
    ///   (https://developer.nvidia.com/blog/video-encoding-at-8k60-with-split-frame-encoding-and-nvidia-ada-lovelace-architecture/):
    ///   "Two NVENCs are provided with NVIDIA RTX 4090 and 4080 and three NVENCs with NVIDIA RTX
    ///   6000 Ada Lovelace or L40"; rigaya's NVEncC dump of an RTX 4080
    ///   (github.com/rigaya/NVEnc, GPUFeatures/rtx4080.txt) reads "Encoder Engines 2" from the
    ///   driver.
    /// - RTX 2080: 1. NVIDIA Video Codec SDK FAQ (https://developer.nvidia.com/video-codec-sdk/download):
    ///   "despite Turing GPUs having only 1 NVENC engine".
    /// - RTX A4000 (GA104): 1. Not read from NVIDIA's support matrix (not in the sources at
    ///   hand); assumed from the Ampere generation: the driver reports "Encoder Engines 1" on the
    ///   larger GA102 (rigaya's GPUFeatures/rtx3090.txt).
    pub fn nvenc_engines(self) -> usize {
        match self {
            Gpu::Ada => 2,
            Gpu::Ampere | Gpu::Turing => 1,
            Gpu::NoNvenc => 0,
        }
    }

    /// Whether the card is a GeForce ("non-qualified" for NVENC licensing): the `ada`
    /// (RTX 4090) and `turing` (RTX 2080) models. The `ampere` model is an RTX A4000, a
    /// professional ("qualified") card.
    pub fn is_geforce(self) -> bool {
        matches!(self, Gpu::Ada | Gpu::Turing)
    }

    pub fn codecs(self) -> &'static [CodecKind] {
        match self {
            Gpu::Ada => &[CodecKind::H264, CodecKind::Hevc, CodecKind::Av1],
            Gpu::Ampere | Gpu::Turing => &[CodecKind::H264, CodecKind::Hevc],
            Gpu::NoNvenc => &[],
        }
    }
}

pub fn codec_guid_name(c: CodecKind) -> &'static str {
    match c {
        CodecKind::H264 => "NV_ENC_CODEC_H264_GUID",
        CodecKind::Hevc => "NV_ENC_CODEC_HEVC_GUID",
        CodecKind::Av1 => "NV_ENC_CODEC_AV1_GUID",
    }
}

/// GUID of a codec in an SDK; None where the SDK's header has none (AV1 before 12.0).
pub fn codec_guid(sdk: SdkIdx, c: CodecKind) -> Option<Guid> {
    abi::guid(sdk, codec_guid_name(c))
}

/// Codec of a GUID in an SDK, whether or not this GPU supports it.
pub fn codec_of(sdk: SdkIdx, g: &Guid) -> Option<CodecKind> {
    [CodecKind::H264, CodecKind::Hevc, CodecKind::Av1]
        .into_iter()
        .find(|c| codec_guid(sdk, *c) == Some(*g))
}

/// Codecs a session of API `sdk` is offered: those of the GPU that the session's header knows.
/// An 11.1 client has no AV1 GUID, config or picture parameters, so AV1 is left out of its
/// GetEncodeGUIDs list. Whether a real driver lists AV1 to an 11.x client is unknown (such a
/// client could not use it: SDK 11.1 has no `NV_ENC_CONFIG_AV1`).
pub fn session_codecs(gpu: Gpu, sdk: SdkIdx) -> Vec<(CodecKind, Guid)> {
    gpu.codecs()
        .iter()
        .filter_map(|c| Some((*c, codec_guid(sdk, *c)?)))
        .collect()
}

/// Checks a codec GUID against the model. Unknown GUID -> INVALID_PARAM; a codec this GPU lacks
/// (AV1 on Ampere/Turing) -> UNSUPPORTED_PARAM. The real driver's exact status here is not
/// documented; this is the strict choice.
pub fn check_codec(gpu: Gpu, sdk: SdkIdx, g: &Guid) -> Result<CodecKind, i32> {
    match codec_of(sdk, g) {
        None => Err(crate::st::INVALID_PARAM),
        Some(c) if !gpu.codecs().contains(&c) => Err(crate::st::UNSUPPORTED_PARAM),
        Some(c) => Ok(c),
    }
}

pub fn profile_names(sdk: SdkIdx, c: CodecKind) -> Vec<&'static str> {
    let all: &[&str] = match c {
        // BASELINE, MAIN and HIGH_444 are in every header (11.1 .. 13.0); the shipped 12.0-13.0
        // tables missed their declarations (`static const GUID  NAME`, two spaces), which
        // crates/nvenc-abi/tables/supplement/ adds back (see the tables' README).
        CodecKind::H264 => &[
            "NV_ENC_H264_PROFILE_BASELINE_GUID",
            "NV_ENC_H264_PROFILE_MAIN_GUID",
            "NV_ENC_H264_PROFILE_HIGH_GUID",
            "NV_ENC_H264_PROFILE_HIGH_444_GUID",
            "NV_ENC_H264_PROFILE_PROGRESSIVE_HIGH_GUID",
            "NV_ENC_H264_PROFILE_CONSTRAINED_HIGH_GUID",
        ],
        CodecKind::Hevc => &[
            "NV_ENC_HEVC_PROFILE_MAIN_GUID",
            "NV_ENC_HEVC_PROFILE_MAIN10_GUID",
            "NV_ENC_HEVC_PROFILE_FREXT_GUID",
        ],
        CodecKind::Av1 => &["NV_ENC_AV1_PROFILE_MAIN_GUID"],
    };
    all.iter()
        .copied()
        .filter(|n| abi::guid(sdk, n).is_some())
        .collect()
}

/// Buffer formats (enumerator names) the model accepts per codec.
pub fn input_format_names(c: CodecKind) -> &'static [&'static str] {
    match c {
        // Ada's H.264 engine has no 10-bit encode.
        CodecKind::H264 => &[
            "NV_ENC_BUFFER_FORMAT_NV12",
            "NV_ENC_BUFFER_FORMAT_YV12",
            "NV_ENC_BUFFER_FORMAT_IYUV",
            "NV_ENC_BUFFER_FORMAT_YUV444",
            "NV_ENC_BUFFER_FORMAT_ARGB",
            "NV_ENC_BUFFER_FORMAT_ABGR",
            "NV_ENC_BUFFER_FORMAT_AYUV",
        ],
        CodecKind::Hevc => &[
            "NV_ENC_BUFFER_FORMAT_NV12",
            "NV_ENC_BUFFER_FORMAT_YV12",
            "NV_ENC_BUFFER_FORMAT_IYUV",
            "NV_ENC_BUFFER_FORMAT_YUV444",
            "NV_ENC_BUFFER_FORMAT_YUV420_10BIT",
            "NV_ENC_BUFFER_FORMAT_YUV444_10BIT",
            "NV_ENC_BUFFER_FORMAT_ARGB",
            "NV_ENC_BUFFER_FORMAT_ARGB10",
            "NV_ENC_BUFFER_FORMAT_AYUV",
            "NV_ENC_BUFFER_FORMAT_ABGR",
            "NV_ENC_BUFFER_FORMAT_ABGR10",
        ],
        CodecKind::Av1 => &[
            "NV_ENC_BUFFER_FORMAT_NV12",
            "NV_ENC_BUFFER_FORMAT_YV12",
            "NV_ENC_BUFFER_FORMAT_IYUV",
            "NV_ENC_BUFFER_FORMAT_YUV420_10BIT",
            "NV_ENC_BUFFER_FORMAT_ARGB",
            "NV_ENC_BUFFER_FORMAT_ARGB10",
            "NV_ENC_BUFFER_FORMAT_ABGR",
            "NV_ENC_BUFFER_FORMAT_ABGR10",
        ],
    }
}

pub fn input_formats(sdk: SdkIdx, c: CodecKind) -> Vec<u32> {
    input_format_names(c)
        .iter()
        .filter_map(|n| abi::enum_val(sdk, n))
        .map(|v| v as u32)
        .collect()
}

pub const MAX_BFRAMES: i32 = 4;

/// `NV_ENC_CAPS_NUM_MAX_LTR_FRAMES` per model and codec. Source: rigaya's NVEncC capability
/// dumps (github.com/rigaya/NVEnc, GPUFeatures/): RTX 4060 Laptop (Ada, Linux driver 550.12,
/// API 12.2) "Max LTR Frames" 8 (H.264), 7 (HEVC), 6 (AV1); RTX 2070 (Turing, driver 451) 8 and
/// 7; RTX 3050 Ti Laptop (Ampere, driver 511) 8 and 7. (An RTX 4080 on driver 526 reported 2
/// for AV1: the AV1 figure depends on the driver; the newer one is modelled.) The emulator
/// accepts the LTR configuration but its software encoders code no long-term references (see
/// the contract).
pub fn max_ltr_frames(gpu: Gpu, c: CodecKind) -> u32 {
    match (gpu, c) {
        (Gpu::NoNvenc, _) => 0,
        (_, CodecKind::H264) => 8,
        (_, CodecKind::Hevc) => 7,
        (Gpu::Ada, CodecKind::Av1) => 6,
        (_, CodecKind::Av1) => 0,
    }
}

/// `NV_ENC_CAPS_SUPPORT_TEMPORAL_FILTER` (SDK 12.2+) per model and codec. Ada: HEVC and AV1
/// yes, H.264 no (rigaya's RTX 4060 Laptop dump, driver 550.12, API 12.2: "Temporal Filter"
/// yes/yes/no; H.264 got `tfLevel` only in SDK 13.0, and a Blackwell RTX 5060 on driver 577
/// reports it for H.264 too, which is not modelled). Turing and Ampere: 0, an ASSUMPTION (no
/// dump of those with API 12.2+ was found; the header says UHQ tuning, which uses the filter,
/// is "supported for HEVC and AV1 on Turing+", so the real answer may be 1).
pub fn temporal_filter(gpu: Gpu, c: CodecKind) -> bool {
    gpu == Gpu::Ada && c != CodecKind::H264
}

/// `NV_ENC_CAPS_SUPPORT_LOOKAHEAD_LEVEL` (SDK 12.2+): "Maximum Lookahead level supported".
/// Ada: HEVC 3, AV1 and H.264 0 (rigaya's RTX 4060 Laptop dump, driver 550.12: "Lookahead
/// Level" yes for HEVC only; the dump prints a yes/no, so the level 3 is an ASSUMPTION, from
/// the P7/UHQ preset of a real driver using level 3, reference §1.4). Turing and Ampere: 0
/// (ASSUMPTION, as for the temporal filter).
pub fn max_lookahead_level(gpu: Gpu, c: CodecKind) -> u32 {
    if gpu == Gpu::Ada && c == CodecKind::Hevc {
        3
    } else {
        0
    }
}

/// Width/height limits. The contract fixes 8192x8192 and 145x49 for HEVC/AV1. Real NVENC's
/// H.264 engine stops at 4096x4096 and the emulator says so (strict). The H.264 minimum is
/// not documented; the HEVC/AV1 one is used (strict).
pub fn size_limits(c: CodecKind) -> (u32, u32, u32, u32) {
    match c {
        CodecKind::H264 => (145, 49, 4096, 4096),
        _ => (145, 49, 8192, 8192),
    }
}

/// `NV_ENC_CAPS` answer, or None for an enumerator the session's API does not define.
///
/// Values are those of an Ada GPU where public sources agree; features the emulator does not
/// emulate (field encoding, ME-only, ...) are reported as 0 so a
/// client never turns on something that would then silently do nothing. Exceptions, reported
/// as the modelled GPU would and validated, but not reproduced by the software encoders (traced
/// as `emulator_note`): B-frame reference modes, long-term references, the temporal filter and
/// the lookahead level.
pub fn cap(gpu: Gpu, sdk: SdkIdx, c: CodecKind, cap: i32) -> Option<i32> {
    let name = abi::enums_with_prefix(sdk, "NV_ENC_CAPS_")
        .into_iter()
        .find(|(n, v)| *v == cap as i64 && n != "NV_ENC_CAPS_EXPOSED_COUNT")?
        .0;
    let h264 = c == CodecKind::H264;
    let hevc = c == CodecKind::Hevc;
    let (wmin, hmin, wmax, hmax) = size_limits(c);
    let v = match name.trim_start_matches("NV_ENC_CAPS_") {
        "NUM_MAX_BFRAMES" => MAX_BFRAMES,
        // Bitmask of NV_ENC_PARAMS_RC_MODE values (CONSTQP is 0 and has no bit). 11.1 and 12.0
        // still have the deprecated modes (VBR_MINQP 4, CBR_LOWDELAY_HQ 8, CBR_HQ 0x10, VBR_HQ
        // 0x20), which the emulator accepts in those APIs.
        "SUPPORTED_RATECONTROL_MODES" => {
            if deprecated_rc_modes(sdk) {
                0x3f
            } else {
                0x3
            }
        }
        "SUPPORT_FIELD_ENCODING" => 0,
        "SUPPORT_MONOCHROME" => 0,
        "SUPPORT_FMO" => 0,
        "SUPPORT_QPELMV" => 1,
        "SUPPORT_BDIRECT_MODE" => h264 as i32,
        "SUPPORT_CABAC" => h264 as i32,
        "SUPPORT_ADAPTIVE_TRANSFORM" => h264 as i32,
        "SUPPORT_STEREO_MVC" => 0,
        "NUM_MAX_TEMPORAL_LAYERS" => 0,
        "SUPPORT_HIERARCHICAL_PFRAMES" => 0,
        "SUPPORT_HIERARCHICAL_BFRAMES" => 0,
        "LEVEL_MAX" => match c {
            CodecKind::H264 => 62,
            CodecKind::Hevc => 186,
            CodecKind::Av1 => 23,
        },
        "LEVEL_MIN" => match c {
            CodecKind::H264 => 10,
            CodecKind::Hevc => 30,
            CodecKind::Av1 => 0,
        },
        "SEPARATE_COLOUR_PLANE" => 0,
        "WIDTH_MAX" => wmax as i32,
        "HEIGHT_MAX" => hmax as i32,
        "WIDTH_MIN" => wmin as i32,
        "HEIGHT_MIN" => hmin as i32,
        "SUPPORT_TEMPORAL_SVC" => 0,
        // Reported 1 by Turing, Ampere and Ada drivers (rigaya's NVEncC capability dumps:
        // "Dynamic Resolution Change yes", "Dynamic RC Mode Change no"). A size change in
        // nvEncReconfigureEncoder must stay within maxEncodeWidth/Height (api.rs).
        "SUPPORT_DYN_RES_CHANGE" => 1,
        "SUPPORT_DYN_BITRATE_CHANGE" => 1,
        "SUPPORT_DYN_FORCE_CONSTQP" => 0,
        "SUPPORT_DYN_RCMODE_CHANGE" => 0,
        "SUPPORT_SUBFRAME_READBACK" => 0,
        "SUPPORT_CONSTRAINED_ENCODING" => 0,
        // Periodic intra refresh: reported by Turing, Ampere and Ada drivers (rigaya's NVEncC
        // capability dumps list "Intra Refresh" for them); the fields are accepted and traced,
        // the software encoders do not code it (see the contract).
        "SUPPORT_INTRA_REFRESH" => 1,
        "SUPPORT_CUSTOM_VBV_BUF_SIZE" => 1,
        "SUPPORT_DYNAMIC_SLICE_MODE" => 0,
        "SUPPORT_REF_PIC_INVALIDATION" => 0,
        "PREPROC_SUPPORT" => 0,
        // Linux has no asynchronous mode.
        "ASYNC_ENCODE_SUPPORT" => 0,
        "MB_NUM_MAX" => ((wmax / 16) * (hmax / 16)) as i32,
        "MB_PER_SEC_MAX" => ((wmax / 16) * (hmax / 16) * 60) as i32,
        "SUPPORT_YUV444_ENCODE" => (h264 || hevc) as i32,
        // Lossless: H.264 and H.265 on every model, as rigaya's NVEncC dumps of an RTX 2070
        // (Turing), RTX 3050 Ti (Ampere) and RTX 4060 (Ada, Linux 550.12) report ("Lossless
        // yes"); AV1 "no" on Ada. Coded lossless by the software encoders.
        "SUPPORT_LOSSLESS_ENCODE" => (h264 || hevc) as i32,
        "SUPPORT_SAO" => hevc as i32,
        "SUPPORT_MEONLY_MODE" => 0,
        "SUPPORT_LOOKAHEAD" => 1,
        "SUPPORT_TEMPORAL_AQ" => 1,
        "SUPPORT_10BIT_ENCODE" => (!h264) as i32,
        "NUM_MAX_LTR_FRAMES" => max_ltr_frames(gpu, c) as i32,
        "SUPPORT_WEIGHTED_PREDICTION" => 0,
        "DYNAMIC_QUERY_ENCODER_CAPACITY" => 0,
        // 1 = each, 2 = middle only. Accepted, but the emulator always codes B-frames flat
        // (P3 B1 B2, no pyramid); buffers are filled in submission order either way.
        "SUPPORT_BFRAME_REF_MODE" => 3,
        // Which GPUs report the emphasis level map is not known (NVIDIA's support matrix does
        // not list it; rigaya's NVEncC dumps do not print it): 0 on every model, 1 through
        // `NVEMU_CAPS` (below).
        "SUPPORT_EMPHASIS_LEVEL_MAP" => 0,
        "SUPPORT_MULTIPLE_REF_FRAMES" => 1,
        "SUPPORT_ALPHA_LAYER_ENCODING" => 0,
        "NUM_ENCODER_ENGINES" => gpu.nvenc_engines() as i32,
        "SINGLE_SLICE_INTRA_REFRESH" => 0,
        "DISABLE_ENC_STATE_ADVANCE" => 0,
        "OUTPUT_RECON_SURFACE" => 0,
        "OUTPUT_BLOCK_STATS" => 0,
        "OUTPUT_ROW_STATS" => 0,
        "SUPPORT_TEMPORAL_FILTER" => temporal_filter(gpu, c) as i32,
        "SUPPORT_LOOKAHEAD_LEVEL" => max_lookahead_level(gpu, c) as i32,
        "SUPPORT_UNIDIRECTIONAL_B" => 0,
        "SUPPORT_MVHEVC_ENCODE" => 0,
        "SUPPORT_YUV422_ENCODE" => 0,
        _ => 0,
    };
    let short = name.trim_start_matches("NV_ENC_CAPS_");
    Some(cap_override(std::env::var("NVEMU_CAPS").ok().as_deref(), c, short).unwrap_or(v))
}

/// `NVEMU_CAPS`: answers that replace the model's, for features no modelled GPU is known to
/// report (the emphasis level map). Comma-separated `[CODEC:]NAME=VALUE`: `NAME` without the
/// `NV_ENC_CAPS_` prefix, `CODEC` one of `h264`, `hevc`, `av1` (none: every codec), `VALUE`
/// an integer; e.g. `h264:SUPPORT_EMPHASIS_LEVEL_MAP=1`. The last entry that matches wins;
/// malformed entries are ignored. Read at every query (caps are queried a few times a session).
pub fn cap_override(spec: Option<&str>, c: CodecKind, name: &str) -> Option<i32> {
    let codec = match c {
        CodecKind::H264 => "h264",
        CodecKind::Hevc => "hevc",
        CodecKind::Av1 => "av1",
    };
    spec?
        .split(',')
        .filter_map(|e| {
            let (lhs, value) = e.trim().split_once('=')?;
            let (only, n) = match lhs.split_once(':') {
                Some((k, n)) => (Some(k), n),
                None => (None, lhs),
            };
            let ok = n == name && only.is_none_or(|k| k.eq_ignore_ascii_case(codec));
            ok.then(|| value.trim().parse::<i32>().ok()).flatten()
        })
        .next_back()
}

/// Whether the session's header still has the deprecated rate-control modes (VBR_MINQP 4, a
/// macro, and the enumerators CBR_LOWDELAY_HQ 8, CBR_HQ 0x10, VBR_HQ 0x20): up to 12.0 (so 11.1
/// and 12.0); removed in 12.1.
pub fn deprecated_rc_modes(sdk: SdkIdx) -> bool {
    abi::enum_val(sdk, "NV_ENC_PARAMS_RC_VBR_HQ").is_some()
}

pub const PRESETS: [&str; 7] = [
    "NV_ENC_PRESET_P1_GUID",
    "NV_ENC_PRESET_P2_GUID",
    "NV_ENC_PRESET_P3_GUID",
    "NV_ENC_PRESET_P4_GUID",
    "NV_ENC_PRESET_P5_GUID",
    "NV_ENC_PRESET_P6_GUID",
    "NV_ENC_PRESET_P7_GUID",
];

/// Preset number 1..=7 of a preset GUID, plus a tuning override for the legacy 12.0 presets.
pub fn preset_of(sdk: SdkIdx, g: &Guid) -> Option<(u32, Option<u32>)> {
    for (i, n) in PRESETS.iter().enumerate() {
        if abi::guid(sdk, n) == Some(*g) {
            return Some((i as u32 + 1, None));
        }
    }
    // Legacy presets, still in the 12.0 header (removed in 12.1); mapped the way FFmpeg maps
    // them (reference §1.4).
    let legacy: [(&str, u32, Option<u32>); 9] = [
        ("NV_ENC_PRESET_DEFAULT_GUID", 4, None),
        ("NV_ENC_PRESET_HP_GUID", 1, None),
        ("NV_ENC_PRESET_HQ_GUID", 7, None),
        ("NV_ENC_PRESET_BD_GUID", 5, None),
        ("NV_ENC_PRESET_LOW_LATENCY_DEFAULT_GUID", 4, Some(2)),
        ("NV_ENC_PRESET_LOW_LATENCY_HQ_GUID", 7, Some(2)),
        ("NV_ENC_PRESET_LOW_LATENCY_HP_GUID", 1, Some(2)),
        ("NV_ENC_PRESET_LOSSLESS_DEFAULT_GUID", 4, Some(4)),
        ("NV_ENC_PRESET_LOSSLESS_HP_GUID", 1, Some(4)),
    ];
    legacy
        .iter()
        .find(|(n, _, _)| abi::guid(sdk, n) == Some(*g))
        .map(|(_, p, t)| (*p, *t))
}

/// Fills an `NV_ENC_CONFIG` (already zeroed, `version` already set) the way the driver's preset
/// table would.
///
/// These numbers are APPROXIMATIONS: no complete dump of a real driver's preset table is public
/// (reference §1.4 and open question 6). What is known from rigaya's NVEncC dumps (driver 581):
/// HEVC P6/hq: gopLength 250, frameIntervalP 4, frameFieldMode 1, quarter-pel MVs, VBR, constQP
/// 25/28/31 (I/P/B), maxCUSize 32, idrPeriod 250, useBFramesAsRef middle, VUI videoFormat 5;
/// P7/uhq: frameIntervalP 6 (capped here at our 4 B-frames -> 5), lookahead on, depth 25.
/// The rest (P1-P3 without B-frames, P4/P5 with 2 B-frames, low-latency tunings without
/// B-frames and with CBR) follows NVIDIA's preset guide qualitatively.
pub fn fill_preset(
    cfg: &View,
    gpu: Gpu,
    session_sdk: SdkIdx,
    codec: CodecKind,
    preset: u32,
    tuning: u32,
) {
    let low_latency = tuning == 2 || tuning == 3;
    let lossless = tuning == 4;
    let uhq = tuning == 5;
    let sdk = cfg.sdk;
    let fip: u64 = if low_latency || lossless {
        1
    } else if uhq {
        5
    } else {
        match preset {
            1..=3 => 1,
            4 | 5 => 3,
            _ => 4,
        }
    };
    cfg.set_guid(
        "profileGUID",
        abi::guid(sdk, "NV_ENC_CODEC_PROFILE_AUTOSELECT_GUID").unwrap_or_default(),
    );
    let gop: u64 = 250;
    cfg.set("gopLength", gop);
    cfg.set("frameIntervalP", fip);
    cfg.set("monoChromeEncoding", 0);
    cfg.set("frameFieldMode", 1);
    cfg.set("mvPrecision", 3);
    let rcv = ver(session_sdk, "NV_ENC_RC_PARAMS_VER");
    cfg.set("rcParams.version", rcv as u64);
    let rc_mode = if lossless {
        0
    } else if low_latency {
        2
    } else {
        1
    };
    cfg.set("rcParams.rateControlMode", rc_mode);
    let (qi, qp, qb) = if lossless { (0, 0, 0) } else { (25, 28, 31) };
    cfg.set("rcParams.constQP.qpIntra", qi);
    cfg.set("rcParams.constQP.qpInterP", qp);
    cfg.set("rcParams.constQP.qpInterB", qb);
    cfg.set("rcParams.averageBitRate", 0);
    cfg.set("rcParams.maxBitRate", 0);
    cfg.set("rcParams.multiPass", 0);
    if uhq || (preset == 7 && !low_latency && !lossless) {
        cfg.set("rcParams.enableLookahead", 1);
        cfg.set("rcParams.lookaheadDepth", 25);
    }
    // P7/UHQ on a real driver: lookahead level 3 and tfLevel 4 (reference §1.4, rigaya's dump);
    // modelled for UHQ where the GPU model has them (12.2+ layouts; absent fields are skipped).
    if uhq {
        let level = max_lookahead_level(gpu, codec).min(3);
        if level > 0 {
            cfg.set("rcParams.lookaheadLevel", level as u64);
        }
        if temporal_filter(gpu, codec) {
            let c = match codec {
                CodecKind::H264 => "h264Config",
                CodecKind::Hevc => "hevcConfig",
                CodecKind::Av1 => "av1Config",
            };
            cfg.set(&format!("encodeCodecConfig.{c}.tfLevel"), 4);
        }
    }
    let bref = if fip > 1 && preset >= 6 { 2 } else { 0 };
    match codec {
        CodecKind::H264 => {
            let p = "encodeCodecConfig.h264Config.";
            cfg.set(&format!("{p}level"), 0);
            cfg.set(&format!("{p}idrPeriod"), gop);
            cfg.set(&format!("{p}chromaFormatIDC"), 1);
            cfg.set(&format!("{p}useBFramesAsRef"), bref);
            vui(cfg, &format!("{p}h264VUIParameters."));
            cfg.set(&format!("{p}outputBitDepth"), 8);
            cfg.set(&format!("{p}inputBitDepth"), 8);
        }
        CodecKind::Hevc => {
            let p = "encodeCodecConfig.hevcConfig.";
            cfg.set(&format!("{p}level"), 0);
            cfg.set(&format!("{p}tier"), 0);
            cfg.set(&format!("{p}maxCUSize"), 3);
            cfg.set(&format!("{p}idrPeriod"), gop);
            cfg.set(&format!("{p}chromaFormatIDC"), 1);
            cfg.set(&format!("{p}useBFramesAsRef"), bref);
            vui(cfg, &format!("{p}hevcVUIParameters."));
            cfg.set(&format!("{p}outputBitDepth"), 8);
            cfg.set(&format!("{p}inputBitDepth"), 8);
        }
        CodecKind::Av1 => {
            let p = "encodeCodecConfig.av1Config.";
            cfg.set(&format!("{p}level"), 24);
            cfg.set(&format!("{p}tier"), 0);
            cfg.set(&format!("{p}idrPeriod"), gop);
            cfg.set(&format!("{p}chromaFormatIDC"), 1);
            cfg.set(&format!("{p}repeatSeqHdr"), 1);
            cfg.set(&format!("{p}useBFramesAsRef"), bref);
            cfg.set(&format!("{p}colorPrimaries"), 2);
            cfg.set(&format!("{p}transferCharacteristics"), 2);
            cfg.set(&format!("{p}matrixCoefficients"), 2);
            cfg.set(&format!("{p}outputBitDepth"), 8);
            cfg.set(&format!("{p}inputBitDepth"), 8);
        }
    }
}

fn vui(cfg: &View, p: &str) {
    cfg.set(&format!("{p}videoFormat"), 5);
    cfg.set(&format!("{p}colourPrimaries"), 2);
    cfg.set(&format!("{p}transferCharacteristics"), 2);
    cfg.set(&format!("{p}colourMatrix"), 2);
}

fn ver(sdk: SdkIdx, n: &str) -> u32 {
    abi::ver(sdk, n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_override() {
        let spec = Some("h264:SUPPORT_EMPHASIS_LEVEL_MAP=1, NUM_MAX_BFRAMES=2,bogus,hevc:X=y");
        let e = "SUPPORT_EMPHASIS_LEVEL_MAP";
        assert_eq!(cap_override(spec, CodecKind::H264, e), Some(1));
        assert_eq!(cap_override(spec, CodecKind::Hevc, e), None);
        assert_eq!(
            cap_override(spec, CodecKind::Av1, "NUM_MAX_BFRAMES"),
            Some(2)
        );
        assert_eq!(cap_override(spec, CodecKind::Hevc, "X"), None);
        assert_eq!(cap_override(None, CodecKind::H264, e), None);
    }
}
