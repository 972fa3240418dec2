/* rw: the wire format of the data channel (protocol v1).
 *
 * This header is the protocol: docs/protocol.md describes the same thing in
 * prose and must agree with it.  Every integer is big-endian on the wire.
 *
 * A connection is TLS 1.3 (see tls.c).  Inside it, both ends exchange
 * frames.  A frame is a fixed 24-byte header followed by LEN payload bytes:
 *
 *   offset size field
 *   0      4    magic    RW_FRAME_MAGIC ("RWF1")
 *   4      2    type     RW_T_*
 *   6      2    flags    0 (reserved, must be zero)
 *   8      8    id       request id, echoed in the reply
 *   16     4    len      payload length, at most RW_MAX_PAYLOAD
 *   20     4    hcheck   low 32 bits of XXH3-64 of bytes 0..19
 *
 * The client opens with HELLO; the server answers HELLO.  Then the client
 * may pipeline any number of requests; the server answers each, in order,
 * with the reply type or RW_T_ERROR carrying the same id.
 */

#ifndef RW_PROTO_H
#define RW_PROTO_H

#include <stdint.h>

#define RW_FRAME_MAGIC    0x52574631u /* "RWF1" */
#define RW_PROTO_VERSION  1
#define RW_DEFAULT_PORT   5994
#define RW_HDR_SIZE       24

/* Hard caps.  Anything larger is a protocol error. */
#define RW_MAX_READ       (8u << 20)  /* one READ request */
#define RW_MAX_PAYLOAD    (RW_MAX_READ + 64u) /* any frame payload */
#define RW_MAX_DISKS      64
#define RW_MAX_INVENTORY  (1u << 20)  /* inventory JSON text */
#define RW_MAX_HASHES     (1u << 19)  /* hashes in one HASHES reply */
#define RW_MAX_ERRMSG     512
#define RW_HASH_LEN       16          /* XXH3-128 */
#define RW_MIN_CHUNK      4096        /* hash chunk sizes */
#define RW_MAX_CHUNK      (4u << 20)

/* Frame types.  Requests are < 0x100, replies have 0x100 set. */
enum {
  RW_T_HELLO      = 0x01, /* u32 version, u32 features */
  RW_T_INVENTORY  = 0x02, /* (empty) */
  RW_T_MAP        = 0x03, /* u32 disk, u64 offset, u64 length */
  RW_T_READ       = 0x04, /* u32 disk, u64 offset, u32 length */
  RW_T_HASHES     = 0x05, /* u32 disk, u64 offset, u32 count, u32 chunk */
  RW_T_DIGEST     = 0x06, /* u32 disk: SHA-256 of the whole disk */
  RW_T_BYE        = 0x07, /* (empty): the client is done */

  RW_T_HELLO_R     = 0x101, /* u32 version, u32 features, u32 ndisks */
  RW_T_INVENTORY_R = 0x102, /* JSON text, see docs/protocol.md */
  RW_T_MAP_R       = 0x103, /* u32 n, then n x (u64 off, u64 len, u32 kind) */
  RW_T_DATA        = 0x104, /* u8 enc, 3 x u8 zero, u32 ulen, u64 xxh3, data */
  RW_T_HASHES_R    = 0x105, /* u32 count, u32 chunk, count x 16 bytes */
  RW_T_DIGEST_R    = 0x106, /* u64 size, 32 bytes SHA-256 */
  RW_T_ERROR       = 0x1ff, /* u32 code, u16 n, n bytes of message */
};

/* DATA encodings. */
enum {
  RW_ENC_RAW  = 0, /* payload is ulen bytes */
  RW_ENC_LZ4  = 1, /* payload is an LZ4 block that decodes to ulen bytes */
  RW_ENC_ZERO = 2, /* no payload: ulen zero bytes */
};

/* MAP extent kinds. */
enum {
  RW_EXT_DATA = 0, /* may hold data: read it */
  RW_EXT_ZERO = 1, /* reads as zeros (hole, or known free space) */
};
#define RW_MAX_EXTENTS 65536 /* extents in one MAP reply */

/* ERROR codes. */
enum {
  RW_E_PROTO   = 1, /* malformed or unexpected frame */
  RW_E_RANGE   = 2, /* offset/length outside the disk */
  RW_E_NODISK  = 3, /* no such disk */
  RW_E_IO      = 4, /* the source could not read */
  RW_E_VERSION = 5, /* unsupported protocol version */
};

/* Features advertised in HELLO. */
#define RW_F_LZ4     (1u << 0)
#define RW_F_MAP     (1u << 1)
#define RW_F_HASHES  (1u << 2)

/* Size of each fixed payload part, used by both ends. */
#define RW_HELLO_LEN     8
#define RW_HELLO_R_LEN   12
#define RW_MAP_LEN       20
#define RW_READ_LEN      16
#define RW_HASHES_LEN    20
#define RW_DIGEST_LEN    4
#define RW_DATA_HDR_LEN  16
#define RW_EXTENT_LEN    20

#endif /* RW_PROTO_H */
