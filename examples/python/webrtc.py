#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Two webrtcbin peers in one process, over loopback, with an rsnvenc encoder on the sender.

The sender encodes a live videotestsrc with rsnvench264enc (or rsnvench265enc with
`--codec h265`) set up for real-time streaming (low-latency tuning, no B-frames, CBR, periodic
IDRs), payloads it with rtph264pay/rtph265pay and sends it through its webrtcbin. The receiver's
webrtcbin answers, and what it receives is depayloaded, decoded with decodebin and counted.
Offer, answer and ICE candidates go from one webrtcbin to the other by direct calls (the
"signalling server" is this process); ICE finds host candidates on loopback, so no STUN or TURN
server is needed. AV1 is not offered: GStreamer 1.22 has no AV1 RTP payloader (rtpav1pay is
in gst-plugins-rs).

Prints "received N frames (WIDTHxHEIGHT) from CODEC over webrtcbin" and exits 0 once the
receiver has decoded --frames frames; exits 1 on a bus error or when --timeout seconds pass.

Needs GStreamer's webrtcbin (gstreamer1.0-plugins-bad), its ICE elements (gstreamer1.0-nice),
the RTP elements (gstreamer1.0-plugins-good), a decoder (gstreamer1.0-libav) and PyGObject
(python3-gi, gir1.2-gst-plugins-bad-1.0). On a machine without a GPU:
    scripts/nvemu-run /usr/bin/python3 examples/python/webrtc.py
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

CODECS = {
    # codec: (encoder, payloader, RTP encoding name)
    "h264": ("rsnvench264enc", "rtph264pay", "H264"),
    "h265": ("rsnvench265enc", "rtph265pay", "H265"),
}


class Call:
    """One sender pipeline and one receiver pipeline, each with a webrtcbin."""

    def __init__(self, codec, frames, width, height):
        encoder, payloader, name = CODECS[codec]
        self.codec = codec
        self.wanted = frames
        self.received = 0
        self.size = None
        self.failed = None
        self.loop = GLib.MainLoop()
        self.sender = Gst.parse_launch(
            "webrtcbin name=webrtc bundle-policy=max-bundle "
            "videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,format=NV12,width=%d,height=%d,framerate=30/1 ! "
            # Real-time streaming: NVENC's low-latency tuning, no reordering, CBR, an IDR every
            # second so that a receiver that lost packets recovers, parameter sets in band.
            "%s tune=low-latency zerolatency=true bframes=0 rc-mode=cbr bitrate=2000 "
            "gop-size=30 ! "
            "%s config-interval=-1 aggregate-mode=zero-latency ! "
            "application/x-rtp,media=video,encoding-name=%s,payload=96 ! webrtc."
            % (width, height, encoder, payloader, name)
        )
        self.receiver = Gst.Pipeline.new("receiver")
        self.recv_webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.recv_webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.receiver.add(self.recv_webrtc)
        self.send_webrtc = self.sender.get_by_name("webrtc")

        self.send_webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.send_webrtc.connect("on-ice-candidate", self.on_ice_candidate, self.recv_webrtc)
        self.recv_webrtc.connect("on-ice-candidate", self.on_ice_candidate, self.send_webrtc)
        self.recv_webrtc.connect("pad-added", self.on_incoming_stream)
        for pipeline in (self.sender, self.receiver):
            bus = pipeline.get_bus()
            bus.add_signal_watch()
            bus.connect("message::error", self.on_error)

    # Signalling, in process: each side's description and candidates go straight to the other.
    def on_negotiation_needed(self, webrtc):
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        reply = self.reply(promise, "offer")
        if reply is None:
            return
        # The description lives in the reply: keep `reply` referenced while it is used.
        offer = reply.get_value("offer")
        self.send_webrtc.emit("set-local-description", offer, Gst.Promise.new())
        self.recv_webrtc.emit("set-remote-description", offer, Gst.Promise.new())
        answer_promise = Gst.Promise.new_with_change_func(self.on_answer_created, None)
        self.recv_webrtc.emit("create-answer", None, answer_promise)

    def on_answer_created(self, promise, _data):
        reply = self.reply(promise, "answer")
        if reply is None:
            return
        answer = reply.get_value("answer")
        self.recv_webrtc.emit("set-local-description", answer, Gst.Promise.new())
        self.send_webrtc.emit("set-remote-description", answer, Gst.Promise.new())

    def reply(self, promise, field):
        """The reply of create-offer/create-answer if it has `field`; on failure, stop the call."""
        reply = promise.get_reply()
        if promise.wait() != Gst.PromiseResult.REPLIED or reply is None or not reply.has_field(
            field
        ):
            why = reply.get_value("error").message if reply and reply.has_field("error") else "?"
            self.failed = "create-%s failed: %s" % (field, why)
            GLib.idle_add(self.loop.quit)
            return None
        return reply

    @staticmethod
    def on_ice_candidate(_webrtc, mlineindex, candidate, other):
        other.emit("add-ice-candidate", mlineindex, candidate)

    # Receiving: webrtcbin adds a pad per incoming RTP stream.
    def on_incoming_stream(self, _webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        decodebin = Gst.ElementFactory.make("decodebin")
        decodebin.connect("pad-added", self.on_decoded_pad)
        self.receiver.add(decodebin)
        decodebin.sync_state_with_parent()
        pad.link(decodebin.get_static_pad("sink"))

    def on_decoded_pad(self, _decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps.get_structure(0).get_name().startswith("video/"):
            return
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("signal-handoffs", True)
        sink.set_property("sync", False)
        sink.connect("handoff", self.on_frame)
        self.receiver.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_frame(self, _sink, _buffer, pad):
        if self.size is None:
            s = pad.get_current_caps().get_structure(0)
            self.size = "%dx%d" % (s.get_value("width"), s.get_value("height"))
        self.received += 1
        if self.received == self.wanted:
            GLib.idle_add(self.loop.quit)

    def on_error(self, _bus, message):
        err, debug = message.parse_error()
        self.failed = "%s: %s (%s)" % (message.src.get_path_string(), err.message, debug)
        self.loop.quit()

    def on_timeout(self):
        self.failed = "timed out after receiving %d of %d frames" % (self.received, self.wanted)
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def run(self, timeout):
        self.receiver.set_state(Gst.State.PLAYING)
        self.sender.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(timeout, self.on_timeout)
        self.loop.run()
        # A live sender never ends by itself: stop both pipelines (no file to finalise).
        self.sender.set_state(Gst.State.NULL)
        self.receiver.set_state(Gst.State.NULL)
        return self.failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", choices=sorted(CODECS), default="h264")
    parser.add_argument("--frames", type=int, default=60, help="frames to receive (default 60)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--timeout", type=int, default=60, help="seconds (default 60)")
    args = parser.parse_args()

    Gst.init(None)
    missing = [
        f
        for f in ("webrtcbin", "nicesrc", "nicesink", CODECS[args.codec][0], CODECS[args.codec][1])
        if Gst.ElementFactory.find(f) is None
    ]
    if missing:
        print("missing GStreamer elements: %s" % ", ".join(missing), file=sys.stderr)
        return 1
    call = Call(args.codec, args.frames, args.width, args.height)
    failed = call.run(args.timeout)
    if failed:
        print("webrtc.py: %s" % failed, file=sys.stderr)
        return 1
    print(
        "received %d frames (%s) from %s over webrtcbin"
        % (call.received, call.size, CODECS[args.codec][0])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
