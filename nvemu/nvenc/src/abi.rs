//! Generic access to NVENC structs by field name, with the layout of one SDK (11.1 .. 13.0).
//!
//! The layouts come from the ABI tables (`crates/nvenc-abi`), rendered by `build.rs`. Nothing
//! here hard-codes an offset: every read and write goes through the table of the SDK the struct
//! belongs to, which is how the emulator copes with the 11.1/12.0/12.1/12.2/13.0 differences.

#![allow(clippy::all, unreachable_pub)]
include!(concat!(env!("OUT_DIR"), "/abi.rs"));

use std::collections::HashMap;
use std::sync::OnceLock;

/// Index of an SDK in [`SDK_TAGS`] order, oldest first: use the named constants below, never a
/// bare number (11.1 was inserted in front of 12.0, which shifted every index by one).
pub type SdkIdx = usize;

pub const SDK_11_1: SdkIdx = 0;
pub const SDK_12_0: SdkIdx = 1;
pub const SDK_12_1: SdkIdx = 2;
pub const SDK_12_2: SdkIdx = 3;
pub const SDK_13_0: SdkIdx = 4;
/// The newest SDK the tables cover.
pub const NEWEST: SdkIdx = SDK_13_0;
/// Number of SDKs (`0..SDK_COUNT` are all indices, oldest first).
pub const SDK_COUNT: usize = 5;

pub const SDK_NAMES: [&str; SDK_COUNT] = ["11.1", "12.0", "12.1", "12.2", "13.0"];

/// `NVENCAPI_VERSION` of each SDK (`major | minor << 24`).
pub fn api_version(sdk: SdkIdx) -> u32 {
    [
        v11_1::NVENCAPI_VERSION,
        v12_0::NVENCAPI_VERSION,
        v12_1::NVENCAPI_VERSION,
        v12_2::NVENCAPI_VERSION,
        v13_0::NVENCAPI_VERSION,
    ][sdk]
}

/// `(major << 4) | minor` as `NvEncodeAPIGetMaxSupportedVersion` reports it.
pub fn max_version_value(sdk: SdkIdx) -> u32 {
    let v = api_version(sdk);
    ((v & 0xff) << 4) | ((v >> 24) & 0xf)
}

/// SDK whose `NVENCAPI_VERSION` is `v`.
pub fn sdk_of_api(v: u32) -> Option<SdkIdx> {
    (0..SDK_COUNT).find(|&i| api_version(i) == v)
}

/// SDK by name (`"12.2"`).
pub fn sdk_by_name(name: &str) -> Option<SdkIdx> {
    SDK_NAMES.iter().position(|n| *n == name)
}

fn fields_of(sdk: SdkIdx) -> &'static [FieldInfo] {
    [
        v11_1::FIELDS,
        v12_0::FIELDS,
        v12_1::FIELDS,
        v12_2::FIELDS,
        v13_0::FIELDS,
    ][sdk]
}

fn structs_of(sdk: SdkIdx) -> &'static [(&'static str, usize)] {
    [
        v11_1::STRUCTS,
        v12_0::STRUCTS,
        v12_1::STRUCTS,
        v12_2::STRUCTS,
        v13_0::STRUCTS,
    ][sdk]
}

struct Tables {
    /// (sdk, struct) -> fields in declaration order
    fields: Vec<HashMap<&'static str, Vec<FieldInfo>>>,
    sizes: Vec<HashMap<&'static str, usize>>,
    /// (sdk, "NV_ENC_CONFIG_VER") -> value
    vers: HashMap<(SdkIdx, String), u32>,
    enums: Vec<HashMap<String, i64>>,
    guids: Vec<Vec<(&'static str, Guid)>>,
}

static TABLES: OnceLock<Tables> = OnceLock::new();

fn tables() -> &'static Tables {
    TABLES.get_or_init(|| {
        let mut fields: Vec<HashMap<&'static str, Vec<FieldInfo>>> = Vec::new();
        let mut sizes = Vec::new();
        for sdk in 0..SDK_COUNT {
            let mut fm: HashMap<&'static str, Vec<FieldInfo>> = HashMap::new();
            for f in fields_of(sdk) {
                fm.entry(f.strukt).or_default().push(*f);
            }
            fields.push(fm);
            let mut sm = HashMap::new();
            for (n, s) in structs_of(sdk) {
                sm.insert(*n, *s);
            }
            sizes.push(sm);
        }
        let mut vers = HashMap::new();
        let mut enums = Vec::new();
        let mut guids = Vec::new();
        for (sdk, text) in TABLE_TEXT.iter().enumerate() {
            let mut en = HashMap::new();
            let mut gs = Vec::new();
            for line in text.lines().chain(SUPPLEMENT_TEXT[sdk].lines()) {
                let mut it = line.split_whitespace();
                match it.next() {
                    Some("VER") => {
                        let k = it.next().unwrap_or("").to_string();
                        let v = it.next().unwrap_or("0x0");
                        let v = u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(0);
                        vers.insert((sdk, k), v);
                    }
                    Some("ENUM") => {
                        let k = it.next().unwrap_or("").to_string();
                        let v: i64 = it.next().unwrap_or("0").parse().unwrap_or(0);
                        en.insert(k, v);
                    }
                    Some("GUID") => {
                        let k: &'static str =
                            Box::leak(it.next().unwrap_or("").to_string().into_boxed_str());
                        if let Some(g) = Guid::parse(it.next().unwrap_or("")) {
                            gs.push((k, g));
                        }
                    }
                    _ => {}
                }
            }
            enums.push(en);
            guids.push(gs);
        }
        Tables {
            fields,
            sizes,
            vers,
            enums,
            guids,
        }
    })
}

/// The vendored tables, for the VER/ENUM/GUID lines (the generated consts are compile-time only).
static TABLE_TEXT: [&str; SDK_COUNT] = [
    include_str!("../../../crates/nvenc-abi/tables/sdk-11.1.txt"),
    include_str!("../../../crates/nvenc-abi/tables/sdk-12.0.txt"),
    include_str!("../../../crates/nvenc-abi/tables/sdk-12.1.txt"),
    include_str!("../../../crates/nvenc-abi/tables/sdk-12.2.txt"),
    include_str!("../../../crates/nvenc-abi/tables/sdk-13.0.txt"),
];

/// GUID lines the shipped 12.0-13.0 tables lack (the H.264 Baseline, Main, High 4:4:4 and, in
/// 13.0, High 4:2:2 profiles), rendered from the same headers (`crates/nvenc-abi/tables/
/// supplement/`); 11.1's table has them already.
static SUPPLEMENT_TEXT: [&str; SDK_COUNT] = [
    "",
    include_str!("../../../crates/nvenc-abi/tables/supplement/sdk-12.0.txt"),
    include_str!("../../../crates/nvenc-abi/tables/supplement/sdk-12.1.txt"),
    include_str!("../../../crates/nvenc-abi/tables/supplement/sdk-12.2.txt"),
    include_str!("../../../crates/nvenc-abi/tables/supplement/sdk-13.0.txt"),
];

/// `*_VER` value of a struct in an SDK (`NV_ENC_CONFIG` -> `NV_ENC_CONFIG_VER`).
pub fn ver(sdk: SdkIdx, ver_name: &str) -> Option<u32> {
    tables().vers.get(&(sdk, ver_name.to_string())).copied()
}

/// Enumerator value in an SDK.
pub fn enum_val(sdk: SdkIdx, name: &str) -> Option<i64> {
    tables().enums[sdk].get(name).copied()
}

/// All enumerators of an SDK with a prefix.
pub fn enums_with_prefix(sdk: SdkIdx, prefix: &str) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = tables().enums[sdk]
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    v.sort_by_key(|(_, v)| *v);
    v
}

/// GUID by header name in an SDK.
pub fn guid(sdk: SdkIdx, name: &str) -> Option<Guid> {
    tables().guids[sdk]
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, g)| *g)
}

/// Header name of a GUID (searching the newest SDK first).
pub fn guid_name(g: &Guid) -> Option<&'static str> {
    for sdk in (0..SDK_COUNT).rev() {
        if let Some((n, _)) = tables().guids[sdk].iter().find(|(_, x)| x == g) {
            return Some(n);
        }
    }
    None
}

/// Name of an NVENCSTATUS value.
pub fn status_name(code: i32) -> String {
    for (k, v) in &tables().enums[NEWEST] {
        if *v == code as i64 && (k.starts_with("NV_ENC_ERR_") || k == "NV_ENC_SUCCESS") {
            return k.clone();
        }
    }
    format!("NVENCSTATUS_{code}")
}

/// Value of an NVENCSTATUS name (`NV_ENC_SUCCESS`, `NV_ENC_ERR_*`).
pub fn status_code(name: &str) -> Option<i32> {
    tables().enums[NEWEST]
        .iter()
        .find(|(k, _)| {
            k.as_str() == name && (k.starts_with("NV_ENC_ERR_") || k.as_str() == "NV_ENC_SUCCESS")
        })
        .map(|(_, v)| *v as i32)
}

/// Size of a struct in an SDK.
pub fn size_of(sdk: SdkIdx, strukt: &str) -> usize {
    tables().sizes[sdk].get(strukt).copied().unwrap_or(0)
}

pub fn fields(sdk: SdkIdx, strukt: &str) -> &'static [FieldInfo] {
    tables().fields[sdk]
        .get(strukt)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
}

/// A GUID as it lies in memory.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Guid {
    pub d1: u32,
    pub d2: u16,
    pub d3: u16,
    pub d4: [u8; 8],
}

impl Guid {
    fn parse(s: &str) -> Option<Guid> {
        let s = s.trim().trim_start_matches('{').trim_end_matches('}');
        let p: Vec<&str> = s.split('-').collect();
        if p.len() != 5 {
            return None;
        }
        let tail = format!("{}{}", p[3], p[4]);
        let mut d4 = [0u8; 8];
        for (i, b) in d4.iter_mut().enumerate() {
            *b = u8::from_str_radix(tail.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Guid {
            d1: u32::from_str_radix(p[0], 16).ok()?,
            d2: u16::from_str_radix(p[1], 16).ok()?,
            d3: u16::from_str_radix(p[2], 16).ok()?,
            d4,
        })
    }

    pub fn braced(&self) -> String {
        format!(
            "{{{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}}}",
            self.d1,
            self.d2,
            self.d3,
            self.d4[0],
            self.d4[1],
            self.d4[2..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    /// Header name, or the braced string if unknown.
    pub fn describe(&self) -> String {
        guid_name(self)
            .map(str::to_string)
            .unwrap_or_else(|| self.braced())
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.d1.to_le_bytes());
        b[4..6].copy_from_slice(&self.d2.to_le_bytes());
        b[6..8].copy_from_slice(&self.d3.to_le_bytes());
        b[8..16].copy_from_slice(&self.d4);
        b
    }

    pub fn from_bytes(b: &[u8]) -> Guid {
        Guid {
            d1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            d2: u16::from_le_bytes([b[4], b[5]]),
            d3: u16::from_le_bytes([b[6], b[7]]),
            d4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }
}

/// Codec of a session, used to pick the member of the codec unions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CodecKind {
    H264,
    Hevc,
    Av1,
}

/// Struct type a field of type `ty` holds, if it is a struct the tables describe.
fn struct_type(ty: &str) -> Option<&'static str> {
    let t = ty.trim();
    let t = match t {
        "NV_ENC_CONFIG_HEVC_VUI_PARAMETERS" => "NV_ENC_CONFIG_H264_VUI_PARAMETERS",
        _ => t,
    };
    if t.ends_with('*') {
        return None;
    }
    (0..SDK_COUNT)
        .rev()
        .find_map(|sdk| tables().sizes[sdk].get_key_value(t).map(|(k, _)| *k))
}

/// Members of the unions the tables do not describe.
fn union_member(ty: &str, member: &str) -> Option<&'static str> {
    match (ty.trim(), member) {
        ("NV_ENC_CODEC_CONFIG", "h264Config") => Some("NV_ENC_CONFIG_H264"),
        ("NV_ENC_CODEC_CONFIG", "hevcConfig") => Some("NV_ENC_CONFIG_HEVC"),
        ("NV_ENC_CODEC_CONFIG", "av1Config") => Some("NV_ENC_CONFIG_AV1"),
        ("NV_ENC_CODEC_PIC_PARAMS", "h264PicParams") => Some("NV_ENC_PIC_PARAMS_H264"),
        ("NV_ENC_CODEC_PIC_PARAMS", "hevcPicParams") => Some("NV_ENC_PIC_PARAMS_HEVC"),
        ("NV_ENC_CODEC_PIC_PARAMS", "av1PicParams") => Some("NV_ENC_PIC_PARAMS_AV1"),
        _ => None,
    }
}

fn union_member_for(ty: &str, codec: CodecKind) -> Option<&'static str> {
    match (ty.trim(), codec) {
        ("NV_ENC_CODEC_CONFIG", CodecKind::H264) => Some("h264Config"),
        ("NV_ENC_CODEC_CONFIG", CodecKind::Hevc) => Some("hevcConfig"),
        ("NV_ENC_CODEC_CONFIG", CodecKind::Av1) => Some("av1Config"),
        ("NV_ENC_CODEC_PIC_PARAMS", CodecKind::H264) => Some("h264PicParams"),
        ("NV_ENC_CODEC_PIC_PARAMS", CodecKind::Hevc) => Some("hevcPicParams"),
        ("NV_ENC_CODEC_PIC_PARAMS", CodecKind::Av1) => Some("av1PicParams"),
        _ => None,
    }
}

/// A resolved field: absolute byte offset from the struct base, the table entry.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    pub offset: usize,
    pub info: FieldInfo,
}

/// Resolves a dotted path (`rcParams.constQP.qpIntra`, `encodeCodecConfig.hevcConfig.idrPeriod`)
/// in `strukt` with the layout of `sdk`.
pub fn resolve(sdk: SdkIdx, strukt: &str, path: &str) -> Option<Resolved> {
    let mut cur: &str = strukt;
    let mut base = 0usize;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let f = fields(sdk, cur).iter().find(|f| f.name == p)?;
        if parts.peek().is_none() {
            return Some(Resolved {
                offset: base + f.offset,
                info: *f,
            });
        }
        base += f.offset;
        if let Some(st) = struct_type(f.ty) {
            cur = st;
        } else {
            let m = parts.next()?;
            let st = union_member(f.ty, m)?;
            if parts.peek().is_none() {
                return None;
            }
            cur = st;
        }
    }
    None
}

/// A struct in client memory, viewed with the layout of one SDK.
#[derive(Clone, Copy)]
pub struct View {
    pub base: *mut u8,
    pub sdk: SdkIdx,
    pub strukt: &'static str,
}

impl View {
    /// # Safety
    /// `base` must point to at least `size_of(sdk, strukt)` readable (and, for the setters,
    /// writable) bytes for as long as the view is used.
    pub unsafe fn new(base: *mut u8, sdk: SdkIdx, strukt: &'static str) -> View {
        View { base, sdk, strukt }
    }

    pub fn size(&self) -> usize {
        size_of(self.sdk, self.strukt)
    }

    fn raw(&self, off: usize, size: usize) -> u64 {
        let mut b = [0u8; 8];
        let n = size.min(8);
        // SAFETY: `View::new`'s contract: the struct's bytes are readable, and every offset
        // comes from the table of this struct, so `off + n <= size_of(strukt)`.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), b.as_mut_ptr(), n) };
        u64::from_le_bytes(b)
    }

    fn write_raw(&self, off: usize, size: usize, v: u64) {
        let b = v.to_le_bytes();
        // SAFETY: as in `raw`, and the view was created over writable memory for setters.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.base.add(off), size.min(8)) };
    }

    /// Unsigned value of a scalar or bitfield (0 if the field does not exist in this SDK).
    pub fn get(&self, path: &str) -> u64 {
        self.try_get(path).unwrap_or(0)
    }

    pub fn try_get(&self, path: &str) -> Option<u64> {
        let r = resolve(self.sdk, self.strukt, path)?;
        let elem = r.info.size / r.info.array_len.max(1);
        let v = self.raw(r.offset, elem);
        if r.info.bit_width > 0 {
            Some((v >> r.info.bit_offset) & ((1u64 << r.info.bit_width) - 1))
        } else {
            Some(v)
        }
    }

    pub fn has(&self, path: &str) -> bool {
        resolve(self.sdk, self.strukt, path).is_some()
    }

    pub fn get_i32(&self, path: &str) -> i32 {
        self.get(path) as u32 as i32
    }

    pub fn set(&self, path: &str, v: u64) {
        let Some(r) = resolve(self.sdk, self.strukt, path) else {
            return;
        };
        let elem = r.info.size / r.info.array_len.max(1);
        if r.info.bit_width > 0 {
            let old = self.raw(r.offset, elem);
            let mask = ((1u64 << r.info.bit_width) - 1) << r.info.bit_offset;
            let nv = (old & !mask) | ((v << r.info.bit_offset) & mask);
            self.write_raw(r.offset, elem, nv);
        } else {
            self.write_raw(r.offset, elem, v);
        }
    }

    pub fn get_guid(&self, path: &str) -> Guid {
        match resolve(self.sdk, self.strukt, path) {
            Some(r) => {
                let mut b = [0u8; 16];
                // SAFETY: the GUID field lies inside the struct (table offset, 16 bytes).
                unsafe {
                    std::ptr::copy_nonoverlapping(self.base.add(r.offset), b.as_mut_ptr(), 16)
                };
                Guid::from_bytes(&b)
            }
            None => Guid::default(),
        }
    }

    pub fn set_guid(&self, path: &str, g: Guid) {
        if let Some(r) = resolve(self.sdk, self.strukt, path) {
            let b = g.to_bytes();
            // SAFETY: the GUID field lies inside the (writable) struct.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.base.add(r.offset), 16) };
        }
    }

    /// Sub-struct view (`rcParams`, `encodeCodecConfig.hevcConfig`).
    pub fn sub(&self, path: &str) -> Option<View> {
        // resolve the first field of the sub-struct to learn its base
        let mut cur: &str = self.strukt;
        let mut base = 0usize;
        let mut parts = path.split('.');
        while let Some(p) = parts.next() {
            let f = fields(self.sdk, cur).iter().find(|f| f.name == p)?;
            base += f.offset;
            if let Some(st) = struct_type(f.ty) {
                cur = st;
            } else {
                let m = parts.next()?;
                cur = union_member(f.ty, m)?;
            }
        }
        Some(View {
            // SAFETY: the sub-struct lies inside the struct (table offsets).
            base: unsafe { self.base.add(base) },
            sdk: self.sdk,
            strukt: cur,
        })
    }

    /// Zeroes the whole struct.
    pub fn zero(&self) {
        // SAFETY: the struct is writable for its whole size.
        unsafe { std::ptr::write_bytes(self.base, 0, self.size()) };
    }

    /// Decodes every non-reserved field into `out` as `prefix + name`, recursing into
    /// sub-structs and into the codec union member. `follow` is called for pointer fields the
    /// call follows (returns a view to decode under `prefix.name.`).
    pub fn decode(
        &self,
        prefix: &str,
        codec: Option<CodecKind>,
        out: &mut serde_json::Map<String, serde_json::Value>,
        follow: &dyn Fn(&str, u64) -> Option<View>,
    ) {
        use serde_json::Value;
        for f in fields(self.sdk, self.strukt) {
            if f.name.starts_with("reserved") || f.name.starts_with("nvEnc") {
                continue;
            }
            let key = format!("{prefix}{}", f.name);
            let ty = f.ty.trim();
            if f.name == "version" && f.size == 4 {
                out.insert(
                    key,
                    Value::String(format!("{:#010x}", self.raw(f.offset, 4))),
                );
                continue;
            }
            if ty == "GUID" && f.array_len == 1 {
                let g = self.get_guid(f.name);
                out.insert(key, Value::String(g.describe()));
                continue;
            }
            if let Some(st) = struct_type(ty) {
                if f.array_len == 1 {
                    let v = View {
                        // SAFETY: sub-struct inside the struct.
                        base: unsafe { self.base.add(f.offset) },
                        sdk: self.sdk,
                        strukt: st,
                    };
                    v.decode(&format!("{key}."), codec, out, follow);
                }
                continue;
            }
            if ty == "NV_ENC_CODEC_CONFIG" || ty == "NV_ENC_CODEC_PIC_PARAMS" {
                if let Some(m) = codec.and_then(|c| union_member_for(ty, c)) {
                    let st = union_member(ty, m).unwrap_or("");
                    let v = View {
                        // SAFETY: union inside the struct; its members start at its offset.
                        base: unsafe { self.base.add(f.offset) },
                        sdk: self.sdk,
                        strukt: st,
                    };
                    v.decode(&format!("{key}.{m}."), codec, out, follow);
                }
                continue;
            }
            let is_ptr = ty.ends_with('*') || ty.ends_with("_PTR") || ty.starts_with("PNVENC");
            if is_ptr {
                let p = self.raw(f.offset, 8);
                if let Some(v) = follow(f.name, p) {
                    v.decode(&format!("{key}."), codec, out, follow);
                } else {
                    out.insert(key, Value::String(format!("{p:#x}")));
                }
                continue;
            }
            let elem = f.size / f.array_len.max(1);
            let signed = ty.starts_with("int") || ty == "int";
            let read = |off: usize| -> Value {
                let mut v = self.raw(off, elem);
                if f.bit_width > 0 {
                    v = (v >> f.bit_offset) & ((1u64 << f.bit_width) - 1);
                    return Value::from(v);
                }
                if signed {
                    let sh = 64 - 8 * elem as u32;
                    Value::from(((v << sh) as i64) >> sh)
                } else {
                    Value::from(v)
                }
            };
            if f.array_len > 1 {
                let arr: Vec<Value> = (0..f.array_len)
                    .map(|i| read(f.offset + i * elem))
                    .collect();
                out.insert(key, Value::Array(arr));
            } else {
                out.insert(key, read(f.offset));
            }
        }
    }
}

/// Which SDK layout a struct with this `version` value uses, in a session opened with
/// `session_sdk`. `ver_name` is the struct's `*_VER` macro name.
///
/// Rules (reference §3.1/§3.2): bits 28..30 must be 7 and the API bytes must be the session's.
/// A (revision, bit 31) pair that some SDK up to the session's uses selects the newest such SDK
/// (so the 11.1 revisions GStreamer and Sunshine stamp with a 12.x API, e.g. PIC_PARAMS s4 or
/// LOCK_BITSTREAM s1 without bit 31, are decoded with the 11.1 layout, the one that revision
/// was defined with). A pair that no table knows but whose revision is below the newest
/// revision the session's SDK knows is an older revision still (11.0 and before): it is decoded
/// with the oldest layout we have (11.1). Anything else (a revision of a newer SDK, an unknown
/// newer revision, revision 0) is INVALID_VERSION.
pub fn layout_for_version(session_sdk: SdkIdx, ver_name: &str, version: u32) -> Option<SdkIdx> {
    let api = api_version(session_sdk);
    if version & 0x0f00_00ff != api || (version >> 28) & 7 != 7 {
        return None;
    }
    let rev = (version >> 16) & 0xff;
    let b31 = version >> 31;
    if rev == 0 {
        return None;
    }
    let mut max_rev = 0;
    for sdk in (0..=session_sdk).rev() {
        if let Some(v) = ver(sdk, ver_name) {
            let (r, b) = ((v >> 16) & 0xff, v >> 31);
            if r == rev && b == b31 {
                return Some(sdk);
            }
            max_rev = max_rev.max(r);
        }
    }
    if max_rev == 0 {
        return None;
    }
    // a pair known only to a newer SDK is a newer struct: reject
    for sdk in session_sdk + 1..SDK_COUNT {
        if let Some(v) = ver(sdk, ver_name) {
            if (v >> 16) & 0xff == rev && v >> 31 == b31 {
                return None;
            }
        }
    }
    if rev < max_rev { Some(SDK_11_1) } else { None }
}
