/* SPDX-License-Identifier: MPL-2.0
 *
 * cuda_stream_src: feeds an encoder GstCudaMemory that belongs to a CUDA stream, as GStreamer
 * 1.24+ elements make it (nvh264dec, cudaconvert with a downstream stream: the work is queued
 * on the memory's stream and GST_CUDA_MEMORY_TRANSFER_NEED_SYNC is left for downstream), to
 * check that the encoder waits for exactly that work before NVENC reads the memory. Built and
 * run by scripts/check-newer-gstreamer inside a Debian 13 (GStreamer 1.26) root with the
 * emulator's stand-ins.
 *
 *   cuda_stream_src MODE FRAMES ENCODER OUT REF
 *
 * A 320x240 NV12 picture per frame (a moving gradient and box) is written into a buffer of a
 * GstCudaBufferPool configured with our own GstCudaStream, pushed through appsrc into
 * "ENCODER ! filesink location=OUT"; the pictures go to REF (raw NV12) for PSNR. MODE:
 *   pending         device map (GST_MAP_WRITE | GST_MAP_CUDA, which sets NEED_SYNC), one
 *                   CuMemcpy2DAsync per plane on the memory's stream, no sync (nvh264dec's way)
 *   cpu-write       CPU map and write (the memory's staging copy): the upload to the device
 *                   happens when downstream maps it for CUDA, queued on the memory's stream
 *   stream-ordered  as pending, from a pool with stream-ordered allocation (memory pools)
 *   encoder-pool    as pending, from the pool the encoder proposes (allocation query), set to
 *                   our stream as GStreamer's CUDA elements do with a downstream pool; run
 *                   with GST_CUDA_ENABLE_STREAM_ORDERED_ALLOC=1 to see whether the pool
 *                   still gives memory NVENC can register
 *   unflagged       as pending, then NEED_SYNC cleared without syncing: a lying producer, the
 *                   negative control (the encoder cannot know; the emulator must see the race)
 *
 * Only GStreamer's public 1.24+/1.26 CUDA API is used, declared here because its headers
 * include the CUDA toolkit's cuda.h, which Debian does not ship.
 */
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _GstCudaContext GstCudaContext;
typedef struct _GstCudaStream GstCudaStream;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

/* cuda.h CUDA_MEMCPY2D (128 bytes on LP64) */
typedef struct {
  size_t srcXInBytes, srcY;
  unsigned int srcMemoryType;
  const void *srcHost;
  CUdeviceptr srcDevice;
  void *srcArray;
  size_t srcPitch;
  size_t dstXInBytes, dstY;
  unsigned int dstMemoryType;
  void *dstHost;
  CUdeviceptr dstDevice;
  void *dstArray;
  size_t dstPitch;
  size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;
G_STATIC_ASSERT (sizeof (CUDA_MEMCPY2D) == 128);
#define CU_MEMORYTYPE_HOST 1
#define CU_MEMORYTYPE_DEVICE 2

/* gst/cuda/gstcudamemory.h (public part of the struct, 1.22+) */
typedef struct {
  GstMemory mem;
  GstCudaContext *context;
  GstVideoInfo info;
} GstCudaMemoryHead;
#define GST_MAP_CUDA (GST_MAP_FLAG_LAST << 1)
#define GST_CUDA_MEMORY_TRANSFER_NEED_SYNC (GST_MEMORY_FLAG_LAST << 2)

gboolean gst_cuda_load_library (void);
void gst_cuda_memory_init_once (void);
GstCudaContext *gst_cuda_context_new (guint device_id);
gboolean gst_cuda_context_push (GstCudaContext * ctx);
gboolean gst_cuda_context_pop (void **ctx);
GstContext *gst_context_new_cuda_context (GstCudaContext * cuda_ctx);
GstCudaStream *gst_cuda_stream_new (GstCudaContext * context);
CUstream gst_cuda_stream_get_handle (GstCudaStream * stream);
void gst_cuda_stream_unref (GstCudaStream * stream);
GstCudaStream *gst_cuda_memory_get_stream (GstMemory * mem);
GstBufferPool *gst_cuda_buffer_pool_new (GstCudaContext * context);
void gst_buffer_pool_config_set_cuda_stream (GstStructure * config,
    GstCudaStream * stream);
void gst_buffer_pool_config_set_cuda_stream_ordered_alloc (GstStructure *
    config, gboolean stream_ordered);
/* exported by libgstcuda 1.26 (declared in its private header): diagnostics only */
gboolean gst_cuda_memory_is_stream_ordered (GstMemory * mem);
int CuMemcpy2DAsync (const CUDA_MEMCPY2D * p, CUstream stream);

#define W 320
#define H 240

static void
fill (guint8 * y, gsize ystride, guint8 * uv, gsize uvstride, guint n)
{
  for (guint r = 0; r < H; r++)
    for (guint c = 0; c < W; c++) {
      gboolean box = c >= 40 + 4 * n && c < 104 + 4 * n && r >= 80 && r < 144;
      y[r * ystride + c] = box ? 235 : (guint8) (16 + (c + r + 2 * n) % 200);
    }
  for (guint r = 0; r < H / 2; r++)
    for (guint c = 0; c < W / 2; c++) {
      uv[r * uvstride + 2 * c] = (guint8) (64 + (c * 2 + n) % 128);
      uv[r * uvstride + 2 * c + 1] = (guint8) (192 - (r * 2) % 128);
    }
}

int
main (int argc, char **argv)
{
  if (argc != 6) {
    fprintf (stderr, "usage: %s MODE FRAMES ENCODER OUT REF\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  guint frames = (guint) atoi (argv[2]);
  gboolean cpu_write = !strcmp (mode, "cpu-write");
  gboolean stream_ordered = !strcmp (mode, "stream-ordered");
  gboolean unflagged = !strcmp (mode, "unflagged");
  gboolean encoder_pool = !strcmp (mode, "encoder-pool");
  if (!cpu_write && !stream_ordered && !unflagged && !encoder_pool
      && strcmp (mode, "pending")) {
    fprintf (stderr, "unknown mode %s\n", mode);
    return 2;
  }
  gst_init (&argc, &argv);
  if (!gst_cuda_load_library ()) {
    fprintf (stderr, "libgstcuda cannot load the CUDA driver\n");
    return 1;
  }
  gst_cuda_memory_init_once ();
  GstCudaContext *ctx = gst_cuda_context_new (0);
  GstCudaStream *stream = ctx ? gst_cuda_stream_new (ctx) : NULL;
  if (!stream) {
    fprintf (stderr, "no CUDA context or stream\n");
    return 1;
  }
  CUstream handle = gst_cuda_stream_get_handle (stream);

  gchar *desc = g_strdup_printf ("appsrc name=src format=time block=true max-buffers=2 ! %s ! "
      "filesink location=%s", argv[3], argv[4]);
  GError *err = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!pipeline) {
    fprintf (stderr, "pipeline: %s\n", err->message);
    return 1;
  }
  /* Our context for the whole pipeline (the encoder takes it through set_context). */
  GstContext *gctx = gst_context_new_cuda_context (ctx);
  gst_element_set_context (pipeline, gctx);
  gst_context_unref (gctx);

  GstCaps *caps = gst_caps_from_string ("video/x-raw(memory:CUDAMemory),"
      "format=NV12,width=320,height=240,framerate=25/1");
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  g_object_set (src, "caps", caps, NULL);

  GstVideoInfo vinfo;
  gst_video_info_from_caps (&vinfo, caps);
  GstBufferPool *pool = NULL;
  GstStructure *config;
  guint size = (guint) vinfo.size, min = 4, max = 0;
  if (encoder_pool) {
    /* the encoder's proposal: it has started (its CUDA context is shared) once READY */
    gst_element_set_state (pipeline, GST_STATE_READY);
    gst_element_set_state (pipeline, GST_STATE_PAUSED);
    GstPad *pad = gst_element_get_static_pad (src, "src");
    GstQuery *q = gst_query_new_allocation (caps, TRUE);
    if (!gst_pad_peer_query (pad, q) || !gst_query_get_n_allocation_pools (q)) {
      fprintf (stderr, "the encoder proposed no pool\n");
      return 1;
    }
    gst_query_parse_nth_allocation_pool (q, 0, &pool, &size, &min, &max);
    gst_query_unref (q);
    gst_object_unref (pad);
    if (!pool) {
      fprintf (stderr, "the encoder proposed no pool\n");
      return 1;
    }
    config = gst_buffer_pool_get_config (pool);
  } else {
    pool = gst_cuda_buffer_pool_new (ctx);
    config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_set_cuda_stream_ordered_alloc (config,
        stream_ordered);
  }
  gst_buffer_pool_config_set_params (config, caps, size, min, max);
  gst_buffer_pool_config_add_option (config,
      GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_buffer_pool_config_set_cuda_stream (config, stream);
  if (!gst_buffer_pool_set_config (pool, config)
      || !gst_buffer_pool_set_active (pool, TRUE)) {
    fprintf (stderr, "cannot configure the CUDA buffer pool\n");
    return 1;
  }
  gst_caps_unref (caps);

  FILE *ref = fopen (argv[5], "wb");
  if (!ref) {
    perror (argv[5]);
    return 1;
  }
  guint8 *host = g_malloc (W * H * 3 / 2);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);

  for (guint n = 0; n < frames; n++) {
    GstBuffer *buf = NULL;
    if (gst_buffer_pool_acquire_buffer (pool, &buf, NULL) != GST_FLOW_OK) {
      fprintf (stderr, "acquire failed\n");
      return 1;
    }
    GstMemory *mem = gst_buffer_peek_memory (buf, 0);
    GstVideoInfo *info = &((GstCudaMemoryHead *) mem)->info;
    gsize ys = (gsize) GST_VIDEO_INFO_PLANE_STRIDE (info, 0);
    gsize uvs = (gsize) GST_VIDEO_INFO_PLANE_STRIDE (info, 1);
    gsize uvo = GST_VIDEO_INFO_PLANE_OFFSET (info, 1);
    if (n == 0)
      printf ("memory: stream %p (ours %p), stream-ordered %d, strides %zu/%zu,"
          " chroma at %zu\n", (void *) gst_cuda_memory_get_stream (mem),
          (void *) stream, gst_cuda_memory_is_stream_ordered (mem), ys, uvs,
          uvo);
    fill (host, W, host + W * H, W, n);
    fwrite (host, 1, W * H * 3 / 2, ref);
    GstMapInfo map;
    if (cpu_write) {
      if (!gst_memory_map (mem, &map, GST_MAP_WRITE)) {
        fprintf (stderr, "CPU map failed\n");
        return 1;
      }
      for (guint r = 0; r < H; r++)
        memcpy (map.data + r * ys, host + r * W, W);
      for (guint r = 0; r < H / 2; r++)
        memcpy (map.data + uvo + r * uvs, host + W * H + r * W, W);
      gst_memory_unmap (mem, &map);
    } else {
      if (!gst_memory_map (mem, &map, GST_MAP_WRITE | GST_MAP_CUDA)) {
        fprintf (stderr, "CUDA map failed\n");
        return 1;
      }
      CUDA_MEMCPY2D p[2];
      memset (p, 0, sizeof (p));
      for (int i = 0; i < 2; i++) {
        p[i].srcMemoryType = CU_MEMORYTYPE_HOST;
        p[i].srcHost = host + (i ? W * H : 0);
        p[i].srcPitch = W;
        p[i].dstMemoryType = CU_MEMORYTYPE_DEVICE;
        p[i].dstDevice = (CUdeviceptr) (map.data + (i ? uvo : 0));
        p[i].dstPitch = i ? uvs : ys;
        p[i].WidthInBytes = W;
        p[i].Height = i ? H / 2 : H;
      }
      gst_cuda_context_push (ctx);
      int r0 = CuMemcpy2DAsync (&p[0], handle);
      int r1 = CuMemcpy2DAsync (&p[1], handle);
      gst_cuda_context_pop (NULL);
      gst_memory_unmap (mem, &map);
      if (r0 || r1) {
        fprintf (stderr, "CuMemcpy2DAsync failed: %d %d\n", r0, r1);
        return 1;
      }
      if (n == 0)
        printf ("after the device write: NEED_SYNC %d\n",
            GST_MEMORY_FLAG_IS_SET (mem, GST_CUDA_MEMORY_TRANSFER_NEED_SYNC)
            ? 1 : 0);
      if (unflagged)
        GST_MEMORY_FLAG_UNSET (mem, GST_CUDA_MEMORY_TRANSFER_NEED_SYNC);
    }
    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (n, GST_SECOND, 25);
    GST_BUFFER_DURATION (buf) = GST_SECOND / 25;
    if (gst_app_src_push_buffer (GST_APP_SRC (src), buf) != GST_FLOW_OK) {
      fprintf (stderr, "push failed at frame %u\n", n);
      break;
    }
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  fclose (ref);

  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int ret = 0;
  if (!msg) {
    fprintf (stderr, "timed out waiting for EOS\n");
    ret = 1;
  } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error (msg, &e, &dbg);
    fprintf (stderr, "error: %s (%s)\n", e->message, dbg ? dbg : "");
    ret = 1;
  } else {
    printf ("%u frames pushed, EOS; our stream is %p\n", frames,
        (void *) handle);
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (pipeline);
  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  gst_cuda_stream_unref (stream);
  gst_object_unref (ctx);
  g_free (host);
  return ret;
}
