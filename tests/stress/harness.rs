// SPDX-License-Identifier: MPL-2.0
//! What the stress driver (`examples/stress.rs`, run by `scripts/stress`) and the failure-path
//! tests (`tests/stress.rs`) share: one encoding pipeline run in this process and reported on
//! stdout (the child side), the process's resource use, and the fault sweep (the parent side:
//! children bounded in time, each classified from its exit, its report and the emulator's
//! trace). Included by path (`#[path]`); depends on gstreamer-rs, `std` and nothing else.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// One encoding run: `videotestsrc num-buffers=frames ! caps ! element props ! fakesink`.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `rsnvench265enc`, `rsnvench264enc` or `rsnvencav1enc`.
    pub element: String,
    /// Frames the source pushes.
    pub frames: u64,
    /// Element properties as gst-launch writes them (`bframes=2 gop-size=30`).
    pub props: String,
    /// The source's caps (`video/x-raw,format=NV12,width=320,height=240,framerate=25/1`).
    pub caps: String,
    /// 1-based index of a frame replaced by a copy of half its size (a truncated buffer).
    pub truncate_at: Option<u64>,
}

impl Spec {
    /// `frames` frames of 320x240 NV12 at 25 fps into `element` with its default properties.
    pub fn new(element: &str, frames: u64) -> Self {
        Spec {
            element: element.to_owned(),
            frames,
            props: String::new(),
            caps: "video/x-raw,format=NV12,width=320,height=240,framerate=25/1".to_owned(),
            truncate_at: None,
        }
    }

    /// The spec as environment variables of a child (read back by [`Spec::from_env`]).
    pub fn to_env(&self, cmd: &mut Command) {
        cmd.env("STRESS_ELEMENT", &self.element)
            .env("STRESS_FRAMES", self.frames.to_string())
            .env("STRESS_PROPS", &self.props)
            .env("STRESS_CAPS", &self.caps)
            .env(
                "STRESS_TRUNCATE",
                self.truncate_at.map(|n| n.to_string()).unwrap_or_default(),
            );
    }

    /// The spec a parent gave with [`Spec::to_env`]; `None` in a process that is no child.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok();
        Some(Spec {
            element: var("STRESS_ELEMENT")?,
            frames: var("STRESS_FRAMES")?.parse().ok()?,
            props: var("STRESS_PROPS").unwrap_or_default(),
            caps: var("STRESS_CAPS")?,
            truncate_at: var("STRESS_TRUNCATE").and_then(|s| s.parse().ok()),
        })
    }

    fn launch_line(&self) -> String {
        let frames = if self.frames == 0 {
            String::new()
        } else {
            format!("num-buffers={}", self.frames)
        };
        format!(
            "videotestsrc {frames} ! capsfilter name=cf caps=\"{}\" ! {} name=enc {} ! fakesink name=sink sync=false",
            self.caps, self.element, self.props
        )
    }
}

/// What one run gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Frames the source pushed.
    pub frames_in: u64,
    /// Buffers that reached the sink.
    pub frames_out: u64,
    /// Buffers that reached the sink after the first ERROR message was read from the bus.
    pub out_after_error: u64,
    /// The pipeline reached EOS.
    pub eos: bool,
    /// Every ERROR message, `source: message (debug)`, in bus order, including those posted
    /// up to 500 ms after the first.
    pub errors: Vec<String>,
}

impl Outcome {
    /// Every frame out, no error.
    pub fn clean(&self) -> bool {
        self.eos && self.errors.is_empty() && self.frames_out == self.frames_in
    }

    /// ERROR messages the encoder posted, leaving out GstVideoEncoder's own "Failed to start
    /// encoder" that follows a failed `start` (the base class always posts it).
    pub fn encoder_errors(&self) -> usize {
        self.errors
            .iter()
            .filter(|e| e.contains(":enc: ") && !e.contains("gst_video_encoder_change_state"))
            .count()
    }

    /// The report a child prints on stdout (one `stress-result` line, one `stress-error` line
    /// per error), read back by [`Outcome::parse`].
    pub fn report(&self) -> String {
        let mut s = format!(
            "stress-result frames_in={} frames_out={} out_after_error={} eos={} errors={}\n",
            self.frames_in,
            self.frames_out,
            self.out_after_error,
            self.eos as u8,
            self.errors.len()
        );
        for e in &self.errors {
            let _ = writeln!(s, "stress-error {}", e.replace('\n', " | "));
        }
        s
    }

    /// The outcome in a child's stdout; `None` if it printed no `stress-result` line.
    pub fn parse(stdout: &str) -> Option<Self> {
        let line = stdout
            .lines()
            .find_map(|l| l.find("stress-result ").map(|i| &l[i + 14..]))?;
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some(Outcome {
            frames_in: field("frames_in")?,
            frames_out: field("frames_out")?,
            out_after_error: field("out_after_error")?,
            eos: field("eos")? == 1,
            errors: stdout
                .lines()
                .filter_map(|l| l.strip_prefix("stress-error "))
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// A built pipeline of [`Spec`], with its sink's buffer counter.
pub struct Running {
    pub pipeline: gst::Pipeline,
    pub out: Arc<AtomicU64>,
    pub frames_in: u64,
}

impl Running {
    /// Builds the pipeline of `spec` (not started).
    pub fn new(spec: &Spec) -> Result<Self, String> {
        let pipeline = gst::parse::launch(&spec.launch_line())
            .map_err(|e| format!("{}: {e}", spec.launch_line()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_owned())?;
        let out = Arc::new(AtomicU64::new(0));
        let sink = pipeline.by_name("sink").ok_or("no sink")?;
        let pad = sink.static_pad("sink").ok_or("no sink pad")?;
        let o = out.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            o.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        if let Some(k) = spec.truncate_at {
            let cf = pipeline.by_name("cf").ok_or("no capsfilter")?;
            let pad = cf.static_pad("src").ok_or("no capsfilter pad")?;
            let seen = AtomicU64::new(0);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if seen.fetch_add(1, Ordering::Relaxed) + 1 != k {
                    return gst::PadProbeReturn::Ok;
                }
                let Some(gst::PadProbeData::Buffer(b)) = info.data.take() else {
                    return gst::PadProbeReturn::Ok;
                };
                let map = b.map_readable().ok();
                let half = map.as_ref().map_or(&[][..], |m| &m[..m.len() / 2]);
                let mut t = gst::Buffer::from_slice(half.to_vec());
                if let Some(tm) = t.get_mut() {
                    tm.set_pts(b.pts());
                    tm.set_duration(b.duration());
                }
                info.data = Some(gst::PadProbeData::Buffer(t));
                gst::PadProbeReturn::Ok
            });
        }
        Ok(Running {
            pipeline,
            out,
            frames_in: spec.frames,
        })
    }

    /// Buffers at the sink so far.
    pub fn frames_out(&self) -> u64 {
        self.out.load(Ordering::Relaxed)
    }

    /// Plays to EOS or error (ERROR messages up to 500 ms after the first are counted too),
    /// then sets the pipeline to NULL. Never returns if the pipeline hangs: the parent bounds
    /// it.
    pub fn run(self) -> Outcome {
        let mut o = Outcome {
            frames_in: self.frames_in,
            ..Default::default()
        };
        let bus = self.pipeline.bus().expect("pipeline bus");
        if let Err(e) = self.pipeline.set_state(gst::State::Playing) {
            o.errors.push(format!("set_state(Playing): {e}"));
        }
        let kinds = [gst::MessageType::Eos, gst::MessageType::Error];
        let mut first_error_out = None;
        let mut deadline = None::<Instant>;
        loop {
            let msg = match deadline {
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    if wait.is_zero() {
                        break;
                    }
                    bus.timed_pop_filtered(
                        gst::ClockTime::from_nseconds(wait.as_nanos() as u64),
                        &kinds,
                    )
                }
                None => bus.timed_pop_filtered(gst::ClockTime::NONE, &kinds),
            };
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) if deadline.is_none() => {
                    o.eos = true;
                    break;
                }
                Some(gst::MessageView::Error(e)) => {
                    let src = e
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    o.errors.push(format!(
                        "{src}: {} ({})",
                        e.error(),
                        e.debug().unwrap_or_default()
                    ));
                    if deadline.is_none() {
                        first_error_out = Some(self.frames_out());
                        deadline = Some(Instant::now() + Duration::from_millis(500));
                    }
                }
                Some(_) => {}
                None if deadline.is_some() => break,
                None => {}
            }
        }
        if self.pipeline.set_state(gst::State::Null).is_err() {
            o.errors.push("set_state(Null) failed".to_owned());
        }
        o.frames_out = self.frames_out();
        if let Some(n) = first_error_out {
            o.out_after_error = o.frames_out - n;
        }
        o
    }
}

/// Runs `spec` in this process (see [`Running::run`]).
pub fn run_spec(spec: &Spec) -> Outcome {
    match Running::new(spec) {
        Ok(r) => r.run(),
        Err(e) => Outcome {
            frames_in: spec.frames,
            errors: vec![e],
            ..Default::default()
        },
    }
}

/// Resident memory, open file descriptors and threads of this process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// VmRSS, KiB.
    pub rss_kb: u64,
    /// VmHWM (peak RSS), KiB.
    pub peak_kb: u64,
    /// Entries of `/proc/self/fd`.
    pub fds: u64,
    /// `Threads` of `/proc/self/status`.
    pub threads: u64,
}

/// This process's [`Usage`] from `/proc/self` (zeros where it cannot be read).
pub fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        rss_kb: field("VmRSS:"),
        peak_kb: field("VmHWM:"),
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        threads: field("Threads:"),
    }
}

/// How a faulted run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Every frame out, no error, exit 0.
    Recovered,
    /// One or more ERROR messages, a normal exit.
    CleanError,
    /// Killed by a signal (outside a strict-mode abort), or an exit status other than 0/1.
    Crash,
    /// Still running at the time limit.
    Hang,
    /// EOS and exit 0, but fewer frames out than in, with no error.
    SilentLoss,
    /// `NVEMU_STRICT=abort` aborted on a contract violation.
    StrictAbort,
    /// The faulted call was never made (the trace shows no injected fault).
    NotReached,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Recovered,
        Class::CleanError,
        Class::Crash,
        Class::Hang,
        Class::SilentLoss,
        Class::StrictAbort,
        Class::NotReached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Recovered => "recovered",
            Class::CleanError => "clean_err",
            Class::Crash => "crash",
            Class::Hang => "hang",
            Class::SilentLoss => "silent_loss",
            Class::StrictAbort => "strict_abort",
            Class::NotReached => "not_reached",
        }
    }

    /// Crash, hang, silent loss or strict abort: what the sweep's goals allow none of.
    pub fn bad(self) -> bool {
        matches!(
            self,
            Class::Crash | Class::Hang | Class::SilentLoss | Class::StrictAbort
        )
    }
}

/// One faulted run of the sweep and what it gave.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub element: String,
    pub strict: bool,
    /// The `NVEMU_FAULT` rule.
    pub fault: String,
    pub class: Class,
    /// Contract violations in the trace (strict or not).
    pub violations: usize,
    /// More than one ERROR from the encoder ([`Outcome::encoder_errors`]).
    pub dup_errors: bool,
    /// Frames reached the sink after the first ERROR.
    pub out_after_error: bool,
    /// The encoder's first ERROR names neither the faulted call nor its status.
    pub unnamed: bool,
    /// The child's outcome, if it printed one.
    pub outcome: Option<Outcome>,
    /// Where the child's stderr and trace were kept (runs that are not clean).
    pub log: Option<PathBuf>,
}

/// Classifies a child: `status` (`None`: killed at the time limit), its stdout, the trace.
pub fn classify(status: Option<ExitStatus>, stdout: &str, trace: &str, strict: bool) -> Class {
    use std::os::unix::process::ExitStatusExt;
    let outcome = Outcome::parse(stdout);
    let injected = trace.contains("injected fault") || trace.contains("injectedFault");
    let violation = trace.contains("\"violation\"");
    let Some(status) = status else {
        return Class::Hang;
    };
    if strict && violation && status.signal() == Some(6) {
        return Class::StrictAbort;
    }
    if status.signal().is_some() || !matches!(status.code(), Some(0 | 1)) {
        return Class::Crash;
    }
    let Some(o) = outcome else {
        return Class::Crash;
    };
    if !injected {
        return Class::NotReached;
    }
    if !o.errors.is_empty() {
        return Class::CleanError;
    }
    if o.eos && o.frames_out == o.frames_in {
        Class::Recovered
    } else {
        Class::SilentLoss
    }
}

/// Runs `cmd` until it exits or `limit` passes (then kills it): (status, stdout, stderr);
/// status `None` on timeout.
pub fn run_child(mut cmd: Command, limit: Duration) -> (Option<ExitStatus>, String, String) {
    let dir = std::env::temp_dir();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let base = dir.join(format!("rsnvenc-stress-{}-{n}", std::process::id()));
    let (op, ep) = (base.with_extension("out"), base.with_extension("err"));
    let file = |p: &Path| std::fs::File::create(p).map(Stdio::from);
    let (Ok(o), Ok(e)) = (file(&op), file(&ep)) else {
        return (
            None,
            String::new(),
            "cannot create child output files".into(),
        );
    };
    cmd.stdin(Stdio::null()).stdout(o).stderr(e);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (None, String::new(), format!("spawn: {e}")),
    };
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let (out, err) = (read(&op), read(&ep));
    let _ = std::fs::remove_file(&op);
    let _ = std::fs::remove_file(&ep);
    (status, out, err)
}

/// Calls per entry point (NVENC and CUDA) in a trace.
pub fn entry_points(trace: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for line in trace.lines() {
        let Some(i) = line.find("\"call\"") else {
            continue;
        };
        let rest = line[i + 6..].trim_start_matches([':', ' ']);
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        if let Some(end) = rest.find('"') {
            *calls.entry(rest[..end].to_owned()).or_insert(0) += 1;
        }
    }
    calls
}

/// Entry points that are no failure path of the plugin: version queries that cannot fail
/// in a way the plugin can do anything about are still swept; nothing is left out.
pub const SKIPPED: &[&str] = &[];

/// One sweep: for each element, each mode (normal / `NVEMU_STRICT=abort`), each entry point
/// the element's normal run calls, each position (`"1"`, `"2"`, `"5"`, `"20"`, `"1+"`...):
/// `NVEMU_FAULT=CALL:POS`. Positions beyond the calls of the normal run are not run (counted
/// as not reached).
pub struct Sweep {
    pub elements: Vec<String>,
    pub strict_modes: Vec<bool>,
    pub positions: Vec<String>,
    pub frames: u64,
    pub props: String,
    /// Children run at once.
    pub jobs: usize,
    /// A child still running after this is a hang.
    pub limit: Duration,
    /// Traces, and logs of runs that are not clean.
    pub dir: PathBuf,
    /// Extra environment of every child (`NVEMU_BACKEND`...).
    pub env: Vec<(String, String)>,
}

impl Sweep {
    /// Runs the sweep; `child` makes the command that runs one [`Spec`] (the caller's own
    /// binary in child mode, with the spec in its environment from [`Spec::to_env`]).
    /// Returns every verdict, and the entry points found per element.
    #[allow(clippy::type_complexity)]
    pub fn run(
        &self,
        child: &(dyn Fn(&Spec) -> Command + Sync),
    ) -> (Vec<Verdict>, BTreeMap<String, BTreeMap<String, u64>>) {
        let _ = std::fs::create_dir_all(&self.dir);
        let mut found = BTreeMap::new();
        let mut jobs = Vec::new();
        for el in &self.elements {
            let mut spec = Spec::new(el, self.frames);
            spec.props = self.props.clone();
            let trace = self.dir.join(format!("{el}-normal.trace"));
            let _ = std::fs::remove_file(&trace);
            let mut cmd = child(&spec);
            cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
                .env("NVEMU_TRACE", &trace)
                .env_remove("NVEMU_FAULT")
                .env_remove("NVEMU_STRICT");
            let (_, out, err) = run_child(cmd, self.limit);
            let calls = entry_points(&std::fs::read_to_string(&trace).unwrap_or_default());
            if !Outcome::parse(&out).is_some_and(|o| o.clean()) || calls.is_empty() {
                eprintln!("sweep: the normal run of {el} failed:\n{out}\n{err}");
            }
            for (call, &n) in &calls {
                if SKIPPED.contains(&call.as_str()) {
                    continue;
                }
                for &strict in &self.strict_modes {
                    for pos in &self.positions {
                        let first: u64 = pos.trim_end_matches('+').parse().unwrap_or(1);
                        jobs.push((spec.clone(), strict, format!("{call}:{pos}"), first <= n));
                    }
                }
            }
            found.insert(el.clone(), calls);
        }
        let jobs = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
        let verdicts = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..self.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        let Some((i, (spec, strict, fault, reached))) =
                            jobs.lock().unwrap_or_else(|e| e.into_inner()).pop()
                        else {
                            break;
                        };
                        let v = self.one(child, &spec, strict, &fault, reached, i);
                        verdicts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, v));
                    }
                });
            }
        });
        let mut v = verdicts.into_inner().unwrap_or_else(|e| e.into_inner());
        v.sort_by_key(|(i, _)| *i);
        (v.into_iter().map(|(_, v)| v).collect(), found)
    }

    fn one(
        &self,
        child: &(dyn Fn(&Spec) -> Command + Sync),
        spec: &Spec,
        strict: bool,
        fault: &str,
        reached: bool,
        i: usize,
    ) -> Verdict {
        let mut v = Verdict {
            element: spec.element.clone(),
            strict,
            fault: fault.to_owned(),
            class: Class::NotReached,
            violations: 0,
            dup_errors: false,
            out_after_error: false,
            unnamed: false,
            outcome: None,
            log: None,
        };
        if !reached {
            return v;
        }
        let trace = self.dir.join(format!("run-{i}.trace"));
        let _ = std::fs::remove_file(&trace);
        let mut cmd = child(spec);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NVEMU_TRACE", &trace)
            .env("NVEMU_FAULT", fault)
            .env("GST_DEBUG", "0");
        if strict {
            cmd.env("NVEMU_STRICT", "abort");
        } else {
            cmd.env_remove("NVEMU_STRICT");
        }
        let (status, out, err) = run_child(cmd, self.limit);
        let t = std::fs::read_to_string(&trace).unwrap_or_default();
        v.class = classify(status, &out, &t, strict);
        v.violations = t.lines().filter(|l| l.contains("\"violation\"")).count();
        v.outcome = Outcome::parse(&out);
        if let Some(o) = &v.outcome {
            let call = fault.split(':').next().unwrap_or_default();
            v.dup_errors = o.encoder_errors() > 1;
            v.out_after_error = o.out_after_error > 0;
            v.unnamed = o
                .errors
                .iter()
                .find(|e| e.contains(":enc: "))
                .is_some_and(|e| {
                    !e.contains(call)
                        && !e.contains("NV_ENC_ERR_GENERIC")
                        && !e.contains("CUDA_ERROR")
                });
        }
        if v.class.bad() || v.violations > 0 || v.dup_errors || v.out_after_error || v.unnamed {
            let log = self.dir.join(format!(
                "{}-{}-{}.log",
                spec.element,
                if strict { "strict" } else { "normal" },
                fault.replace([':', '+'], "_")
            ));
            let _ = std::fs::write(
                &log,
                format!(
                    "NVEMU_FAULT={fault} strict={strict} status={status:?} class={:?}\nstdout:\n{out}\nstderr:\n{err}\nviolations:\n{}\n",
                    v.class,
                    t.lines()
                        .filter(|l| l.contains("\"violation\""))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            );
            v.log = Some(log);
        }
        let _ = std::fs::remove_file(&trace);
        v
    }
}

/// The sweep's table: one row per element and mode, one column per class, then the anomaly
/// counts; then one line per run that is bad, violates the contract or errs more than once.
pub fn sweep_table(verdicts: &[Verdict]) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:<16} {:<7} {:>5}", "element", "mode", "runs");
    for c in Class::ALL {
        let _ = write!(s, " {:>12}", c.name());
    }
    let _ = writeln!(
        s,
        " {:>10} {:>9} {:>13} {:>8}",
        "violations", "dup_error", "out_after_err", "unnamed"
    );
    let mut rows: BTreeMap<(String, bool), Vec<&Verdict>> = BTreeMap::new();
    for v in verdicts {
        rows.entry((v.element.clone(), v.strict))
            .or_default()
            .push(v);
    }
    for ((el, strict), vs) in &rows {
        let mode = if *strict { "strict" } else { "normal" };
        let _ = write!(s, "{el:<16} {mode:<7} {:>5}", vs.len());
        for c in Class::ALL {
            let _ = write!(s, " {:>12}", vs.iter().filter(|v| v.class == c).count());
        }
        let count = |f: &dyn Fn(&Verdict) -> bool| vs.iter().filter(|v| f(v)).count();
        let _ = writeln!(
            s,
            " {:>10} {:>9} {:>13} {:>8}",
            count(&|v| v.violations > 0),
            count(&|v| v.dup_errors),
            count(&|v| v.out_after_error),
            count(&|v| v.unnamed)
        );
    }
    for v in verdicts {
        if v.class.bad() || v.violations > 0 || v.dup_errors || v.out_after_error || v.unnamed {
            let _ = writeln!(
                s,
                "  {} {} NVEMU_FAULT={}: {}{}{}{}{} {}",
                v.element,
                if v.strict { "strict" } else { "normal" },
                v.fault,
                v.class.name(),
                if v.violations > 0 { ", violation" } else { "" },
                if v.dup_errors { ", dup errors" } else { "" },
                if v.out_after_error {
                    ", out after error"
                } else {
                    ""
                },
                if v.unnamed { ", unnamed" } else { "" },
                v.log
                    .as_ref()
                    .map(|p| format!("({})", p.display()))
                    .unwrap_or_default()
            );
        }
    }
    s
}
