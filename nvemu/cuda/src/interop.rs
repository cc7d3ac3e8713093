//! Entry points that GStreamer 1.22's `libgstcuda` loader requires (it resolves its whole
//! symbol list or refuses the library) beyond memory, copies and streams (peer access is in
//! `src/peer.rs`): OpenGL interop, modules and kernel launches, texture objects.
//!
//! What the emulated GPU can and cannot do here:
//! - OpenGL interop: the emulated GPU drives no display, so no GL context belongs to it.
//!   `cuGLGetDevices_v2` reports no CUDA device (`CUDA_ERROR_NO_DEVICE`, count 0) and the
//!   register calls fail with `CUDA_ERROR_INVALID_GRAPHICS_CONTEXT`; since no graphics resource
//!   can ever exist, every call taking one fails with `CUDA_ERROR_INVALID_HANDLE`.
//! - Device code: the emulator executes no kernels. `cuModuleLoadData` checks that the image is
//!   PTX, a cubin (ELF) or a fatbin and then fails with `CUDA_ERROR_NOT_SUPPORTED` (a real
//!   driver would load it); since no module or function can exist, the calls taking one fail
//!   with `CUDA_ERROR_INVALID_HANDLE`.
//! - Texture objects are created for real (they are only descriptors): the resource
//!   description is checked as the driver documents it (pitch and base alignment, limits,
//!   formats, the range inside one allocation) and a handle is returned; nothing can sample
//!   them since no kernel runs.
use super::*;

pub type CUgraphicsResource = *mut c_void;
pub type CUmodule = *mut c_void;
pub type CUfunction = *mut c_void;
pub type CUtexObject = u64;

// --- OpenGL interop ---------------------------------------------------------------------------

const CU_GL_DEVICE_LIST_ALL: c_uint = 1;
const CU_GL_DEVICE_LIST_NEXT_FRAME: c_uint = 3;
/// CU_GRAPHICS_REGISTER_FLAGS_{READ_ONLY, WRITE_DISCARD, SURFACE_LDST, TEXTURE_GATHER}.
const REGISTER_FLAGS: c_uint = 0x1 | 0x2 | 0x4 | 0x8;
/// GL targets cuGraphicsGLRegisterImage accepts: TEXTURE_2D, TEXTURE_RECTANGLE,
/// TEXTURE_CUBE_MAP, TEXTURE_3D, TEXTURE_2D_ARRAY, RENDERBUFFER.
const GL_TARGETS: [c_uint; 6] = [0x0DE1, 0x84F5, 0x8513, 0x806F, 0x8C1A, 0x8D41];

cuda_fn! { fn cuGLGetDevices_v2(
    count: *mut c_uint,
    devices: *mut CUdevice,
    max_devices: c_uint,
    list: c_uint,
) {
    need_init()?;
    if !(CU_GL_DEVICE_LIST_ALL..=CU_GL_DEVICE_LIST_NEXT_FRAME).contains(&list)
        || (devices.is_null() && max_devices > 0)
    {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // "If any of the GPUs being used by the current OpenGL context are not CUDA capable then
    // the call will return CUDA_ERROR_NO_DEVICE": whatever GL context is current, it does not
    // run on the emulated GPU. (With no current GL context the real driver is believed to
    // return CUDA_ERROR_INVALID_GRAPHICS_CONTEXT; the emulator cannot see GL state.)
    put(count, 0)?;
    trace("cuGLGetDevices_v2", CUDA_ERROR_NO_DEVICE, &[("deviceList", list.into())], None);
    Err(CUDA_ERROR_NO_DEVICE)
}}

/// The emulated GPU owns no GL context, so no GL object can be registered. The exact code a
/// real driver returns for a GL context of another vendor is not known;
/// `CUDA_ERROR_INVALID_GRAPHICS_CONTEXT` is what it returns without a usable GL context.
fn gl_register(call: &str, res: *mut CUgraphicsResource, name: c_uint, flags: c_uint) -> R {
    let r = (|| {
        current_ctx(&state())?;
        if res.is_null() || flags & !REGISTER_FLAGS != 0 {
            return Err(CUDA_ERROR_INVALID_VALUE);
        }
        Err(CUDA_ERROR_INVALID_GRAPHICS_CONTEXT)
    })();
    trace(
        call,
        r.err().unwrap_or(0),
        &[("name", name.into()), ("Flags", flags.into())],
        None,
    );
    r
}

cuda_fn! { fn cuGraphicsGLRegisterBuffer(res: *mut CUgraphicsResource, buffer: c_uint, flags: c_uint) {
    gl_register("cuGraphicsGLRegisterBuffer", res, buffer, flags)
}}

cuda_fn! { fn cuGraphicsGLRegisterImage(
    res: *mut CUgraphicsResource,
    image: c_uint,
    target: c_uint,
    flags: c_uint,
) {
    if !GL_TARGETS.contains(&target) {
        need_init()?;
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    gl_register("cuGraphicsGLRegisterImage", res, image, flags)
}}

/// No graphics resource can be registered (above), so every handle is unknown.
fn no_resource(res: CUgraphicsResource) -> R {
    current_ctx(&state())?;
    let _ = res;
    Err(CUDA_ERROR_INVALID_HANDLE)
}

fn map_resources(count: c_uint, resources: *mut CUgraphicsResource, stream: CUstream) -> R {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, stream)?;
    // count == 0: the real driver's answer is not documented; nothing is mapped here.
    if count == 0 || resources.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    drop(st);
    no_resource(get(resources)?)
}

cuda_fn! { fn cuGraphicsMapResources(count: c_uint, resources: *mut CUgraphicsResource, stream: CUstream) {
    map_resources(count, resources, stream)
}}

cuda_fn! { fn cuGraphicsUnmapResources(count: c_uint, resources: *mut CUgraphicsResource, stream: CUstream) {
    map_resources(count, resources, stream)
}}

cuda_fn! { fn cuGraphicsResourceSetMapFlags_v2(res: CUgraphicsResource, flags: c_uint) {
    current_ctx(&state())?;
    // CU_GRAPHICS_MAP_RESOURCE_FLAGS_NONE / READ_ONLY / WRITE_DISCARD
    if flags > 2 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    no_resource(res)
}}

cuda_fn! { fn cuGraphicsSubResourceGetMappedArray(
    array: *mut CUarray,
    res: CUgraphicsResource,
    index: c_uint,
    mip_level: c_uint,
) {
    current_ctx(&state())?;
    let _ = (index, mip_level);
    if array.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    no_resource(res)
}}

cuda_fn! { fn cuGraphicsResourceGetMappedPointer_v2(
    dptr: *mut CUdeviceptr,
    size: *mut usize,
    res: CUgraphicsResource,
) {
    current_ctx(&state())?;
    if dptr.is_null() && size.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    no_resource(res)
}}

cuda_fn! { fn cuGraphicsUnregisterResource(res: CUgraphicsResource) { no_resource(res) } }

// --- modules and kernels ----------------------------------------------------------------------

/// Recognises a module image: cubin (ELF), fatbin, or NUL-terminated PTX text.
fn image_kind(image: *const c_void) -> Option<&'static str> {
    let p = image as *const u8;
    let mut head = [0u8; 4];
    for (i, h) in head.iter_mut().enumerate() {
        // SAFETY: `image` is non-NULL (checked by the caller) and by the cuModuleLoadData
        // contract points to a cubin, a fatbin or a NUL-terminated PTX string; reading stops
        // at the first NUL, so no byte past a (short) string is read.
        let b = unsafe { p.add(i).read() };
        *h = b;
        if b == 0 {
            break;
        }
    }
    match u32::from_le_bytes(head) {
        0x464c_457f => return Some("cubin"),
        0xba55_ed50 | 0x4662_43b1 => return Some("fatbin"),
        _ => {}
    }
    // SAFETY: not a binary image, so by the contract it is a NUL-terminated PTX string.
    let text = unsafe { CStr::from_ptr(image as *const c_char) };
    let text = text.to_bytes();
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    (has(b".version") && has(b".target")).then_some("ptx")
}

cuda_fn! { fn cuModuleLoadData(module: *mut CUmodule, image: *const c_void) {
    current_ctx(&state())?;
    if module.is_null() || image.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let (r, kind) = match image_kind(image) {
        None => (Err(CUDA_ERROR_INVALID_IMAGE), "unknown"),
        // A valid image that a real driver would load (or JIT): the emulator runs no device
        // code, so it refuses here rather than failing later at cuLaunchKernel.
        Some(k) => (Err(CUDA_ERROR_NOT_SUPPORTED), k),
    };
    trace("cuModuleLoadData", r.err().unwrap_or(0), &[("image", kind.into())], None);
    r
}}

cuda_fn! { fn cuModuleUnload(module: CUmodule) {
    current_ctx(&state())?;
    let _ = module;
    // No module can be loaded (cuModuleLoadData), so every handle is unknown.
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuModuleGetFunction(func: *mut CUfunction, module: CUmodule, name: *const c_char) {
    current_ctx(&state())?;
    if func.is_null() || name.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let _ = module;
    Err(CUDA_ERROR_INVALID_HANDLE)
}}

cuda_fn! { fn cuLaunchKernel(
    func: CUfunction,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    shared_mem: c_uint,
    stream: CUstream,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) {
    let st = state();
    current_ctx(&st)?;
    check_stream(&st, stream)?;
    drop(st);
    let _ = (shared_mem, params, extra);
    let r = if func.is_null() {
        Err(CUDA_ERROR_INVALID_HANDLE)
    } else if [grid_x, grid_y, grid_z, block_x, block_y, block_z].contains(&0) {
        Err(CUDA_ERROR_INVALID_VALUE)
    } else {
        // No function handle can exist (cuModuleGetFunction).
        Err(CUDA_ERROR_INVALID_HANDLE)
    };
    trace("cuLaunchKernel", r.err().unwrap_or(0), &[("f", hex(func as u64))], None);
    r
}}

// --- texture objects --------------------------------------------------------------------------

pub const CU_RESOURCE_TYPE_ARRAY: c_uint = 0;
pub const CU_RESOURCE_TYPE_MIPMAPPED_ARRAY: c_uint = 1;
pub const CU_RESOURCE_TYPE_LINEAR: c_uint = 2;
pub const CU_RESOURCE_TYPE_PITCH2D: c_uint = 3;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUDA_RESOURCE_DESC_linear {
    pub devPtr: CUdeviceptr,
    pub format: c_uint,
    pub numChannels: c_uint,
    pub sizeInBytes: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUDA_RESOURCE_DESC_pitch2D {
    pub devPtr: CUdeviceptr,
    pub format: c_uint,
    pub numChannels: c_uint,
    pub width: usize,
    pub height: usize,
    pub pitchInBytes: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union CUDA_RESOURCE_DESC_res {
    pub hArray: CUarray,
    pub linear: CUDA_RESOURCE_DESC_linear,
    pub pitch2D: CUDA_RESOURCE_DESC_pitch2D,
    pub reserved: [c_int; 32],
}

/// `CUDA_RESOURCE_DESC` (`_v1`), 144 bytes on x86-64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CUDA_RESOURCE_DESC {
    pub resType: c_uint,
    pub res: CUDA_RESOURCE_DESC_res,
    pub flags: c_uint,
}

/// `CUDA_TEXTURE_DESC` (`_v1`), 104 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUDA_TEXTURE_DESC {
    pub addressMode: [c_uint; 3],
    pub filterMode: c_uint,
    pub flags: c_uint,
    pub maxAnisotropy: c_uint,
    pub mipmapFilterMode: c_uint,
    pub mipmapLevelBias: f32,
    pub minMipmapLevelClamp: f32,
    pub maxMipmapLevelClamp: f32,
    pub borderColor: [f32; 4],
    pub reserved: [c_int; 12],
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<CUDA_RESOURCE_DESC>() == 144);
    assert!(offset_of!(CUDA_RESOURCE_DESC, res) == 8);
    assert!(offset_of!(CUDA_RESOURCE_DESC, flags) == 136);
    assert!(size_of::<CUDA_RESOURCE_DESC_pitch2D>() == 40);
    assert!(size_of::<CUDA_TEXTURE_DESC>() == 104);
    assert!(offset_of!(CUDA_TEXTURE_DESC, borderColor) == 40);
};

/// Bytes per channel of a `CUarray_format` usable for linear / pitch-2D textures.
fn format_bytes(format: c_uint) -> Option<usize> {
    match format {
        0x01 | 0x08 => Some(1),        // UNSIGNED_INT8, SIGNED_INT8
        0x02 | 0x09 | 0x10 => Some(2), // UNSIGNED_INT16, SIGNED_INT16, HALF
        0x03 | 0x0a | 0x20 => Some(4), // UNSIGNED_INT32, SIGNED_INT32, FLOAT
        // Newer formats (NV12, UNORM_INT*, BC*) are for arrays only; the driver's answer for
        // them on linear memory is not documented: rejected.
        _ => None,
    }
}

/// The device attribute, as cuDeviceGetAttribute reports it.
fn attr(a: c_int) -> usize {
    device_attribute(0, a).unwrap_or(0) as usize
}

/// Checks a linear or pitch-2D texture over device memory; returns the bytes it spans.
fn check_texture_memory(
    st: &State,
    dev_ptr: u64,
    format: c_uint,
    channels: c_uint,
    span: R<usize>,
) -> R {
    format_bytes(format).ok_or(CUDA_ERROR_INVALID_VALUE)?;
    if !matches!(channels, 1 | 2 | 4) || dev_ptr == 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // "devPtr must be aligned to CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT"
    if !dev_ptr.is_multiple_of(attr(14) as u64) {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    // Stricter than the driver is known to be: the texel range must lie in one tracked
    // allocation (device memory or mapped host memory).
    st.find(dev_ptr, span?.max(1))
        .ok_or(CUDA_ERROR_INVALID_VALUE)?;
    Ok(())
}

fn check_resource(st: &State, rd: &CUDA_RESOURCE_DESC) -> R {
    if rd.flags != 0 {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    match rd.resType {
        // The emulator creates no CUDA arrays, so any array handle is unknown.
        CU_RESOURCE_TYPE_ARRAY | CU_RESOURCE_TYPE_MIPMAPPED_ARRAY => Err(CUDA_ERROR_INVALID_HANDLE),
        CU_RESOURCE_TYPE_LINEAR => {
            // SAFETY: every field of the union variant is a plain integer; any bit pattern is
            // valid, and the whole 128-byte union was copied from the client's struct.
            let l = unsafe { rd.res.linear };
            let elem = format_bytes(l.format).unwrap_or(1) * l.numChannels as usize;
            // width in elements <= CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH
            if l.sizeInBytes == 0 || l.sizeInBytes / elem.max(1) > attr(69) {
                return Err(CUDA_ERROR_INVALID_VALUE);
            }
            check_texture_memory(st, l.devPtr, l.format, l.numChannels, Ok(l.sizeInBytes))
        }
        CU_RESOURCE_TYPE_PITCH2D => {
            // SAFETY: as above, plain integers only.
            let p = unsafe { rd.res.pitch2D };
            let elem = format_bytes(p.format).unwrap_or(1) * p.numChannels as usize;
            let row = p.width.checked_mul(elem).ok_or(CUDA_ERROR_INVALID_VALUE)?;
            // Limits of CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_{WIDTH,HEIGHT,PITCH}, pitch
            // a multiple of CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT.
            if p.width == 0
                || p.height == 0
                || p.width > attr(70)
                || p.height > attr(71)
                || p.pitchInBytes > attr(72)
                || !p.pitchInBytes.is_multiple_of(attr(51))
                || p.pitchInBytes < row
            {
                return Err(CUDA_ERROR_INVALID_VALUE);
            }
            let span = (p.height - 1)
                .checked_mul(p.pitchInBytes)
                .and_then(|s| s.checked_add(row))
                .ok_or(CUDA_ERROR_INVALID_VALUE);
            check_texture_memory(st, p.devPtr, p.format, p.numChannels, span)
        }
        _ => Err(CUDA_ERROR_INVALID_VALUE),
    }
}

fn check_texture_desc(td: &CUDA_TEXTURE_DESC) -> R {
    // CU_TR_ADDRESS_MODE_{WRAP, CLAMP, MIRROR, BORDER}; CU_TR_FILTER_MODE_{POINT, LINEAR};
    // CU_TRSF_{READ_AS_INTEGER, NORMALIZED_COORDINATES, SRGB, DISABLE_TRILINEAR_OPTIMIZATION,
    // SEAMLESS_CUBEMAP}. Unknown flag bits: the driver's answer is not documented; rejected.
    const FLAGS: c_uint = 0x01 | 0x02 | 0x10 | 0x20 | 0x40;
    if td.addressMode.iter().any(|&m| m > 3)
        || td.filterMode > 1
        || td.mipmapFilterMode > 1
        || td.flags & !FLAGS != 0
        || td.maxAnisotropy > 16
    {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    Ok(())
}

cuda_fn! { fn cuTexObjectCreate(
    tex: *mut CUtexObject,
    res_desc: *const CUDA_RESOURCE_DESC,
    tex_desc: *const CUDA_TEXTURE_DESC,
    view_desc: *const c_void,
) {
    let mut st = state();
    let ctx = current_ctx(&st)?;
    if tex.is_null() {
        return Err(CUDA_ERROR_INVALID_VALUE);
    }
    let rd = get(res_desc)?;
    // A texture description is required unless the resource is a surface-only array; the
    // emulator has no arrays, so it is always required here.
    let td = get(tex_desc)?;
    let r = (|| {
        check_resource(&st, &rd)?;
        check_texture_desc(&td)?;
        // "pResViewDesc ... can only be specified if the type of resource is a CUDA array or
        // a CUDA mipmapped array"
        if !view_desc.is_null() {
            return Err(CUDA_ERROR_INVALID_VALUE);
        }
        let h = st.handle();
        st.textures.insert(h, ctx);
        Ok(h)
    })();
    drop(st);
    let handle = r.unwrap_or(0);
    trace("cuTexObjectCreate", r.err().unwrap_or(0), &[("resType", rd.resType.into()), ("texObject", hex(handle))], None);
    put(tex, r?)
}}

cuda_fn! { fn cuTexObjectDestroy(tex: CUtexObject) {
    let mut st = state();
    current_ctx(&st)?;
    // Unknown handle: the driver's code is not documented; CUDA_ERROR_INVALID_VALUE as for
    // other unknown values.
    let r = st.textures.remove(&tex).map(|_| ()).ok_or(CUDA_ERROR_INVALID_VALUE);
    drop(st);
    trace("cuTexObjectDestroy", r.err().unwrap_or(0), &[("texObject", hex(tex))], None);
    r
}}
