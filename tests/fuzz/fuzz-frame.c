/* libFuzzer harness: the data channel's parsers, fed raw bytes as they
 * would arrive from the network: the frame header, ERROR payloads, DATA
 * headers with LZ4 decoding into a buffer of the declared size, and MAP
 * replies through the bounded reader.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t out[1 << 20];
  struct frame_hdr h;
  char err[160], msg[RW_MAX_ERRMSG];
  uint32_t code;
  struct rbuf r;

  if (size >= RW_HDR_SIZE)
    frame_decode_hdr (data, &h, err, sizeof err);
  frame_error_text (data, size, &code, msg, sizeof msg);

  /* A DATA payload: u8 enc, 3 zero, u32 ulen, u64 sum, bytes. */
  if (size >= RW_DATA_HDR_LEN) {
    uint32_t ulen = get_be32 (data + 4) & ((1 << 20) - 1);
    codec_decode (data[0] % 4, data + RW_DATA_HDR_LEN,
                  size - RW_DATA_HDR_LEN, out, ulen);
  }

  /* A MAP reply. */
  rbuf_init (&r, data, size);
  {
    uint32_t n, i;
    if (rbuf_u32 (&r, &n) == 0 && n <= RW_MAX_EXTENTS)
      for (i = 0; i < n; i++) {
        uint64_t off, len;
        uint32_t kind;
        if (rbuf_u64 (&r, &off) < 0 || rbuf_u64 (&r, &len) < 0
            || rbuf_u32 (&r, &kind) < 0)
          break;
      }
  }
  return 0;
}
