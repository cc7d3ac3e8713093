#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Concurrent live streams in one process (used by scripts/bench's density section; prints numbers).

Usage: density_bench.py ELEMENT "PROPS" STREAMS SECONDS

STREAMS branches `videotestsrc is-live=true pattern=black ! NV12 1920x1080 30/1 ! ELEMENT PROPS !
fakesink sync=false` in one pipeline, SECONDS of frames each. A buffer probe on each fakesink
records, per output buffer, how late it is: the pipeline clock's running time at its arrival
minus its running time (from its PTS and segment) (a live source stamps each frame with the running time it was captured at, so
this is the capture-to-output latency, which grows without bound when a stream falls behind).
Prints one line: element, streams, frames out / frames expected, the fewest frames of a stream,
lateness median / 99th percentile / max (ms) over all buffers, wall seconds, and the process's
CPU seconds (CLOCK_PROCESS_CPUTIME_ID: every thread) over the run; then, for the steady state
(from the moment 25% of the expected frames are out to the moment 90% are: no session start,
no teardown), the frames out, the wall seconds, the process's CPU seconds and the stand-ins'
own CPU seconds (their nvemu_nvenc_stats / nvemu_cuda_stats exports, with NVEMU_STATS set;
pageable host-to-device copies left out of it). The probes cost a few microseconds of Python
per buffer, which is in the CPU figures.
"""
import ctypes
import statistics
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def emulator_cpu():
    """The stand-ins' own CPU seconds so far (0 where they are not loaded or not counting)."""
    total = 0
    try:
        nv = ctypes.CDLL("libnvidia-encode.so.1")
        v = (ctypes.c_uint64 * 4)()
        nv.nvemu_nvenc_stats(v, 4)
        total += v[1] + v[2]
    except (OSError, AttributeError):
        pass
    try:
        cu = ctypes.CDLL("libcuda.so.1")
        v = (ctypes.c_uint64 * 9)()
        cu.nvemu_cuda_stats(v, 9)
        # cpu + accounting overhead - pageable host-to-device copies (a real driver's CPU work)
        total += v[1] + v[2] - v[4]
    except (OSError, AttributeError):
        pass
    return total / 1e9


def main():
    element, props, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    frames = int(secs * 30)
    Gst.init(None)
    branches = []
    for i in range(n):
        branches.append(
            "videotestsrc is-live=true pattern=black num-buffers=%d ! "
            "video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1 ! "
            "%s %s ! fakesink name=sink%d sync=false" % (frames, element, props, i)
        )
    pipeline = Gst.parse_launch(" ".join(branches))
    counts = [0] * n
    late = []

    segments = [None] * n
    marks = []  # (frames out, wall, process CPU, stand-ins' CPU) at 25% and 90%
    thresholds = [int(0.25 * n * frames), int(0.9 * n * frames)]

    def probe(pad, info, i):
        buf = info.get_buffer()
        clock = pipeline.get_clock()
        if segments[i] is None:
            ev = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
            segments[i] = ev.parse_segment() if ev else False
        seg = segments[i]
        if clock is not None and seg and buf.pts != Gst.CLOCK_TIME_NONE:
            # The encoders shift their output segment (GstVideoEncoder): running time, not PTS.
            rt = seg.to_running_time(Gst.Format.TIME, buf.pts)
            late.append((clock.get_time() - pipeline.get_base_time() - rt) / 1e6)
        counts[i] += 1
        if thresholds and sum(counts) >= thresholds[0]:
            thresholds.pop(0)
            marks.append((sum(counts), time.monotonic(), time.process_time(), emulator_cpu()))
        return Gst.PadProbeReturn.OK

    for i in range(n):
        pipeline.get_by_name("sink%d" % i).get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, probe, i
        )
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    errors = []

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            errors.append(msg.parse_error()[0].message)
            loop.quit()

    bus.connect("message", on_message)
    # Past the frames' duration plus a margin, give up (a stream that cannot keep up).
    GLib.timeout_add(int((secs * 5 + 30) * 1000), loop.quit)
    c0, w0 = time.process_time(), time.monotonic()
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    c1, w1 = time.process_time(), time.monotonic()
    pipeline.set_state(Gst.State.NULL)
    late.sort()
    p99 = late[min(len(late) - 1, int(0.99 * (len(late) - 1)))] if late else float("nan")
    if len(marks) == 2:
        (f0, w0_, c0_, e0), (f1, w1_, c1_, e1) = marks
        steady = "%d %.3f %.3f %.3f" % (f1 - f0, w1_ - w0_, c1_ - c0_, e1 - e0)
    else:
        steady = "0 nan nan nan"
    print(
        "%s %d %d %d %d %.3f %.3f %.3f %.3f %.3f %s%s"
        % (
            element,
            n,
            sum(counts),
            n * frames,
            min(counts),
            statistics.median(late) if late else float("nan"),
            p99,
            late[-1] if late else float("nan"),
            w1 - w0,
            c1 - c0,
            steady,
            (" error: " + errors[0]) if errors else "",
        )
    )


if __name__ == "__main__":
    main()
