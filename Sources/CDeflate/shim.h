// libdeflate (Debian's libdeflate-dev): whole-buffer DEFLATE/zlib decompression and CRC-32, about twice as fast
// as zlib's inflate on this machine. Kinema uses it to verify PNG uploads at submit time.
#ifndef KINEMA_CDEFLATE_SHIM_H
#define KINEMA_CDEFLATE_SHIM_H
#include <libdeflate.h>
#endif
