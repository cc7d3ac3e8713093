//! Reader of the NVENC ABI tables in `tables/sdk-*.txt`.
//!
//! The tables were derived mechanically from the official `nvEncodeAPI.h` of each Video Codec SDK
//! (11.1, 12.0, 12.1, 12.2, 13.0; x86_64 Linux) with `pahole` (11.1 by `scripts/gen-abi-table`). They hold facts only: `CONST`, `VER`,
//! `GUID` and `ENUM` lines and every struct with each field's byte offset and size (bitfields
//! with their bit offset). This crate is a build dependency: `build.rs` scripts of the plugin and
//! of the emulator call [`render_rust`] to turn the tables into Rust constants that the code is
//! then proven against at compile time (plugin) or uses to decode structs by name (emulator).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// SDK versions covered by the tables, oldest first.
pub const SDKS: [&str; 5] = ["11.1", "12.0", "12.1", "12.2", "13.0"];

/// Directory holding the vendored tables (12.0 to 13.0: a copy of `shared/nvenc-abi/`; 11.1:
/// generated here by `scripts/gen-abi-table`).
pub fn tables_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tables")
}

/// One field of a struct as the table gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// C type as printed by pahole (e.g. `uint32_t`, `NV_ENC_RC_PARAMS`, `void *`).
    pub ty: String,
    /// Byte offset of the field (for a bitfield: of its storage unit).
    pub offset: usize,
    /// Size in bytes of the whole field (all array elements; for a bitfield: its storage unit).
    pub size: usize,
    /// Array length, 1 for a scalar.
    pub array_len: usize,
    /// `Some((bit_offset, bit_width))` for a bitfield.
    pub bits: Option<(u32, u32)>,
}

/// One struct of the table.
#[derive(Debug, Clone, Default)]
pub struct Struct {
    pub size: usize,
    pub fields: Vec<Field>,
}

/// Everything one SDK's table states.
#[derive(Debug, Clone, Default)]
pub struct Sdk {
    /// "13.0"
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// `NVENCAPI_VERSION`
    pub api_version: u32,
    pub vers: BTreeMap<String, u32>,
    /// GUID as (Data1, Data2, Data3, Data4).
    pub guids: BTreeMap<String, (u32, u16, u16, [u8; 8])>,
    pub enums: BTreeMap<String, i64>,
    /// Struct name without the leading underscore (`NV_ENC_CONFIG`).
    pub structs: BTreeMap<String, Struct>,
}

impl Sdk {
    /// Module name used in generated code: `v13_0`.
    pub fn tag(&self) -> String {
        format!("v{}_{}", self.major, self.minor)
    }
}

fn parse_num(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).map_err(|e| format!("{s}: {e}"))
    } else {
        s.parse::<u64>().map_err(|e| format!("{s}: {e}"))
    }
}

fn parse_guid(s: &str) -> Result<(u32, u16, u16, [u8; 8]), String> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 5 || parts[3].len() != 4 || parts[4].len() != 12 {
        return Err(format!("bad GUID {s}"));
    }
    let d1 = u32::from_str_radix(parts[0], 16).map_err(|e| e.to_string())?;
    let d2 = u16::from_str_radix(parts[1], 16).map_err(|e| e.to_string())?;
    let d3 = u16::from_str_radix(parts[2], 16).map_err(|e| e.to_string())?;
    let tail = format!("{}{}", parts[3], parts[4]);
    let mut d4 = [0u8; 8];
    for (i, b) in d4.iter_mut().enumerate() {
        *b = u8::from_str_radix(&tail[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok((d1, d2, d3, d4))
}

/// Parses one field line: `\t<type> <name>[N]:bits; /* off[:bit] size */`.
fn parse_field(line: &str) -> Result<Option<Field>, String> {
    let line = line.trim();
    let Some(semi) = line.find(';') else {
        return Ok(None);
    };
    let (decl, rest) = line.split_at(semi);
    let Some(cstart) = rest.find("/*") else {
        return Ok(None);
    };
    let cend = rest.rfind("*/").ok_or("unterminated comment")?;
    let comment = rest[cstart + 2..cend].trim();
    // comment: "off size" or "off:bit size" (the bit part may be " 0" with a space).
    let (pos, size) = comment
        .rsplit_once(char::is_whitespace)
        .ok_or_else(|| format!("bad comment {comment}"))?;
    let size = parse_num(size)? as usize;
    let pos = pos.trim();
    let (offset, bit_off) = match pos.split_once(':') {
        Some((o, b)) => (parse_num(o)? as usize, Some(parse_num(b)? as u32)),
        None => (parse_num(pos)? as usize, None),
    };
    let decl = decl.trim();
    let (decl, width) = match decl.rsplit_once(':') {
        Some((d, w)) if !d.ends_with(':') => (d.trim(), Some(parse_num(w)? as u32)),
        _ => (decl, None),
    };
    // name is the last identifier, possibly with [N]
    let split = decl
        .rfind(|c: char| c.is_whitespace() || c == '*')
        .ok_or_else(|| format!("bad decl {decl}"))?;
    let ty = decl[..=split].trim().to_string();
    let mut name = decl[split + 1..].trim().to_string();
    let mut array_len = 1;
    if let Some(b) = name.find('[') {
        let n = name[b + 1..].trim_end_matches(']');
        array_len = parse_num(n)? as usize;
        name.truncate(b);
    }
    let bits = match (bit_off, width) {
        (Some(b), Some(w)) => Some((b, w)),
        (None, None) => None,
        (None, Some(w)) => Some((0, w)),
        (Some(_), None) => return Err(format!("bit offset without width: {line}")),
    };
    Ok(Some(Field {
        name,
        ty,
        offset,
        size,
        array_len,
        bits,
    }))
}

/// Parses one table.
pub fn parse(text: &str) -> Result<Sdk, String> {
    let mut sdk = Sdk::default();
    let mut cur: Option<(String, Struct)> = None;
    for (ln, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}", ln + 1);
        if let Some((name, st)) = cur.as_mut() {
            if line.starts_with('}') {
                let (name, st) = cur.take().unwrap();
                sdk.structs.insert(name, st);
                continue;
            }
            let t = line.trim();
            if let Some(sz) = t.strip_prefix("/* size: ") {
                let n = sz.split(',').next().unwrap_or("");
                st.size = parse_num(n).map_err(err)? as usize;
                continue;
            }
            if t.starts_with("/*") || t.is_empty() {
                continue;
            }
            if let Some(f) = parse_field(line).map_err(err)? {
                st.fields.push(f);
            } else {
                return Err(err(format!("unparsed line in struct {name}: {line}")));
            }
            continue;
        }
        let mut it = line.split_whitespace();
        match it.next() {
            Some("CONST") => {
                let k = it.next().unwrap_or("");
                let v = parse_num(it.next().unwrap_or("")).map_err(err)? as u32;
                match k {
                    "NVENCAPI_MAJOR_VERSION" => sdk.major = v,
                    "NVENCAPI_MINOR_VERSION" => sdk.minor = v,
                    "NVENCAPI_VERSION" => sdk.api_version = v,
                    _ => {}
                }
            }
            Some("VER") => {
                let k = it.next().unwrap_or("").to_string();
                let v = parse_num(it.next().unwrap_or("")).map_err(err)? as u32;
                sdk.vers.insert(k, v);
            }
            Some("GUID") => {
                let k = it.next().unwrap_or("").to_string();
                let g = parse_guid(it.next().unwrap_or("")).map_err(err)?;
                sdk.guids.insert(k, g);
            }
            Some("ENUM") => {
                let k = it.next().unwrap_or("").to_string();
                let v = it.next().unwrap_or("");
                let v = if let Some(n) = v.strip_prefix('-') {
                    -(parse_num(n).map_err(err)? as i64)
                } else {
                    parse_num(v).map_err(err)? as i64
                };
                sdk.enums.insert(k, v);
            }
            Some("struct") => {
                let name = it.next().unwrap_or("").trim_start_matches('_').to_string();
                cur = Some((name, Struct::default()));
            }
            _ => {}
        }
    }
    if sdk.major == 0 {
        return Err("no NVENCAPI_MAJOR_VERSION".into());
    }
    sdk.name = format!("{}.{}", sdk.major, sdk.minor);
    Ok(sdk)
}

/// Adds the `GUID` lines of a supplement (`tables/supplement/sdk-X.Y.txt`: GUIDs the shipped
/// table lacks, rendered from the same header) to `sdk`. Other lines are ignored; a GUID the
/// table already has must have the same value.
pub fn apply_supplement(sdk: &mut Sdk, text: &str) -> Result<(), String> {
    for (ln, line) in text.lines().enumerate() {
        let mut it = line.split_whitespace();
        if it.next() != Some("GUID") {
            continue;
        }
        let k = it.next().unwrap_or("").to_string();
        let g = parse_guid(it.next().unwrap_or("")).map_err(|e| format!("line {}: {e}", ln + 1))?;
        match sdk.guids.get(&k) {
            Some(old) if *old != g => {
                return Err(format!("line {}: {k} differs from the table", ln + 1));
            }
            _ => {
                sdk.guids.insert(k, g);
            }
        }
    }
    Ok(())
}

/// Reads every table of [`SDKS`] from `dir` (oldest first), each with its supplement
/// (`dir/supplement/sdk-X.Y.txt`, see [`apply_supplement`]) where there is one.
pub fn load_all(dir: &Path) -> Result<Vec<Sdk>, String> {
    SDKS.iter()
        .map(|v| {
            let p = dir.join(format!("sdk-{v}.txt"));
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut sdk = parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            let sp = dir.join("supplement").join(format!("sdk-{v}.txt"));
            if let Ok(extra) = std::fs::read_to_string(&sp) {
                apply_supplement(&mut sdk, &extra).map_err(|e| format!("{}: {e}", sp.display()))?;
            }
            Ok(sdk)
        })
        .collect()
}

/// Renders the tables as Rust source:
///
/// ```text
/// pub mod v13_0 {
///     pub const NVENCAPI_MAJOR_VERSION: u32; NVENCAPI_MINOR_VERSION; NVENCAPI_VERSION;
///     pub mod ver { pub const NV_ENC_CONFIG_VER: u32 = ..; }
///     pub mod guid { pub const NV_ENC_CODEC_AV1_GUID: (u32, u16, u16, [u8; 8]) = ..; }
///     pub mod enums { pub const NV_ENC_ERR_INVALID_VERSION: i64 = ..; }
///     pub mod layout { pub mod NV_ENC_CONFIG {
///         pub const SIZE: usize = 3584;
///         pub const gopLength: usize = 0x14;                 // plain field: byte offset
///         pub const enablePTD: ...;                          // bitfield: (offset, bit, width)
///     } }
///     pub static FIELDS: &[super::FieldInfo] = &[...];     // every field, for run-time decoding
///     pub static STRUCTS: &[(&str, usize)] = &[...];       // struct name, size
/// }
/// pub struct FieldInfo { .. }
/// ```
pub fn render_rust(sdks: &[Sdk]) -> String {
    let mut o = String::new();
    o.push_str("// @generated by the nvenc-abi crate from tables/sdk-*.txt. Do not edit.\n");
    o.push_str(
        "/// One field of an NVENC struct, from the ABI tables.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         pub struct FieldInfo {\n    pub strukt: &'static str,\n    pub name: &'static str,\n    \
         pub ty: &'static str,\n    pub offset: usize,\n    pub size: usize,\n    pub array_len: usize,\n    \
         /// 0 for a plain field, else the bit width of the bitfield.\n    pub bit_width: u32,\n    \
         pub bit_offset: u32,\n}\n",
    );
    let tags: Vec<String> = sdks.iter().map(|s| s.tag()).collect();
    let _ = writeln!(o, "/// SDK module tags, oldest first.");
    let _ = writeln!(
        o,
        "pub const SDK_TAGS: [&str; {}] = {:?};",
        tags.len(),
        tags
    );
    for sdk in sdks {
        let _ = writeln!(
            o,
            "#[allow(non_snake_case, non_upper_case_globals, dead_code, clippy::all)]\npub mod {} {{",
            sdk.tag()
        );
        let _ = writeln!(o, "pub const NVENCAPI_MAJOR_VERSION: u32 = {};", sdk.major);
        let _ = writeln!(o, "pub const NVENCAPI_MINOR_VERSION: u32 = {};", sdk.minor);
        let _ = writeln!(
            o,
            "pub const NVENCAPI_VERSION: u32 = {:#x};",
            sdk.api_version
        );
        o.push_str("pub mod ver {\n");
        for (k, v) in &sdk.vers {
            let _ = writeln!(o, "pub const {k}: u32 = {v:#010x};");
        }
        o.push_str("}\npub mod guid {\n");
        for (k, (a, b, c, d)) in &sdk.guids {
            let _ = writeln!(
                o,
                "pub const {k}: (u32, u16, u16, [u8; 8]) = ({a:#010x}, {b:#06x}, {c:#06x}, {d:?});"
            );
        }
        o.push_str("}\npub mod enums {\n");
        for (k, v) in &sdk.enums {
            let _ = writeln!(o, "pub const {k}: i64 = {v};");
        }
        o.push_str("}\npub mod layout {\n");
        for (name, st) in &sdk.structs {
            let _ = writeln!(o, "pub mod {name} {{\npub const SIZE: usize = {};", st.size);
            for f in &st.fields {
                match f.bits {
                    Some((b, w)) => {
                        let _ = writeln!(
                            o,
                            "pub const {}: (usize, u32, u32) = ({:#x}, {b}, {w});",
                            f.name, f.offset
                        );
                    }
                    None => {
                        let _ = writeln!(o, "pub const {}: usize = {:#x};", f.name, f.offset);
                    }
                }
            }
            o.push_str("}\n");
        }
        o.push_str("}\npub static STRUCTS: &[(&str, usize)] = &[\n");
        for (name, st) in &sdk.structs {
            let _ = writeln!(o, "({name:?}, {}),", st.size);
        }
        o.push_str("];\npub static FIELDS: &[super::FieldInfo] = &[\n");
        for (name, st) in &sdk.structs {
            for f in &st.fields {
                let (bo, bw) = f.bits.unwrap_or((0, 0));
                let _ = writeln!(
                    o,
                    "super::FieldInfo {{ strukt: {name:?}, name: {:?}, ty: {:?}, offset: {}, size: {}, array_len: {}, bit_width: {bw}, bit_offset: {bo} }},",
                    f.name, f.ty, f.offset, f.size, f.array_len
                );
            }
        }
        o.push_str("];\n}\n");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_tables() {
        let sdks = load_all(&tables_dir()).unwrap();
        assert_eq!(sdks.len(), SDKS.len());
        for (sdk, name) in sdks.iter().zip(SDKS) {
            assert_eq!(sdk.name, name);
        }
        let v13 = &sdks[4];
        assert_eq!(v13.api_version, 0xd);
        // The supplements add the H.264 profile GUIDs the shipped 12.x/13.0 tables lack, with
        // the values of the 11.1 table (generated from its own header).
        for sdk in &sdks[1..] {
            for g in [
                "NV_ENC_H264_PROFILE_BASELINE_GUID",
                "NV_ENC_H264_PROFILE_MAIN_GUID",
                "NV_ENC_H264_PROFILE_HIGH_444_GUID",
            ] {
                assert_eq!(sdk.guids.get(g), sdks[0].guids.get(g), "{} {g}", sdk.name);
            }
        }
        assert!(v13.guids.contains_key("NV_ENC_H264_PROFILE_HIGH_422_GUID"));
        assert_eq!(v13.structs["NV_ENC_PRESET_CONFIG"].size, 5128);
        assert_eq!(v13.structs["NV_ENC_INITIALIZE_PARAMS"].size, 1800);
        assert_eq!(sdks[1].structs["NV_ENC_INITIALIZE_PARAMS"].size, 1808);
        assert_eq!(sdks[2].structs["NV_ENC_LOCK_BITSTREAM"].size, 1552);
        // 11.1: API 0x0100000b, PIC_PARAMS 16 bytes shorter (smaller codec union, no AV1).
        let v11 = &sdks[0];
        assert_eq!(v11.api_version, 0x0100_000b);
        assert_eq!(v11.vers["NV_ENC_CONFIG_VER"], 0xf107_000b);
        assert_eq!(v11.structs["NV_ENC_PIC_PARAMS"].size, 3344);
        assert_eq!(v11.structs["NV_ENC_CONFIG"].size, 3584);
        assert!(!v11.structs.contains_key("NV_ENC_CONFIG_AV1"));
        assert!(!v11.guids.contains_key("NV_ENC_CODEC_AV1_GUID"));
        let init = &v13.structs["NV_ENC_INITIALIZE_PARAMS"];
        let f = init
            .fields
            .iter()
            .find(|f| f.name == "splitEncodeMode")
            .unwrap();
        assert_eq!((f.offset, f.bits), (0x44, Some((5, 4))));
        let f = init
            .fields
            .iter()
            .find(|f| f.name == "reportSliceOffsets")
            .unwrap();
        assert_eq!((f.offset, f.bits), (0x44, Some((0, 1))));
        let f = init
            .fields
            .iter()
            .find(|f| f.name == "encodeConfig")
            .unwrap();
        assert_eq!(
            (f.offset, f.size, f.ty.as_str()),
            (0x58, 8, "NV_ENC_CONFIG *")
        );
        let f = init.fields.iter().find(|f| f.name == "reserved1").unwrap();
        assert_eq!(f.array_len, 284);
        assert_eq!(v13.vers["NV_ENC_CONFIG_VER"], 0xf009000d);
        assert_eq!(
            v13.guids["NV_ENC_CODEC_AV1_GUID"],
            (
                0x0a352289,
                0x0aa7,
                0x4759,
                [0x86, 0x2d, 0x5d, 0x15, 0xcd, 0x16, 0xd2, 0x54]
            )
        );
        // every struct's fields fit in its size
        for sdk in &sdks {
            for (n, s) in &sdk.structs {
                assert!(s.size > 0, "{} {n} has no size", sdk.name);
                for f in &s.fields {
                    assert!(
                        f.offset + f.size <= s.size,
                        "{} {n}.{} overflows",
                        sdk.name,
                        f.name
                    );
                }
            }
        }
        let src = render_rust(&sdks);
        assert!(src.contains("pub mod v12_1"));
    }

    /// The vendored copy must be the project's shared ABI facts, unchanged (every table the
    /// shared directory has; 11.1 exists only here).
    #[test]
    fn vendored_tables_match_shared() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/nvenc-abi");
        if !shared.exists() {
            eprintln!("shared/nvenc-abi not beside the checkout; skipping comparison");
            return;
        }
        for v in SDKS {
            let Ok(b) = std::fs::read(shared.join(format!("sdk-{v}.txt"))) else {
                assert_eq!(v, "11.1", "shared/nvenc-abi lacks sdk-{v}.txt");
                continue;
            };
            let a = std::fs::read(tables_dir().join(format!("sdk-{v}.txt"))).unwrap();
            assert!(a == b, "tables/sdk-{v}.txt differs from shared/nvenc-abi");
        }
    }
}
