// The one C entry point to FFmpeg for Kinema. Function-like macros do not cross into Swift,
// so each one used from Swift gets a static inline wrapper here. Nothing else belongs in this file.
#ifndef KINEMA_CFFMPEG_SHIM_H
#define KINEMA_CFFMPEG_SHIM_H

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/// AVERROR(e) for a POSIX errno value.
static inline int kin_averror(int errnum) { return AVERROR(errnum); }
/// AVERROR(EAGAIN): "send more input / read output first".
static inline int kin_averror_eagain(void) { return AVERROR(EAGAIN); }
/// AVERROR_EOF: end of stream.
static inline int kin_averror_eof(void) { return AVERROR_EOF; }
/// AV_NOPTS_VALUE: "no timestamp".
static inline int64_t kin_nopts_value(void) { return AV_NOPTS_VALUE; }
/// AV_TIME_BASE_Q.
static inline AVRational kin_time_base_q(void) { return AV_TIME_BASE_Q; }

/// av_err2str without the compound literal: writes the message for `errnum` into `buf`.
static inline void kin_strerror(int errnum, char *buf, size_t size) {
    if (av_strerror(errnum, buf, size) < 0) {
        snprintf(buf, size, "error %d", errnum);
    }
}

/// Sets `layout` to FFmpeg's default layout for `channels` (stereo for 2).
static inline void kin_channel_layout_default(AVChannelLayout *layout, int channels) {
    av_channel_layout_default(layout, channels);
}

/// Data pointer `i` (0...7) of a frame, avoiding the 8-tuple in Swift.
static inline uint8_t *kin_frame_data(const AVFrame *frame, int i) { return frame->data[i]; }
/// Line size `i` (0...7) of a frame.
static inline int kin_frame_linesize(const AVFrame *frame, int i) { return frame->linesize[i]; }

#endif
