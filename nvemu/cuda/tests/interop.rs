//! Peer access, OpenGL interop, modules/kernels and texture objects (src/interop.rs): the
//! entry points GStreamer's libgstcuda loader requires, with their strict error codes.

use cuda::*;
use std::ffi::{c_uint, c_void};
use std::ptr::{null, null_mut};

fn ctx() -> CUcontext {
    assert_eq!(cuInit(0), CUDA_SUCCESS);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), CUDA_SUCCESS);
    c
}

fn pop_destroy(c: CUcontext) {
    assert_eq!(cuCtxDestroy_v2(c), CUDA_SUCCESS);
}

#[test]
fn peer_access() {
    let a = ctx();
    let b = ctx(); // current: b
    let mut can = -1;
    assert_eq!(cuDeviceCanAccessPeer(&mut can, 0, 0), CUDA_SUCCESS);
    assert_eq!(can, 0);
    assert_eq!(
        cuDeviceCanAccessPeer(&mut can, 0, 1),
        CUDA_ERROR_INVALID_DEVICE
    );
    assert_eq!(
        cuDeviceCanAccessPeer(null_mut(), 0, 0),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuCtxEnablePeerAccess(a, 0),
        CUDA_ERROR_PEER_ACCESS_UNSUPPORTED
    );
    assert_eq!(cuCtxEnablePeerAccess(a, 1), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuCtxEnablePeerAccess(b, 0), CUDA_ERROR_INVALID_CONTEXT); // itself
    assert_eq!(
        cuCtxEnablePeerAccess(0x1234 as CUcontext, 0),
        CUDA_ERROR_INVALID_CONTEXT
    );
    assert_eq!(
        cuCtxDisablePeerAccess(a),
        CUDA_ERROR_PEER_ACCESS_NOT_ENABLED
    );
    pop_destroy(b);
    pop_destroy(a);
    // no current context
    assert_eq!(cuCtxDisablePeerAccess(a), CUDA_ERROR_INVALID_CONTEXT);
}

#[test]
fn gl_interop_is_unavailable() {
    let c = ctx();
    let mut n: c_uint = 7;
    let mut devs = [0; 4];
    assert_eq!(
        cuGLGetDevices_v2(&mut n, devs.as_mut_ptr(), 4, 1),
        CUDA_ERROR_NO_DEVICE
    );
    assert_eq!(n, 0);
    assert_eq!(
        cuGLGetDevices_v2(&mut n, devs.as_mut_ptr(), 4, 9),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuGLGetDevices_v2(null_mut(), devs.as_mut_ptr(), 4, 1),
        CUDA_ERROR_INVALID_VALUE
    );
    let mut res: CUgraphicsResource = null_mut();
    assert_eq!(
        cuGraphicsGLRegisterBuffer(&mut res, 1, 0),
        CUDA_ERROR_INVALID_GRAPHICS_CONTEXT
    );
    assert_eq!(
        cuGraphicsGLRegisterBuffer(&mut res, 1, 0x100),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuGraphicsGLRegisterImage(&mut res, 1, 0x0DE1, 0),
        CUDA_ERROR_INVALID_GRAPHICS_CONTEXT
    );
    assert_eq!(
        cuGraphicsGLRegisterImage(&mut res, 1, 0x1234, 0),
        CUDA_ERROR_INVALID_VALUE
    );
    let mut r = [0x42usize as CUgraphicsResource];
    assert_eq!(
        cuGraphicsMapResources(1, r.as_mut_ptr(), null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuGraphicsUnmapResources(1, r.as_mut_ptr(), null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuGraphicsMapResources(1, null_mut(), null_mut()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuGraphicsUnregisterResource(r[0]),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuGraphicsResourceSetMapFlags_v2(r[0], 1),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuGraphicsResourceSetMapFlags_v2(r[0], 9),
        CUDA_ERROR_INVALID_VALUE
    );
    let (mut p, mut size) = (0u64, 0usize);
    assert_eq!(
        cuGraphicsResourceGetMappedPointer_v2(&mut p, &mut size, r[0]),
        CUDA_ERROR_INVALID_HANDLE
    );
    let mut arr: CUarray = null_mut();
    assert_eq!(
        cuGraphicsSubResourceGetMappedArray(&mut arr, r[0], 0, 0),
        CUDA_ERROR_INVALID_HANDLE
    );
    pop_destroy(c);
    assert_eq!(
        cuGraphicsUnregisterResource(r[0]),
        CUDA_ERROR_INVALID_CONTEXT
    );
}

#[test]
fn modules_and_kernels() {
    let c = ctx();
    let mut m: CUmodule = null_mut();
    let ptx = c"//\n.version 7.0\n.target sm_52\n.address_size 64\n.visible .entry k() { ret; }\n";
    assert_eq!(
        cuModuleLoadData(&mut m, ptx.as_ptr() as *const c_void),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(
        cuModuleLoadData(&mut m, c"garbage".as_ptr() as *const c_void),
        200
    );
    assert_eq!(cuModuleLoadData(&mut m, c"".as_ptr() as *const c_void), 200);
    let elf = *b"\x7fELF\x02\x01\x01\0";
    assert_eq!(
        cuModuleLoadData(&mut m, elf.as_ptr() as *const c_void),
        CUDA_ERROR_NOT_SUPPORTED
    );
    assert_eq!(
        cuModuleLoadData(null_mut(), ptx.as_ptr() as *const c_void),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(cuModuleLoadData(&mut m, null()), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuModuleUnload(0x40 as CUmodule), CUDA_ERROR_INVALID_HANDLE);
    let mut f: CUfunction = null_mut();
    assert_eq!(
        cuModuleGetFunction(&mut f, 0x40 as CUmodule, c"k".as_ptr()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(
        cuModuleGetFunction(&mut f, 0x40 as CUmodule, null()),
        CUDA_ERROR_INVALID_VALUE
    );
    let launch = |f: CUfunction, g: c_uint, s: CUstream| {
        cuLaunchKernel(f, g, 1, 1, 32, 1, 1, 0, s, null_mut(), null_mut())
    };
    assert_eq!(
        launch(0x80 as CUfunction, 1, null_mut()),
        CUDA_ERROR_INVALID_HANDLE
    );
    assert_eq!(launch(null_mut(), 1, null_mut()), CUDA_ERROR_INVALID_HANDLE);
    assert_eq!(
        launch(0x80 as CUfunction, 0, null_mut()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        launch(0x80 as CUfunction, 1, 0x999 as CUstream),
        CUDA_ERROR_INVALID_HANDLE
    );
    pop_destroy(c);
    assert_eq!(
        launch(0x80 as CUfunction, 1, null_mut()),
        CUDA_ERROR_INVALID_CONTEXT
    );
}

fn pitch2d(dev: u64, w: usize, h: usize, pitch: usize) -> CUDA_RESOURCE_DESC {
    CUDA_RESOURCE_DESC {
        resType: CU_RESOURCE_TYPE_PITCH2D,
        res: CUDA_RESOURCE_DESC_res {
            pitch2D: CUDA_RESOURCE_DESC_pitch2D {
                devPtr: dev,
                format: 0x01, // UNSIGNED_INT8
                numChannels: 1,
                width: w,
                height: h,
                pitchInBytes: pitch,
            },
        },
        flags: 0,
    }
}

fn tex_desc() -> CUDA_TEXTURE_DESC {
    CUDA_TEXTURE_DESC {
        addressMode: [1, 1, 1], // CLAMP
        filterMode: 0,
        flags: 0x2, // NORMALIZED_COORDINATES
        maxAnisotropy: 0,
        mipmapFilterMode: 0,
        mipmapLevelBias: 0.0,
        minMipmapLevelClamp: 0.0,
        maxMipmapLevelClamp: 0.0,
        borderColor: [0.0; 4],
        reserved: [0; 12],
    }
}

#[test]
fn texture_objects() {
    let c = ctx();
    let (mut d, mut pitch) = (0u64, 0usize);
    assert_eq!(
        cuMemAllocPitch_v2(&mut d, &mut pitch, 320, 240, 16),
        CUDA_SUCCESS
    );
    let td = tex_desc();
    let mut t: CUtexObject = 0;
    let rd = pitch2d(d, 320, 240, pitch);
    assert_eq!(cuTexObjectCreate(&mut t, &rd, &td, null()), CUDA_SUCCESS);
    assert_ne!(t, 0);
    // unaligned base, unaligned pitch, pitch < row, past the allocation, view on pitch2D
    let mut u: CUtexObject = 0;
    let bad = [
        pitch2d(d + 1, 320, 240, pitch),
        pitch2d(d, 320, 240, 330),
        pitch2d(d, 320, 240, 256),
        pitch2d(d, 320, 241, pitch),
        pitch2d(0, 320, 240, pitch),
    ];
    for rd in &bad {
        assert_eq!(
            cuTexObjectCreate(&mut u, rd, &td, null()),
            CUDA_ERROR_INVALID_VALUE
        );
    }
    let view = [0u8; 112];
    assert_eq!(
        cuTexObjectCreate(&mut u, &rd, &td, view.as_ptr() as *const c_void),
        CUDA_ERROR_INVALID_VALUE
    );
    let mut bad_td = td;
    bad_td.addressMode[0] = 7;
    assert_eq!(
        cuTexObjectCreate(&mut u, &rd, &bad_td, null()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuTexObjectCreate(&mut u, &rd, null(), null()),
        CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        cuTexObjectCreate(null_mut(), &rd, &td, null()),
        CUDA_ERROR_INVALID_VALUE
    );
    let mut arr = rd;
    arr.resType = CU_RESOURCE_TYPE_ARRAY;
    assert_eq!(
        cuTexObjectCreate(&mut u, &arr, &td, null()),
        CUDA_ERROR_INVALID_HANDLE
    );
    // linear
    let lin = CUDA_RESOURCE_DESC {
        resType: CU_RESOURCE_TYPE_LINEAR,
        res: CUDA_RESOURCE_DESC_res {
            linear: CUDA_RESOURCE_DESC_linear {
                devPtr: d,
                format: 0x20, // FLOAT
                numChannels: 4,
                sizeInBytes: 4096,
            },
        },
        flags: 0,
    };
    let mut l: CUtexObject = 0;
    assert_eq!(cuTexObjectCreate(&mut l, &lin, &td, null()), CUDA_SUCCESS);
    assert_eq!(cuTexObjectDestroy(l), CUDA_SUCCESS);
    assert_eq!(cuTexObjectDestroy(l), CUDA_ERROR_INVALID_VALUE);
    assert_eq!(cuTexObjectDestroy(t), CUDA_SUCCESS);
    // objects die with their context
    assert_eq!(cuTexObjectCreate(&mut t, &rd, &td, null()), CUDA_SUCCESS);
    pop_destroy(c);
    let c2 = ctx();
    assert_eq!(cuTexObjectDestroy(t), CUDA_ERROR_INVALID_VALUE);
    pop_destroy(c2);
}
