"""PyNvVideoCodec on the device machine (real CUDA driver, a GPU without NVENC): issue 10 item 6.

    python device_case.py stand-in OUTDIR   # real libcuda.so.1 + the NVENC stand-in
    python device_case.py real OUTDIR       # the real driver alone
    python device_case.py probe OUTDIR      # real driver's answers to the calls extra.rs models

stand-in: H.264, H.265 (2 B-frames) and AV1, 30 frames of 320x240 each, from host memory (which
PyNvVideoCodec copies into device memory with the real driver) and, where PyTorch is there, from
device memory allocated by PyTorch (the CUDA array interface); NVENC is the stand-in, which reads
the device memory back through the real driver. Writes each stream and its trace to OUTDIR.
real: what NVIDIA's code reports where the driver has no NVENC engine.
probe: cuDeviceGetLuid, cuDeviceGetByPCIBusId, cuImportExternalMemory, cuStreamGetCtx through
ctypes, as the stand-in's docs claim the driver answers.
"""
import ctypes
import json
import os
import sys
import traceback
from pathlib import Path

W, H, N = 320, 240, 30


def nv12(i):
    import numpy as np

    f = np.zeros(W * H * 3 // 2, np.uint8)
    f[: W * H] = ((np.arange(W * H) % W) * 3 // 4 + i * 4) % 220 + 16
    f[W * H :] = 128
    return f


class CAI:
    def __init__(self, shape, strides, ptr):
        self.__cuda_array_interface__ = {"shape": shape, "strides": strides,
                                         "data": (ptr, False), "typestr": "|u1", "version": 3}


class GpuFrame:
    """An NV12 frame in device memory (PyTorch), as PyNvVideoCodec's samples pass one."""

    def __init__(self, t):
        self.t = t
        p = t.data_ptr()
        self.planes = [CAI((H, W, 1), (W, 1, 1), p), CAI((H // 2, W // 2, 2), (W, 2, 1), p + W * H)]

    def cuda(self):
        return self.planes


def stand_in(out):
    import PyNvVideoCodec as nvc

    res = {"supportedNvEncVersion": nvc.supportedNvEncVersion, "module": nvc.module_suffix}
    try:
        import torch

        torch.cuda.init()
        res["torch"] = torch.__version__
    except Exception as e:  # noqa: BLE001
        torch = None
        res["torch"] = f"unavailable: {e}"
    cases = [("h264", 0, "host"), ("hevc", 2, "host"), ("av1", 0, "host")]
    if torch is not None:
        cases += [("hevc", 2, "device"), ("h264", 0, "device")]
    for codec, bf, mem in cases:
        name = f"{codec}-{mem}"
        trace = out / f"{name}.trace"
        os.environ["NVEMU_TRACE"] = str(trace)
        r = {}
        try:
            enc = nvc.CreateEncoder(W, H, "NV12", mem == "host", codec=codec, fps=30, gop=30,
                                    bf=bf, rc="constqp", initqp=22)
            data = b""
            for i in range(N):
                pic = nvc.NV_ENC_PIC_PARAMS()
                pic.inputTimeStamp = i
                if mem == "host":
                    frame = nv12(i)
                else:
                    frame = GpuFrame(torch.from_numpy(nv12(i)).cuda())
                    torch.cuda.synchronize()
                for pk in enc.Encode(frame, pic):
                    data += bytes(pk["data"])
            for pk in enc.EndEncode():
                data += bytes(pk["data"])
            del enc
            ext = {"h264": "h264", "hevc": "hevc", "av1": "ivf"}[codec]
            (out / f"{name}.{ext}").write_bytes(data)
            lines = [json.loads(l) for l in trace.read_text().splitlines() if l.strip()]
            calls = {}
            for l in lines:
                calls[l["call"]] = calls.get(l["call"], 0) + 1
            r = {"bytes": len(data), "violations": sum("violation" in l for l in lines),
                 "api": sorted({l.get("api") for l in lines if l.get("api")}),
                 "calls": {k: v for k, v in calls.items() if k in (
                     "nvEncOpenEncodeSessionEx", "nvEncInitializeEncoder", "nvEncRegisterResource",
                     "nvEncMapInputResource", "nvEncEncodePicture", "nvEncLockBitstream")}}
        except Exception as e:  # noqa: BLE001
            r = {"error": repr(e), "tb": traceback.format_exc()[-800:]}
        res[name] = r
        print(name, json.dumps(r), flush=True)
    return res


def real(out):
    res = {}
    try:
        import PyNvVideoCodec as nvc

        res["supportedNvEncVersion"] = nvc.supportedNvEncVersion
        res["module"] = nvc.module_suffix
        try:
            enc = nvc.CreateEncoder(W, H, "NV12", True, codec="hevc")
            res["CreateEncoder"] = "succeeded"
            del enc
        except Exception as e:  # noqa: BLE001
            res["CreateEncoder"] = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001
        res["import"] = f"{type(e).__name__}: {str(e)[:600]}"
    return res


def probe(out):
    cu = ctypes.CDLL("libcuda.so.1")
    res = {}
    assert cu.cuInit(0) == 0
    dev = ctypes.c_int()
    assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
    luid = ctypes.create_string_buffer(8)
    mask = ctypes.c_uint()
    res["cuDeviceGetLuid"] = cu.cuDeviceGetLuid(luid, ctypes.byref(mask), dev)
    bus = ctypes.create_string_buffer(32)
    res["cuDeviceGetPCIBusId"] = (cu.cuDeviceGetPCIBusId(bus, 32, dev), bus.value.decode())
    d2 = ctypes.c_int(-1)
    for s in (bus.value, bus.value[5:], b"nonsense", b"0000:ff:00.0"):
        res[f"cuDeviceGetByPCIBusId({s.decode()})"] = (cu.cuDeviceGetByPCIBusId(ctypes.byref(d2), s), d2.value)
    ctx = ctypes.c_void_p()
    assert cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
    c2 = ctypes.c_void_p()
    res["cuStreamGetCtx(NULL)"] = (cu.cuStreamGetCtx(None, ctypes.byref(c2)), c2.value == ctx.value)

    class Desc(ctypes.Structure):
        _fields_ = [("type", ctypes.c_uint), ("pad", ctypes.c_uint), ("h0", ctypes.c_uint64),
                    ("h1", ctypes.c_uint64), ("size", ctypes.c_uint64), ("flags", ctypes.c_uint),
                    ("reserved", ctypes.c_uint * 16)]
    em = ctypes.c_void_p()
    for ty, fd, size in ((1, 2**32 - 1, 4096), (1, 0, 4096), (2, 0, 4096), (1, 0, 0), (9, 0, 4096)):
        d = Desc(type=ty, h0=fd, size=size)
        res[f"cuImportExternalMemory(type={ty},fd/handle={fd},size={size})"] = cu.cuImportExternalMemory(ctypes.byref(em), ctypes.byref(d))
    arr = ctypes.c_void_p()
    res["cuMipmappedArrayDestroy(NULL)"] = cu.cuMipmappedArrayDestroy(None)
    res["cuDestroyExternalMemory(NULL)"] = cu.cuDestroyExternalMemory(None)
    res["cuEGLStreamProducerDisconnect(bogus)"] = "not called (would dereference)"
    del arr
    return res


def main():
    mode, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    res = {"stand-in": stand_in, "real": real, "probe": probe}[mode](out)
    print(mode, json.dumps(res, indent=1), flush=True)
    (out / f"{mode}.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
