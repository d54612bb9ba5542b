/* fuzz_yupdate_v2: decode, re-encode and re-decode Yjs updates v2 (see fuzz_yupdate.inc). */
#define VERSION 2
#include "fuzz_yupdate.inc"
