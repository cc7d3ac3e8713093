/*
 * nvemu-swenc: the software encoder behind the NVENC stand-in.
 *
 * A thin layer over libavcodec (libx264, libaom-av1), libx265's own API, and libswscale,
 * compiled against the system headers so that no FFmpeg or x265 struct layout is written by
 * hand on the Rust side.
 *
 * Encoder choices:
 * - H.265: libx265, driven through its own API (not libavcodec's wrapper) for one reason:
 *   NVENC has a mini-GOP out as soon as its last (anchor) frame is sent, while x265's
 *   lookahead holds 2n+4 frames with n B-frames. After each anchor this shim flushes x265
 *   (x265_encoder_encode with no picture, which runs the slice-type decision on what it holds
 *   and encodes it) and then re-arms its lookahead with x265_encoder_reconfig(forceFlush=1),
 *   so the stream goes on with no new IDR: the same sequence of pictures NVENC would give,
 *   with no delay (verified by tests/encode.rs measured_delay_matches_delay).
 * - H.264: libx264.
 * - AV1: libaom-av1, not libsvtav1. libaom in realtime usage with lag-in-frames=0 emits one
 *   packet per input frame with no delay, encodes any size (odd sizes such as 720x405
 *   included), follows forced key frames (AOM_EFLAG_FORCE_KF), honours min=max quantizer for
 *   constant QP (all verified by tests/encode.rs). libsvtav1 (SVT-AV1 1.4 in Debian 12) was
 *   not chosen: it was not tried here, and its documented constraints (even dimensions,
 *   look-ahead buffering even in low-delay presets) work against exact odd sizes and zero
 *   delay.
 *
 * Delay: frames held back beyond what NVENC holds (NVENC has every frame up to the last non-B
 * frame coded right after that frame is sent). Measured by tests/encode.rs
 * measured_delay_matches_delay and returned by SwEncoder::delay():
 * - libaom (realtime usage, lag-in-frames=0): 0 frames, with or without b_frames.
 * - libx264 / libx265 with b_frames=0 (tune zerolatency, one frame thread): 0 frames.
 * - libx264 with n B-frames (rc-lookahead=0, sync-lookahead=0, threads=1): n+1 frames.
 * - libx265 with n B-frames: 0 frames (flushed after every anchor, see above); without that
 *   flush it would be 2n+4 (rc-lookahead=n+1, the minimum x265 accepts, plus its mini-GOP lag).
 * libavcodec returns at most one packet per input frame for these wrappers.
 *
 * Nothing here aborts or asserts: every failure is returned with the libav error text.
 */
#include "swenc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <x265.h>

/* One coded picture from x265, owned until the next swenc_receive. */
typedef struct XPacket {
    uint8_t *data;
    size_t size;
    int64_t pts;
    int key, pict_type;
    double qp;
} XPacket;

struct SwencCtx {
    SwencConfig cfg;
    const AVCodec *codec;
    AVCodecContext *avctx;
    AVPacket *pkt;
    enum AVPixelFormat enc_fmt;
    struct SwsContext *sws;
    int flushed;
    /* H.265 through x265's API (codec and avctx unused) */
    const x265_api *x265;
    x265_param *xparam;
    x265_encoder *xenc;
    XPacket *xq;      /* FIFO of coded pictures: xq[xhead..xlen) */
    size_t xhead, xlen, xcap;
    XPacket xcur;     /* the one handed out by the last swenc_receive */
    int xeof;
    /* Live rate change (swenc_set_rate): x265 3.5 accepts x265_encoder_reconfig with a new
     * bitrate but its output keeps the old rate (measured: no change over 120 frames; and it
     * refuses a change that moves its automatic level). So after a change the rate is held
     * here: each picture's QP is forced (x265_picture.forceqp) by a controller that steers the
     * coded bits to the new target. xbits: target bits per picture (0: no change made);
     * xqp: the QP it gives next; xdebt: bits coded above target so far; xlast_qp: the QP x265
     * chose for the last picture (the controller's start). */
    double xbits, xqp, xdebt, xvbv, xlast_qp;
    /* Live quality change (swenc_set_quality) on x265, which has no live constant-QP change
     * and whose live CRF change has no effect (measured, see swenc_set_quality): from then on
     * every picture is coded at a fixed QP per picture type (x265_picture.forceqp), I/P/B in
     * xfqp. xcrf_off: the mean QP x265 chose minus the target quality at the first change,
     * kept so that a new target quality moves the QP by the same amount. */
    int xfixed;
    double xfqp[3], xcrf_off;
    /* Sum and count of the QPs x265's own rate control chose (no forced QP). */
    double xqp_sum;
    int64_t xqp_n;
    /* Target quality held by forced QPs: the mean picture QP aimed at (< 0: none, constant QP
     * forced as asked) and the P picture's forced QP steered towards it, as x265's reported
     * picture QP is the mean over its CUs, adaptive quantisation offsets included. */
    double xtarget, xfbase;
    /* AV1: frames since the last key frame, that one included (0: none yet). libaom's own
     * key frame placement is off; swenc_send forces key frames itself. */
    int64_t av1_since_key;
    /* QP delta map for the next frame (swenc_set_qp_map): qmap_pending says one is set. */
    int8_t *qmap;
    size_t qmap_cap;
    int32_t qcols, qrows, qblock;
    int qmap_pending;
    /* x265's quantOffsets of every picture: xoff_w x xoff_h blocks of xoff_bs pixels. */
    float *xoffsets;
    int xoff_w, xoff_h, xoff_bs;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void set_averr(char *err, size_t errlen, const char *what, int averr)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = { 0 };
    av_strerror(averr, buf, sizeof(buf));
    set_err(err, errlen, "%s: %s", what, buf);
}

/* speed 1 (slowest) ..= 7 (fastest) -> x264/x265 preset. Even speed 1 is a fast preset: tests
 * run on 2 cores. */
static const char *x26x_preset(int speed)
{
    switch (speed) {
    case 1:
    case 2:
        return "faster";
    case 3:
    case 4:
        return "veryfast";
    case 5:
        return "superfast";
    default:
        return "ultrafast";
    }
}

/* speed -> libaom cpu-used (realtime usage; FFmpeg 5.1 caps the option at 8). */
static int aom_cpu_used(int speed)
{
    switch (speed) {
    case 1:
    case 2:
        return 6;
    case 3:
    case 4:
        return 7;
    default:
        return 8;
    }
}

/* NVENC AV1 constQP is a qindex (0..255); libaom's quantizer option is 0..63 and maps to
 * qindex through a table that is ~4*q (63 -> 255). */
static int av1_qindex_to_aomq(int qindex)
{
    int q = (qindex + 2) / 4;
    if (q < 0)
        q = 0;
    if (q > 63)
        q = 63;
    return q;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static int append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    int n;
    if (used >= len)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len - used) ? -1 : 0;
}

/* The x264/x265 parameter string ("key=value:key=value") for cfg. */
static int x26x_params(const SwencConfig *cfg, char *params, size_t plen, char *err, size_t errlen)
{
    int hevc = cfg->codec == SWENC_HEVC;
    int b = cfg->b_frames;
    int r = 0;
    int keyint = cfg->gop_length > 0 ? cfg->gop_length : -1;

    params[0] = 0;
    if (hevc) {
        /* keyint=-1 is x265's "infinite". The first frame is always an IDR. */
        r |= append(params, plen,
                    "log-level=error:info=0:repeat-headers=1:annexb=1:aud=0:hrd=0"
                    ":keyint=%d:min-keyint=%d:scenecut=0:open-gop=0:bframes=%d:b-adapt=0"
                    ":b-pyramid=0:rc-lookahead=%d:lookahead-slices=0:frame-threads=1"
                    ":cutree=0:weightb=0:radl=0:pools=2",
                    keyint, keyint > 0 ? keyint : 0, b, b > 0 ? b + 1 : 0);
    } else {
        char ki[64];
        if (keyint > 0)
            snprintf(ki, sizeof(ki), "%d:min-keyint=%d", keyint, keyint);
        else
            snprintf(ki, sizeof(ki), "infinite");
        r |= append(params, plen,
                    "log=0:repeat-headers=1:annexb=1:aud=0:keyint=%s:scenecut=0:open-gop=0"
                    ":bframes=%d:b-adapt=0:b-pyramid=none:rc-lookahead=0:sync-lookahead=0"
                    ":mbtree=0:threads=1:weightb=0",
                    ki, b);
        /* pic_struct_present_flag and a picture timing SEI (pic_struct, clock_timestamp_flag
         * 0) on every picture; no HRD, so no cpb/dpb delays in it (CpbDpbDelaysPresentFlag 0)
         * and time_offset_length inferred 24: the emulator rewrites it with clock timestamps. */
        if (cfg->pic_struct)
            r |= append(params, plen, ":pic-struct=1:nal-hrd=none");
    }

    if (cfg->lossless) {
        /* x264: QP 0 is lossless (qpprime_y_zero_transform_bypass, High 4:4:4 Predictive);
         * x265: cu_transquant_bypass on every CU. */
        if (cfg->rc_mode != SWENC_RC_CONSTQP || cfg->qp_i || cfg->qp_p || cfg->qp_b) {
            set_err(err, errlen, "lossless needs constant QP 0");
            return AVERROR(EINVAL);
        }
        r |= append(params, plen, hevc ? ":lossless=1" : ":qp=0:aq-mode=0");
        if (r) {
            set_err(err, errlen, "encoder parameter string too long");
            return AVERROR(EINVAL);
        }
        return 0;
    }
    switch (cfg->rc_mode) {
    case SWENC_RC_CONSTQP: {
        int qmax = 51 + (cfg->bit_depth > 8 ? 12 : 0);
        int qi = clampi(cfg->qp_i, 0, qmax), qp = clampi(cfg->qp_p, 0, qmax),
            qb = clampi(cfg->qp_b, 0, qmax);
        /* QP_I = QP_P - 6*log2(ipratio), QP_B = QP_P + 6*log2(pbratio) */
        double ipratio = pow(2.0, (qp - qi) / 6.0);
        double pbratio = pow(2.0, (qb - qp) / 6.0);
        r |= append(params, plen, ":qp=%d:ipratio=%.6f:pbratio=%.6f%s", qp, ipratio,
                    pbratio, hevc ? "" : ":aq-mode=0");
        break;
    }
    case SWENC_RC_VBR: {
        int64_t max = cfg->max_bps > 0 ? cfg->max_bps : cfg->avg_bps;
        int64_t vbv = cfg->vbv_bits > 0 ? cfg->vbv_bits : max;
        if (cfg->target_quality >= 0)
            r |= append(params, plen, ":crf=%.2f", (double)cfg->target_quality);
        else
            r |= append(params, plen, ":bitrate=%lld",
                        (long long)(cfg->avg_bps / 1000 > 0 ? cfg->avg_bps / 1000 : 1));
        if (max > 0)
            r |= append(params, plen, ":vbv-maxrate=%lld:vbv-bufsize=%lld",
                        (long long)(max / 1000 > 0 ? max / 1000 : 1),
                        (long long)(vbv / 1000 > 0 ? vbv / 1000 : 1));
        break;
    }
    case SWENC_RC_CBR: {
        int64_t kbps = cfg->avg_bps / 1000 > 0 ? cfg->avg_bps / 1000 : 1;
        int64_t vbv = cfg->vbv_bits / 1000 > 0 ? cfg->vbv_bits / 1000 : kbps;
        r |= append(params, plen, ":bitrate=%lld:vbv-maxrate=%lld:vbv-bufsize=%lld%s",
                    (long long)kbps, (long long)kbps, (long long)vbv,
                    hevc ? ":strict-cbr=1" : ":filler=1");
        break;
    }
    default:
        set_err(err, errlen, "unknown rate control mode %d", cfg->rc_mode);
        return AVERROR(EINVAL);
    }
    if (r) {
        set_err(err, errlen, "encoder parameter string too long");
        return AVERROR(EINVAL);
    }
    return 0;
}

/* The AVCodecContext rate fields for the x264 parameters x26x_params writes (bits/s, bits). */
static void x264_rate_fields(SwencCtx *c)
{
    const SwencConfig *cfg = &c->cfg;
    AVCodecContext *avctx = c->avctx;
    int64_t kbps = cfg->avg_bps / 1000 > 0 ? cfg->avg_bps / 1000 : 1;
    switch (cfg->rc_mode) {
    case SWENC_RC_VBR: {
        int64_t max = cfg->max_bps > 0 ? cfg->max_bps : cfg->avg_bps;
        int64_t vbv = cfg->vbv_bits > 0 ? cfg->vbv_bits : max;
        if (cfg->target_quality < 0)
            avctx->bit_rate = kbps * 1000;
        if (max > 0) {
            avctx->rc_max_rate = (max / 1000 > 0 ? max / 1000 : 1) * 1000;
            avctx->rc_buffer_size = (int)((vbv / 1000 > 0 ? vbv / 1000 : 1) * 1000);
        }
        break;
    }
    case SWENC_RC_CBR: {
        int64_t vbv = cfg->vbv_bits / 1000 > 0 ? cfg->vbv_bits / 1000 : kbps;
        avctx->bit_rate = kbps * 1000;
        avctx->rc_max_rate = kbps * 1000;
        avctx->rc_buffer_size = (int)(vbv * 1000);
        break;
    }
    default:
        break;
    }
}

static int setup_x264(SwencCtx *c, char *err, size_t errlen)
{
    const SwencConfig *cfg = &c->cfg;
    AVCodecContext *avctx = c->avctx;
    int b = cfg->b_frames;
    char params[1024];
    int keyint = cfg->gop_length > 0 ? cfg->gop_length : -1;
    int r = x26x_params(cfg, params, sizeof(params), err, errlen);
    if (r < 0)
        return r;

    av_opt_set(avctx->priv_data, "preset", x26x_preset(cfg->speed), 0);
    if (b == 0)
        av_opt_set(avctx->priv_data, "tune", "zerolatency", 0);
    if (cfg->h264_profile) {
        /* x264_param_apply_profile through libavcodec: fails at open if the profile cannot
         * code this configuration (Baseline with B-frames, Main with 4:4:4). */
        const char *prof = cfg->h264_profile == 66    ? "baseline"
                           : cfg->h264_profile == 77  ? "main"
                           : cfg->h264_profile == 100 ? "high"
                           : cfg->h264_profile == 244 ? "high444"
                                                      : NULL;
        if (!prof) {
            set_err(err, errlen, "unknown H.264 profile_idc %d", cfg->h264_profile);
            return AVERROR(EINVAL);
        }
        r = av_opt_set(avctx->priv_data, "profile", prof, 0);
        if (r < 0) {
            set_averr(err, errlen, "setting the H.264 profile", r);
            return r;
        }
    }
    r = av_opt_set(avctx->priv_data, "x264-params", params, 0);
    if (r < 0) {
        set_averr(err, errlen, "setting x26x params", r);
        return r;
    }
    /* The libavcodec wrappers map AVCodecContext fields too; keep them consistent. libx264's
     * wrapper compares bit_rate, rc_max_rate and rc_buffer_size with x264's parameters before
     * every frame and reconfigures x264 where they differ (reconfig_encoder): they must hold
     * what x264-params set, and a live rate change (swenc_set_rate) goes through them. */
    x264_rate_fields(c);
    avctx->gop_size = keyint > 0 ? keyint : -1;
    avctx->keyint_min = keyint > 0 ? keyint : -1;
    avctx->max_b_frames = b;
    avctx->thread_count = 1;
    avctx->refs = 1 + (b > 0);
    return 0;
}

static int setup_aom(SwencCtx *c, char *err, size_t errlen)
{
    const SwencConfig *cfg = &c->cfg;
    AVCodecContext *avctx = c->avctx;
    int r = 0;
    (void)err;
    (void)errlen;
    r |= av_opt_set_int(avctx->priv_data, "usage", 1 /* AOM_USAGE_REALTIME */, 0);
    r |= av_opt_set_int(avctx->priv_data, "cpu-used", aom_cpu_used(cfg->speed), 0);
    r |= av_opt_set_int(avctx->priv_data, "lag-in-frames", 0, 0);
    r |= av_opt_set_int(avctx->priv_data, "row-mt", 1, 0);
    r |= av_opt_set_int(avctx->priv_data, "aq-mode", 0, 0);
    if (r < 0) {
        set_averr(err, errlen, "setting libaom options", r);
        return r;
    }
    avctx->thread_count = 2;
    /* libaom places no key frame by itself: its interval would not restart at a forced key
     * frame (realtime mode: a forced key at 7 with kf_max_dist 5 still gave one at 10), while
     * NVENC's IDR period does. swenc_send forces every key frame instead (gop_length for
     * SWENC_KIND_AUTO, counted from the last key frame of any kind). */
    avctx->gop_size = INT32_MAX / 2;
    avctx->keyint_min = INT32_MAX / 2;
    avctx->max_b_frames = 0; /* no reordering: AV1 output is in presentation order */
    switch (cfg->rc_mode) {
    case SWENC_RC_CONSTQP: {
        /* One qindex for every frame type (libaom cannot take per-type QPs through
         * libavcodec): the P value, or I when there are only intra frames. */
        int q = av1_qindex_to_aomq(cfg->gop_length == 1 ? cfg->qp_i : cfg->qp_p);
        avctx->bit_rate = 0;
        avctx->qmin = q;
        avctx->qmax = q;
        r = av_opt_set_int(avctx->priv_data, "crf", q, 0);
        break;
    }
    case SWENC_RC_VBR:
        avctx->bit_rate = cfg->avg_bps;
        avctx->rc_max_rate = cfg->max_bps > 0 ? cfg->max_bps : cfg->avg_bps;
        avctx->rc_buffer_size = cfg->vbv_bits > 0 ? (int)cfg->vbv_bits : (int)avctx->rc_max_rate;
        if (cfg->target_quality >= 0)
            r = av_opt_set_int(avctx->priv_data, "crf",
                               av1_qindex_to_aomq((int)(cfg->target_quality * 4)), 0);
        break;
    case SWENC_RC_CBR:
        avctx->bit_rate = cfg->avg_bps;
        avctx->rc_min_rate = cfg->avg_bps;
        avctx->rc_max_rate = cfg->avg_bps;
        avctx->rc_buffer_size = cfg->vbv_bits > 0 ? (int)cfg->vbv_bits : (int)cfg->avg_bps;
        break;
    default:
        set_err(err, errlen, "unknown rate control mode %d", cfg->rc_mode);
        return AVERROR(EINVAL);
    }
    if (r < 0) {
        set_averr(err, errlen, "setting libaom crf", r);
        return r;
    }
    return 0;
}

/* ---- H.265 through libx265's API ---------------------------------------------------------- */

static int xq_push(SwencCtx *c, const x265_nal *nal, uint32_t nn, const x265_picture *out)
{
    size_t size = 0;
    XPacket pk;
    /* After a live rate change, x265 3.5 (strict-cbr) still pads every picture with filler data
     * up to the rate it was opened with: its filler NAL units are dropped then (NVENC writes no
     * filler unless enableFillerDataInsertion is set). */
    const uint32_t drop_type = c->xbits > 0 ? 38 /* FD_NUT */ : UINT32_MAX;
    for (uint32_t i = 0; i < nn; i++)
        if (nal[i].type != drop_type)
            size += nal[i].sizeBytes;
    if (c->xhead > 0 && c->xhead == c->xlen)
        c->xhead = c->xlen = 0;
    if (c->xlen == c->xcap) {
        size_t cap = c->xcap ? c->xcap * 2 : 16;
        XPacket *q = av_realloc_array(c->xq, cap, sizeof(*q));
        if (!q)
            return AVERROR(ENOMEM);
        c->xq = q;
        c->xcap = cap;
    }
    pk.data = av_malloc(size ? size : 1);
    if (!pk.data)
        return AVERROR(ENOMEM);
    pk.size = 0;
    for (uint32_t i = 0; i < nn; i++) {
        if (nal[i].type == drop_type)
            continue;
        memcpy(pk.data + pk.size, nal[i].payload, nal[i].sizeBytes);
        pk.size += nal[i].sizeBytes;
    }
    pk.pts = out->pts;
    pk.key = out->sliceType == X265_TYPE_IDR;
    pk.qp = out->frameData.qp;
    c->xlast_qp = out->frameData.qp;
    if (!c->xfixed && c->xbits <= 0) {
        c->xqp_sum += out->frameData.qp;
        c->xqp_n++;
    }
    if (c->xfixed && c->xtarget >= 0) {
        /* steer the forced P QP so that the pictures' mean QP meets the target */
        c->xfbase = clampd(c->xfbase + 0.5 * (c->xtarget - out->frameData.qp), 0, 51);
        c->xfqp[0] = clampd(c->xfbase - 3, 0, 51);
        c->xfqp[1] = c->xfbase;
        c->xfqp[2] = clampd(c->xfbase + 2, 0, 51);
    }
    if (c->xbits > 0) {
        /* Proportional step on this picture's size, plus a step while the coded bits run
         * more than the VBV size (or one second, without VBV) away from the target. */
        double bits = (double)size * 8.0, lim = c->xvbv > 0 ? c->xvbv : c->xbits * 30.0;
        double step = 6.0 * log2((bits > 1 ? bits : 1) / c->xbits) * 0.3;
        c->xdebt += bits - c->xbits;
        step = step > 3 ? 3 : step < -3 ? -3 : step;
        if (c->xdebt > lim)
            step += 1;
        else if (c->xdebt < -lim)
            step -= 1;
        c->xqp = c->xqp + step < 1 ? 1 : c->xqp + step > 51 ? 51 : c->xqp + step;
    }
    pk.pict_type = IS_X265_TYPE_I(out->sliceType)   ? AV_PICTURE_TYPE_I
                   : IS_X265_TYPE_B(out->sliceType) ? AV_PICTURE_TYPE_B
                                                    : AV_PICTURE_TYPE_P;
    c->xq[c->xlen++] = pk;
    return 0;
}

/* One x265_encoder_encode call (pic == NULL: flush); queues the picture it gives out.
 * Returns 1 if one came out, 0 if none, < 0 on error. */
static int x265_step(SwencCtx *c, x265_picture *pic, char *err, size_t errlen)
{
    x265_nal *nal = NULL;
    uint32_t nn = 0;
    x265_picture out;
    int r;
    c->x265->picture_init(c->xparam, &out);
    r = c->x265->encoder_encode(c->xenc, &nal, &nn, pic, &out);
    if (r < 0) {
        set_err(err, errlen, "x265_encoder_encode failed (%d)", r);
        return AVERROR_EXTERNAL;
    }
    if (r == 0)
        return 0;
    if (xq_push(c, nal, nn, &out) < 0) {
        set_err(err, errlen, "out of memory");
        return AVERROR(ENOMEM);
    }
    return 1;
}

/* After an anchor frame: takes every frame x265 holds out (coded, in coding order), then
 * re-arms the lookahead so that the next frame continues the same sequence. */
static int x265_flush_minigop(SwencCtx *c, char *err, size_t errlen)
{
    int r;
    while ((r = x265_step(c, NULL, err, errlen)) > 0)
        ;
    if (r < 0)
        return r;
    c->x265->encoder_parameters(c->xenc, c->xparam);
    c->xparam->forceFlush = 1; /* applied (and cleared) by x265 at the next picture */
    r = c->x265->encoder_reconfig(c->xenc, c->xparam);
    c->xparam->forceFlush = 0;
    if (r < 0) {
        set_err(err, errlen, "x265_encoder_reconfig(forceFlush) failed (%d)", r);
        return AVERROR_EXTERNAL;
    }
    return 0;
}

static int x265_parse(SwencCtx *c, const char *k, const char *v, char *err, size_t errlen)
{
    int r = c->x265->param_parse(c->xparam, k, v);
    if (r) {
        set_err(err, errlen, "x265 rejected %s=%s (%d)", k, v, r);
        return AVERROR(EINVAL);
    }
    return 0;
}

static int open_x265(SwencCtx *c, char *err, size_t errlen)
{
    const SwencConfig *cfg = &c->cfg;
    char params[1024], *save = NULL, *tok;
    x265_param *p;
    int r = x26x_params(cfg, params, sizeof(params), err, errlen);
    if (r < 0)
        return r;
    c->x265 = x265_api_get(cfg->bit_depth);
    if (!c->x265) {
        set_err(err, errlen, "this libx265 has no %d-bit encoder", cfg->bit_depth);
        return AVERROR(ENOSYS);
    }
    p = c->xparam = c->x265->param_alloc();
    if (!p) {
        set_err(err, errlen, "out of memory");
        return AVERROR(ENOMEM);
    }
    if (c->x265->param_default_preset(p, x26x_preset(cfg->speed),
                                      cfg->b_frames == 0 ? "zerolatency" : NULL) < 0) {
        set_err(err, errlen, "x265 rejected its preset");
        return AVERROR(EINVAL);
    }
    p->sourceWidth = cfg->width;
    p->sourceHeight = cfg->height;
    p->fpsNum = (uint32_t)cfg->fps_num;
    p->fpsDenom = (uint32_t)cfg->fps_den;
    p->internalCsp = cfg->chroma_444 ? X265_CSP_I444 : X265_CSP_I420;
    p->sourceBitDepth = cfg->bit_depth;
    /* VUI as libavcodec's libx265 wrapper writes it */
    p->vui.bEnableVideoSignalTypePresentFlag = 1;
    p->vui.bEnableVideoFullRangeFlag = cfg->has_colour && cfg->full_range;
    if (cfg->has_colour && (cfg->primaries != 2 || cfg->transfer != 2 || cfg->matrix != 2)) {
        p->vui.bEnableColorDescriptionPresentFlag = 1;
        p->vui.colorPrimaries = cfg->primaries;
        p->vui.transferCharacteristics = cfg->transfer;
        p->vui.matrixCoeffs = cfg->matrix;
    }
    if ((r = x265_parse(c, "sar", "1:1", err, errlen)) < 0)
        return r;
    for (tok = strtok_r(params, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            set_err(err, errlen, "malformed x265 parameter %s", tok);
            return AVERROR(EINVAL);
        }
        *eq = 0;
        if ((r = x265_parse(c, tok, eq + 1, err, errlen)) < 0)
            return r;
    }
    /* x265 needs at least one CTU in each direction; small pictures get smaller CTUs. */
    {
        int m = cfg->width < cfg->height ? cfg->width : cfg->height;
        const char *ctu = m >= 64 ? NULL : m >= 32 ? "32" : "16";
        if (ctu && (int)p->maxCUSize > m && (r = x265_parse(c, "ctu", ctu, err, errlen)) < 0)
            return r;
    }
    c->xenc = c->x265->encoder_open(p);
    if (!c->xenc) {
        set_err(err, errlen, "x265_encoder_open failed for %dx%d %d-bit %s", cfg->width,
                cfg->height, cfg->bit_depth, cfg->chroma_444 ? "4:4:4" : "4:2:0");
        return AVERROR_EXTERNAL;
    }
    return 0;
}

/* x265 changes bitrate and VBV live through x265_encoder_reconfig, x264 through libavcodec's
 * wrapper, which applies new bit_rate / rc_max_rate / rc_buffer_size with
 * x264_encoder_reconfig before the next frame; both need VBV on from the start, which CBR and
 * capped VBR have. Other modes and encoders (libaom) answer 0. */
int swenc_set_rate(SwencCtx *c, int64_t avg_bps, int64_t max_bps, int64_t vbv_bits, char *err,
                   size_t errlen)
{
    if (!c) {
        set_err(err, errlen, "no encoder");
        return AVERROR(EINVAL);
    }
    if (c->cfg.rc_mode == SWENC_RC_CONSTQP || c->cfg.target_quality >= 0)
        return 0;
    if (c->cfg.codec == SWENC_H264 && c->avctx) {
        if (c->avctx->rc_max_rate <= 0 || c->avctx->rc_buffer_size <= 0)
            return 0;
        c->cfg.avg_bps = avg_bps;
        c->cfg.max_bps = c->cfg.rc_mode == SWENC_RC_CBR ? avg_bps : max_bps;
        if (vbv_bits > 0)
            c->cfg.vbv_bits = vbv_bits;
        x264_rate_fields(c);
        return 1;
    }
    if (!c->xenc)
        return 0;
    /* x265: the controller above holds the new rate from the next picture on. The bits per
     * picture are at the frame rate x265 was opened with (the caller scales the rate for a new
     * frame rate). */
    c->xbits = (double)avg_bps * c->cfg.fps_den / c->cfg.fps_num;
    c->xvbv = (double)(vbv_bits > 0 ? vbv_bits : c->cfg.vbv_bits);
    c->xdebt = 0;
    if (c->xqp <= 0)
        c->xqp = c->xlast_qp > 0 ? c->xlast_qp : 30;
    c->cfg.avg_bps = avg_bps;
    c->cfg.max_bps = max_bps;
    if (vbv_bits > 0)
        c->cfg.vbv_bits = vbv_bits;
    return 1;
}

/* A new constant QP (constant QP mode) or target quality (VBR with target quality), without a
 * new sequence:
 * - libx264 (libavcodec): a target quality through the wrapper's "crf" option, which it
 *   applies with x264_encoder_reconfig before the next frame (x264 reconfigures rf_constant
 *   live). Constant QP: x264_encoder_reconfig does not take a new qp_constant (its
 *   encoder_try_reconfig copies VBV, bitrate and CRF only) and the wrapper has no per-frame
 *   QP: 0.
 * - libx265: a fixed QP per picture type from then on (x265_picture.forceqp): the constant
 *   QPs exactly; for a target quality, the pictures' mean QP is held at the mean x265 chose
 *   so far moved by the change of target (CRF and QP move one for one in x265's rate
 *   control), the forced P QP steered towards it picture by picture, I pictures 3 below and
 *   B 2 above (x265's default ipratio 1.4 and pbratio 1.3 in QP steps). An approximation:
 *   x265's own choice per picture stops. x265_encoder_reconfig with a new rc.rfConstant is
 *   accepted by x265 3.5 but has no effect (measured: mean QP 29.3 at CRF 40, 29.0 after a
 *   change to 20, over 30 frames each).
 * - libaom: no live API through FFmpeg 5.1's wrapper: 0.
 * 1: applied from the next frame on; 0: not possible (nothing changed); < 0: error. */
int swenc_set_quality(SwencCtx *c, int32_t qp_i, int32_t qp_p, int32_t qp_b, float tq,
                      char *err, size_t errlen)
{
    if (!c) {
        set_err(err, errlen, "no encoder");
        return AVERROR(EINVAL);
    }
    if (c->cfg.lossless)
        return 0;
    if (c->cfg.rc_mode == SWENC_RC_CONSTQP) {
        if (!c->xenc)
            return 0;
        c->xfixed = 1;
        c->xtarget = -1;
        c->xfqp[0] = clampi(qp_i, 0, 51);
        c->xfqp[1] = clampi(qp_p, 0, 51);
        c->xfqp[2] = clampi(qp_b, 0, 51);
        c->cfg.qp_i = qp_i, c->cfg.qp_p = qp_p, c->cfg.qp_b = qp_b;
        return 1;
    }
    if (c->cfg.rc_mode != SWENC_RC_VBR || c->cfg.target_quality < 0 || tq < 0)
        return 0;
    if (c->cfg.codec == SWENC_H264 && c->avctx) {
        int r = av_opt_set_double(c->avctx->priv_data, "crf", tq, 0);
        if (r < 0) {
            set_averr(err, errlen, "libx264 crf", r);
            return r;
        }
        c->cfg.target_quality = tq;
        return 1;
    }
    if (!c->xenc)
        return 0;
    if (!c->xfixed) {
        c->xcrf_off = c->xqp_n > 0 ? c->xqp_sum / c->xqp_n - c->cfg.target_quality : 0;
        c->xfixed = 1;
    }
    c->xtarget = clampd(tq + c->xcrf_off, 0, 51);
    c->xfbase = c->xtarget;
    c->xfqp[0] = clampd(c->xfbase - 3, 0, 51);
    c->xfqp[1] = c->xfbase;
    c->xfqp[2] = clampd(c->xfbase + 2, 0, 51);
    c->cfg.target_quality = tq;
    return 1;
}

int swenc_x265_headers(SwencCtx *c, uint8_t *out, size_t cap, size_t *len)
{
    x265_nal *nal = NULL;
    uint32_t nn = 0;
    size_t size = 0;
    if (!c || !len)
        return AVERROR(EINVAL);
    if (!c->xenc)
        return 0;
    if (c->x265->encoder_headers(c->xenc, &nal, &nn) < 0)
        return AVERROR_EXTERNAL;
    for (uint32_t i = 0; i < nn; i++)
        size += nal[i].sizeBytes;
    *len = size;
    if (size > cap || !out)
        return AVERROR(ENOSPC);
    size = 0;
    for (uint32_t i = 0; i < nn; i++) {
        memcpy(out + size, nal[i].payload, nal[i].sizeBytes);
        size += nal[i].sizeBytes;
    }
    return 1;
}

static void close_x265(SwencCtx *c)
{
    if (c->xenc)
        c->x265->encoder_close(c->xenc);
    if (c->xparam)
        c->x265->param_free(c->xparam);
    for (size_t i = c->xhead; i < c->xlen; i++)
        av_free(c->xq[i].data);
    av_free(c->xq);
    av_free(c->xcur.data);
}

static int x265_send(SwencCtx *c, AVFrame *f, int64_t pts, int32_t kind, char *err, size_t errlen)
{
    x265_picture pic;
    int r;
    c->x265->picture_init(c->xparam, &pic);
    for (int i = 0; i < 3; i++) {
        pic.planes[i] = f->data[i];
        pic.stride[i] = f->linesize[i];
    }
    if (!c->xoffsets) {
        /* x265 copies cuCount floats of quantOffsets at x265_encoder_encode: one per 16x16
         * block of its (padded) picture in its lowres grid (Lowres::create: (width/2 + 7) / 8
         * blocks per row; 8x8 blocks with qg-size 8). It allocates a frame's offsets only if
         * the picture that made the frame had some, and frames are recycled: so every
         * picture passes them (zeros without a map, which add nothing to its AQ offsets). */
        x265_param ep;
        c->x265->encoder_parameters(c->xenc, &ep);
        c->xoff_bs = ep.rc.qgSize == 8 ? 8 : 16;
        c->xoff_w = ((ep.sourceWidth / 2 + 7) / 8) * (16 / c->xoff_bs);
        c->xoff_h = ((ep.sourceHeight / 2 + 7) / 8) * (16 / c->xoff_bs);
        c->xoffsets = av_calloc((size_t)c->xoff_w * c->xoff_h, sizeof(float));
        if (!c->xoffsets) {
            set_err(err, errlen, "out of memory");
            return AVERROR(ENOMEM);
        }
    }
    if (!c->qmap_pending) {
        memset(c->xoffsets, 0, (size_t)c->xoff_w * c->xoff_h * sizeof(float));
    } else {
        for (int y = 0; y < c->xoff_h; y++) {
            int r = y * c->xoff_bs / c->qblock;
            if (r >= c->qrows)
                r = c->qrows - 1;
            for (int x = 0; x < c->xoff_w; x++) {
                int col = x * c->xoff_bs / c->qblock;
                if (col >= c->qcols)
                    col = c->qcols - 1;
                c->xoffsets[y * c->xoff_w + x] = (float)c->qmap[r * c->qcols + col];
            }
        }
    }
    pic.quantOffsets = c->xoffsets;
    c->qmap_pending = 0;
    pic.bitDepth = c->cfg.bit_depth;
    pic.colorSpace = c->xparam->internalCsp;
    pic.pts = pts;
    if (c->xfixed)
        pic.forceqp = (int)lround(c->xfqp[kind == SWENC_KIND_IDR || kind == SWENC_KIND_I ? 0
                                          : kind == SWENC_KIND_B                         ? 2
                                                                                         : 1]) +
                      1;
    else if (c->xbits > 0)
        pic.forceqp = (int)lround(c->xqp) + 1; /* QP + 1; 0 = x265's rate control */
    switch (kind) {
    case SWENC_KIND_IDR:
        pic.sliceType = X265_TYPE_IDR;
        break;
    case SWENC_KIND_I:
        pic.sliceType = X265_TYPE_I;
        break;
    case SWENC_KIND_P:
        pic.sliceType = X265_TYPE_P;
        break;
    case SWENC_KIND_B:
        pic.sliceType = X265_TYPE_B;
        break;
    default:
        pic.sliceType = X265_TYPE_AUTO;
        break;
    }
    r = x265_step(c, &pic, err, errlen);
    if (r < 0)
        return r;
    if (c->cfg.b_frames > 0 && kind != SWENC_KIND_B && kind != SWENC_KIND_AUTO)
        return x265_flush_minigop(c, err, errlen);
    return 0;
}

static int x265_receive(SwencCtx *c, SwencPacket *out)
{
    av_freep(&c->xcur.data);
    if (c->xhead == c->xlen)
        return c->flushed && c->xeof ? 2 : 0;
    c->xcur = c->xq[c->xhead++];
    out->data = c->xcur.data;
    out->size = c->xcur.size;
    out->pts = c->xcur.pts;
    out->key = c->xcur.key;
    out->pict_type = c->xcur.pict_type;
    out->qp = c->xcur.qp;
    return 1;
}

SwencCtx *swenc_open(const SwencConfig *cfg, char *err, size_t errlen)
{
    SwencCtx *c;
    const char *name;
    int r;

    if (!cfg) {
        set_err(err, errlen, "no configuration");
        return NULL;
    }
    if (cfg->width <= 0 || cfg->height <= 0 || cfg->width > 16384 || cfg->height > 16384) {
        set_err(err, errlen, "invalid size %dx%d", cfg->width, cfg->height);
        return NULL;
    }
    if (cfg->bit_depth != 8 && cfg->bit_depth != 10) {
        set_err(err, errlen, "unsupported bit depth %d", cfg->bit_depth);
        return NULL;
    }
    if (cfg->fps_num <= 0 || cfg->fps_den <= 0) {
        set_err(err, errlen, "invalid frame rate %d/%d", cfg->fps_num, cfg->fps_den);
        return NULL;
    }
    if (cfg->b_frames < 0 || cfg->b_frames > 16) {
        set_err(err, errlen, "invalid b_frames %d", cfg->b_frames);
        return NULL;
    }
    if (cfg->codec != SWENC_AV1 && !cfg->chroma_444 && ((cfg->width | cfg->height) & 1)) {
        set_err(err, errlen, "4:2:0 H.264/H.265 needs an even size, got %dx%d", cfg->width,
                cfg->height);
        return NULL;
    }
    switch (cfg->codec) {
    case SWENC_H264:
        name = "libx264";
        break;
    case SWENC_HEVC:
        name = "libx265";
        break;
    case SWENC_AV1:
        name = "libaom-av1";
        break;
    default:
        set_err(err, errlen, "unknown codec %d", cfg->codec);
        return NULL;
    }

    c = av_mallocz(sizeof(*c));
    if (!c) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (cfg->bit_depth == 10)
        c->enc_fmt = cfg->chroma_444 ? AV_PIX_FMT_YUV444P10LE : AV_PIX_FMT_YUV420P10LE;
    else
        c->enc_fmt = cfg->chroma_444 ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P;
    if (cfg->codec == SWENC_HEVC) {
        (void)name;
        if (open_x265(c, err, errlen) < 0)
            goto fail;
        return c;
    }
    c->codec = avcodec_find_encoder_by_name(name);
    if (!c->codec) {
        set_err(err, errlen, "encoder %s is not available in this libavcodec", name);
        goto fail;
    }
    c->avctx = avcodec_alloc_context3(c->codec);
    c->pkt = av_packet_alloc();
    if (!c->avctx || !c->pkt) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    c->avctx->width = cfg->width;
    c->avctx->height = cfg->height;
    c->avctx->pix_fmt = c->enc_fmt;
    /* Timestamps given to the encoder are frame numbers (the Rust side maps them back). */
    c->avctx->time_base = (AVRational){ cfg->fps_den, cfg->fps_num };
    c->avctx->framerate = (AVRational){ cfg->fps_num, cfg->fps_den };
    c->avctx->sample_aspect_ratio = (AVRational){ 1, 1 };
    if (cfg->has_colour) {
        c->avctx->color_primaries = cfg->primaries;
        c->avctx->color_trc = cfg->transfer;
        c->avctx->colorspace = cfg->matrix;
        c->avctx->color_range = cfg->full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    }
    if (cfg->chroma_444)
        c->avctx->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;

    r = cfg->codec == SWENC_AV1 ? setup_aom(c, err, errlen) : setup_x264(c, err, errlen);
    if (r < 0)
        goto fail;

    r = avcodec_open2(c->avctx, c->codec, NULL);
    if (r < 0) {
        char what[64];
        snprintf(what, sizeof(what), "avcodec_open2(%s)", name);
        set_averr(err, errlen, what, r);
        goto fail;
    }
    return c;

fail:
    swenc_close(c);
    return NULL;
}

void swenc_close(SwencCtx *c)
{
    if (!c)
        return;
    close_x265(c);
    av_free(c->qmap);
    av_free(c->xoffsets);
    avcodec_free_context(&c->avctx);
    av_packet_free(&c->pkt);
    sws_freeContext(c->sws);
    av_free(c);
}

/* Byte layout of one NVENC input buffer. */
typedef struct Layout {
    int nplanes;
    size_t off[3], pitch[3];
    size_t rows[3], rowbytes[3];
} Layout;

static int layout_of(int fmt, int w, int h, size_t pitch, size_t ha, Layout *l)
{
    size_t cw = (size_t)(w + 1) / 2, ch = (size_t)(h + 1) / 2, cha = (ha + 1) / 2;
    size_t cp = (pitch + 1) / 2;
    memset(l, 0, sizeof(*l));
    switch (fmt) {
    case SWENC_FMT_NV12:
    case SWENC_FMT_P010: {
        size_t bpc = fmt == SWENC_FMT_P010 ? 2 : 1;
        l->nplanes = 2;
        l->off[0] = 0, l->pitch[0] = pitch, l->rows[0] = h, l->rowbytes[0] = w * bpc;
        l->off[1] = pitch * ha, l->pitch[1] = pitch, l->rows[1] = ch, l->rowbytes[1] = cw * 2 * bpc;
        return 0;
    }
    case SWENC_FMT_YV12:
    case SWENC_FMT_IYUV:
        l->nplanes = 3;
        l->off[0] = 0, l->pitch[0] = pitch, l->rows[0] = h, l->rowbytes[0] = w;
        /* plane 1 = U, plane 2 = V in the layout; YV12 stores V first */
        l->off[1] = pitch * ha, l->off[2] = pitch * ha + cp * cha;
        if (fmt == SWENC_FMT_YV12) {
            size_t t = l->off[1];
            l->off[1] = l->off[2];
            l->off[2] = t;
        }
        l->pitch[1] = l->pitch[2] = cp;
        l->rows[1] = l->rows[2] = ch;
        l->rowbytes[1] = l->rowbytes[2] = cw;
        return 0;
    case SWENC_FMT_YUV444:
    case SWENC_FMT_YUV444_10: {
        size_t bpc = fmt == SWENC_FMT_YUV444_10 ? 2 : 1;
        l->nplanes = 3;
        for (int i = 0; i < 3; i++) {
            l->off[i] = pitch * ha * i, l->pitch[i] = pitch, l->rows[i] = h;
            l->rowbytes[i] = w * bpc;
        }
        return 0;
    }
    case SWENC_FMT_ARGB:
    case SWENC_FMT_ABGR:
    case SWENC_FMT_AYUV:
    case SWENC_FMT_ARGB10:
    case SWENC_FMT_ABGR10:
        l->nplanes = 1;
        l->off[0] = 0, l->pitch[0] = pitch, l->rows[0] = h, l->rowbytes[0] = (size_t)w * 4;
        return 0;
    default:
        return -1;
    }
}

static AVFrame *alloc_frame(enum AVPixelFormat fmt, int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = fmt;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        av_frame_free(&f);
    return f;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* Converts the YUV buffer formats into planar frames without any filtering. */
static AVFrame *yuv_to_planar(int fmt, const uint8_t *d, const Layout *l, int w, int h)
{
    int ten = fmt == SWENC_FMT_P010 || fmt == SWENC_FMT_YUV444_10;
    int s444 = fmt == SWENC_FMT_YUV444 || fmt == SWENC_FMT_YUV444_10 || fmt == SWENC_FMT_AYUV;
    enum AVPixelFormat pf = ten ? (s444 ? AV_PIX_FMT_YUV444P10LE : AV_PIX_FMT_YUV420P10LE)
                                : (s444 ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P);
    AVFrame *f = alloc_frame(pf, w, h);
    int cw = s444 ? w : (w + 1) / 2, ch = s444 ? h : (h + 1) / 2;
    if (!f)
        return NULL;
    switch (fmt) {
    case SWENC_FMT_YV12:
    case SWENC_FMT_IYUV:
    case SWENC_FMT_YUV444:
        for (int p = 0; p < 3; p++)
            av_image_copy_plane(f->data[p], f->linesize[p], d + l->off[p], (int)l->pitch[p],
                                (int)l->rowbytes[p], (int)l->rows[p]);
        break;
    case SWENC_FMT_NV12:
        av_image_copy_plane(f->data[0], f->linesize[0], d, (int)l->pitch[0], w, h);
        for (int y = 0; y < ch; y++) {
            const uint8_t *s = d + l->off[1] + l->pitch[1] * y;
            uint8_t *u = f->data[1] + f->linesize[1] * y, *v = f->data[2] + f->linesize[2] * y;
            for (int x = 0; x < cw; x++) {
                u[x] = s[2 * x];
                v[x] = s[2 * x + 1];
            }
        }
        break;
    case SWENC_FMT_P010:
        for (int y = 0; y < h; y++) {
            const uint8_t *s = d + l->pitch[0] * y;
            uint16_t *o = (uint16_t *)(f->data[0] + f->linesize[0] * y);
            for (int x = 0; x < w; x++)
                o[x] = rd16(s + 2 * x) >> 6;
        }
        for (int y = 0; y < ch; y++) {
            const uint8_t *s = d + l->off[1] + l->pitch[1] * y;
            uint16_t *u = (uint16_t *)(f->data[1] + f->linesize[1] * y);
            uint16_t *v = (uint16_t *)(f->data[2] + f->linesize[2] * y);
            for (int x = 0; x < cw; x++) {
                u[x] = rd16(s + 4 * x) >> 6;
                v[x] = rd16(s + 4 * x + 2) >> 6;
            }
        }
        break;
    case SWENC_FMT_YUV444_10:
        for (int p = 0; p < 3; p++)
            for (int y = 0; y < h; y++) {
                const uint8_t *s = d + l->off[p] + l->pitch[p] * y;
                uint16_t *o = (uint16_t *)(f->data[p] + f->linesize[p] * y);
                for (int x = 0; x < w; x++)
                    o[x] = rd16(s + 2 * x) >> 6;
            }
        break;
    case SWENC_FMT_AYUV: /* word order A8Y8U8V8, V in the lowest byte: memory V,U,Y,A */
        for (int y = 0; y < h; y++) {
            const uint8_t *s = d + l->pitch[0] * y;
            uint8_t *Y = f->data[0] + f->linesize[0] * y, *U = f->data[1] + f->linesize[1] * y,
                    *V = f->data[2] + f->linesize[2] * y;
            for (int x = 0; x < w; x++) {
                V[x] = s[4 * x];
                U[x] = s[4 * x + 1];
                Y[x] = s[4 * x + 2];
            }
        }
        break;
    default:
        av_frame_free(&f);
        return NULL;
    }
    return f;
}

/* ISO/IEC 23091-4 matrix code -> swscale coefficient table. */
static int sws_cs_of(const SwencConfig *cfg)
{
    int m = cfg->has_colour ? cfg->matrix : (cfg->height > 576 ? 1 : 6);
    switch (m) {
    case 1:
        return SWS_CS_ITU709;
    case 4:
        return SWS_CS_FCC;
    case 7:
        return SWS_CS_SMPTE240M;
    case 9:
    case 10:
        return SWS_CS_BT2020;
    default:
        return SWS_CS_ITU601;
    }
}

static int scale_into(SwencCtx *c, AVFrame *dst, enum AVPixelFormat sfmt, const uint8_t *const sdata[4],
                      const int slines[4], int rgb, char *err, size_t errlen)
{
    const SwencConfig *cfg = &c->cfg;
    int r;
    c->sws = sws_getCachedContext(c->sws, cfg->width, cfg->height, sfmt, cfg->width, cfg->height,
                                  c->enc_fmt,
                                  SWS_POINT | SWS_ACCURATE_RND | SWS_BITEXACT |
                                      (rgb ? SWS_FULL_CHR_H_INP | SWS_FULL_CHR_H_INT : 0),
                                  NULL, NULL, NULL);
    if (!c->sws) {
        set_err(err, errlen, "libswscale cannot convert %s to %s", av_get_pix_fmt_name(sfmt),
                av_get_pix_fmt_name(c->enc_fmt));
        return AVERROR(ENOSYS);
    }
    if (rgb) {
        const int *coef = sws_getCoefficients(sws_cs_of(cfg));
        sws_setColorspaceDetails(c->sws, coef, 1, coef, cfg->has_colour && cfg->full_range, 0,
                                 1 << 16, 1 << 16);
    }
    r = sws_scale(c->sws, sdata, slines, 0, cfg->height, dst->data, dst->linesize);
    if (r < 0) {
        set_averr(err, errlen, "sws_scale", r);
        return r;
    }
    return 0;
}

static AVFrame *convert_input(SwencCtx *c, int fmt, const uint8_t *d, const Layout *l, char *err,
                              size_t errlen)
{
    const SwencConfig *cfg = &c->cfg;
    int w = cfg->width, h = cfg->height;
    AVFrame *out;
    enum AVPixelFormat packed = AV_PIX_FMT_NONE;

    switch (fmt) {
    case SWENC_FMT_ARGB: /* word order A8R8G8B8, B lowest: memory B,G,R,A */
        packed = AV_PIX_FMT_BGRA;
        break;
    case SWENC_FMT_ABGR: /* R lowest: memory R,G,B,A */
        packed = AV_PIX_FMT_RGBA;
        break;
    case SWENC_FMT_ARGB10: /* A2R10G10B10, B in the lowest 10 bits */
        packed = AV_PIX_FMT_X2RGB10LE;
        break;
    case SWENC_FMT_ABGR10: /* A2B10G10R10, R in the lowest 10 bits */
        packed = AV_PIX_FMT_X2BGR10LE;
        break;
    default:
        break;
    }
    if (packed != AV_PIX_FMT_NONE) {
        const uint8_t *sdata[4] = { d, NULL, NULL, NULL };
        int slines[4] = { (int)l->pitch[0], 0, 0, 0 };
        out = alloc_frame(c->enc_fmt, w, h);
        if (!out) {
            set_err(err, errlen, "out of memory");
            return NULL;
        }
        if (scale_into(c, out, packed, sdata, slines, 1, err, errlen) < 0)
            av_frame_free(&out);
        return out;
    }

    AVFrame *native = yuv_to_planar(fmt, d, l, w, h);
    if (!native) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (native->format == c->enc_fmt)
        return native;
    /* depth or chroma-format change (e.g. 8-bit input into a 10-bit encode) */
    out = alloc_frame(c->enc_fmt, w, h);
    if (!out) {
        av_frame_free(&native);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (scale_into(c, out, native->format, (const uint8_t *const *)native->data, native->linesize, 0,
                   err, errlen) < 0)
        av_frame_free(&out);
    av_frame_free(&native);
    return out;
}

/* libx264 through libavcodec: the pending QP map as regions of interest, one per run of
 * equal non-zero deltas in a row of blocks. The wrapper writes qoffset * qp_range (51 at 8
 * bits) into quant_offsets of every macroblock a region overlaps, so qoffset = delta /
 * qp_range gives the delta exactly. */
static int attach_rois(SwencCtx *c, AVFrame *f)
{
    int qp_range = 51 + 6 * (c->cfg.bit_depth - 8);
    size_t n = 0, i = 0;
    AVFrameSideData *sd;
    AVRegionOfInterest *roi;
    for (int y = 0; y < c->qrows; y++)
        for (int x = 0; x < c->qcols; x++) {
            int8_t d = c->qmap[y * c->qcols + x];
            if (d != 0 && (x == 0 || c->qmap[y * c->qcols + x - 1] != d))
                n++;
        }
    if (n == 0)
        return 0;
    sd = av_frame_new_side_data(f, AV_FRAME_DATA_REGIONS_OF_INTEREST,
                                n * sizeof(AVRegionOfInterest));
    if (!sd)
        return AVERROR(ENOMEM);
    roi = (AVRegionOfInterest *)sd->data;
    for (int y = 0; y < c->qrows; y++)
        for (int x = 0; x < c->qcols;) {
            int8_t d = c->qmap[y * c->qcols + x];
            int x1 = x + 1;
            while (x1 < c->qcols && c->qmap[y * c->qcols + x1] == d)
                x1++;
            if (d != 0) {
                roi[i].self_size = sizeof(AVRegionOfInterest);
                roi[i].left = x * c->qblock;
                roi[i].right = x1 * c->qblock;
                roi[i].top = y * c->qblock;
                roi[i].bottom = (y + 1) * c->qblock;
                roi[i].qoffset = (AVRational){d, qp_range};
                i++;
            }
            x = x1;
        }
    return 0;
}

int swenc_send(SwencCtx *c, int32_t fmt, const uint8_t *data, size_t len, size_t pitch,
               uint32_t height_alloc, int64_t pts, int32_t kind, char *err, size_t errlen)
{
    Layout l;
    AVFrame *f;
    int r;

    if (!c) {
        set_err(err, errlen, "no encoder");
        return AVERROR(EINVAL);
    }
    if (!data) {
        if (c->flushed)
            return 0;
        if (c->xenc) {
            /* end of stream: x265 gives out everything it holds */
            while ((r = x265_step(c, NULL, err, errlen)) > 0)
                ;
            if (r < 0)
                return r;
            c->flushed = 1;
            c->xeof = 1;
            return 0;
        }
        r = avcodec_send_frame(c->avctx, NULL);
        if (r < 0) {
            set_averr(err, errlen, "avcodec_send_frame(flush)", r);
            return r;
        }
        c->flushed = 1;
        return 0;
    }
    if (c->flushed) {
        set_err(err, errlen, "encoder was flushed; reopen it");
        return AVERROR(EINVAL);
    }
    if (height_alloc < (uint32_t)c->cfg.height) {
        set_err(err, errlen, "buffer height %u is below the encode height %d", height_alloc,
                c->cfg.height);
        return AVERROR(EINVAL);
    }
    if (layout_of(fmt, c->cfg.width, c->cfg.height, pitch, height_alloc, &l) < 0) {
        set_err(err, errlen, "unknown input format %d", fmt);
        return AVERROR(EINVAL);
    }
    if (pitch > (size_t)INT32_MAX) {
        set_err(err, errlen, "pitch %zu too large", pitch);
        return AVERROR(EINVAL);
    }
    for (int p = 0; p < l.nplanes; p++) {
        size_t need = l.off[p] + (l.rows[p] - 1) * l.pitch[p] + l.rowbytes[p];
        if (l.pitch[p] < l.rowbytes[p]) {
            set_err(err, errlen, "pitch %zu is below the row size %zu of plane %d", l.pitch[p],
                    l.rowbytes[p], p);
            return AVERROR(EINVAL);
        }
        if (need > len) {
            set_err(err, errlen, "input buffer of %zu bytes is too small: plane %d needs %zu", len,
                    p, need);
            return AVERROR(EINVAL);
        }
    }

    f = convert_input(c, fmt, data, &l, err, errlen);
    if (!f)
        return AVERROR(ENOMEM);
    if (c->xenc) {
        r = x265_send(c, f, pts, kind, err, errlen);
        av_frame_free(&f);
        return r;
    }
    f->pts = pts;
    if (c->cfg.has_colour) {
        f->color_primaries = c->cfg.primaries;
        f->color_trc = c->cfg.transfer;
        f->colorspace = c->cfg.matrix;
        f->color_range = c->cfg.full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    }
    if (c->cfg.codec == SWENC_AV1) {
        int key = kind == SWENC_KIND_IDR || kind == SWENC_KIND_I || c->av1_since_key == 0 ||
                  (kind == SWENC_KIND_AUTO && c->cfg.gop_length > 0 &&
                   c->av1_since_key >= c->cfg.gop_length);
        if (key && kind != SWENC_KIND_I)
            kind = SWENC_KIND_IDR;
        c->av1_since_key = key ? 1 : c->av1_since_key + 1;
    }
    switch (kind) {
    case SWENC_KIND_IDR:
    case SWENC_KIND_I:
        f->pict_type = AV_PICTURE_TYPE_I;
        if (c->cfg.codec != SWENC_AV1)
            av_opt_set_int(c->avctx->priv_data, "forced-idr", kind == SWENC_KIND_IDR, 0);
        break;
    case SWENC_KIND_P:
        f->pict_type = AV_PICTURE_TYPE_P;
        break;
    case SWENC_KIND_B:
        /* libaom has no reordering here: a B is coded as an inter frame in display order */
        f->pict_type = c->cfg.codec == SWENC_AV1 ? AV_PICTURE_TYPE_NONE : AV_PICTURE_TYPE_B;
        break;
    default:
        f->pict_type = AV_PICTURE_TYPE_NONE;
        break;
    }
    if (c->qmap_pending && c->cfg.codec == SWENC_H264 && (r = attach_rois(c, f)) < 0) {
        av_frame_free(&f);
        set_averr(err, errlen, "regions of interest", r);
        return r;
    }
    c->qmap_pending = 0;
    r = avcodec_send_frame(c->avctx, f);
    av_frame_free(&f);
    if (r < 0) {
        set_averr(err, errlen, "avcodec_send_frame", r);
        return r;
    }
    return 0;
}

int swenc_set_qp_map(SwencCtx *c, const int8_t *map, int32_t cols, int32_t rows, int32_t block,
                     char *err, size_t errlen)
{
    size_t n;
    if (!c || !map || cols <= 0 || rows <= 0 || block <= 0) {
        set_err(err, errlen, "invalid QP map");
        return AVERROR(EINVAL);
    }
    if (c->cfg.codec == SWENC_AV1)
        return 0;
    n = (size_t)cols * rows;
    if (n > c->qmap_cap) {
        int8_t *m = av_realloc(c->qmap, n);
        if (!m) {
            set_err(err, errlen, "out of memory");
            return AVERROR(ENOMEM);
        }
        c->qmap = m;
        c->qmap_cap = n;
    }
    memcpy(c->qmap, map, n);
    c->qcols = cols;
    c->qrows = rows;
    c->qblock = block;
    c->qmap_pending = 1;
    return 1;
}

int swenc_receive(SwencCtx *c, SwencPacket *out, char *err, size_t errlen)
{
    int r;
    size_t sz = 0;
    const uint8_t *sd;

    if (!c || !out) {
        set_err(err, errlen, "no encoder");
        return AVERROR(EINVAL);
    }
    memset(out, 0, sizeof(*out));
    if (c->xenc)
        return x265_receive(c, out);
    av_packet_unref(c->pkt);
    r = avcodec_receive_packet(c->avctx, c->pkt);
    if (r == AVERROR(EAGAIN))
        return 0;
    if (r == AVERROR_EOF)
        return 2;
    if (r < 0) {
        set_averr(err, errlen, "avcodec_receive_packet", r);
        return r;
    }
    out->data = c->pkt->data;
    out->size = (size_t)c->pkt->size;
    out->pts = c->pkt->pts;
    out->key = !!(c->pkt->flags & AV_PKT_FLAG_KEY);
    sd = av_packet_get_side_data(c->pkt, AV_PKT_DATA_QUALITY_STATS, &sz);
    out->pict_type = (sd && sz >= 5) ? sd[4] : 0;
    /* quality: the picture's QP * FF_QP2LAMBDA (libx264; libaom's is not an H.26x QP) */
    out->qp = -1;
    if (sd && sz >= 4 && c->cfg.codec == SWENC_H264)
        out->qp = (double)AV_RL32(sd) / FF_QP2LAMBDA;
    return 1;
}
