"""One FFmpeg 8 NVENC encode (libavcodec 62 as bundled in PyAV 18.1) on the NVENC/CUDA
stand-ins, checked; run by nvemu/nvenc/tests/pyav.rs (with NVEMU_TRACE and the stand-ins on
LD_LIBRARY_PATH), and usable by hand:

    python pyav_case.py '{"encoder": "hevc_nvenc", "options": {"tune": "ll"}}' OUTDIR

30 frames of 320x240 at 25 fps into MP4; the output must decode to 30 frames of that size
(PyAV), the trace must pass nvcheck.check_trace at API 13.0 (FFmpeg 8 is built with
nv-codec-headers 13.0). "bframes": true asks for B pictures in the trace and the stream.
Prints one JSON line (the summary) and exits 0, or raises.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nvcheck  # noqa: E402

W, H, N = 320, 240, 30


def encode(case, out_path):
    import av

    out = av.open(str(out_path), "w")
    s = out.add_stream(case["encoder"], rate=25)
    s.width, s.height, s.pix_fmt = W, H, case.get("pix_fmt", "yuv420p")
    s.options = case.get("options", {})
    for i in range(N):
        img = np.zeros((H, W, 3), np.uint8)
        img[:, :, 0] = (np.arange(W)[None, :] * 3 + i * 5) % 256
        img[:, :, 1] = (np.arange(H)[:, None] * 2 + i * 3) % 256
        img[:, :, 2] = 128
        fr = av.VideoFrame.from_ndarray(img, format="rgb24")
        fr.pts = i
        for p in s.encode(fr):
            out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()


def main():
    case = json.loads(sys.argv[1])
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    name = case["encoder"]
    out_path = out_dir / f"{name}.mp4"
    encode(case, out_path)
    # The encoder (and its NVENC session) goes with the last reference to its context.
    import gc

    gc.collect()

    bf = case.get("bframes")
    summary = nvcheck.check_trace(os.environ["NVEMU_TRACE"], "13.0", N)
    fip = summary["init"]["encodeConfig.frameIntervalP"]
    if bf is True:
        assert fip > 1 and 1 in summary["picture_types"], f"no B pictures: fip {fip}"
    elif bf is False:
        assert fip == 1 and 1 not in summary["picture_types"], f"B pictures: fip {fip}"
    n, w, h, pix, keys, codec = nvcheck.decode(out_path)
    assert (n, w, h) == (N, W, H), f"decoded {n} frames of {w}x{h}"
    init = summary["init"]
    print(json.dumps({
        "frames": n, "size": [w, h], "pix": pix, "codec": codec, "keys": keys,
        "versions_checked": summary["versions_checked"],
        "frameIntervalP": fip,
        "tuningInfo": init.get("tuningInfo"),
        "presetGUID": init.get("presetGUID"),
        "rateControlMode": init.get("encodeConfig.rcParams.rateControlMode"),
    }))


if __name__ == "__main__":
    main()
