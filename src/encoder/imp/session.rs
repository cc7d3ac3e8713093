// SPDX-License-Identifier: MPL-2.0
//! Opening a session: the configuration from the settings and the GPU's capabilities
//! ([`super::super::config`]), `nvEncInitializeEncoder`, the ring and its output thread. A
//! child of `imp` for its private state.

use std::sync::Arc;

use gst::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::*;

impl NvEncoder {
    /// Opens and initialises a session for `info`, creates the ring and starts the output
    /// thread. Returns the stream and its output caps.
    pub(super) fn create_stream(
        &self,
        ctx: Arc<cuda::Context>,
        info: &gst_video::VideoInfo,
        hdr: Hdr10,
    ) -> Result<(Stream, gst::Caps), NvEncError> {
        let ops = self.ops();
        let codec = ops.codec();
        // This session takes the settings as they are now: earlier changes need no update.
        let s = self.settings.session_started();
        let format = formats::input_format(info.format()).ok_or_else(|| {
            NvEncError::Other(format!("unsupported input format {:?}", info.format()))
        })?;
        let session = Session::open(ctx)?;
        let api = session.api();
        gst::info!(
            CAT,
            imp = self,
            "NVENC API {} (driver supports up to {}.{})",
            api.name(),
            api::load()?.driver_max.0,
            api::load()?.driver_max.1
        );
        // Capability checks give clear errors before the driver does.
        let caps = GpuCaps::query(&session, codec)?;
        let size = ops.encode_size(info.width(), info.height());
        let name = format!("{:?}", info.format());
        config::check_input(&caps, codec, &format, &name, size).map_err(NvEncError::Other)?;
        let params = SessionParams {
            info: info.clone(),
            encode_width: size.0,
            encode_height: size.1,
            buffer_format: format.buffer_format,
            bit_depth: format.bit_depth,
            chroma_444: format.chroma_444,
            api,
            downstream_profiles: negotiation::downstream_profiles(self.obj().upcast_ref()),
            profile_guids: caps.profile_guids.clone(),
            cabac: caps.cabac,
            hdr,
            time_code: codec == Codec::H264
                && api >= api::ApiVersion::V12_2
                && self.lock_state().time_codes,
        };
        self.tell_hdr(&params, codec);
        let fmt = ops.choose_stream_format(self.obj().upcast_ref());
        let (mut config, plan) = self.session_config(&session, &s, &caps, &params, fmt, None)?;
        let ffi::SessionConfig { init, cfg } = &mut config.session;
        session.initialize(init, cfg)?;
        self.stats.session_opened();
        let out_caps = self.output_caps(&session, &params, fmt)?;
        let stream = self.start_ring(session, params, config, plan, (caps, fmt))?;
        Ok((stream, out_caps))
    }

    /// Logs how the input's HDR10 metadata goes out, if it has any.
    pub(super) fn tell_hdr(&self, params: &SessionParams, codec: Codec) {
        let hdr = &params.hdr;
        if hdr.is_empty() {
            return;
        }
        gst::info!(
            CAT,
            imp = self,
            "HDR10 metadata on every IDR (mastering display {:?}, content light level {:?}), through {}",
            hdr.mastering,
            hdr.light,
            if params.native_hdr(codec) {
                "NVENC's outputMasteringDisplay/outputMaxCll and pMasteringDisplay/pMaxCll"
            } else if codec == Codec::Av1 {
                "obuPayloadArray (HDR_MDCV / HDR_CLL metadata OBUs)"
            } else {
                "seiPayloadArray (SEI 137 / 144)"
            }
        );
    }

    /// The session's initialize params and encode config ([`config`], then the codec's part,
    /// the bit depth and the SDK extensions), posting what had to be refused. `max`: the
    /// running session's `maxEncodeWidth/Height` (a reconfiguration), else `None` (from the
    /// `max-width`/`max-height` properties, 0 = the encode size).
    pub(super) fn session_config(
        &self,
        session: &Session,
        s: &Settings,
        caps: &GpuCaps,
        params: &SessionParams,
        fmt: StreamFormat,
        max: Option<(u32, u32)>,
    ) -> Result<(SessionSetup, sdkext::Plan), NvEncError> {
        let ops = self.ops();
        let (codec, api) = (ops.codec(), params.api);
        let bframes = if s.bframes > caps.max_bframes {
            let max_b = caps.max_bframes;
            gst::warning!(
                CAT,
                imp = self,
                "bframes={} is more than this GPU supports ({max_b}); using {max_b}",
                s.bframes
            );
            max_b
        } else {
            s.bframes
        };
        let size = (params.encode_width, params.encode_height);
        let mut res = settings::resolve(s, size.0, size.1);
        if let Some(w) = config::check_tuning(&mut res, api, codec) {
            self.warn(&[w]);
        }
        if let Some(w) = config::check_lossless(&mut res, caps, codec) {
            self.warn(&[w]);
        }
        let preset = session.preset_config(codec.guid(), res.preset_guid, res.tuning)?;
        let mut enc = config::encode_config(&preset.presetCfg, s, &res, caps, codec, bframes);
        self.warn(&enc.warnings);
        let refused = ops
            .configure(&mut enc.cfg, &enc.settings, params, fmt)
            .map_err(NvEncError::Other)?;
        for r in refused {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{r}"), ["{codec}"]);
        }
        if let Some(profile) = config::lossless_h264_profile(&res, caps, codec, enc.cfg.profileGUID)
        {
            gst::info!(
                CAT,
                imp = self,
                "lossless H.264: High 4:4:4 Predictive profile"
            );
            enc.cfg.profileGUID = profile;
        }
        // The codec may have lowered it (a profile without B-frames).
        let frame_interval_p = enc.cfg.frameIntervalP;
        if params.bit_depth != 8 {
            api::set_bit_depth(api, codec, &mut enc.cfg, params.bit_depth);
        }
        // Split-frame encoding, lookahead level, temporal filter, LTR: SDK features beyond
        // nvcodec, each checked against the API's layout, the GPU's caps and the header's rules.
        let x = sdkext::Session {
            codec,
            api,
            frame_interval_p,
            lookahead: enc.lookahead > 0,
            zero_reorder_delay: enc.settings.zerolatency,
            weighted_prediction: enc.weighted_prediction,
            preset_tf_level: sdkext::preset_tf_level(api, codec, &enc.cfg),
        };
        let plan = sdkext::plan(&enc.settings, &x, &caps.ext);
        for r in &plan.refused {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{} refused: {}", r.asked, r.why),
                ["NVENC API {}, {}, {:?}", api.name(), codec, caps.ext]
            );
        }
        for n in &plan.notes {
            gst::info!(CAT, imp = self, "{n}");
        }
        gst::debug!(
            CAT,
            imp = self,
            "SDK extensions: {plan:?} with {:?}",
            caps.ext
        );
        let max = max.unwrap_or_else(|| {
            let asked = (
                if s.max_width == 0 {
                    size.0
                } else {
                    s.max_width
                },
                if s.max_height == 0 {
                    size.1
                } else {
                    s.max_height
                },
            );
            let (w, h) = ops.encode_size(asked.0.min(caps.width.1), asked.1.min(caps.height.1));
            (w.max(size.0), h.max(size.1))
        });
        let mut init = config::initialize_params(
            codec,
            &res,
            enc.weighted_prediction,
            &params.info,
            size,
            max,
            params.buffer_format,
        );
        let mut cfg = enc.cfg;
        sdkext::apply(&plan, api, codec, &mut init, &mut cfg);
        Ok((
            SessionSetup {
                session: ffi::SessionConfig { init, cfg },
                gop: enc.gop,
                lookahead: enc.lookahead,
            },
            plan,
        ))
    }

    /// The ring of an initialised session, its output thread, and the latency it gives.
    pub(super) fn start_ring(
        &self,
        session: Arc<Session>,
        params: SessionParams,
        setup: SessionSetup,
        plan: sdkext::Plan,
        (caps, fmt): (GpuCaps, StreamFormat),
    ) -> Result<Stream, NvEncError> {
        let codec = self.ops().codec();
        let frame_interval_p = setup.session.cfg.frameIntervalP;
        let (ew, eh) = (params.encode_width, params.encode_height);
        // Input buffers as large as the session may become (a smaller picture is read from
        // their top-left corner).
        let init = &setup.session.init;
        let (bw, bh) = (init.maxEncodeWidth.max(ew), init.maxEncodeHeight.max(eh));
        let ring_size = config::ring_size(setup.lookahead, frame_interval_p);
        let mut free = Vec::with_capacity(ring_size as usize);
        for _ in 0..ring_size {
            free.push(Slot {
                input: api::InputBuffer::new(&session, bw, bh, params.buffer_format)?,
                output: api::BitstreamBuffer::new(&session)?,
                cuda: None,
                device: None,
            });
        }
        let frame_dur = config::frame_duration(&params.info);
        let delay = frame_interval_p.max(1) as u32 - 1;
        let dts_offset = frame_dur * delay as u64;
        let ring = Ring::new(free, !params.hdr.is_empty(), delay, dts_offset);
        let (min, max) = config::latency(&params.info, dts_offset, setup.lookahead, ring_size);
        self.obj().set_latency(min, Some(max));
        let thread = ring::spawn_output_thread(
            session.clone(),
            ring.clone(),
            ring::Output {
                element: self.obj().clone().upcast(),
                ops: self.ops(),
                format: fmt,
                stats: self.stats.clone(),
                settings: self.settings.clone(),
            },
        )?;
        let (gop, lookahead) = (setup.gop, setup.lookahead);
        gst::info!(
            CAT,
            imp = self,
            "session ready: {ew}x{eh}, ring {ring_size}, gop {gop}, frameIntervalP {frame_interval_p}, lookahead {lookahead}"
        );
        let api = params.api;
        Ok(Stream {
            session,
            ring,
            thread: Some(thread),
            params,
            dts_offset,
            frame_idx: 0,
            ltr_per_picture: plan
                .ltr
                .filter(|(_, trust)| !trust)
                .and_then(|(n, _)| Some((sdkext::pic_ltr_layout(api, codec)?, n))),
            idr: ring::IdrPrediction::new(gop),
            config: setup.session,
            registrations: Default::default(),
            caps,
            format: fmt,
        })
    }
}
