#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""rsnvenc from Python through GObject introspection.

For each element named on the command line (default: rsnvench265enc rsnvencav1enc): encode 60
frames of videotestsrc at CBR 1000 kbit/s, set enum properties by nick, raise the bitrate to
3000 kbit/s while PLAYING (after 30 frames), count the frame-stats signals and the output
buffers, and read the `stats` summary at the end. Prints one line per element and exits
non-zero if a frame went missing.

Run it with the plugin on GST_PLUGIN_PATH, e.g. on a machine without a GPU:
    scripts/nvemu-run python3 examples/python/encode.py
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

FRAMES = 60


def run(element):
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=%d ! video/x-raw,format=NV12,width=320,height=240,"
        "framerate=25/1 ! %s name=enc ! fakesink name=sink signal-handoffs=true"
        % (FRAMES, element)
    )
    enc = pipeline.get_by_name("enc")
    Gst.util_set_object_arg(enc, "preset", "p4")  # enums by nick, as on gst-launch
    Gst.util_set_object_arg(enc, "rc-mode", "cbr")
    enc.set_property("bitrate", 1000)  # kbit/s
    enc.set_property("emit-frame-stats", True)

    stats = []
    enc.connect(
        "frame-stats",
        lambda _enc, s: stats.append((s.get_value("frame-idx"), s.get_value("picture-type"))),
    )
    out = {"buffers": 0, "keyframes": 0}

    def handoff(_sink, buf, _pad):
        out["buffers"] += 1
        if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            out["keyframes"] += 1
        if out["buffers"] == FRAMES // 2:
            enc.set_property("bitrate", 3000)  # changed while PLAYING

    pipeline.get_by_name("sink").connect("handoff", handoff)
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
    # The running summary (application/x-rsnvenc-stats), read like any property.
    summary = enc.get_property("stats")
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    if result["error"]:
        print("%s: error: %s" % (element, result["error"]))
        return False
    idr = sum(1 for _, t in stats if t == "idr")
    print(
        "%s: %d buffers, %d frame-stats, %d IDR, bitrate now %d kbit/s; stats: %d in, %d out, "
        "%d bytes, %d in flight, %d sessions"
        % (
            element,
            out["buffers"],
            len(stats),
            idr,
            enc.get_property("bitrate"),
            summary.get_value("frames-in"),
            summary.get_value("frames-out"),
            summary.get_value("bytes-out"),
            summary.get_value("in-flight"),
            summary.get_value("sessions"),
        )
    )
    return (
        out["buffers"] == FRAMES
        and len(stats) == FRAMES
        and summary.get_value("frames-out") == FRAMES
    )


def main():
    Gst.init(None)
    elements = sys.argv[1:] or ["rsnvench265enc", "rsnvencav1enc"]
    ok = all([run(e) for e in elements])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
