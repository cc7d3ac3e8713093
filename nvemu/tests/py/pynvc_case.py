"""One PyNvVideoCodec 2.2.4 encode on the NVENC/CUDA stand-ins, checked; run by
nvemu/nvenc/tests/pynvvideocodec.rs (with NVEMU_TRACE, NVEMU_MAX_API and the stand-ins on
LD_LIBRARY_PATH), and usable by hand:

    python pynvc_case.py '{"codec": "hevc", "fmt": "NV12", "rc": "cbr", "bf": 2}' OUTDIR

Modes: plain encode (30 frames; the output decodes to 30 frames of the size, the trace passes
nvcheck.check_trace), "reconfigure": 120 frames, Reconfigure at frame 30 (half the bitrate and
VBV) and at frame 60 (frame rate doubled: half the bits per frame), measured from the packet
sizes. Prints one JSON line (the summary) and exits 0, or raises.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvcheck  # noqa: E402

W, H = 320, 240


def frame(fmt, i):
    """A moving gradient in NVENC's layout for `fmt` (NV12: Y then interleaved UV; P010: the
    same, 16-bit little-endian samples with the value in the high 10 bits)."""
    x = np.arange(W)[None, :]
    y = np.arange(H)[:, None]
    luma = (x * 3 + y * 2 + i * 5) % 220 + 16
    cw, ch = W // 2, H // 2
    cx = np.arange(cw)[None, :]
    cy = np.arange(ch)[:, None]
    u = (cx * 2 + i * 3) % 200 + 28
    v = (cy * 3 + i * 2) % 200 + 28
    uv = np.empty((ch, W), dtype=np.int32)
    uv[:, 0::2] = u
    uv[:, 1::2] = v
    planes = np.concatenate([luma.astype(np.int32).reshape(-1), uv.reshape(-1)])
    if fmt == "P010":
        return ((planes * 4) << 6).astype("<u2").view(np.uint8)
    return planes.astype(np.uint8)


def main():
    case = json.loads(sys.argv[1])
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    import PyNvVideoCodec as nvc

    codec = case["codec"]
    fmt = case.get("fmt", "NV12")
    reconf = case.get("mode") == "reconfigure"
    frames = 120 if reconf else 30
    kw = {
        "codec": codec,
        "preset": case.get("preset", "P4"),
        "tuning_info": case.get("tuning", "high_quality"),
        "fps": 30,
        "gop": 1000 if reconf else 30,
        "bf": case.get("bf", 0),
    }
    if case["rc"] == "constqp":
        kw.update(rc="constqp", initqp=case.get("qp", 28))
    else:
        kw.update(
            rc=case["rc"],
            bitrate=case.get("bitrate", 1_000_000),
            maxbitrate=case.get("bitrate", 1_000_000),
            vbvbufsize=case.get("bitrate", 1_000_000) // 2,
        )
    if codec == "av1":
        # elementary stream in IVF (PyNvVideoCodec's own AV1 output)
        kw["use_ivf_container"] = "1"
    enc = nvc.CreateEncoder(W, H, fmt, True, **kw)
    data = b""
    sizes = {}
    reconfigured = []
    # GetEncodeReconfigureParams gives the parameters the encoder was created with, so the
    # changes are made cumulatively on one copy.
    p = enc.GetEncodeReconfigureParams() if reconf else None
    for i in range(frames):
        if reconf and i in (30, 60):
            if i == 30:
                p.averageBitrate = p.averageBitrate // 2
                p.maxBitRate = p.maxBitRate // 2
                p.vbvBufferSize = p.vbvBufferSize // 2
                p.vbvInitialDelay = p.vbvBufferSize
            else:
                p.frameRateNum = p.frameRateNum * 2
            enc.Reconfigure(p)
            reconfigured.append(i)
        pic = nvc.NV_ENC_PIC_PARAMS()
        pic.inputTimeStamp = i
        for pk in enc.Encode(frame(fmt, i), pic):
            data += bytes(pk["data"])
            sizes[pk["timestamp"]] = len(bytes(pk["data"]))
    for pk in enc.EndEncode():
        data += bytes(pk["data"])
        sizes[pk["timestamp"]] = len(bytes(pk["data"]))
    del enc
    ext = {"h264": "h264", "hevc": "hevc", "av1": "ivf"}[codec]
    out = out_dir / f"out.{ext}"
    out.write_bytes(data)

    api = os.environ.get("NVEMU_MAX_API", "13.0")
    summary = nvcheck.check_trace(
        os.environ["NVEMU_TRACE"],
        api,
        frames,
        b_frames=case.get("bf", 0) if codec != "av1" else None,
        reconfigures=len(reconfigured),
    )
    n, w, h, pix, keys, name = nvcheck.decode(out, {"h264": "h264", "hevc": "hevc", "av1": None}[codec])
    assert (n, w, h) == (frames, W, H), f"decoded {n} frames of {w}x{h}"
    want_pix = "yuv420p10le" if fmt == "P010" else "yuv420p"
    assert pix == want_pix, f"decoded as {pix}, {want_pix} expected"
    init = summary["init"]
    if case["rc"] == "constqp":
        assert init["encodeConfig.rcParams.rateControlMode"] == 0, "constant QP"
    elif case["rc"] == "cbr":
        assert init["encodeConfig.rcParams.rateControlMode"] == 2, "CBR"
    result = {"frames": n, "size": [w, h], "pix": pix, "codec": name, "keys": keys,
              "versions_checked": summary["versions_checked"]}
    if reconf:
        types = summary["picture_types"]
        assert types.count(nvcheck.PIC_IDR) == 1, f"IDRs: {types}"
        assert keys == 1, f"{keys} key frames decoded"
        s = [sizes[t] for t in sorted(sizes)]
        a = sum(s[10:30]) / 20
        b = sum(s[45:60]) / 15
        c = sum(s[90:120]) / 30
        result["bytes_per_frame"] = [round(a), round(b), round(c)]
        # 1 Mbit/s at 30 fps: 4167 bytes; then 500 kbit/s: 2083; then 60 fps: 1042.
        want = [1_000_000 / 8 / 30, 500_000 / 8 / 30, 500_000 / 8 / 60]
        for got, exp in zip((a, b, c), want):
            assert 0.5 * exp < got < 1.6 * exp, f"{got:.0f} bytes per frame, {exp:.0f} expected: {result}"
        rec = nvcheck.calls(nvcheck.load(os.environ["NVEMU_TRACE"]), "nvEncReconfigureEncoder")
        result["reconfigure"] = [
            {k: r["args"].get(k) for k in ("resetEncoder", "forceIDR",
                                           "reInitEncodeParams.frameRateNum",
                                           "reInitEncodeParams.encodeConfig.rcParams.averageBitRate",
                                           "reInitEncodeParams.encodeConfig.rcParams.vbvBufferSize")}
            for r in rec
        ]
        for r in result["reconfigure"]:
            assert r["forceIDR"] == 0 and r["resetEncoder"] == 0, r
    print(json.dumps(result))


if __name__ == "__main__":
    main()
