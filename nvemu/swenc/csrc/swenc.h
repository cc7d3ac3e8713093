/* C interface of the nvemu-swenc shim. Mirrored by `ffi` in src/lib.rs: keep both in sync. */
#ifndef NVEMU_SWENC_H
#define NVEMU_SWENC_H

#include <stddef.h>
#include <stdint.h>

enum { SWENC_H264 = 0, SWENC_HEVC = 1, SWENC_AV1 = 2 };
enum { SWENC_RC_CONSTQP = 0, SWENC_RC_VBR = 1, SWENC_RC_CBR = 2 };
enum {
    SWENC_FMT_NV12 = 0, SWENC_FMT_YV12 = 1, SWENC_FMT_IYUV = 2, SWENC_FMT_YUV444 = 3,
    SWENC_FMT_P010 = 4, SWENC_FMT_YUV444_10 = 5, SWENC_FMT_ARGB = 6, SWENC_FMT_ABGR = 7,
    SWENC_FMT_AYUV = 8, SWENC_FMT_ARGB10 = 9, SWENC_FMT_ABGR10 = 10
};
enum { SWENC_KIND_AUTO = 0, SWENC_KIND_IDR = 1, SWENC_KIND_I = 2, SWENC_KIND_P = 3, SWENC_KIND_B = 4 };

typedef struct SwencConfig {
    int32_t codec;
    int32_t width, height;
    int32_t bit_depth;
    int32_t chroma_444;
    int32_t fps_num, fps_den;
    int32_t gop_length; /* 0 = infinite */
    int32_t b_frames;
    int32_t rc_mode;
    int32_t qp_i, qp_p, qp_b;
    int64_t avg_bps, max_bps, vbv_bits;
    float target_quality; /* < 0: none */
    int32_t has_colour, primaries, transfer, matrix, full_range;
    int32_t repeat_headers;
    int32_t speed; /* 1..7 */
    int32_t h264_profile; /* profile_idc: 0 = encoder's choice, 66, 77, 100, 244 */
    int32_t lossless;     /* H.264 QP 0 transform bypass (High 4:4:4), H.265 transquant bypass */
    int32_t pic_struct;   /* H.264: picture timing SEI with pic_struct (x264 pic-struct), no HRD */
} SwencConfig;

typedef struct SwencPacket {
    const uint8_t *data; /* valid until the next swenc_receive / swenc_close */
    size_t size;
    int64_t pts;
    int32_t key;       /* AV_PKT_FLAG_KEY */
    int32_t pict_type; /* AVPictureType from the encoder stats, 0 if unknown */
    double qp;         /* the picture's average QP as the encoder reports it, < 0 if unknown */
} SwencPacket;

typedef struct SwencCtx SwencCtx;

/* All functions return < 0 on error and write a NUL-terminated message into err. */
SwencCtx *swenc_open(const SwencConfig *cfg, char *err, size_t errlen);
/* data == NULL: end of stream (flush). */
int swenc_send(SwencCtx *c, int32_t fmt, const uint8_t *data, size_t len, size_t pitch,
               uint32_t height_alloc, int64_t pts, int32_t kind, char *err, size_t errlen);
/* 1: packet in *out; 0: needs more input; 2: end of stream reached; < 0: error */
int swenc_receive(SwencCtx *c, SwencPacket *out, char *err, size_t errlen);
/* Live rate change (VBR/CBR), keeping the sequence going: 1 applied, 0 not possible with this
 * encoder or mode (the caller re-opens instead), < 0 error. */
int swenc_set_rate(SwencCtx *c, int64_t avg_bps, int64_t max_bps, int64_t vbv_bits, char *err,
                   size_t errlen);
/* A new constant QP (rc_mode CONSTQP: qp_i/p/b) or target quality (VBR with target quality:
 * tq >= 0), keeping the sequence going: 1 applied, 0 not possible with this encoder or mode
 * (the caller re-opens instead), < 0 error. See swenc.c for how each encoder does it. */
int swenc_set_quality(SwencCtx *c, int32_t qp_i, int32_t qp_p, int32_t qp_b, float tq,
                      char *err, size_t errlen);
/* H.265: the VPS/SPS/PPS of the open x265 encoder (x265_encoder_headers, Annex B), without a
 * throwaway encoder: 1 and *len bytes in out (cap bytes at most; *len is the size needed when
 * cap is too small, then < 0), 0 when this is no x265 encoder, < 0 on error. */
int swenc_x265_headers(SwencCtx *c, uint8_t *out, size_t cap, size_t *len);
/* A QP delta map for the next frame swenc_send takes: cols x rows signed QP offsets of
 * block x block pixels in raster order (NVENC's qpDeltaMap). libx264: per macroblock through
 * libavcodec's regions of interest (AV_FRAME_DATA_REGIONS_OF_INTEREST, which its wrapper turns
 * into quant_offsets; needs adaptive quantisation, i.e. not constant QP); libx265: per 16x16
 * block through x265_picture.quantOffsets; libaom: ignored (returns 0). 1: it will be
 * honoured, 0: this encoder ignores it, < 0 error. */
int swenc_set_qp_map(SwencCtx *c, const int8_t *map, int32_t cols, int32_t rows, int32_t block,
                     char *err, size_t errlen);
void swenc_close(SwencCtx *c);

#endif
