#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""A live-streaming application adapting an rsnvenc element, through GObject introspection.

As webrtcsink answers congestion: a capsfilter after videoscale and videorate in front of the
encoder steps 1280x720 -> 960x540 -> 640x360 -> 1280x720, then 30 -> 15 -> 30 fps; then the
application changes rate control while PLAYING (vbv-buffer-size, spatial-aq, qp-max). Counts
the frames into and out of the encoder, the keyframes, and the sizes of the output caps in
order; prints one line per element and exits non-zero if a frame went missing, a keyframe came
where none was needed, or a size is missing.

Run it with the plugin on GST_PLUGIN_PATH, e.g. on a machine without a GPU:
    scripts/nvemu-run python3 examples/python/live.py rsnvench264enc
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

# (frames into the encoder before the step, what changes)
STEPS = [
    (20, ("caps", 960, 540, 30)),
    (40, ("caps", 640, 360, 30)),
    (60, ("caps", 1280, 720, 30)),
    (80, ("caps", 1280, 720, 15)),
    (100, ("caps", 1280, 720, 30)),
    (110, ("prop", "vbv-buffer-size", 1000)),
    (120, ("prop", "spatial-aq", True)),
    (130, ("prop", "qp-max", 45)),
]
FRAMES = 140


def caps_str(w, h, fps):
    return "video/x-raw,format=NV12,width=%d,height=%d,framerate=%d/1" % (w, h, fps)


def run(element):
    pipeline = Gst.parse_launch(
        "videotestsrc is-live=false pattern=ball ! %s ! videoscale ! videorate ! "
        "capsfilter name=cf caps=%s ! identity name=into signal-handoffs=true ! "
        "%s name=enc ! fakesink name=sink signal-handoffs=true"
        % (caps_str(1280, 720, 30), caps_str(1280, 720, 30), element)
    )
    enc = pipeline.get_by_name("enc")
    cf = pipeline.get_by_name("cf")
    Gst.util_set_object_arg(enc, "rc-mode", "cbr")
    Gst.util_set_object_arg(enc, "tune", "ultra-low-latency")
    enc.set_property("bitrate", 2000)  # kbit/s
    enc.set_property("gop-size", -1)
    enc.set_property("zerolatency", True)
    count = {"in": 0, "out": 0, "keyframes": 0, "sizes": [], "step": 0}

    def into(_identity, _buf):
        count["in"] += 1
        step = count["step"]
        if step < len(STEPS) and count["in"] == STEPS[step][0]:
            what = STEPS[step][1]
            if what[0] == "caps":
                cf.set_property("caps", Gst.Caps.from_string(caps_str(*what[1:])))
            else:
                enc.set_property(what[1], what[2])
            count["step"] += 1
        if count["in"] == FRAMES:
            # Enough: end the stream after this frame (from the streaming thread).
            GLib.idle_add(lambda: pipeline.send_event(Gst.Event.new_eos()) and False)

    def out(_sink, buf, pad):
        count["out"] += 1
        if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            count["keyframes"] += 1
        s = pad.get_current_caps().get_structure(0)
        size = "%dx%d" % (s.get_value("width"), s.get_value("height"))
        if not count["sizes"] or count["sizes"][-1] != size:
            count["sizes"].append(size)

    pipeline.get_by_name("into").connect("handoff", into)
    pipeline.get_by_name("sink").connect("handoff", out)
    loop = GLib.MainLoop()
    result = {"error": None}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            result["error"] = "%s (%s)" % (err.message, dbg)
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    summary = enc.get_property("stats")
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    if result["error"]:
        print("%s: error: %s" % (element, result["error"]))
        return False
    frames = (
        "frames out == frames in"
        if count["in"] == count["out"]
        else "%d in, %d out" % (count["in"], count["out"])
    )
    print(
        "%s: %s (%d), %d keyframes, sizes %s, %d sessions"
        % (
            element,
            frames,
            count["out"],
            count["keyframes"],
            " ".join(count["sizes"]),
            summary.get_value("sessions"),
        )
    )
    return (
        count["in"] == count["out"]
        and count["keyframes"] == 4
        and count["sizes"] == ["1280x720", "960x540", "640x360", "1280x720"]
        and summary.get_value("sessions") == 1
    )


def main():
    Gst.init(None)
    elements = sys.argv[1:] or ["rsnvench264enc", "rsnvench265enc"]
    ok = all([run(e) for e in elements])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
