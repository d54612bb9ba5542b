/* fuzz_yupdate_v1: decode, re-encode and re-decode Yjs updates v1 (see fuzz_yupdate.inc). */
#define VERSION 1
#include "fuzz_yupdate.inc"
