//! Copy counters and the NVEMU_TRACE file (own process: both are process-wide).

use cuda::*;
use std::ffi::c_void;
use std::ptr::null_mut;

#[test]
fn copy_counts_and_trace() {
    let dir = std::env::temp_dir().join(format!("nvemu-cuda-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&path);
    // SAFETY: the only test in this binary; no other thread reads the environment yet.
    unsafe { std::env::set_var("NVEMU_TRACE", &path) };

    assert_eq!(cuInit(0), 0);
    let mut c: CUcontext = null_mut();
    assert_eq!(cuCtxCreate_v2(&mut c, 0, 0), 0);
    let mut d = 0u64;
    assert_eq!(cuMemAlloc_v2(&mut d, 1 << 16), 0);
    let mut e = 0u64;
    assert_eq!(cuMemAlloc_v2(&mut e, 1 << 16), 0);
    let host = vec![1u8; 1 << 16];
    let mut host2 = vec![0u8; 1 << 16];

    let mut before = [0u64; 4];
    nvemu_cuda_copy_counts(before.as_mut_ptr());
    // several threads copying at once: counters and whole trace lines
    let (dd, ee) = (d, e);
    let hp = host.as_ptr() as usize;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c as usize;
            std::thread::spawn(move || {
                assert_eq!(cuCtxPushCurrent_v2(c as CUcontext), 0);
                for _ in 0..25 {
                    assert_eq!(cuMemcpyHtoD_v2(dd, hp as *const c_void, 1000), 0);
                    assert_eq!(cuMemcpyDtoD_v2(ee, dd, 500), 0);
                }
                assert_eq!(cuCtxPopCurrent_v2(null_mut()), 0);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        cuMemcpyDtoH_v2(host2.as_mut_ptr() as *mut c_void, d, 300),
        0
    );
    let m = CUDA_MEMCPY2D {
        srcXInBytes: 0,
        srcY: 0,
        srcMemoryType: CU_MEMORYTYPE_HOST,
        srcHost: host.as_ptr() as *const c_void,
        srcDevice: 0,
        srcArray: null_mut(),
        srcPitch: 100,
        dstXInBytes: 0,
        dstY: 0,
        dstMemoryType: CU_MEMORYTYPE_HOST,
        dstHost: host2.as_mut_ptr() as *mut c_void,
        dstDevice: 0,
        dstArray: null_mut(),
        dstPitch: 100,
        WidthInBytes: 50,
        Height: 4,
    };
    assert_eq!(cuMemcpy2D_v2(&m), 0);
    let mut after = [0u64; 4];
    nvemu_cuda_copy_counts(after.as_mut_ptr());
    let delta: Vec<u64> = (0..4).map(|i| after[i] - before[i]).collect();
    assert_eq!(delta, vec![100, 1, 100, 1]); // HtoD, DtoH, DtoD, HtoH
    let mut bytes = [0u64; 4];
    nvemu_cuda_copy_bytes(bytes.as_mut_ptr());
    assert_eq!(bytes, [100_000, 300, 50_000, 200]);
    nvemu_cuda_copy_counts(std::ptr::null_mut()); // tolerated

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_like::Obj> = text.lines().map(serde_like::parse).collect();
    let copies: Vec<_> = lines.iter().filter(|l| l.has("kind")).collect();
    assert_eq!(copies.len(), 202);
    assert!(copies.iter().all(|l| l.get("lib") == "\"cuda\""));
    let htod = copies
        .iter()
        .filter(|l| l.get("kind") == "\"HtoD\"")
        .count();
    assert_eq!(htod, 100);
    let h2h = copies.iter().find(|l| l.get("kind") == "\"HtoH\"").unwrap();
    assert_eq!(h2h.get("call"), "\"cuMemcpy2D_v2\"");
    assert_eq!(h2h.get("bytes"), "200");
    assert!(lines.iter().any(|l| l.get("call") == "\"cuCtxCreate_v2\""));
    assert!(
        lines
            .iter()
            .any(|l| l.get("call") == "\"cuCtxPushCurrent_v2\"")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Just enough JSON reading for the trace lines: checks the line is one well-formed object and
/// gives the raw text of top-level values.
mod serde_like {
    pub struct Obj(Vec<(String, String)>);
    impl Obj {
        pub fn has(&self, k: &str) -> bool {
            self.0.iter().any(|(a, _)| a == k)
        }
        pub fn get(&self, k: &str) -> &str {
            self.0
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        }
    }
    pub fn parse(line: &str) -> Obj {
        let b = line.as_bytes();
        assert!(
            b.first() == Some(&b'{') && b.last() == Some(&b'}'),
            "not an object: {line}"
        );
        let mut out = Vec::new();
        let mut i = 1;
        let mut depth = 0;
        let mut in_str = false;
        let mut start = 1;
        let mut fields = Vec::new();
        while i < b.len() - 1 {
            let c = b[i];
            if in_str {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_str = false;
                }
            } else if c == b'"' {
                in_str = true;
            } else if c == b'{' || c == b'[' {
                depth += 1;
            } else if c == b'}' || c == b']' {
                depth -= 1;
            } else if c == b',' && depth == 0 {
                fields.push(&line[start..i]);
                start = i + 1;
            }
            i += 1;
        }
        assert!(!in_str && depth == 0, "unbalanced: {line}");
        fields.push(&line[start..b.len() - 1]);
        for f in fields {
            let (k, v) = f.split_once(':').expect("key: value");
            out.push((k.trim().trim_matches('"').to_owned(), v.trim().to_owned()));
        }
        Obj(out)
    }
}
