"""What we tell NVENC next to what NVIDIA's own client tells it (run by scripts/compare-nvidia).

Encodes the same synthetic clip twice on the stand-ins, with equivalent settings: once with
NVIDIA's PyNvVideoCodec 2.2.4 (its SDK 13.0 build), once with our element through gst-launch-1.0
(scripts/nvemu-run), both traced (NVEMU_TRACE). Then prints every field that differs:
- NV_ENC_INITIALIZE_PARAMS and NV_ENC_CONFIG (nvEncInitializeEncoder's trace line, the config
  as `encodeConfig.*`, the codec's union member only);
- the per-picture parameters NV_ENC_PIC_PARAMS (nvEncEncodePicture) of the first picture (IDR)
  and of the second.
Buffer handles, pointers and time stamps, which cannot be equal, are left out (listed once), and
so are the emulator's own `emu.*` notes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

# Fields that name buffers, pointers or clock values: never comparable.
IGNORED = {
    "encodeConfig", "privData", "privDataSize", "inputBuffer", "outputBitstream",
    "completionEvent", "inputTimeStamp", "inputDuration", "codecPicParams.h264PicParams.sliceModeData",
    "bufferFmt_ptr",
}
IGNORED_SUFFIXES = ("Array", "Ptr", ".pMasteringDisplay", ".pMaxCll")

ELEMENT = {"h264": "rsnvench264enc", "hevc": "rsnvench265enc", "av1": "rsnvencav1enc"}
TUNE_EL = {"hq": "high-quality", "ll": "low-latency", "ull": "ultra-low-latency"}
TUNE_NV = {"hq": "high_quality", "ll": "low_latency", "ull": "ultra_low_latency"}


def load(trace):
    return [json.loads(l) for l in Path(trace).read_text().splitlines() if l.strip()]


def pick(lines, call, n=None):
    found = [l for l in lines if l.get("lib") == "nvenc" and l.get("call") == call
             and l.get("status") in ("NV_ENC_SUCCESS", "NV_ENC_ERR_NEED_MORE_INPUT")]
    return found if n is None else (found[n] if len(found) > n else None)


def comparable(k, a, b):
    if k in IGNORED or k.endswith(IGNORED_SUFFIXES) or k.startswith("emu."):
        return False
    for v in (a, b):
        # a non-NULL pointer printed as hex, other than a version
        if isinstance(v, str) and v.startswith("0x") and "version" not in k and len(v) > 10:
            return False
    return True


def diff(title, ours, theirs, skipped):
    keys = sorted(set(ours) | set(theirs))
    rows = []
    for k in keys:
        a, b = ours.get(k, "(absent)"), theirs.get(k, "(absent)")
        if not comparable(k, a, b):
            skipped.add(k)
            continue
        if a != b:
            rows.append((k, a, b))
    print(f"\n== {title}: {len(rows)} of {len(keys)} fields differ")
    if rows:
        w = max(len(r[0]) for r in rows)
        print(f"  {'field'.ljust(w)}  {'ours (' + args_g.element + ')':>24}  {'NVIDIA (PyNvVideoCodec)':>24}")
        for k, a, b in rows:
            print(f"  {k.ljust(w)}  {str(a):>24}  {str(b):>24}")
    return rows


def run_nvidia(a, trace, out_dir):
    case = {
        "codec": a.codec, "preset": a.preset.upper(), "tuning_info": TUNE_NV[a.tune],
        "fps": a.fps, "gop": a.gop, "bf": a.bframes, "rc": a.rc,
    }
    if a.rc == "constqp":
        case["initqp"] = a.qp
    else:
        case["bitrate"] = a.bitrate * 1024
        if a.rc == "vbr" and a.max_bitrate:
            case["maxbitrate"] = a.max_bitrate * 1024
    code = f"""
import json, sys, numpy as np, PyNvVideoCodec as nvc
case = json.loads({json.dumps(json.dumps(case))})
w, h, n = {a.width}, {a.height}, {a.frames}
enc = nvc.CreateEncoder(w, h, "NV12", True, **case)
for i in range(n):
    f = np.zeros(w * h * 3 // 2, np.uint8)
    f[: w * h] = (np.arange(w * h) % 200 + i * 3) % 256
    f[w * h :] = 128
    p = nvc.NV_ENC_PIC_PARAMS()
    p.inputTimeStamp = i
    enc.Encode(f, p)
enc.EndEncode()
del enc
"""
    env = dict(os.environ, NVEMU_TRACE=str(trace))
    r = subprocess.run([a.python, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"PyNvVideoCodec failed:\n{r.stdout}\n{r.stderr}")


def run_ours(a, trace):
    props = [f"preset={a.preset}", f"tune={TUNE_EL[a.tune]}", f"rc-mode={a.rc}",
             f"gop-size={a.gop}", f"bframes={a.bframes}"]
    if a.rc == "constqp":
        props += [f"qp-const-i={a.qp}", f"qp-const-p={a.qp}", f"qp-const-b={a.qp}"]
    else:
        props.append(f"bitrate={a.bitrate}")
        if a.rc == "vbr" and a.max_bitrate:
            props.append(f"max-bitrate={a.max_bitrate}")
    pipeline = (
        f"videotestsrc num-buffers={a.frames} ! video/x-raw,format=NV12,width={a.width},"
        f"height={a.height},framerate={a.fps}/1 ! {a.element} {' '.join(props)} ! fakesink"
    )
    env = dict(os.environ, NVEMU_TRACE=str(trace))
    r = subprocess.run([str(ROOT / "scripts/nvemu-run"), "gst-launch-1.0", "-q"] + pipeline.split(),
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gst-launch-1.0 failed ({pipeline}):\n{r.stdout}\n{r.stderr}")
    return pipeline


def main():
    global args_g
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", required=True, help="the venv's python (scripts/py-venv)")
    p.add_argument("--codec", default="hevc", choices=sorted(ELEMENT))
    p.add_argument("--preset", default="p4", choices=[f"p{i}" for i in range(1, 8)])
    p.add_argument("--tune", default="hq", choices=sorted(TUNE_EL))
    p.add_argument("--rc", default="cbr", choices=["cbr", "vbr", "constqp"])
    p.add_argument("--bitrate", type=int, default=1000, help="kbit/s (x1024 into NVENC, both)")
    p.add_argument("--max-bitrate", type=int, default=0, help="kbit/s, VBR")
    p.add_argument("--qp", type=int, default=28)
    p.add_argument("--gop", type=int, default=30)
    p.add_argument("--bframes", type=int, default=0)
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--keep", help="directory to keep both traces in")
    a = p.parse_args()
    a.width, a.height = map(int, a.size.split("x"))
    a.element = ELEMENT[a.codec]
    args_g = a
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="compare-nvidia-"))
    work.mkdir(parents=True, exist_ok=True)
    t_ours, t_nv = work / "ours.trace", work / "nvidia.trace"
    for t in (t_ours, t_nv):
        t.unlink(missing_ok=True)
    pipeline = run_ours(a, t_ours)
    run_nvidia(a, t_nv, work)
    ours, nv = load(t_ours), load(t_nv)
    print(f"ours:   gst-launch-1.0 {pipeline}")
    print(f"NVIDIA: PyNvVideoCodec.CreateEncoder({a.width}, {a.height}, 'NV12', codec={a.codec}, "
          f"preset={a.preset.upper()}, tuning_info={TUNE_NV[a.tune]}, rc={a.rc}, gop={a.gop}, bf={a.bframes}, ...)")
    print(f"traces: {t_ours} {t_nv}")
    for name, t in (("ours", ours), ("NVIDIA", nv)):
        v = [l for l in t if "violation" in l]
        if v:
            print(f"!! {name}: {len(v)} contract violations, first: {v[0]['violation']}")
    skipped = set()
    io, inv = pick(ours, "nvEncInitializeEncoder", 0), pick(nv, "nvEncInitializeEncoder", 0)
    if not io or not inv:
        sys.exit("an encoder was not initialised")
    init_rows = diff("NV_ENC_INITIALIZE_PARAMS + NV_ENC_CONFIG (nvEncInitializeEncoder)",
                     io["args"], inv["args"], skipped)
    for i, label in ((0, "first picture (IDR)"), (1, "second picture")):
        po, pn = pick(ours, "nvEncEncodePicture", i), pick(nv, "nvEncEncodePicture", i)
        if po and pn:
            diff(f"NV_ENC_PIC_PARAMS, {label} (nvEncEncodePicture)", po["args"], pn["args"], skipped)
    print("\nnot compared (handles, pointers, time stamps): " + ", ".join(sorted(skipped)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
