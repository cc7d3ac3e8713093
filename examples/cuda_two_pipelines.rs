// SPDX-License-Identifier: MPL-2.0
//! Feeds an encoder CUDA memory made by a *different* CUDA context: two pipelines in one
//! process, so that no `gst.cuda.context` is shared between them (as when an application
//! bridges its own decoding pipeline to an encoding one with appsink/appsrc).
//!
//! ```text
//! cuda_two_pipelines '<upstream>' '<downstream>'
//! cuda_two_pipelines \
//!   'videotestsrc num-buffers=30 ! video/x-raw,format=NV12,width=320,height=240 ! cudaupload' \
//!   'rsnvench265enc ! video/x-h265,stream-format=byte-stream ! filesink location=out.h265'
//! ```
//!
//! `<upstream>` gets `! appsink name=sink sync=false` appended, `<downstream>` is prefixed with
//! `appsrc name=src format=time !`; every sample is handed over as it is, caps included. Prints
//! the number of buffers handed over; exits non-zero on an error message from either pipeline.
//! With `cudaupload cuda-device-id=1` upstream and `rsnvench265enc cuda-device-id=0`
//! downstream, the encoder gets memory of another GPU.

use gst::prelude::*;

fn run(upstream: &str, downstream: &str) -> Result<usize, String> {
    gst::init().map_err(|e| e.to_string())?;
    let up = gst::parse::launch(&format!("{upstream} ! appsink name=sink sync=false"))
        .map_err(|e| format!("upstream: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "upstream is not a pipeline".to_owned())?;
    let down = gst::parse::launch(&format!("appsrc name=src format=time ! {downstream}"))
        .map_err(|e| format!("downstream: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "downstream is not a pipeline".to_owned())?;
    let sink = up.by_name("sink").ok_or("no appsink")?;
    let src = down.by_name("src").ok_or("no appsrc")?;
    up.set_state(gst::State::Playing)
        .map_err(|e| format!("upstream: {e}"))?;
    down.set_state(gst::State::Playing)
        .map_err(|e| format!("downstream: {e}"))?;

    let check_bus = |p: &gst::Pipeline, name: &str| -> Result<(), String> {
        let bus = p.bus().ok_or("no bus")?;
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = m.view() {
                return Err(format!("{name}: {} ({:?})", e.error(), e.debug()));
            }
        }
        Ok(())
    };
    let mut n = 0;
    loop {
        let sample = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]);
        let Some(sample) = sample else { break };
        if n == 0 {
            src.set_property(
                "caps",
                sample.caps().ok_or("sample without caps")?.to_owned(),
            );
        }
        let ret = src.emit_by_name::<gst::FlowReturn>("push-sample", &[&sample]);
        if ret != gst::FlowReturn::Ok {
            check_bus(&down, "downstream")?;
            return Err(format!("push-sample: {ret:?}"));
        }
        n += 1;
    }
    check_bus(&up, "upstream")?;
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let bus = down.bus().ok_or("no bus")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let result = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(n),
        Some(gst::MessageView::Error(e)) => {
            Err(format!("downstream: {} ({:?})", e.error(), e.debug()))
        }
        _ => Err("downstream: no EOS within 120 s".to_owned()),
    };
    let _ = up.set_state(gst::State::Null);
    let _ = down.set_state(gst::State::Null);
    result
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {} '<upstream>' '<downstream>'", args[0]);
        std::process::exit(2);
    }
    match run(&args[1], &args[2]) {
        Ok(n) => println!("{n} buffers handed over"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
