"""Shared checks for the third-party client cases (nvemu/tests/py/*_case.py).

Reads the emulator's trace (NVEMU_TRACE, one JSON object per line), the ABI tables of
crates/nvenc-abi/tables/ and decodes the output with PyAV (libavcodec 62, dav1d for AV1).
Every check raises AssertionError with what differed.
"""
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TABLES = ROOT / "crates" / "nvenc-abi" / "tables"

# The struct each NVENC call passes (its `version` field), by call name.
CALL_STRUCT = {
    "nvEncOpenEncodeSessionEx": "NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER",
    "nvEncGetEncodeCaps": "NV_ENC_CAPS_PARAM_VER",
    "nvEncGetEncodePresetConfigEx": "NV_ENC_PRESET_CONFIG_VER",
    "nvEncInitializeEncoder": "NV_ENC_INITIALIZE_PARAMS_VER",
    "nvEncReconfigureEncoder": "NV_ENC_RECONFIGURE_PARAMS_VER",
    "nvEncCreateInputBuffer": "NV_ENC_CREATE_INPUT_BUFFER_VER",
    "nvEncCreateBitstreamBuffer": "NV_ENC_CREATE_BITSTREAM_BUFFER_VER",
    "nvEncRegisterResource": "NV_ENC_REGISTER_RESOURCE_VER",
    "nvEncMapInputResource": "NV_ENC_MAP_INPUT_RESOURCE_VER",
    "nvEncLockInputBuffer": "NV_ENC_LOCK_INPUT_BUFFER_VER",
    "nvEncEncodePicture": "NV_ENC_PIC_PARAMS_VER",
    "nvEncLockBitstream": "NV_ENC_LOCK_BITSTREAM_VER",
    "nvEncGetSequenceParams": "NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER",
}
# Nested structs whose version is traced as "<prefix>.version".
NESTED = {
    "nvEncInitializeEncoder": {"encodeConfig": "NV_ENC_CONFIG_VER"},
    "nvEncReconfigureEncoder": {
        "reInitEncodeParams": "NV_ENC_INITIALIZE_PARAMS_VER",
        "reInitEncodeParams.encodeConfig": "NV_ENC_CONFIG_VER",
    },
    "nvEncGetEncodePresetConfigEx": {"presetCfg": "NV_ENC_CONFIG_VER"},
}

PIC_IDR = 3


def sdk_versions(api):
    """{VER name: value} of `crates/nvenc-abi/tables/sdk-<api>.txt`."""
    out = {}
    for line in (TABLES / f"sdk-{api}.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "VER":
            out[parts[1]] = int(parts[2], 16)
    return out


def load(trace):
    lines = []
    for raw in Path(trace).read_text().splitlines():
        if raw.strip():
            lines.append(json.loads(raw))
    return lines


def calls(lines, name):
    return [l for l in lines if l.get("lib") == "nvenc" and l.get("call") == name]


def check_trace(trace, api, frames, sessions=1, b_frames=None, reconfigures=0):
    """What every case's trace must show; returns a summary dict.

    - no contract violation, no `emulator_note` that says the emulator deviated;
    - every session at `api` ("12.1" or "13.0"), each struct's `version` the SDK's value;
    - `sessions` sessions initialised (every session opened is destroyed), `reconfigures`
      reconfigurations (and no other initialisation: no new session);
    - `frames` pictures submitted and locked, the first an IDR.
    """
    lines = load(trace)
    bad = [l for l in lines if "violation" in l]
    assert not bad, f"contract violations: {bad[:3]}"
    vers = sdk_versions(api)
    nv = [l for l in lines if l.get("lib") == "nvenc"]
    assert nv, "no NVENC call traced"
    opens = calls(lines, "nvEncOpenEncodeSessionEx")
    destroys = calls(lines, "nvEncDestroyEncoder")
    # PyNvVideoCodec opens one session more at import, to read the caps, and destroys it.
    assert len(opens) >= sessions, f"{len(opens)} sessions opened, {sessions} expected"
    assert len(destroys) == len(opens), f"{len(opens)} sessions opened, {len(destroys)} destroyed"
    for l in nv:
        if "session" in l and l.get("api") is not None:
            assert l["api"] == api, f"{l['call']} at API {l['api']}, {api} expected"
    checked = 0
    for l in nv:
        args = l.get("args", {})
        want = CALL_STRUCT.get(l["call"])
        if want and "version" in args and l.get("status") != "NV_ENC_ERR_INVALID_VERSION":
            got = int(str(args["version"]), 16)
            assert got == vers[want], (
                f"{l['call']}: version {got:#x}, SDK {api}'s {want} is {vers[want]:#x}"
            )
            checked += 1
        for prefix, vname in NESTED.get(l["call"], {}).items():
            key = f"{prefix}.version"
            if key in args:
                got = int(str(args[key]), 16)
                assert got == vers[vname], (
                    f"{l['call']}: {key} {got:#x}, SDK {api}'s {vname} is {vers[vname]:#x}"
                )
                checked += 1
    assert checked > 0, "no struct version checked"
    inits = calls(lines, "nvEncInitializeEncoder")
    assert len(inits) == sessions, f"{len(inits)} initialisations"
    assert all(i["status"] == "NV_ENC_SUCCESS" for i in inits), inits
    rec = calls(lines, "nvEncReconfigureEncoder")
    assert len(rec) == reconfigures, f"{len(rec)} reconfigurations, {reconfigures} expected"
    assert all(r["status"] == "NV_ENC_SUCCESS" for r in rec), rec
    pics = [
        p for p in calls(lines, "nvEncEncodePicture")
        if not int(p["args"].get("encodePicFlags", 0)) & 8
    ]
    assert len(pics) == frames, f"{len(pics)} pictures submitted, {frames} expected"
    locked = [
        l for l in calls(lines, "nvEncLockBitstream") if l["status"] == "NV_ENC_SUCCESS"
    ]
    types = [l["args"].get("out.pictureType") for l in locked]
    assert len(types) == frames, f"{len(types)} pictures locked: {types}"
    assert types[0] == PIC_IDR, f"first picture {types[0]}, not IDR"
    if b_frames is not None:
        fip = inits[0]["args"]["encodeConfig.frameIntervalP"]
        assert fip == b_frames + 1, f"frameIntervalP {fip}, {b_frames} B-frames asked"
        if b_frames > 0:
            assert 1 in types, f"no B picture: {types}"
    notes = [l["emulator_note"] for l in lines if "emulator_note" in l]
    deviations = [n for n in notes if "real NVENC would not" in str(n) or "re-opened" in str(n)]
    assert not deviations, f"the emulator deviated from NVENC: {deviations}"
    return {
        "versions_checked": checked,
        "picture_types": types,
        "sizes": [l["args"].get("out.bitstreamSizeInBytes") for l in locked],
        "notes": notes,
        "init": inits[0]["args"],
    }


def decode(path, fmt=None):
    """(frames, width, height, pixel format, key frame count, codec) of a file, decoded with
    PyAV (an error raises)."""
    import av

    with av.open(str(path), format=fmt) as c:
        s = c.streams.video[0]
        n = 0
        keys = 0
        w = h = None
        pix = None
        for frame in c.decode(s):
            n += 1
            keys += bool(frame.key_frame)
            w, h, pix = frame.width, frame.height, frame.format.name
        return n, w, h, pix, keys, s.codec_context.name


def env_summary():
    return {k: v for k, v in os.environ.items() if k.startswith("NVEMU_")}
