// SPDX-License-Identifier: MPL-2.0
//! The bins' implementation: one [`Inner`] with the logic, three thin GObject types (one per
//! codec) that hold it.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{Codec, Common, RateControl, canonical_caps, map_properties};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rsautoenc",
        gst::DebugColorFlags::empty(),
        Some("NVENC encoder bins with software fallback"),
    )
});

/// The element message naming the encoder chosen.
pub const SELECTED: &str = "rsautoenc-selected";

#[derive(Default)]
struct State {
    /// The encoder in the bin now, and its factory name.
    encoder: Option<(gst::Element, String)>,
    /// Whether it is the NVENC element.
    nvenc: bool,
    /// The NVENC element's error, caught before it left the bin (the session could not open).
    nvenc_error: Option<String>,
    /// Whether any output has come out of the bin since it started.
    output_seen: bool,
}

/// The logic shared by the three bins.
pub struct Inner {
    codec: Codec,
    settings: Mutex<Common>,
    state: Mutex<State>,
    /// `videoconvert` and `capsfilter` (gst-plugins-base); `None` if they cannot be made, which
    /// fails the start with an error.
    fixed: Option<(gst::Element, gst::Element)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the NVIDIA driver's CUDA and encode libraries load (`Err`: why not).
fn nvidia_driver() -> Result<(), String> {
    for name in ["libcuda.so.1", "libnvidia-encode.so.1"] {
        // SAFETY: loading the driver's libraries runs their initialisers, which have no
        // preconditions; the NVENC element loads the same libraries.
        unsafe { libloading::Library::new(name) }
            .map_err(|e| format!("{name} cannot be loaded ({e})"))?;
    }
    Ok(())
}

impl Inner {
    fn new(codec: Codec) -> Inner {
        let make = |f: &str| gst::ElementFactory::make(f).build().ok();
        let fixed = make("videoconvert").zip(make("capsfilter"));
        if let Some((_, filter)) = &fixed {
            filter.set_property("caps", codec.forced_caps());
        }
        Inner {
            codec,
            settings: Mutex::new(Common::default()),
            state: Mutex::new(State::default()),
            fixed,
        }
    }

    /// Builds the fixed part: `videoconvert`, `capsfilter`, the ghost pads. `sink`/`src` are the
    /// ghost pads the subclass made (with its pad functions).
    fn constructed(&self, bin: &gst::Bin, sink: &gst::GhostPad, src: &gst::GhostPad) {
        let (ok_sink, ok_src) = (bin.add_pad(sink).is_ok(), bin.add_pad(src).is_ok());
        let Some((convert, filter)) = &self.fixed else {
            return;
        };
        let linked = ok_sink
            && ok_src
            && bin.add_many([convert, filter]).is_ok()
            && sink.set_target(convert.static_pad("sink").as_ref()).is_ok()
            && src.set_target(filter.static_pad("src").as_ref()).is_ok();
        if !linked {
            gst::error!(CAT, obj = bin, "cannot assemble the bin");
            return;
        }
        // Downstream sees the canonical caps, whatever the encoder; output marks the choice as
        // final.
        let codec = self.codec;
        let weak = bin.downgrade();
        let Some(pad) = filter.static_pad("src") else {
            return;
        };
        pad.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
            move |_, info| {
                match &mut info.data {
                    Some(gst::PadProbeData::Event(ev)) => {
                        if let gst::EventView::Caps(c) = ev.view() {
                            let caps = canonical_caps(codec, c.caps());
                            *ev = gst::event::Caps::new(&caps);
                        }
                    }
                    Some(gst::PadProbeData::Buffer(_)) => {
                        if let Some(bin) = weak.upgrade() {
                            with_inner(&bin, |i| lock(&i.state).output_seen = true);
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// Puts the encoder made by `factory` between the converter and the filter, with the
    /// common properties, and says so.
    fn install(&self, bin: &gst::Bin, factory: &str, nvenc: bool, reason: &str) -> bool {
        let enc = match gst::ElementFactory::make(factory).build() {
            Ok(e) => e,
            Err(e) => {
                gst::error!(CAT, obj = bin, "cannot make {factory}: {e}");
                return false;
            }
        };
        let common = *lock(&self.settings);
        let (set, unmapped) = map_properties(factory, &common);
        for (p, v) in set {
            if enc.find_property(p).is_some() {
                enc.set_property_from_str(p, &v);
            }
        }
        for u in unmapped {
            gst::warning!(CAT, obj = bin, "{factory}: {u} is not applied");
        }
        let Some((convert, filter)) = &self.fixed else {
            return false;
        };
        if bin.add(&enc).is_err() || convert.link(&enc).is_err() || enc.link(filter).is_err() {
            gst::error!(CAT, obj = bin, "cannot link {factory} in the bin");
            let _ = bin.remove(&enc);
            return false;
        }
        let _ = enc.sync_state_with_parent();
        gst::info!(CAT, obj = bin, "encoder {factory}: {reason}");
        {
            let mut st = lock(&self.state);
            st.encoder = Some((enc, factory.to_owned()));
            st.nvenc = nvenc;
            st.nvenc_error = None;
        }
        bin.notify("active-encoder");
        let s = gst::Structure::builder(SELECTED)
            .field("encoder", factory)
            .field("kind", if nvenc { "nvenc" } else { "software" })
            .field("reason", reason)
            .build();
        let _ = bin.post_message(gst::message::Element::builder(s).src(bin).build());
        true
    }

    /// The first choice, at NULL to READY.
    fn choose(&self, bin: &gst::Bin) -> bool {
        if lock(&self.state).encoder.is_some() {
            return true;
        }
        if self.fixed.is_none() {
            gst::element_error!(
                bin,
                gst::CoreError::MissingPlugin,
                ("videoconvert and capsfilter (gst-plugins-base) are needed")
            );
            return false;
        }
        let nv = self.codec.nvenc_factory();
        let why_not = if gst::ElementFactory::find(nv).is_none() {
            Some(format!("{nv} is not available"))
        } else {
            nvidia_driver()
                .err()
                .map(|e| format!("no NVIDIA driver: {e}"))
        };
        match (why_not, self.codec.software_factory()) {
            (None, _) => self.install(bin, nv, true, "NVENC is available"),
            (Some(why), Some(sw)) => self.install(bin, sw, false, &why),
            (Some(why), None) => {
                gst::element_error!(
                    bin,
                    gst::CoreError::MissingPlugin,
                    (
                        "no encoder for {:?}: {why}, and none of {:?} is installed",
                        self.codec,
                        self.codec.software_factories()
                    )
                );
                false
            }
        }
    }

    /// After the NVENC element failed to open a session: the software encoder instead.
    /// Returns whether it is in place.
    fn fall_back(&self, bin: &gst::Bin) -> bool {
        let (old, why) = {
            let mut st = lock(&self.state);
            if !st.nvenc || st.output_seen {
                return false;
            }
            let Some(why) = st.nvenc_error.take() else {
                return false;
            };
            (st.encoder.take(), why)
        };
        let Some(sw) = self.codec.software_factory() else {
            return false;
        };
        if let (Some((enc, _)), Some((convert, filter))) = (old, &self.fixed) {
            let _ = enc.set_state(gst::State::Null);
            convert.unlink(&enc);
            enc.unlink(filter);
            let _ = bin.remove(&enc);
        }
        gst::warning!(CAT, obj = bin, "NVENC cannot encode ({why}): using {sw}");
        self.install(
            bin,
            sw,
            false,
            &format!("NVENC could not open a session: {why}"),
        )
    }

    /// Catches the NVENC element's error while the choice can still change (no output yet, a
    /// software encoder present); everything else goes on as usual. Returns the message if it
    /// is to be passed on.
    fn filter_message(&self, msg: gst::Message) -> Option<gst::Message> {
        let gst::MessageView::Error(e) = msg.view() else {
            return Some(msg);
        };
        let mut st = lock(&self.state);
        let from_nvenc = match (&st.encoder, msg.src()) {
            (Some((enc, _)), Some(src)) => st.nvenc && src == enc.upcast_ref::<gst::Object>(),
            _ => false,
        };
        if !from_nvenc || st.output_seen || self.codec.software_factory().is_none() {
            return Some(msg);
        }
        let reason = e
            .details()
            .and_then(|d| d.get::<String>("reason").ok())
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        st.nvenc_error = Some(format!("{}{reason}", e.error()));
        None
    }

    fn sink_event(&self, bin: &gst::Bin, pad: &gst::GhostPad, event: gst::Event) -> bool {
        let is_caps = event.type_() == gst::EventType::Caps;
        let retry = is_caps.then(|| event.clone());
        if gst::Pad::event_default(pad, Some(bin), event) {
            return true;
        }
        match retry {
            Some(ev) if self.fall_back(bin) => gst::Pad::event_default(pad, Some(bin), ev),
            _ => false,
        }
    }

    fn sink_chain(
        &self,
        bin: &gst::Bin,
        pad: &gst::GhostPad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let again = buffer.clone();
        match gst::ProxyPad::chain_default(pad, Some(bin), buffer) {
            Err(gst::FlowError::Error | gst::FlowError::NotNegotiated) if self.fall_back(bin) => {
                // The new encoder gets the sticky events (stream-start, caps, segment) first.
                gst::ProxyPad::chain_default(pad, Some(bin), again)
            }
            r => r,
        }
    }

    fn change_state(
        &self,
        bin: &gst::Bin,
        transition: gst::StateChange,
        parent: impl Fn(gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError>,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady && !self.choose(bin) {
            return Err(gst::StateChangeError);
        }
        if transition == gst::StateChange::ReadyToPaused {
            lock(&self.state).output_seen = false;
        }
        match parent(transition) {
            // The NVENC element refused to start (e.g. no usable GPU): the software encoder.
            Err(_) if self.fall_back(bin) => parent(transition),
            r => r,
        }
    }

    fn properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecUInt::builder("bitrate")
                .nick("Bitrate")
                .blurb("Bitrate in kbit/s, 0 = the encoder's default (NVENC bitrate; x264enc, x265enc bitrate; openh264enc, rav1enc bitrate x1000; svtav1enc, av1enc target-bitrate)")
                .build(),
            glib::ParamSpecInt::builder("gop-size")
                .nick("GOP size")
                .blurb("Frames between key frames, -1 = the encoder's default (NVENC gop-size; x264enc, x265enc key-int-max; ...)")
                .minimum(-1)
                .default_value(-1)
                .build(),
            glib::ParamSpecInt::builder("bframes")
                .nick("B-frames")
                .blurb("B-frames between reference frames, -1 = the encoder's default (NVENC, x264enc bframes; x265enc option-string; not for AV1 or openh264enc)")
                .minimum(-1)
                .maximum(16)
                .default_value(-1)
                .build(),
            glib::ParamSpecEnum::builder_with_default("rate-control", RateControl::Default)
                .nick("Rate control")
                .blurb("Rate control where the encoder has the same mode (NVENC rc-mode; x264enc pass; openh264enc rate-control; av1enc end-usage)")
                .build(),
            glib::ParamSpecString::builder("active-encoder")
                .nick("Active encoder")
                .blurb("Factory name of the encoder in use (NULL before the bin starts)")
                .read_only()
                .build(),
        ]
    }

    fn set_property(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "bitrate" => s.bitrate = value.get().expect("type checked upstream"),
            "gop-size" => s.gop_size = value.get().expect("type checked upstream"),
            "bframes" => s.bframes = value.get().expect("type checked upstream"),
            "rate-control" => s.rate_control = value.get().expect("type checked upstream"),
            _ => {}
        }
    }

    fn property(&self, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "bitrate" => s.bitrate.to_value(),
            "gop-size" => s.gop_size.to_value(),
            "bframes" => s.bframes.to_value(),
            "rate-control" => s.rate_control.to_value(),
            "active-encoder" => lock(&self.state)
                .encoder
                .as_ref()
                .map(|(_, f)| f.clone())
                .to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

/// Runs `f` on the [`Inner`] of one of the three bins.
fn with_inner<R>(bin: &gst::Bin, f: impl FnOnce(&Inner) -> R) -> Option<R> {
    if let Some(b) = bin.downcast_ref::<super::AutoH264Enc>() {
        return Some(f(&b.imp().inner));
    }
    if let Some(b) = bin.downcast_ref::<super::AutoH265Enc>() {
        return Some(f(&b.imp().inner));
    }
    if let Some(b) = bin.downcast_ref::<super::AutoAv1Enc>() {
        return Some(f(&b.imp().inner));
    }
    None
}

fn sink_template() -> gst::PadTemplate {
    gst::PadTemplate::new(
        "sink",
        gst::PadDirection::Sink,
        gst::PadPresence::Always,
        &gst::Caps::builder("video/x-raw").build(),
    )
    .expect("sink template")
}

fn src_template(codec: Codec) -> gst::PadTemplate {
    gst::PadTemplate::new(
        "src",
        gst::PadDirection::Src,
        gst::PadPresence::Always,
        &gst::Caps::builder(codec.media_type()).build(),
    )
    .expect("src template")
}

macro_rules! auto_enc {
    ($ty:ident, $wrapper:path, $codec:expr, $gtype:literal, $long:literal, $desc:literal) => {
        pub struct $ty {
            pub(super) inner: Inner,
        }

        #[glib::object_subclass]
        impl ObjectSubclass for $ty {
            const NAME: &'static str = $gtype;
            type Type = $wrapper;
            type ParentType = gst::Bin;

            fn new() -> Self {
                Self {
                    inner: Inner::new($codec),
                }
            }
        }

        impl ObjectImpl for $ty {
            fn properties() -> &'static [glib::ParamSpec] {
                static P: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(Inner::properties);
                P.as_ref()
            }

            fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
                self.inner.set_property(value, pspec)
            }

            fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
                self.inner.property(pspec)
            }

            fn constructed(&self) {
                self.parent_constructed();
                let obj = self.obj();
                let templ = obj.pad_template("sink").expect("sink template");
                let sink = gst::GhostPad::builder_from_template(&templ)
                    .name("sink")
                    .event_function(|pad, parent, event| {
                        $ty::catch_panic_pad_function(
                            parent,
                            || false,
                            |imp| imp.inner.sink_event(imp.obj().upcast_ref(), pad, event),
                        )
                    })
                    .chain_function(|pad, parent, buffer| {
                        $ty::catch_panic_pad_function(
                            parent,
                            || Err(gst::FlowError::Error),
                            |imp| imp.inner.sink_chain(imp.obj().upcast_ref(), pad, buffer),
                        )
                    })
                    .build();
                let templ = obj.pad_template("src").expect("src template");
                let src = gst::GhostPad::builder_from_template(&templ)
                    .name("src")
                    .build();
                self.inner.constructed(obj.upcast_ref(), &sink, &src);
            }
        }

        impl GstObjectImpl for $ty {}

        impl ElementImpl for $ty {
            fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                static M: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                    gst::subclass::ElementMetadata::new(
                        $long,
                        // Not always hardware: the software fallback is inside.
                        "Codec/Encoder/Video",
                        $desc,
                        "rsnvenc developers",
                    )
                });
                Some(&*M)
            }

            fn pad_templates() -> &'static [gst::PadTemplate] {
                static T: LazyLock<Vec<gst::PadTemplate>> =
                    LazyLock::new(|| vec![sink_template(), src_template($codec)]);
                T.as_ref()
            }

            fn change_state(
                &self,
                transition: gst::StateChange,
            ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
                self.inner
                    .change_state(self.obj().upcast_ref(), transition, |t| {
                        self.parent_change_state(t)
                    })
            }
        }

        impl BinImpl for $ty {
            fn handle_message(&self, msg: gst::Message) {
                if let Some(m) = self.inner.filter_message(msg) {
                    self.parent_handle_message(m)
                }
            }
        }
    };
}

auto_enc!(
    AutoH264Enc,
    super::AutoH264Enc,
    Codec::H264,
    "GstRsAutoH264Enc",
    "H.264 encoder: NVENC, else software (rsnvenc)",
    "Encodes H.264 with rsnvench264enc, or with x264enc / openh264enc when NVENC cannot"
);
auto_enc!(
    AutoH265Enc,
    super::AutoH265Enc,
    Codec::H265,
    "GstRsAutoH265Enc",
    "H.265 encoder: NVENC, else software (rsnvenc)",
    "Encodes H.265 with rsnvench265enc, or with x265enc when NVENC cannot"
);
auto_enc!(
    AutoAv1Enc,
    super::AutoAv1Enc,
    Codec::Av1,
    "GstRsAutoAv1Enc",
    "AV1 encoder: NVENC, else software (rsnvenc)",
    "Encodes AV1 with rsnvencav1enc, or with svtav1enc / av1enc / rav1enc when NVENC cannot"
);
