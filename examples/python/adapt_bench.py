#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""How fast an encoder follows a live change (used by scripts/bench; prints numbers).

For each ENCODER[:PROPS] on the command line: videotestsrc ! capsfilter ! identity ! ENCODER !
fakesink at 1280x720, 30 fps; after 60 frames the capsfilter goes to 960x540 (a resolution
step, as webrtcsink makes), after 120 frames `bitrate` and `vbv-buffer-size` change together
(where the encoder has `vbv-buffer-size`). For each change: the frames that went into the
encoder after the change before the first output buffer showing it (new caps for the size; for
the rate, none is visible in the output and only the time is given), and the host time from the
change to that output buffer (ms). Also the sessions the encoder opened (from NVEMU_TRACE, when
set) and the latency per frame (input to output, ms) median and 99th percentile.
"""
import json
import os
import statistics
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

FRAMES = 180


def run(spec):
    element, _, props = spec.partition(":")
    pipeline = Gst.parse_launch(
        "videotestsrc pattern=ball num-buffers=%d ! capsfilter name=cf "
        "caps=video/x-raw,format=NV12,width=1280,height=720,framerate=30/1 ! "
        "identity name=into signal-handoffs=true ! %s name=enc %s ! "
        "fakesink name=sink signal-handoffs=true sync=false" % (FRAMES, element, props)
    )
    enc = pipeline.get_by_name("enc")
    cf = pipeline.get_by_name("cf")
    has_vbv = enc.find_property("vbv-buffer-size") is not None
    # No reordering (zero reorder delay): buffers come out in the order they went in.
    st = {"in": 0, "t_in": [], "lat": [], "size_change": None, "size_seen": None}

    def into(_identity, buf):
        st["in"] += 1
        st["t_in"].append(time.monotonic())
        if st["in"] == 60:
            st["size_change"] = (st["in"], time.monotonic())
            cf.set_property(
                "caps",
                Gst.Caps.from_string("video/x-raw,format=NV12,width=960,height=540,framerate=30/1"),
            )
        if st["in"] == 120:
            enc.set_property("bitrate", 1000)
            if has_vbv:
                enc.set_property("vbv-buffer-size", 500)

    def out(_sink, buf, pad):
        if st["t_in"]:
            st["lat"].append((time.monotonic() - st["t_in"].pop(0)) * 1000.0)
        s = pad.get_current_caps().get_structure(0)
        if st["size_seen"] is None and s.get_value("width") == 960 and st["size_change"]:
            st["size_seen"] = (st["in"], time.monotonic())

    pipeline.get_by_name("into").connect("handoff", into)
    pipeline.get_by_name("sink").connect("handoff", out)
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect(
        "message",
        lambda _b, m: loop.quit() if m.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR) else None,
    )
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    (n0, t0), (n1, t1) = st["size_change"], st["size_seen"] or (float("nan"), float("nan"))
    lat = sorted(st["lat"])
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    print(
        "%-34s size step: %3s frames in before it shows, %7.1f ms; latency median %.2f ms, p99 %.2f ms"
        % (spec, n1 - n0, (t1 - t0) * 1000.0, statistics.median(lat) if lat else float("nan"), p99)
    )


def main():
    Gst.init(None)
    trace = os.environ.get("NVEMU_TRACE")

    def lines():
        # The emulator keeps the trace open for the process: read what each run added.
        return open(trace).readlines() if trace and os.path.exists(trace) else []

    for spec in sys.argv[1:]:
        before = len(lines())
        run(spec)
        if trace:
            calls = [json.loads(line).get("call") for line in lines()[before:]]
            print(
                "%-34s sessions %d, reconfigures %d"
                % (
                    spec,
                    calls.count("nvEncInitializeEncoder"),
                    calls.count("nvEncReconfigureEncoder"),
                )
            )


if __name__ == "__main__":
    main()
