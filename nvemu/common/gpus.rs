//! The emulated machine's GPUs, shared by the stand-ins (included with `#[path]` by the CUDA,
//! NVENC and NVML stand-ins, so that all three describe the same devices).
//!
//! - `NVEMU_GPU_COUNT`: how many GPUs (1..=8); unset: as many as `NVEMU_GPU_MODELS` names, else 1.
//! - `NVEMU_GPU_MODELS`: the model of each GPU by CUDA ordinal, comma-separated
//!   (`ada,ampere,turing`); GPUs beyond the list, and every GPU when it is unset, are of the
//!   `NVEMU_GPU` model (default `ada`). An unknown name is the default model, as `NVEMU_GPU`.
//! - Identity of GPU `i` (the same in CUDA and NVML): PCI bus id `0000:(i+1):00.0`, UUID bytes
//!   `nvemu-gpu-uuid` with byte 13 = `i` and bytes 14, 15 = the compute capability.
//!
//! Everything is read from the environment at each call (the NVENC stand-in's tests change it
//! between sessions); the CUDA stand-in caches what it reads once.

/// One GPU model: what the CUDA stand-in reports for the device and what NVML reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The `NVEMU_GPU` name: `ada`, `ampere`, `turing`, `no-nvenc`.
    pub key: &'static str,
    /// Device name (`cuDeviceGetName`, `nvmlDeviceGetName`).
    pub name: &'static str,
    /// Compute capability (major, minor).
    pub cc: (i32, i32),
    /// Device memory, GiB.
    pub mem_gib: usize,
    /// Streaming multiprocessors.
    pub sms: i32,
    /// PCI device id of the board (the upper 16 bits of NVML's `pciDeviceId`; vendor 0x10de),
    /// from the PCI ID repository's entries for these boards.
    pub pci_device: u32,
    /// NVENC engines (as `nvemu-nvenc`'s `Gpu::nvenc_engines`, where the sources are cited).
    pub engines: u32,
    /// Whether the card counts as GeForce for the session cap (as `Gpu::is_geforce`).
    pub geforce: bool,
    /// Whether NVENC codes AV1 on it (as `Gpu::codecs`).
    pub av1: bool,
}

const ADA: ModelInfo = ModelInfo {
    key: "ada",
    name: "NVIDIA GeForce RTX 4090 (nvemu)",
    cc: (8, 9),
    mem_gib: 24,
    sms: 128,
    pci_device: 0x2684,
    engines: 2,
    geforce: true,
    av1: true,
};
const AMPERE: ModelInfo = ModelInfo {
    key: "ampere",
    name: "NVIDIA RTX A4000 (nvemu)",
    cc: (8, 6),
    mem_gib: 16,
    sms: 48,
    pci_device: 0x24b0,
    engines: 1,
    geforce: false,
    av1: false,
};
const TURING: ModelInfo = ModelInfo {
    key: "turing",
    name: "NVIDIA GeForce RTX 2080 (nvemu)",
    cc: (7, 5),
    mem_gib: 8,
    sms: 46,
    pci_device: 0x1e82,
    engines: 1,
    geforce: true,
    av1: false,
};
const NO_NVENC: ModelInfo = ModelInfo {
    key: "no-nvenc",
    name: "NVIDIA H100 80GB HBM3 (nvemu)",
    cc: (9, 0),
    mem_gib: 80,
    sms: 132,
    pci_device: 0x2330,
    engines: 0,
    geforce: false,
    av1: false,
};

/// The model a name of `NVEMU_GPU` / `NVEMU_GPU_MODELS` stands for (unknown: `ada`).
pub fn model_by_key(key: &str) -> ModelInfo {
    match key.trim() {
        "ampere" => AMPERE,
        "turing" => TURING,
        "no-nvenc" => NO_NVENC,
        _ => ADA,
    }
}

/// How many GPUs the machine has (see the module documentation).
pub fn gpu_count() -> usize {
    if let Some(n) = std::env::var("NVEMU_GPU_COUNT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=8).contains(n))
    {
        return n;
    }
    std::env::var("NVEMU_GPU_MODELS")
        .ok()
        .map(|m| m.split(',').filter(|s| !s.trim().is_empty()).count())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(1)
}

/// The model of GPU `ordinal` (any ordinal; beyond [`gpu_count`] it is still answered).
pub fn model_of(ordinal: usize) -> ModelInfo {
    let listed = std::env::var("NVEMU_GPU_MODELS").ok().and_then(|m| {
        m.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .nth(ordinal)
            .map(str::to_owned)
    });
    match listed {
        Some(k) => model_by_key(&k),
        None => model_by_key(&std::env::var("NVEMU_GPU").unwrap_or_default()),
    }
}

/// The 16 UUID bytes of GPU `ordinal` (`cuDeviceGetUuid`; NVML prints them as `GPU-...`).
pub fn uuid_bytes(ordinal: usize) -> [u8; 16] {
    let cc = model_of(ordinal).cc;
    let mut uuid = *b"nvemu-gpu-uuid\0\0";
    uuid[13] = ordinal as u8;
    uuid[14] = cc.0 as u8;
    uuid[15] = cc.1 as u8;
    uuid
}

/// NVML's text form of a UUID: `GPU-` and the 16 bytes as 8-4-4-4-12 lower-case hex digits.
pub fn uuid_string(ordinal: usize) -> String {
    let b = uuid_bytes(ordinal);
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// PCI location of GPU `ordinal`: (domain, bus, device), function 0.
pub fn pci_location(ordinal: usize) -> (u32, u32, u32) {
    (0, ordinal as u32 + 1, 0)
}

/// Parses a PCI bus id in the forms CUDA and NVML print and accept
/// (`[domain:]bus:device[.function]`, hex digits, e.g. `0000:01:00.0`, `00000000:01:00.0`,
/// `01:00`): (domain, bus, device, function).
pub fn parse_pci_bus_id(s: &str) -> Option<(u32, u32, u32, u32)> {
    let s = s.trim().trim_end_matches('\0');
    let (loc, func) = match s.rsplit_once('.') {
        Some((l, f)) => (l, u32::from_str_radix(f, 16).ok()?),
        None => (s, 0),
    };
    let parts: Vec<&str> = loc.split(':').collect();
    let num = |p: &str| u32::from_str_radix(p, 16).ok();
    match parts.as_slice() {
        [d, b, dev] => Some((num(d)?, num(b)?, num(dev)?, func)),
        [b, dev] => Some((0, num(b)?, num(dev)?, func)),
        _ => None,
    }
}

/// The ordinal of the GPU at a PCI bus id, if there is one.
pub fn ordinal_of_pci_bus_id(s: &str) -> Option<usize> {
    let (domain, bus, dev, func) = parse_pci_bus_id(s)?;
    (0..gpu_count()).find(|&i| func == 0 && pci_location(i) == (domain, bus, dev))
}
