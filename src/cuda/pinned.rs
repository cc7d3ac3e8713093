// SPDX-License-Identifier: MPL-2.0
//! A GstAllocator of page-locked host memory (`cuMemAllocHost`), for the buffer pool the
//! encoder proposes upstream for system-memory caps: upstream writes its frames straight into
//! memory that the GPU's copy engine can move to the device by DMA, so uploading a frame costs
//! the host CPU (almost) nothing, where a copy out of ordinary (pageable) memory costs a memcpy.
//!
//! The allocator records each live region in a [`PinnedRegions`] set shared with the encoder,
//! which is how the encoder recognises its own memory in `handle_frame`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::glib::translate::IntoGlibPtr;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{Context, HostPinned};

/// The live page-locked regions (start address -> length) of one allocator.
#[derive(Debug, Default, Clone)]
pub struct PinnedRegions(Arc<Mutex<HashMap<usize, usize>>>);

impl PinnedRegions {
    /// Whether `[ptr, ptr + len)` lies in one live region.
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let p = ptr as usize;
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Memories are mapped from their start (plus a prefix), so a lookup by start address
        // covers every memory the allocator makes; regions are few (one per pool buffer).
        g.iter()
            .any(|(&start, &n)| p >= start && p.saturating_add(len) <= start.saturating_add(n))
    }

    fn insert(&self, start: usize, len: usize) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(start, len);
    }

    fn remove(&self, start: usize) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&start);
    }
}

/// The bytes of one GstMemory: page-locked memory, forgotten by the region set when freed.
struct PinnedSlice {
    mem: HostPinned,
    regions: PinnedRegions,
}

impl AsRef<[u8]> for PinnedSlice {
    fn as_ref(&self) -> &[u8] {
        self.mem.as_slice()
    }
}

impl AsMut<[u8]> for PinnedSlice {
    fn as_mut(&mut self) -> &mut [u8] {
        self.mem.as_mut_slice()
    }
}

impl Drop for PinnedSlice {
    fn drop(&mut self) {
        self.regions.remove(self.mem.as_slice().as_ptr() as usize);
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct PinnedAllocator {
        pub(super) state: Mutex<Option<(Arc<Context>, PinnedRegions)>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for PinnedAllocator {
        const NAME: &'static str = "GstRsNvEncPinnedAllocator";
        type Type = super::PinnedAllocator;
        type ParentType = gst::Allocator;
    }

    impl ObjectImpl for PinnedAllocator {}
    impl GstObjectImpl for PinnedAllocator {}

    // SAFETY: `alloc` returns a new, fully owned GstMemory (or NULL on failure), as the
    // GstAllocator contract asks; memories it makes are freed by their own (wrapped-slice)
    // allocator, so `free` is never called with one of ours.
    unsafe impl AllocatorImpl for PinnedAllocator {
        unsafe fn alloc(
            &self,
            size: usize,
            params: &gst::AllocationParams,
        ) -> *mut gst::ffi::GstMemory {
            let Some((ctx, regions)) = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
            else {
                return std::ptr::null_mut();
            };
            let (prefix, padding) = (params.prefix(), params.padding());
            let total = prefix + size + padding;
            // cuMemAllocHost memory is page aligned, which satisfies any `params.align()`.
            // Page-locked memory is an optimisation: without it, ordinary memory (the encoder
            // then copies the frame with the CPU).
            let mut memory = match HostPinned::new(&ctx, total) {
                Ok(mem) => {
                    regions.insert(mem.as_slice().as_ptr() as usize, total);
                    gst::Memory::from_mut_slice(PinnedSlice { mem, regions })
                }
                Err(e) => {
                    gst::warning!(
                        gst::CAT_RUST,
                        "page-locked allocation of {total} bytes failed ({e}); using ordinary memory"
                    );
                    gst::Memory::from_mut_slice(vec![0u8; total])
                }
            };
            if (prefix > 0 || padding > 0)
                && let Some(m) = memory.get_mut()
            {
                m.resize(prefix..prefix + size);
            }
            memory.into_glib_ptr()
        }
    }
}

glib::wrapper! {
    /// Allocates page-locked host memory of one CUDA context (see the module docs).
    pub struct PinnedAllocator(ObjectSubclass<imp::PinnedAllocator>)
        @extends gst::Allocator, gst::Object;
}

impl PinnedAllocator {
    /// An allocator of page-locked memory in `ctx`, recording its regions in `regions`.
    pub fn new(ctx: Arc<Context>, regions: PinnedRegions) -> PinnedAllocator {
        let a: PinnedAllocator = glib::Object::new();
        *a.imp().state.lock().unwrap_or_else(|e| e.into_inner()) = Some((ctx, regions));
        a.set_object_flags(gst::ObjectFlags::from_bits_retain(
            gst::ffi::GST_ALLOCATOR_FLAG_CUSTOM_ALLOC,
        ));
        a
    }
}
